"""N-Caltech101 (Orchard et al. 2015): Caltech101 images recorded by an ATIS camera in saccades.

Layout: per-class folders of N-MNIST-format binaries, ``<root>/<class>/image_<i>.bin``
(or under ``<root>/Caltech101/`` as the zip extracts, or
``<root>/extract/Caltech101/``, SpikingJelly's layout). The classes are the
class folders found there, sorted by name: the object classes plus
``BACKGROUND_Google`` (leave the background class out with
``include_background=False``). Recordings differ in size (up to about
240x180); every one is read on the fixed ``sensor_size`` (180, 240) (H, W),
SpikingJelly's choice; ``resize=(H, W)`` with ``resize_mode`` resizes the
frames as some recipes do (``spikeformers.data.resize``).

No official split: ``'sj'`` (default; per class the first ``ceil(0.9 n)``
files in lexicographic order train) or ``'random'`` (``seed``).
"""

from __future__ import annotations

import os

from .folder_dataset import DatasetNotFoundError, EventFolderDataset, default_cache_dir, list_files
from .splits import split_folders

SENSOR_SIZE = (180, 240)
BACKGROUND = "BACKGROUND_Google"
PUBLISHED = ("N-Caltech101 is published by Orchard, Jayawant, Cohen and Thakor 2015 ('Converting Static Image "
             "Datasets to Spiking Neuromorphic Datasets Using Saccades', Frontiers in Neuroscience 9:437), "
             "https://www.garrickorchard.com/datasets/n-caltech101 : download Caltech101.zip and extract it "
             "into the data root")
SPLITS = ("sj", "random")


def find_classes(folder: str) -> dict[str, list[str]]:
    """``{class: sorted .bin names}`` for every sub-folder of ``folder`` holding .bin files."""
    if not os.path.isdir(folder):
        return {}
    classes = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            names = list_files(entry.path, (".bin",))
            if names:
                classes[entry.name] = names
    return classes


class NCaltech101(EventFolderDataset):
    """N-Caltech101 as ``(float32 frames [T, 2, 180, 240], label)``; see the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        time_steps: int = 16,
        *,
        split: str = "sj",
        split_by: str = "number",
        include_background: bool = True,
        cache_dir: str | os.PathLike | None | bool = None,
        workers: int | None = None,
        resize: int | tuple[int, int] | None = None,
        resize_mode: str = "bilinear",
        seed: int = 0,
        train_fraction: float = 0.9,
    ):
        if root is None:
            raise DatasetNotFoundError(f"ncaltech101 needs a data root (--data-root); {PUBLISHED}.")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for N-Caltech101; valid: {SPLITS}")
        root = os.fspath(root)
        tried = [root, os.path.join(root, "Caltech101"), os.path.join(root, "extract", "Caltech101")]
        folder, files = None, {}
        for candidate in tried:
            files = find_classes(candidate)
            if files:
                folder = candidate
                break
        if folder is None:
            raise DatasetNotFoundError(
                f"N-Caltech101 is missing in {root!r}: expected class folders of .bin recordings "
                f"{os.path.join(root, '<class>', 'image_<i>.bin')} (or under "
                f"{' or '.join(tried[1:])}); none of these holds a folder with .bin files.\n{PUBLISHED}."
            )
        if not include_background:
            files.pop(BACKGROUND, None)
        classes = sorted(files)
        chosen = split_folders(files, classes, split, train, train_fraction=train_fraction, seed=seed)
        if not chosen:
            raise ValueError(f"the {'train' if train else 'test'} part of split {split!r} is empty in {folder}")
        cache_dir = default_cache_dir(cache_dir, root)
        super().__init__(
            name="ncaltech101",
            samples=[(name, file, os.path.join(folder, name, file)) for name, file in chosen],
            classes=classes,
            sensor_size=SENSOR_SIZE,
            time_steps=time_steps,
            split_by=split_by,
            reader={"format": "nmnist"},
            cache_dir=cache_dir,
            key_params={"source": "bin"},
            workers=workers,
            split=split,
            train=train,
            resize=resize,
            resize_mode=resize_mode,
        )
        self.root = root
        self.data_folder = folder
