"""N-CARS (Sironi et al. 2018): 100 ms samples of cars and of background, cut from ATIS recordings
in urban driving, at most 120 pixels wide and 100 high, 2 classes.

Layout: the extracted release (``Prophesee_Dataset_n_cars.zip`` holds ``n-cars_train.zip`` and
``n-cars_test.zip``), Prophesee DAT files (``readers.dat``) in
``<root>/n-cars_{train|test}/{background|cars}/obj_<i>_td.dat`` (or under
``<root>/Prophesee_Dataset_n_cars``, or in ``<root>/{train|test}/``, tonic's earlier layout).

The split is the official one (15,422 train and 8,607 test samples); the part is chosen by
``train``. Frames: ``events_to_frames(split_by=...)`` on the 100x120 sensor, cached under
``cache_dir``.
"""

from __future__ import annotations

from ..registry import option, register_dataset
from .event_dataset import EventDataset
from .layouts import ClassFolders, Found

CLASSES = ("background", "cars")
SAMPLES = {True: 15_422, False: 8_607}


@register_dataset("ncars")
class NCARS(EventDataset):
    """N-CARS as ``(float32 frames [T, 2, 100, 120], 0 background | 1 car)``; see the module docstring."""

    name = "ncars"
    title = "N-CARS"
    published = ("N-CARS is published by Prophesee (Sironi, Brambilla, Bourdis, Lagorce and Benosman 2018, 'HATS: "
                 "Histograms of Averaged Time Surfaces for Robust Event-Based Object Classification', CVPR), "
                 "https://www.prophesee.ai/2018/03/13/dataset-n-cars/ : download Prophesee_Dataset_n_cars.zip and "
                 "extract it, and the n-cars_train.zip and n-cars_test.zip inside it, into the data root")
    sensor_size = (100, 120)
    classes = CLASSES
    parts = {True: "n-cars_train", False: "n-cars_test"}
    layouts = (ClassFolders("dat", (".dat",), "dat", ("{part}", "Prophesee_Dataset_n_cars/{part}", "{sj_part}"),
                            files="obj_<i>_td.dat", what="the class folders of DAT files"),)

    expected_samples: int | None | bool = option(
        True, "samples a complete part holds (True: 15,422 train, 8,607 test; None or False: no warning)")

    def check_complete(self, found: Found) -> None:
        expected = SAMPLES[bool(self.train)] if self.expected_samples is True else self.expected_samples
        if expected and found.count() != expected:
            self.warn_incomplete(found.folder, f"{expected:,} samples", f"{found.count():,}")
