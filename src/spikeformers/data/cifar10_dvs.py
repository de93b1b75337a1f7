"""CIFAR10-DVS (Li et al. 2017): 10,000 DVS128 recordings of CIFAR-10 images, 10 classes.

Where the data can be (``root``), in the order they are looked for with
``source='auto'``:

1. a SpikingJelly frame cache ``<root>/frames_number_{T}_split_by_{number|time}/<class>/*.npz``
   for this T and ``split_by`` (used as it is: no events are read),
2. a SpikingJelly event cache ``<root>/events_np/<class>/*.npz`` (arrays t, x, y, p),
3. the original AEDAT 2.0 files ``<root>/<class>/cifar10_<class>_<i>.aedat``
   (or under ``<root>/extract/``, SpikingJelly's layout),
4. the 10 class zips as published, ``<root>/<class>.zip``, each holding its
   class's ``.aedat`` files (at its top or in one folder): read member by
   member, never extracted (``spikeformers.data.readers.archive``).

SpikingJelly's caches are in its orientation; AEDAT files are read with
``orientation`` (``'spikingjelly'``, the default and the convention of the
Spikformer / QKFormer / Spike-driven Transformer results, or ``'raw'``).

Frames: ``events_to_frames(split_by=...)`` on the 128x128 sensor ('number' by
default, as the published results; 'time' or 'time_bins' optional), cached
under ``cache_dir`` (default ``<root>/spikeformers_frames``; False: no cache).
Splits: see ``spikeformers.data.splits`` (``'sj'`` default).
"""

from __future__ import annotations

import os

from .folder_dataset import DatasetNotFoundError, EventFolderDataset, default_cache_dir, find_class_folders
from .readers import ORIENTATIONS, EventFileError
from .readers.archive import list_members
from .splits import SPLITS, split_folders

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR_SIZE = (128, 128)
RECORDINGS_PER_CLASS = 1000
PUBLISHED = ("CIFAR10-DVS is published on figshare (Li, Liu, Ji, Li, Shi 2017, 'CIFAR10-DVS: An Event-Stream "
             "Dataset for Object Classification', Frontiers in Neuroscience 11:309), "
             "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 : download the 10 class zips "
             "(about 8.4 GB) into the data root (extracting them is optional)")
SOURCES = ("auto", "aedat", "events_np", "frames")


def frames_folder_name(time_steps: int, split_by: str) -> str:
    """SpikingJelly's frame cache folder for T and split_by."""
    return f"frames_number_{time_steps}_split_by_{split_by}"


