"""Write the frame caches that tests/test_v010_frame_caches.py reads, with the library of version 0.1.0.

Run from the repository root:

    mkdir -p /tmp/v010 && git archive 668bfde src | tar -x -C /tmp/v010
    python tests/data/v010_frame_caches/make_caches.py /tmp/v010/src

The recordings are written by the test's own ``write_trees`` (deterministic, with this
checkout's library); the caches are then built from them by 0.1.0 in a child process,
and only the caches are kept.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/

BUILD = """
import shutil, sys
from pathlib import Path
import spikeformers
from spikeformers.data.cifar10_dvs import CIFAR10DVS
from spikeformers.data.dvs_gesture import DVSGesture
from spikeformers.data.ncaltech101 import NCaltech101
from spikeformers.data.nmnist import NMNIST

work, out = Path(sys.argv[1]), Path(sys.argv[2])
print(f"building with {spikeformers.__file__}, version {spikeformers.__version__}")
common = dict(train=False, time_steps=2, workers=0)
builders = {
    "cifar10_dvs": lambda root, cache: CIFAR10DVS(root, cache_dir=cache, expected_per_class=None, **common),
    "nmnist": lambda root, cache: NMNIST(root, cache_dir=cache, expected_recordings=None, **common),
    "ncaltech101": lambda root, cache: NCaltech101(root, cache_dir=cache, **common),
    "dvs_gesture": lambda root, cache: DVSGesture(root, cache_dir=cache, expected_samples=None, split_by="time",
                                                  **common),
}
for name, build in builders.items():
    shutil.rmtree(out / name, ignore_errors=True)
    data = build(work / name, out / name)
    print(name, len(data), data.cache.directory)
"""


def main(v010_src: str) -> int:
    from test_v010_frame_caches import write_trees

    with tempfile.TemporaryDirectory() as work:
        write_trees(Path(work))
        env = {**os.environ, "PYTHONPATH": v010_src}
        return subprocess.run([sys.executable, "-c", BUILD, work, str(HERE)], env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
