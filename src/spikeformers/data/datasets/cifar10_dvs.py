"""CIFAR10-DVS (Li et al. 2017): 10,000 DVS128 recordings of CIFAR-10 images, 10 classes.

Where the data can be (``root``), in the order they are looked for with ``source='auto'``:

1. a SpikingJelly frame cache ``<root>/frames_number_{T}_split_by_{number|time}/<class>/*.npz``
   for this T and ``split_by`` (used as it is: no events are read),
2. a SpikingJelly event cache ``<root>/events_np/<class>/*.npz`` (arrays t, x, y, p),
3. the original AEDAT 2.0 files ``<root>/<class>/cifar10_<class>_<i>.aedat``
   (or under ``<root>/extract/``, SpikingJelly's layout),
4. the 10 class zips as published, ``<root>/<class>.zip``, each holding its
   class's ``.aedat`` files (at its top or in one folder): read member by
   member, never extracted (``spikeformers.data.readers.archive``),
5. tonic's AEDAT 4 copy (``tonic.datasets.CIFAR10DVS``): ``<root>/<class>/*.aedat4``,
   or under ``<root>/CIFAR10DVS/`` (the folder tonic makes in its ``save_to``),
   read with the optional ``aedat`` package.

AEDAT 2.0 files are read with ``orientation`` (``'spikingjelly'``, the default
and the convention of the Spikformer / QKFormer / Spike-driven Transformer
results, or ``'raw'``); SpikingJelly's caches hold its orientation, and the
AEDAT 4 copy's events are taken as the files hold them, as tonic does.

Frames: ``events_to_frames(split_by=...)`` on the 128x128 sensor ('number' by
default, as the published results; 'time' or 'time_bins' optional), cached
under ``cache_dir`` (default ``<root>/spikeformers_frames``; False: no cache).
Splits: see ``spikeformers.data.datasets.splits`` (``'sj'`` default).
"""

from __future__ import annotations

from ..readers import ORIENTATIONS
from ..registry import option, register_dataset
from .event_dataset import UnsplitEventDataset
from .layouts import ClassFolders, ClassZips, Found, spikingjelly_events, spikingjelly_frames
from .splits import SPLITS

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORDINGS_PER_CLASS = 1000


@register_dataset("cifar10_dvs")
class CIFAR10DVS(UnsplitEventDataset):
    """CIFAR10-DVS as ``(float32 frames [T, 2, 128, 128], label)``; see the module docstring."""

    name = "cifar10_dvs"
    title = "CIFAR10-DVS"
    published = ("CIFAR10-DVS is published on figshare (Li, Liu, Ji, Li, Shi 2017, 'CIFAR10-DVS: An Event-Stream "
                 "Dataset for Object Classification', Frontiers in Neuroscience 11:309), "
                 "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 : download the 10 class zips "
                 "(about 8.4 GB) into the data root (extracting them is optional)")
    sensor_size = (128, 128)
    classes = CLASSES
    layouts = (
        spikingjelly_frames(),
        spikingjelly_events(),
        ClassFolders("aedat", (".aedat",), "aedat2", ("", "extract"), files="cifar10_<class>_<i>.aedat",
                     what="the AEDAT 2.0 class folders"),
        ClassZips("aedat_zip", "aedat", (".aedat",), "aedat2"),
        ClassFolders("aedat4", (".aedat4",), "aedat4", ("", "CIFAR10DVS"), what="tonic's AEDAT 4 copy"),
    )
    splits = SPLITS

    split: str = option("sj", "per class, 'sj' (the first ceil(train_fraction n) file names in lexicographic "
                              "order train), 'braincog', 'tebn' or 'random'; see data.datasets.splits")
    orientation: str = option("spikingjelly", f"how AEDAT 2.0 addresses become x, y, p: {' or '.join(ORIENTATIONS)}")
    braincog_train: int = option(900, "recordings per class that train, for split='braincog'")
    tebn_test: int = option(100, "recordings per class that test, for split='tebn'")
    expected_per_class: int | None = option(RECORDINGS_PER_CLASS,
                                            "recordings per class a complete copy holds (None: no warning)")

    def __post_init__(self):
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"unknown orientation {self.orientation!r}; valid: {ORIENTATIONS}")
        super().__post_init__()

    def check_found(self, found: Found) -> None:
        if found.format != "aedat2" and self.orientation != "spikingjelly":
            raise ValueError(f"{found.folder} is a {found.kind} source, in the orientation it was written in; "
                             f"orientation={self.orientation!r} needs the AEDAT 2.0 files (source='aedat')")

    def check_complete(self, found: Found) -> None:
        if self.expected_per_class is not None:
            short = {name: len(files) for name, files in found.files.items() if len(files) != self.expected_per_class}
            if short:
                self.warn_incomplete(found.folder, f"{self.expected_per_class} recordings per class", f"{short}")

    def reader_options(self, found: Found) -> dict:
        if found.format == "aedat2":
            return {"format": "aedat2", "orientation": self.orientation}
        return super().reader_options(found)
