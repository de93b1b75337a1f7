"""UCF101-DVS (Bi et al. 2020): the 13,320 UCF101 action videos replayed to a DAVIS240C, 101
classes, 180x240.

Layout: the released class folders of MATLAB files (``readers.mat``: variables ts, x, y, pol),
``<root>/<Class>/v_<Class>_g<group>_c<clip>.mat`` (or under ``<root>/UCF101_DVS``). The classes
are the folders found, sorted (``expected_classes``, 101 by default, guards the labels).
Recordings under ``min_file_bytes`` (1 KiB by default) are left out, as BrainCog's loader (used
by STEP) leaves them out.

Splits:

- ``'official'`` (default): UCF101's train/test split ``official_split`` (1, 2 or 3; Soomro,
  Zamir and Shah 2012): the videos of groups 1-7, 8-14 or 15-21 test, the other groups train,
  read from the group number in each file name. Split 1 is the one BrainCog and STEP report
  (they move ``testlist01.txt``'s recordings into a test folder).
- ``'sj'`` and ``'random'``: per class, as ``spikeformers.data.datasets.splits``.
"""

from __future__ import annotations

import os
import re

from ..registry import option, register_dataset
from .layouts import ClassFolders, Found
from .mat_folders import ActionVideoFolders

GROUPS_PER_SPLIT = 7
_GROUP = re.compile(r"_g(\d+)_c\d+$")


@register_dataset("ucf101_dvs")
class UCF101DVS(ActionVideoFolders):
    """UCF101-DVS as ``(float32 frames [T, 2, 180, 240], class)``; see the module docstring."""

    name = "ucf101_dvs"
    title = "UCF101-DVS"
    published = ("UCF101-DVS is published by Bi, Chadha, Abbas, Bourtsoulatze and Andreopoulos 2020 ('Graph-Based "
                 "Spatio-Temporal Feature Learning for Neuromorphic Vision Sensing', IEEE Transactions on Image "
                 "Processing 29), https://github.com/PIX2NVS/NVS_FeatureLearning : download UCF101-DVS from the "
                 "Dropbox folder linked there and extract its class folders into the data root")
    class_count = 101
    layouts = (ClassFolders("mat", (".mat",), "mat", ("", "UCF101_DVS"), files="v_<Class>_g<group>_c<clip>.mat",
                            what="class folders of .mat recordings"),)
    splits = ("official", "sj", "random")

    split: str = option("official", "'official' (UCF101's split official_split: groups 1-7, 8-14 or 15-21 "
                                    "test), or per class 'sj' or 'random' (seeded)")

    def choose(self, found: Found) -> list[tuple[str, str]]:
        if self.split != "official":
            return super().choose(found)
        first = GROUPS_PER_SPLIT * (self.official_split - 1) + 1
        testing = range(first, first + GROUPS_PER_SPLIT)
        chosen = []
        for name, files in found.files.items():
            for file in files:
                match = _GROUP.search(os.path.splitext(file)[0])
                if match is None:
                    raise ValueError(f"{found.path(name, file)}: UCF101's official split needs recordings named "
                                     "v_<Class>_g<group>_c<clip>; use split='sj' or 'random' for other names")
                if (int(match.group(1)) in testing) != bool(self.train):
                    chosen.append((name, file))
        return chosen
