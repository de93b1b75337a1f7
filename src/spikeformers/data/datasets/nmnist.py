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

from ..registry import option, register_dataset
from .event_dataset import EventDataset
from .layouts import ClassFolders, Found, spikingjelly_events, spikingjelly_frames

RECORDINGS = {True: 60_000, False: 10_000}


@register_dataset("nmnist")
class NMNIST(EventDataset):
    """N-MNIST as ``(float32 frames [T, 2, 34, 34], digit)``; see the module docstring."""

    name = "nmnist"
    title = "N-MNIST"
    published = ("N-MNIST is published by Orchard, Jayawant, Cohen and Thakor 2015 ('Converting Static Image "
                 "Datasets to Spiking Neuromorphic Datasets Using Saccades', Frontiers in Neuroscience 9:437), "
                 "https://www.garrickorchard.com/datasets/n-mnist : download Train.zip and Test.zip and extract "
                 "them into the data root")
    sensor_size = (34, 34)
    classes = tuple(str(digit) for digit in range(10))
    class_folder = "<digit>"
    parts = {True: "Train", False: "Test"}
    layouts = (
        spikingjelly_frames(parts=True),
        spikingjelly_events(parts=True),
        ClassFolders("bin", (".bin",), "nmnist", ("{part}", "extract/{part}"), what="the digit folders"),
    )

    expected_recordings: int | None | bool = option(
        True, "recordings a complete part holds (True: 60,000 train, 10,000 test; None or False: no warning)")

    def check_complete(self, found: Found) -> None:
        expected = RECORDINGS[bool(self.train)] if self.expected_recordings is True else self.expected_recordings
        if expected and found.count() != expected:
            self.warn_incomplete(found.folder, f"{expected:,} recordings", f"{found.count():,}")
