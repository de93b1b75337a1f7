"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS camera in saccades, 34x34.

Where the data can be (``root``), in the order looked for with ``source='auto'``:

1. a SpikingJelly frame cache ``<root>/frames_number_{T}_split_by_{mode}/{train|test}/<digit>/*.npz``,
2. a SpikingJelly event cache ``<root>/events_np/{train|test}/<digit>/*.npz``,
3. the original binaries ``<root>/Train/<digit>/*.bin`` and ``<root>/Test/<digit>/*.bin``
   (or under ``<root>/extract/``, SpikingJelly's layout).

The split is the official one (60,000 Train, 10,000 Test recordings); the
part is chosen by ``train``. Frames: ``events_to_frames(split_by=...)`` on
the 34x34 sensor, cached under ``cache_dir`` (default
``<root>/spikeformers_frames``; False: no disk cache).
"""

from __future__ import annotations

import os
import warnings

from .folder_dataset import DatasetNotFoundError, EventFolderDataset, default_cache_dir, find_class_folders

CLASSES = tuple(str(digit) for digit in range(10))
SENSOR_SIZE = (34, 34)
RECORDINGS = {True: 60_000, False: 10_000}
PUBLISHED = ("N-MNIST is published by Orchard, Jayawant, Cohen and Thakor 2015 ('Converting Static Image "
             "Datasets to Spiking Neuromorphic Datasets Using Saccades', Frontiers in Neuroscience 9:437), "
             "https://www.garrickorchard.com/datasets/n-mnist : download Train.zip and Test.zip and extract "
             "them into the data root")
SOURCES = ("auto", "bin", "events_np", "frames")


def locate(root: str, train: bool, source: str, time_steps: int, split_by: str):
    """``(kind, folder, files per digit)`` for the train or test part, or a DatasetNotFoundError."""
    official, lower = ("Train", "train") if train else ("Test", "test")
    auto = source == "auto"
    frames_folder = os.path.join(root, f"frames_number_{time_steps}_split_by_{split_by}", lower)
    candidates = [
        ("frames", frames_folder, (".npz",), auto),
        ("events_np", os.path.join(root, "events_np", lower), (".npz",), auto),
        ("bin", os.path.join(root, official), (".bin",), False),
        ("bin", os.path.join(root, "extract", official), (".bin",), True),
    ]
    kind, folder, files = find_class_folders([c for c in candidates if auto or c[0] == source], CLASSES)
    if kind is not None:
        return kind, folder, files
    raise DatasetNotFoundError(
        f"N-MNIST ({official}) is missing or incomplete in {root!r}. Expected the digit folders "
        f"{os.path.join(root, official, '<digit>', '*.bin')} (digits 0..9, {RECORDINGS[train]:,} recordings), "
        f"or a SpikingJelly cache {os.path.join(root, 'events_np', lower, '<digit>', '*.npz')} or "
        f"{os.path.join(frames_folder, '<digit>', '*.npz')}. Found:{files}\n{PUBLISHED}."
    )


class NMNIST(EventFolderDataset):
    """N-MNIST as ``(float32 frames [T, 2, 34, 34], digit)``; see the module docstring.

    Options: ``split_by`` ('number', 'time', 'time_bins'), ``source`` ('auto',
    'bin', 'events_np', 'frames'), ``cache_dir`` (None: under root; False: no
    disk cache), ``workers`` (cache build), ``resize`` / ``resize_mode``
    (``spikeformers.data.resize``), ``expected_recordings`` (None to skip the
    completeness warning).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        time_steps: int = 16,
        *,
        split: str = "official",
        split_by: str = "number",
        source: str = "auto",
        cache_dir: str | os.PathLike | None | bool = None,
        workers: int | None = None,
        resize: int | tuple[int, int] | None = None,
        resize_mode: str = "bilinear",
        expected_recordings: int | None | bool = True,
    ):
        if root is None:
            raise DatasetNotFoundError(f"nmnist needs a data root (--data-root); {PUBLISHED}.")
        if split != "official":
            raise ValueError(f"N-MNIST has one split, 'official' (its Train and Test folders); got {split!r}")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; valid: {SOURCES}")
        root = os.fspath(root)
        kind, folder, files = locate(root, train, source, time_steps, split_by)
        expected = RECORDINGS[train] if expected_recordings is True else expected_recordings
        found = sum(map(len, files.values()))
        if expected and found != expected:
            warnings.warn(f"N-MNIST in {folder} is incomplete: expected {expected:,} recordings, found "
                          f"{found:,}. {PUBLISHED}.", stacklevel=2)
        chosen = [(digit, name) for digit in CLASSES for name in files[digit]]
        cache_dir = default_cache_dir(cache_dir, root)
        super().__init__(
            name="nmnist",
            samples=[(digit, name, os.path.join(folder, digit, name)) for digit, name in chosen],
            classes=CLASSES,
            sensor_size=SENSOR_SIZE,
            time_steps=time_steps,
            split_by=split_by,
            source="frames" if kind == "frames" else "events",
            reader={"format": "nmnist"} if kind == "bin" else {"format": "npz"},
            cache_dir=cache_dir,
            key_params={"source": kind, "part": "train" if train else "test"},
            workers=workers,
            split=split,
            train=train,
            resize=resize,
            resize_mode=resize_mode,
        )
        self.root = root
        self.data_folder = folder
        self.source_kind = kind
