"""The part shared by the data sets Bi et al. released as MATLAB files (ASL-DVS, UCF101-DVS,
HMDB51-DVS): class folders of ``.mat`` recordings from a DAVIS240C (180x240), the classes being
the folders found, sorted by name, as tonic, SpikingJelly and BrainCog label them.

Options common to the three: ``orientation`` (``readers.mat``: ``'tonic'`` flips y so that row 0
is the top, ``'spikingjelly'`` flips x too, ``'raw'``), ``expected_classes`` (a copy with another
number of class folders is refused, since its labels would differ from everyone's) and
``min_file_bytes`` (recordings smaller than this are left out, as BrainCog's UCF101-DVS and
HMDB51-DVS loaders, which STEP uses, leave out those under 1 KiB).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from ..missing import DatasetNotFoundError
from ..readers import MAT_ORIENTATIONS
from ..registry import option
from .event_dataset import UnsplitEventDataset
from .layouts import Found, Where


class MatClassFolders(UnsplitEventDataset):
    """An event data set of ``<class>/*.mat`` recordings (module docstring); a subclass declares
    its name, title, where it is published, its layouts and ``class_count``."""

    sensor_size = (180, 240)
    class_count: ClassVar[int]

    orientation: str = option(MAT_ORIENTATIONS[0], "how the MAT files' x, y become columns and rows: 'tonic' "
                                                   "(y flipped, row 0 at the top), 'spikingjelly' (x flipped "
                                                   "too) or 'raw'")
    expected_classes: int | None = option(None, "class folders a complete copy holds (None: the data set's "
                                                "own count; 0: take the folders found, however many)")
    min_file_bytes: int = option(0, "recordings smaller than this many bytes are left out (0: none)")

    def __post_init__(self):
        if self.orientation not in MAT_ORIENTATIONS:
            raise ValueError(f"unknown orientation {self.orientation!r}; valid: {MAT_ORIENTATIONS}")
        super().__post_init__()

    def locate(self, where: Where) -> Found:
        found = super().locate(where)
        if self.min_file_bytes:
            found.files = {name: [file for file in files if os.path.getsize(found.path(name, file)) >= self.min_file_bytes]
                           for name, files in found.files.items()}
        return found

    def check_found(self, found: Found) -> None:
        expected = self.class_count if self.expected_classes is None else self.expected_classes
        if expected and len(found.files) != expected:
            raise DatasetNotFoundError(
                f"{self.title} in {found.folder} has {len(found.files)} class folders; a complete copy has "
                f"{expected}, and with others the labels would differ from everyone else's (pass "
                f"expected_classes=0 to use the {len(found.files)} found).\n{self.published}.")

    def reader_options(self, found: Found) -> dict[str, Any]:
        return {"format": "mat", "orientation": self.orientation}


class ActionVideoFolders(MatClassFolders):
    """UCF101-DVS and HMDB51-DVS: action videos replayed to the sensor, each data set with three
    official splits and BrainCog's (STEP's) rule of leaving out recordings under 1 KiB."""

    official_split: int = option(1, "which of the data set's three official splits (1, 2 or 3), for "
                                    "split='official'")
    min_file_bytes: int = option(1024, "recordings smaller than this many bytes are left out (BrainCog and "
                                       "STEP leave out those under 1 KiB; 0: none)")

    def __post_init__(self):
        if self.official_split not in (1, 2, 3):
            raise ValueError(f"official_split must be 1, 2 or 3; got {self.official_split!r}")
        super().__post_init__()
