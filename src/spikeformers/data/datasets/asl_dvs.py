"""ASL-DVS (Bi et al. 2019): 24 letters of the American Sign Language (A to Y, no J or Z), signed by
5 people in front of a DAVIS240C, 4,200 recordings per letter, 180x240.

Layout: the extracted release, a folder per letter of MATLAB files (``readers.mat``: variables
ts, x, y, pol), ``<root>/<letter>/*.mat`` (or under ``<root>/ICCV2019_DVS_dataset``). The classes
are the letter folders found, sorted (``expected_classes``, 24 by default, guards the labels).

No split was published: ``'sj'`` (default: per letter the first ``train_fraction`` of the file
names in lexicographic order train) or ``'random'`` (``seed``). ``train_fraction`` is 0.8 by
default, the 80/20 division of the recordings that Bi et al. (ICCV 2019) report on (they released
no list).
"""

from __future__ import annotations

from ..registry import option, register_dataset
from .layouts import ClassFolders, Found
from .mat_folders import MatClassFolders

RECORDINGS_PER_CLASS = 4200


@register_dataset("asl_dvs")
class ASLDVS(MatClassFolders):
    """ASL-DVS as ``(float32 frames [T, 2, 180, 240], letter)``; see the module docstring."""

    name = "asl_dvs"
    title = "ASL-DVS"
    published = ("ASL-DVS is published by Bi, Chadha, Abbas, Bourtsoulatze and Andreopoulos 2019 ('Graph-Based "
                 "Object Classification for Neuromorphic Vision Sensing', ICCV), https://github.com/PIX2NVS/NVS2Graph "
                 ": download ICCV2019_DVS_dataset.zip (Dropbox, or the OpenI mirror OpenI/ASLDVS), extract it and "
                 "the per-letter zips inside it into the data root")
    class_count = 24
    class_folder = "<letter>"
    layouts = (ClassFolders("mat", (".mat",), "mat", ("", "ICCV2019_DVS_dataset"), files="<letter>_<i>.mat",
                            what="letter folders of .mat recordings"),)

    train_fraction: float = option(0.8, "the share of each letter that trains, for split='sj' and 'random' "
                                        "(Bi et al. train on 80%)")
    expected_per_class: int | None = option(RECORDINGS_PER_CLASS,
                                            "recordings per letter a complete copy holds (None: no warning)")

    def check_complete(self, found: Found) -> None:
        if self.expected_per_class is not None:
            short = {name: len(files) for name, files in found.files.items() if len(files) != self.expected_per_class}
            if short:
                self.warn_incomplete(found.folder, f"{self.expected_per_class} recordings per letter", f"{short}")
