"""HMDB51-DVS (Bi et al. 2020): the HMDB51 action videos replayed to a DAVIS240C, 51 classes, 180x240.

Layout: the released class folders of MATLAB files (``readers.mat``: variables ts, x, y, pol),
``<root>/<class>/<video>.mat`` (or under ``<root>/HMDB51_DVS``). The classes are the folders
found, sorted (``expected_classes``, 51 by default, guards the labels). Recordings under
``min_file_bytes`` (1 KiB by default) are left out, as BrainCog's loader (used by STEP) does.

Splits:

- ``'official'`` (default): HMDB51's split ``official_split`` (1, 2 or 3; Kuehne et al. 2011),
  70 training and 30 test videos per class, read from HMDB51's split files
  ``<class>_test_split<k>.txt`` (lines ``<video>.avi <1 train | 2 test | 0 unused>``, from
  ``test_train_splits.rar`` on the HMDB51 page; the DVS release does not hold them), in
  ``<root>/testTrainMulti_7030_splits`` or ``<root>``.
- ``'step'``: the split of STEP (and BrainCog) for HMDB51-DVS: per class, the recordings in name
  order, their indices shuffled by Python's ``random`` seeded with ``seed`` (0) anew for every
  class, the first ``round(train_fraction * n)`` (0.5) train. STEP lists the files in the order
  of ``os.walk``, which depends on the file system; here it is the sorted order.
- ``'sj'`` and ``'random'``: per class, as ``spikeformers.data.datasets.splits``.
"""

from __future__ import annotations

import os
import random

from ..missing import DatasetNotFoundError
from ..registry import option, register_dataset
from .layouts import ClassFolders, Found
from .mat_folders import ActionVideoFolders

SPLIT_FOLDERS = ("testTrainMulti_7030_splits", "")
SPLIT_URL = "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/"
TRAIN_TAG, TEST_TAG = "1", "2"


def step_split(names, train: bool, fraction: float = 0.5, seed: int = 0) -> list[str]:
    """STEP's per-class split (module docstring) of one class's file ``names``, in name order."""
    ordered = sorted(names)
    indices = list(range(len(ordered)))
    random.Random(seed).shuffle(indices)
    cut = round(fraction * len(ordered))
    chosen = indices[:cut] if train else indices[cut:]
    return [ordered[i] for i in sorted(chosen)]


def read_split_file(path: str) -> dict[str, str]:
    """``{video stem: tag}`` of one HMDB51 split file; a malformed line is a ValueError naming it."""
    tags = {}
    with open(path) as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("0", TRAIN_TAG, TEST_TAG):
                raise ValueError(f"{path}, line {number}: expected '<video>.avi <0|1|2>', got {line.strip()!r}")
            tags[os.path.splitext(fields[0])[0]] = fields[1]
    return tags


@register_dataset("hmdb51_dvs")
class HMDB51DVS(ActionVideoFolders):
    """HMDB51-DVS as ``(float32 frames [T, 2, 180, 240], class)``; see the module docstring."""

    name = "hmdb51_dvs"
    title = "HMDB51-DVS"
    published = ("HMDB51-DVS is published by Bi, Chadha, Abbas, Bourtsoulatze and Andreopoulos 2020 ('Graph-Based "
                 "Spatio-Temporal Feature Learning for Neuromorphic Vision Sensing', IEEE Transactions on Image "
                 "Processing 29), https://github.com/PIX2NVS/NVS_FeatureLearning : download HMDB-DVS from the "
                 "Dropbox folder linked there and extract its class folders into the data root")
    class_count = 51
    layouts = (ClassFolders("mat", (".mat",), "mat", ("", "HMDB51_DVS"), files="<video>.mat",
                            what="class folders of .mat recordings"),)
    splits = ("official", "step", "sj", "random")

    split: str = option("official", "'official' (HMDB51's split official_split, from its split files), 'step' "
                                    "(STEP's seeded half per class), or per class 'sj' or 'random' (seeded)")
    seed: int = option(0, "the seed of split='step' (STEP's: 0) and 'random'")
    train_fraction: float = option(0.5, "the share of each class that trains, for split='step', 'sj' and 'random'")

    def choose(self, found: Found) -> list[tuple[str, str]]:
        if self.split == "step":
            return [(name, file) for name, files in found.files.items()
                    for file in step_split(files, bool(self.train), self.train_fraction, self.seed)]
        if self.split != "official":
            return super().choose(found)
        wanted = TRAIN_TAG if self.train else TEST_TAG
        chosen = []
        for name, files in found.files.items():
            tags = read_split_file(self._split_file(name))
            chosen.extend((name, file) for file in files if tags.get(os.path.splitext(file)[0]) == wanted)
        return chosen

    def _split_file(self, name: str) -> str:
        file = f"{name}_test_split{self.official_split}.txt"
        root = os.fspath(self.root)
        places = [os.path.join(root, folder, file) if folder else os.path.join(root, file) for folder in SPLIT_FOLDERS]
        for place in places:
            if os.path.isfile(place):
                return place
        raise DatasetNotFoundError(
            f"HMDB51-DVS split='official' needs HMDB51's split file {file} in {' or '.join(map(repr, places))}; "
            f"they come in test_train_splits.rar from {SPLIT_URL} (the DVS release does not hold them), "
            "or choose split='step', 'sj' or 'random'.")