def locate(root: str, source: str, time_steps: int, split_by: str):
    """``(kind, folder, files per class, path of (class, file))`` with kind ``'aedat'``,
    ``'aedat_zip'``, ``'events_np'`` or ``'frames'``.

    Raises ``DatasetNotFoundError`` naming what was expected where.
    """
    auto = source == "auto"
    candidates = [
        ("frames", os.path.join(root, frames_folder_name(time_steps, split_by)), (".npz",), auto),
        ("events_np", os.path.join(root, "events_np"), (".npz",), auto),
        ("aedat", root, (".aedat",), False),
        ("aedat", os.path.join(root, "extract"), (".aedat",), True),
    ]
    kind, folder, files = find_class_folders(
        [c for c in candidates if auto or c[0] == source], CLASSES)
    if kind is not None:
        return kind, folder, files, lambda name, file: os.path.join(folder, name, file)
    reports = files
    if source in ("auto", "aedat"):
        members, problems = find_class_zips(root)
        if not problems:
            files = {name: sorted(by_file) for name, by_file in members.items()}
            return "aedat_zip", root, files, lambda name, file: os.path.join(root, f"{name}.zip", members[name][file])
        reports += f"\n  zips under {root}: " + "; ".join(problems[:4]) + (
            f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
    raise DatasetNotFoundError(
        f"CIFAR10-DVS is missing or incomplete in {root!r}. Expected the 10 class folders "
        f"{os.path.join(root, '<class>', 'cifar10_<class>_<i>.aedat')} (i = 0..{RECORDINGS_PER_CLASS - 1}; "
        f"classes {', '.join(CLASSES)}), or the 10 class zips {os.path.join(root, '<class>.zip')}, or a "
        f"SpikingJelly cache {os.path.join(root, 'events_np', '<class>', '*.npz')} or "
        f"{os.path.join(root, frames_folder_name(time_steps, split_by), '<class>', '*.npz')}. Found:{reports}\n"
        f"{PUBLISHED}."
    )


def find_class_zips(root: str):
    """``(members, problems)``: for each class, its zip's ``.aedat`` members by file name
    (``members[class][file name] = member``), and a line for each zip missing or
    without recordings. A hostile or damaged zip, or two members of one name, is an
    ``EventFileError`` naming the zip (``archive.list_members``)."""
    members, problems = {}, []
    for name in CLASSES:
        archive = os.path.join(root, f"{name}.zip")
        if not os.path.isfile(archive):
            problems.append(f"{archive} is missing")
            continue
        by_file = {}
        for member in list_members(archive, (".aedat",)):
            file = member.rsplit("/", 1)[-1]
            if file in by_file:
                raise EventFileError(archive, f"holds two recordings named {file!r}: {by_file[file]!r} and "
                                              f"{member!r}")
            by_file[file] = member
        if not by_file:
            problems.append(f"{archive} holds no .aedat files")
        members[name] = by_file
    return members, problems


class CIFAR10DVS(EventFolderDataset):
    """CIFAR10-DVS as ``(float32 frames [T, 2, 128, 128], label)``; see the module docstring.

    Options: ``split`` one of ``'sj'`` (default), ``'braincog'``, ``'tebn'``,
    ``'random'`` (with ``seed``, ``train_fraction``); ``braincog_train`` /
    ``tebn_test`` are the per-class counts of those splits (900 / 100);
    ``split_by`` ``'number'`` / ``'time'`` / ``'time_bins'``; ``orientation``;
    ``source`` ``'auto'`` / ``'aedat'`` / ``'events_np'`` / ``'frames'``;
    ``cache_dir`` (None: default under root; False: no disk cache);
    ``workers`` for building the cache (None: up to 8 processes; 0 or 1: serial);
    ``resize=(H, W)`` with ``resize_mode`` ``'bilinear'`` (BrainCog, TIM) or
    ``'avg'`` (the Spike-driven Transformer's 128 -> 64), see ``spikeformers.data.resize``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        time_steps: int = 16,
        *,
        split: str = "sj",
        split_by: str = "number",
        orientation: str = "spikingjelly",
        source: str = "auto",
        cache_dir: str | os.PathLike | None | bool = None,
        workers: int | None = None,
        resize: int | tuple[int, int] | None = None,
        resize_mode: str = "bilinear",
        seed: int = 0,
        train_fraction: float = 0.9,
        braincog_train: int = 900,
        tebn_test: int = 100,
        expected_per_class: int | None = RECORDINGS_PER_CLASS,
    ):
        if root is None:
            raise DatasetNotFoundError(f"cifar10_dvs needs a data root (--data-root); {PUBLISHED}.")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {SPLITS}")
        if orientation not in ORIENTATIONS:
            raise ValueError(f"unknown orientation {orientation!r}; valid: {ORIENTATIONS}")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; valid: {SOURCES}")
        root = os.fspath(root)
        kind, folder, files, path_of = locate(root, source, time_steps, split_by)
        reads_aedat = kind in ("aedat", "aedat_zip")
        if not reads_aedat and orientation != "spikingjelly":
            raise ValueError(f"{folder} is a SpikingJelly cache, in SpikingJelly's orientation; "
                             f"orientation={orientation!r} needs the AEDAT files (source='aedat')")
        if expected_per_class is not None:
            short = {name: len(names) for name, names in files.items() if len(names) != expected_per_class}
            if short:
                import warnings

                warnings.warn(f"CIFAR10-DVS in {folder} is incomplete: expected {expected_per_class} recordings "
                              f"per class, found {short}. {PUBLISHED}.", stacklevel=2)
        chosen = split_folders(files, CLASSES, split, train, train_fraction=train_fraction,
                               braincog_train=braincog_train, tebn_test=tebn_test, seed=seed)
        if not chosen:
            raise ValueError(f"the {'train' if train else 'test'} part of split {split!r} is empty for the "
                             f"{sum(map(len, files.values()))} recordings in {folder}")
        samples = [(name, file, path_of(name, file)) for name, file in chosen]
        cache_dir = default_cache_dir(cache_dir, root)
        super().__init__(
            name="cifar10_dvs",
            samples=samples,
            classes=CLASSES,
            sensor_size=SENSOR_SIZE,
            time_steps=time_steps,
            split_by=split_by,
            source="frames" if kind == "frames" else "events",
            reader={"format": "aedat2", "orientation": orientation} if reads_aedat else {"format": "npz"},
            cache_dir=cache_dir,
            # the zips hold the very files of the class folders: one cache serves both
            key_params={"source": "aedat" if reads_aedat else kind},
            workers=workers,
            split=split,
            train=train,
            resize=resize,
            resize_mode=resize_mode,
        )
        self.root = root
        self.data_folder = folder
        self.source_kind = kind
        self.orientation = orientation
