"""Frame caches written by version 0.1.0 are used as they are: same key folders, same files.

``tests/data/v010_frame_caches/`` holds the caches that 0.1.0 (commit 668bfde) built for
small trees of each event data set (``make_caches.py`` there says how); ``write_trees``
writes those very trees again. With every recording then overwritten by garbage, a data
set can only serve its frames from the old cache, and must add nothing to it.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from spikeformers.data import CIFAR10DVS, NMNIST, DVSGesture, NCaltech101
from test_datasets_cifar10_dvs import make_tree
from test_datasets_dvs_gesture import make_gesture
from test_datasets_nmnist import make_ncaltech, make_nmnist

CACHES = Path(__file__).resolve().parent / "data" / "v010_frame_caches"
RECORDINGS = (".aedat", ".bin")
COMMON = dict(train=False, time_steps=2, workers=0)
DATASETS = {
    "cifar10_dvs": lambda root, cache: CIFAR10DVS(root, cache_dir=cache, expected_per_class=None, **COMMON),
    "nmnist": lambda root, cache: NMNIST(root, cache_dir=cache, expected_recordings=None, **COMMON),
    "ncaltech101": lambda root, cache: NCaltech101(root, cache_dir=cache, **COMMON),
    "dvs_gesture": lambda root, cache: DVSGesture(root, cache_dir=cache, expected_samples=None, split_by="time",
                                                  **COMMON),
}


def write_trees(work: Path) -> None:
    """The recordings the caches were made from, one tree per data set under ``work``."""
    make_tree(work / "cifar10_dvs", per_class=10)
    make_nmnist(work / "nmnist", per_digit=(1, 1))
    make_ncaltech(work / "ncaltech101")
    make_gesture(work / "dvs_gesture")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    work = tmp_path_factory.mktemp("v010_trees")
    write_trees(work)
    return work


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_frame_cache_written_by_0_1_0_is_served_as_it_is(name, trees, tmp_path):
    assert (CACHES / name).is_dir(), f"{CACHES / name} is missing: see {CACHES / 'make_caches.py'}"
    fresh = DATASETS[name](trees / name, False)  # straight from the recordings: what the cache must hold
    tree = shutil.copytree(trees / name, tmp_path / "tree")
    for path in tree.rglob("*"):
        if path.suffix in RECORDINGS:
            path.write_bytes(b"garbage")  # unreadable: frames can only come from the cache
    cache = shutil.copytree(CACHES / name, tmp_path / "cache")
    before = files_of(cache)

    served = DATASETS[name](tree, cache)

    assert files_of(cache) == before, "the 0.1.0 cache was rebuilt, extended or rewritten"
    (key,) = [folder for folder in cache.iterdir() if folder.is_dir()]
    assert served.cache.directory == str(key)
    assert len(served) == len(fresh) == len(list(key.rglob("*.npz"))) > 0
    for index in range(len(served)):
        frames = served[index][0].numpy()
        assert np.array_equal(frames, fresh[index][0].numpy()), f"sample {index}"
        assert served[index][1] == fresh[index][1]
