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

from ..registry import option, register_dataset
from .event_dataset import UnsplitEventDataset
from .layouts import ClassFolders

BACKGROUND = "BACKGROUND_Google"


@register_dataset("ncaltech101")
class NCaltech101(UnsplitEventDataset):
    """N-Caltech101 as ``(float32 frames [T, 2, 180, 240], label)``; see the module docstring."""

    name = "ncaltech101"
    title = "N-Caltech101"
    published = ("N-Caltech101 is published by Orchard, Jayawant, Cohen and Thakor 2015 ('Converting Static Image "
                 "Datasets to Spiking Neuromorphic Datasets Using Saccades', Frontiers in Neuroscience 9:437), "
                 "https://www.garrickorchard.com/datasets/n-caltech101 : download Caltech101.zip and extract it "
                 "into the data root")
    sensor_size = (180, 240)
    layouts = (ClassFolders("bin", (".bin",), "nmnist", ("", "Caltech101", "extract/Caltech101"),
                            files="image_<i>.bin", what="class folders of .bin recordings"),)

    include_background: bool = option(True, f"serve the {BACKGROUND} class too")

    def classes_found(self, files: dict[str, list[str]]) -> dict[str, list[str]]:
        return files if self.include_background else {name: names for name, names in files.items()
                                                      if name != BACKGROUND}
