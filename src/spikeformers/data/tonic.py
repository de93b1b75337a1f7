"""tonic interop: its event arrays, and its data sets served through our frames pipeline.

tonic (neuromorphs/tonic, ``pip install spikeformers[tonic]``) is the field's
data-set library. Its events are structured arrays with fields ``x``, ``y``,
``t``, ``p`` (``tonic.io.events_struct``: int16, int16, int64, bool), its
sensor sizes are ``(W, H, C)``; ours are ``EVENT_DTYPE`` and ``(H, W)``.
``to_tonic_events`` / ``from_tonic_events`` and ``to_tonic_sensor_size`` /
``from_tonic_sensor_size`` convert, exactly or with an error naming the field.

``create_dataset("tonic:NAME", ...)`` (``--dataset tonic:NAME``) wraps the
data set ``tonic.datasets.NAME`` (or any tonic-style class, by its dotted
path, ``tonic:package.module.Class``) as ``TonicDataset``: the data root is
tonic's ``save_to``, ``train`` its ``train`` (a data set without one is split
per class here, ``'sj'`` or ``'random'``); each recording is integrated with
``integrate`` (SpikingJelly's ``number`` / ``time``, tonic's ``time_bins``),
kept in our frame cache keyed by every setting, and resized as our data sets
are. tonic's own constructor options are options of the wrapped data set.
Nothing is downloaded: where tonic would download, the error names what tonic
looks for where. Only ``TonicDataset`` imports tonic, and only for a name
without dots.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import importlib
import inspect
import json
import multiprocessing
import os
import re
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write
from .datasets.frame_cache import CacheFileError, FrameCache, cache_key
from .datasets.splits import split_folders
from .events import EVENT_FIELDS, check_event_fields, make_events
from .frames import SPLIT_MODES, check_frame_options, check_sensor_size, integrate
from .missing import DatasetNotFoundError
from .readers import EventFileError
from .registry import option, register_dataset_prefix
from .resize import RESIZE_MODES, check_resize, resize_frames

# tonic.io.events_struct, written out so that converting needs no tonic (tests check the two agree).
TONIC_EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])

INSTALL_HINT = "pip install spikeformers[tonic]"
DEFAULT_CACHE_NAME = "spikeformers_frames"  # the folder under the root, as for every event data set
# tonic's constructor parameters that the wrapper sets itself: the folder, the part, and the
# transforms (framing is ours).
_SET_HERE = ("self", "save_to", "train", "transform", "target_transform", "transforms")
UNSPLIT = ("sj", "random")


# ---------------------------------------------------------------------- events and sensor sizes

def to_tonic_events(events: np.ndarray, dtype=TONIC_EVENT_DTYPE) -> np.ndarray:
    """Our events as a tonic structured array of ``dtype`` (tonic's ``events_struct`` by default;
    a data set's own ``dtype`` also works), in the same order. A value that the field of ``dtype``
    cannot hold exactly is a ValueError naming the field."""
    check_event_fields(events)
    dtype = np.dtype(dtype)
    if dtype.names is None or sorted(dtype.names) != sorted(EVENT_FIELDS):
        raise ValueError(f"a tonic event dtype has the fields x, y, t, p; got {dtype}")
    converted = np.empty(len(events), dtype=dtype)
    for name in dtype.names:
        values = np.asarray(events[name])
        field = values.astype(dtype[name])
        if not np.array_equal(field, values):
            raise ValueError(f"event {name} values in [{values.min()}, {values.max()}] do not fit tonic's "
                             f"{dtype[name]} field {name!r}")
        converted[name] = field
    return converted


def from_tonic_events(events: np.ndarray) -> np.ndarray:
    """A tonic structured array (fields x, y, t, p of any integer, bool or whole-valued float type,
    in any order) as our ``EVENT_DTYPE`` events, in the same order; a ValueError names a missing
    field or a value ``EVENT_DTYPE`` cannot hold exactly (a fraction, p other than 0/1, x beyond int16)."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None:
        described = getattr(events, "dtype", type(events).__name__)
        raise ValueError(f"tonic events are a structured array with fields x, y, t, p; got {described}")
    missing = [name for name in ("x", "y", "t", "p") if name not in names]
    if missing:
        audio = " (tonic's audio data sets have no y: they are not images, and make no frames)" \
            if missing == ["y"] else ""
        raise ValueError(f"tonic events lack the field(s) {missing}; they have {names}{audio}")
    columns = {name: _whole_numbers(np.asarray(events[name]), name) for name in EVENT_FIELDS}
    return make_events(columns["t"], columns["x"], columns["y"], columns["p"])


def from_tonic_sensor_size(sensor_size) -> tuple[int, int]:
    """tonic's ``(W, H, C)`` as our ``(H, W)``; C must be 2 (OFF and ON), the frames' channels."""
    try:
        width, height, channels = (int(side) for side in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(f"a tonic sensor_size is (W, H, C); got {sensor_size!r}") from None
    if channels != 2:
        raise ValueError(f"tonic sensor_size {tuple(sensor_size)} has {channels} polarity channel(s); "
                         "frames [T, 2, H, W] need 2 (OFF and ON)")
    return check_sensor_size((height, width))


def to_tonic_sensor_size(sensor_size) -> tuple[int, int, int]:
    """Our ``(H, W)`` as tonic's ``(W, H, 2)``."""
    height, width = check_sensor_size(sensor_size)
    return width, height, 2


def _whole_numbers(values: np.ndarray, name: str) -> np.ndarray:
    """An event column as integers: bool and integer columns as they are, float columns when every
    value is a whole number; a ValueError naming the field otherwise."""
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(np.uint8)
    if kind == "u" and values.dtype.itemsize == 8 and values.size and values.max() > np.iinfo(np.int64).max:
        raise ValueError(f"tonic event {name} values reach {values.max()}, beyond int64")
    if kind in "iu":
        return values
    if kind == "f":
        if values.size and not (np.isfinite(values).all() and (values == np.round(values)).all()):
            bad = values[~np.isfinite(values) | (values != np.round(values))][:3].tolist()
            unit = " (t is in microseconds)" if name == "t" else ""
            raise ValueError(f"tonic event {name} values must be whole numbers{unit}; got {bad}")
        if values.size and np.abs(values).max() > 2 ** 62:
            raise ValueError(f"tonic event {name} values reach {np.abs(values).max()}, beyond int64")
        return values.astype(np.int64)
    raise ValueError(f"tonic event field {name!r} holds {values.dtype}, not numbers")


# ---------------------------------------------------------------------- tonic data sets

@dataclass(eq=False, repr=False)
class TonicDataset(Dataset):
    """A tonic data set (``source``: its class, or a name as after ``tonic:``) as
    ``(float32 frames [T, 2, H, W], label)``; see the module docstring.

    ``tonic_options`` go to the tonic class's constructor. Once built,
    ``sensor_size`` is the size served (after ``resize``) and ``recording_size``
    the sensor's, as for every event data set; ``tonic`` is the tonic data set.
    """

    source: Any
    root: str | os.PathLike | None
    train: bool = True
    time_steps: int = 16
    _: KW_ONLY
    split_by: str = option("number", f"how events are cut into the T frames: one of {', '.join(SPLIT_MODES)}")
    overlap: float = option(0.0, "for split_by='time_bins': tonic's ToFrame overlap, a fraction of a bin in [0, 1)")
    split: str | None = option(None, "'official' (tonic's own train/test parts) where the tonic class takes train; "
                                     "else per class 'sj' (the default: the first ceil(train_fraction n) sample "
                                     "names train) or 'random' (seeded)")
    seed: int = option(0, "the seed of split='random'")
    train_fraction: float = option(0.9, "the share of each class that trains, for split='sj' and 'random'")
    sensor_size: tuple[int, int] | None = option(
        None, "(H, W) to frame the events on (None: the tonic class's sensor_size, its (W, H, 2) read as (H, W))")
    cache_dir: str | os.PathLike | None | bool = option(
        None, f"the frame cache's folder (None: <root>/{DEFAULT_CACHE_NAME}; False: no cache on disk)")
    workers: int | None = option(None, "processes building the frame cache (None: up to 8; 0 or 1: none)")
    resize: int | tuple[int, int] | None = option(None, "(H, W) or a side to resize the frames to (None: keep)")
    resize_mode: str = option("bilinear", f"how frames are resized: {' or '.join(RESIZE_MODES)} (data.resize)")
    tonic_options: dict = dataclasses.field(default_factory=dict)

    in_channels = 2

    def __post_init__(self):
        cls = tonic_class(self.source) if isinstance(self.source, str) else self.source
        # tonic's own spelling of its names (tonic:nmnist is tonic:NMNIST); a dotted path as given
        dotted = isinstance(self.source, str) and "." in self.source
        self.name = f"tonic:{self.source if dotted else cls.__name__}"
        if self.root is None:
            raise DatasetNotFoundError(f"{self.name} needs a data root (--data-root): tonic's save_to, the folder "
                                       f"that holds {cls.__name__}/")
        check_frame_options(self.time_steps, self.split_by, self.overlap)
        self.overlap = float(self.overlap)  # one cache key for 0 and 0.0
        takes_train = "train" in _constructor_parameters(cls)
        splits = ("official",) if takes_train else UNSPLIT
        self.split = self.split if self.split is not None else splits[0]
        if self.split not in splits:
            kind = "has its own train/test parts" if takes_train else "has no train/test parts of its own"
            raise ValueError(f"unknown split {self.split!r} for {self.name}, which {kind}; valid: {splits}")
        self.root = os.fspath(self.root)
        self.tonic = build_tonic(cls, self.name, self.root, bool(self.train) if takes_train else None,
                                 dict(self.tonic_options))
        count = len(self.tonic)
        labels = _labels(self.tonic, self.name, count)
        self.classes = _class_names(getattr(self.tonic, "classes", None), labels, self.name)
        self.num_classes = len(self.classes)
        declared = getattr(self.tonic, "sensor_size", None)
        if self.sensor_size is not None:
            self.recording_size = check_sensor_size(self.sensor_size)
        elif declared is None:
            raise ValueError(f"{self.name} declares no sensor_size (its recordings differ in size); pass the option "
                             "sensor_size=[H, W], a size that holds every recording")
        else:
            self.recording_size = from_tonic_sensor_size(declared)
        self.resize = check_resize(self.resize, self.resize_mode, self.recording_size)
        self.sensor_size = self.resize or self.recording_size

        names = _sample_names(self.tonic, count)
        if takes_train:
            self.indices = list(range(count))
        else:
            per_class = {name: [] for name in self.classes}
            for index, label in enumerate(labels):
                per_class[self.classes[label]].append(names[index])
            chosen = split_folders(per_class, self.classes, self.split, bool(self.train), seed=self.seed,
                                   train_fraction=self.train_fraction)
            where = {name: index for index, name in enumerate(names)}
            self.indices = [where[name] for _, name in chosen]
            if not self.indices:
                raise ValueError(f"the {'train' if self.train else 'test'} part of split {self.split!r} is empty "
                                 f"for the {count} samples of {self.name}")
        self.targets = [labels[index] for index in self.indices]
        self.sample_names = [names[index] for index in self.indices]
        self._relatives = [f"{_file_name(self.classes[labels[index]])}/{index}" for index in self.indices]
        self._framing = dict(time_steps=self.time_steps, sensor_size=self.recording_size, split_by=self.split_by,
                             overlap=self.overlap)
        self.cache = None
        if self.cache_dir is not False:
            self.cache = self._build_cache(cls, takes_train, names, labels)

    def _build_cache(self, cls, takes_train: bool, names: list[str], labels: list[int]) -> FrameCache:
        """The frame cache, filled: keyed by the tonic class and version, its options, the samples it
        lists (names and labels: files added or removed make another key), the part and the framing."""
        cache_dir = os.path.join(self.root, DEFAULT_CACHE_NAME) if self.cache_dir in (None, True) else self.cache_dir
        listed = hashlib.sha256(json.dumps([names, labels]).encode()).hexdigest()[:16]
        params = {"dataset": self.name, "tonic_class": f"{cls.__module__}.{cls.__qualname__}",
                  "tonic_version": _version(cls), "tonic_options": _plain(self.tonic_options), "samples": listed,
                  "part": ("train" if self.train else "test") if takes_train else "all",
                  "time_steps": self.time_steps, "split_by": self.split_by, "overlap": self.overlap,
                  "sensor_size": list(self.recording_size)}
        prefix = f"tonic_{cls.__name__}_T{self.time_steps}_{self.split_by}"
        cache = FrameCache(Path(cache_dir) / cache_key(prefix, **params), description=params,
                           shape=(self.time_steps, self.in_channels, *self.recording_size))
        # The cache's worker processes find the tonic data set in the memory they inherit (fork), so it is
        # never pickled once per recording; without fork they cannot, and the cache is built here.
        workers = self.workers if "fork" in multiprocessing.get_all_start_methods() else 1
        _SOURCES[id(self.tonic)] = self.tonic
        try:
            cache.build(list(zip(self._relatives, self.indices)),
                        functools.partial(_inherited_sample_frames, id(self.tonic), self.name, **self._framing),
                        workers=workers, desc=f"{self.name} {'train' if self.train else 'test'}: caching "
                                              f"T={self.time_steps} frames")
        finally:
            del _SOURCES[id(self.tonic)]
        return cache

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return resize_frames(self.frames(index), self.resize, self.resize_mode), self.targets[index]

    def frames(self, index: int) -> np.ndarray:
        """The integer frames ``[T, 2, H, W]`` of sample ``index`` at the recording's size (from the
        cache when there is one, rebuilt there when the file is damaged; not resized)."""
        if self.cache is None:
            return sample_frames(self.tonic, self.indices[index], self.name, **self._framing)
        relative = self._relatives[index]
        try:
            return self.cache.load(relative)
        except CacheFileError as error:
            frames = sample_frames(self.tonic, self.indices[index], self.name, **self._framing)
            self.cache.save(relative, frames)
            self.cache.tell_rebuilt(error.path, error.reason)
            return frames

    def events(self, index: int) -> np.ndarray:
        """The events of sample ``index`` as tonic gives them, as ``EVENT_DTYPE``."""
        return from_tonic_events(_sample_events(self.tonic, self.indices[index]))

    def class_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for target in self.targets:
            counts[self.classes[target]] += 1
        return counts

    def split_files(self) -> list[str]:
        """``<class>/<sample name>`` of every sample, in data set order (the name: the file, relative to
        tonic's folder, where tonic lists files, else the sample's index)."""
        return [f"{self.classes[target]}/{name}" for target, name in zip(self.targets, self.sample_names)]

    def write_split_files(self, run_dir: str | os.PathLike) -> Path:
        """Write ``split_files()`` to ``<run_dir>/tonic_<NAME>_<train|test>_files.txt`` (atomically);
        the first line is a comment with the data set, split and part."""
        part = "train" if self.train else "test"
        path = Path(run_dir) / f"{_file_name(self.name.replace(':', '_'))}_{part}_files.txt"
        text = f"# {self.name} split={self.split} {part}: {len(self)} files\n" + "".join(
            line + "\n" for line in self.split_files())
        atomic_write(path, lambda file: file.write(text.encode()))
        return path

    def describe(self) -> str:
        where = self.cache.directory if self.cache is not None else "no frame cache"
        size = f"sensor {self.recording_size[0]}x{self.recording_size[1]}"
        if self.resize:
            size += f" resized to {self.resize[0]}x{self.resize[1]} ({self.resize_mode})"
        framing = f"split_by={self.split_by!r}" + (f", overlap={self.overlap}" if self.overlap else "")
        return (f"{self.name} {'train' if self.train else 'test'} (split {self.split!r}): {len(self)} samples "
                f"in {self.num_classes} classes, {size}, T={self.time_steps}, {framing}; {where}")


def sample_frames(tonic_dataset, index: int, name: str, *, time_steps: int, sensor_size: tuple[int, int],
                  split_by: str, overlap: float) -> np.ndarray:
    """The int32 frames ``[T, 2, H, W]`` of sample ``index`` of a tonic data set (``integrate``);
    a problem with its events is an ``EventFileError`` naming the sample (its file where tonic has one)."""
    events = _sample_events(tonic_dataset, index)
    try:
        return integrate(from_tonic_events(events), time_steps, sensor_size, split_by, overlap)
    except ValueError as error:
        raise EventFileError(_sample_path(tonic_dataset, index, name), f"cannot integrate into frames: {error}") \
            from error


# The tonic data sets whose frame caches are being built, by id: a forked worker inherits them.
_SOURCES: dict[int, Any] = {}


def _inherited_sample_frames(token: int, name: str, index: int, **framing) -> np.ndarray:
    return sample_frames(_SOURCES[token], index, name, **framing)


def _sample_events(tonic_dataset, index: int) -> np.ndarray:
    sample = tonic_dataset[index]
    return sample[0] if isinstance(sample, tuple) else sample


def _sample_path(tonic_dataset, index: int, name: str) -> str:
    data = getattr(tonic_dataset, "data", None)
    try:
        entry = data[index]
    except (TypeError, IndexError, KeyError):
        entry = None
    return os.fspath(entry) if isinstance(entry, (str, os.PathLike)) else f"{name} sample {index}"


# ---------------------------------------------------------------------- building the tonic data set

def tonic_class(name: str) -> type:
    """The class ``tonic.datasets.<name>`` (exact, else the one name that matches ignoring case), or,
    for a dotted ``name``, the class it imports; a ValueError names an unknown one, with close names."""
    if "." in name:
        module_name, _, attribute = name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"tonic:{name}: cannot import {module_name!r} ({error})") from None
        found = getattr(module, attribute, None)
        if not isinstance(found, type):
            raise ValueError(f"tonic:{name}: {module_name!r} has no class {attribute!r}")
        return found
    try:
        import tonic.datasets
    except ImportError:
        raise ImportError(f"tonic:{name} needs the tonic package: {INSTALL_HINT}") from None
    known = sorted(attribute for attribute in getattr(tonic.datasets, "__all__", dir(tonic.datasets))
                   if isinstance(getattr(tonic.datasets, attribute, None), type))
    found = getattr(tonic.datasets, name, None)
    if not isinstance(found, type):
        folded = [attribute for attribute in known if attribute.lower() == name.lower()]
        if len(folded) != 1:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(f'tonic:{c}' for c in close)}?" if close else ""
            raise ValueError(f"Unknown tonic data set {name!r}.{hint} tonic {tonic.__version__} has: "
                             f"{', '.join(known)}.")
        found = getattr(tonic.datasets, folded[0])
    return found


def build_tonic(cls: type, name: str, root: str, train: bool | None, options: dict):
    """``cls(save_to=root, train=train, **options)`` (no ``train`` when None), with its ``download``
    replaced by an error naming what tonic looks for where: nothing is downloaded."""
    dataset = cls.__new__(cls)
    # An attribute of the instance shadows the class's method while tonic's constructor runs (it calls
    # self.download() when its files are missing); removed after, so the data set pickles as tonic's own.
    dataset.download = functools.partial(_refuse_download, dataset, name, root)
    try:
        cls.__init__(dataset, save_to=root, **({} if train is None else {"train": train}), **options)
    except FileNotFoundError as error:
        if isinstance(error, DatasetNotFoundError):
            raise
        raise DatasetNotFoundError(f"{name}: {error} (the data root {root!r} is tonic's save_to, the folder "
                                   f"that holds {cls.__name__}/)") from None
    finally:
        dataset.__dict__.pop("download", None)
    return dataset


def _refuse_download(dataset, name: str, root: str) -> None:
    cls = type(dataset)
    folder = getattr(dataset, "location_on_system", os.path.join(root, cls.__name__))
    wanted = [getattr(dataset, "filename", None), *(getattr(dataset, "data_filename", None) or [])]
    wanted = [str(file) for file in wanted if isinstance(file, str) and file]
    extracted = getattr(dataset, "folder_name", "")
    what = " and ".join(wanted) or "its files"
    if extracted:
        what += f", extracted into {extracted}/"
    nested, save_to = "", root
    if os.path.basename(os.path.normpath(root)) == cls.__name__:
        save_to = os.path.dirname(os.path.normpath(root)) or "."
        nested = f" (the data root is tonic's save_to, the folder that holds {cls.__name__}/: here {save_to!r}?)"
    url = getattr(dataset, "url", None)
    source = f"tonic downloads it from {url}" if isinstance(url, str) else "see tonic's documentation of it"
    raise DatasetNotFoundError(
        f"{name} is missing or incomplete in {folder}{nested}: tonic's {cls.__name__} looks there for {what}. "
        f"spikeformers downloads nothing.\n{source}; build tonic.datasets.{cls.__name__}(save_to={save_to!r}) "
        "once to let tonic fetch it.")


def _constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    try:
        parameters = dict(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        parameters = {}
    if "save_to" not in parameters:
        raise ValueError(f"{cls.__module__}.{cls.__qualname__} takes no save_to: it is not a tonic data set")
    return parameters


def _labels(dataset, name: str, count: int) -> list[int]:
    """Each sample's class index: tonic's ``targets`` where it lists them all, else read sample by sample."""
    targets = getattr(dataset, "targets", None)
    try:
        listed = targets is not None and len(targets) == count
    except TypeError:
        listed = False
    if not listed:
        targets = [dataset[index][1] for index in range(count)]
    labels = []
    for index, target in enumerate(targets):
        value = np.asarray(target)
        if value.ndim != 0 or value.dtype.kind not in "iu" or int(value) < 0:
            raise ValueError(f"{name} sample {index} has the target {target!r}; a classification data set's "
                             "targets are class indices 0, 1, ...")
        labels.append(int(value))
    return labels


def _class_names(declared, labels: list[int], name: str) -> tuple[str, ...]:
    """tonic's ``classes`` (a list of names, or a dict name -> index) as names in index order; when
    it declares none, the indices found as names. A label beyond them is a ValueError."""
    if isinstance(declared, dict) and sorted(declared.values()) == list(range(len(declared))):
        names = tuple(str(key) for key, _ in sorted(declared.items(), key=lambda item: item[1]))
    elif isinstance(declared, (list, tuple)) and declared and all(isinstance(n, str) for n in declared):
        names = tuple(declared)
    else:
        names = tuple(str(index) for index in range(max(labels, default=-1) + 1))
    beyond = [index for index, label in enumerate(labels) if label >= len(names)]
    if beyond:
        raise ValueError(f"{name} sample {beyond[0]} has the target {labels[beyond[0]]}, but the data set names "
                         f"{len(names)} classes")
    return names


def _sample_names(dataset, count: int) -> list[str]:
    """A name per sample, unique: its file relative to tonic's folder where tonic lists one file per
    sample, else its index (zero-padded, so that names sort as the indices do)."""
    data = getattr(dataset, "data", None)
    if isinstance(data, (list, tuple)) and len(data) == count and \
            all(isinstance(entry, (str, os.PathLike)) for entry in data):
        folder = getattr(dataset, "location_on_system", None)
        names = [os.fspath(entry) for entry in data]
        if folder is not None:
            names = [os.path.relpath(entry, folder) for entry in names]
        if len(set(names)) == count:
            return [name.replace(os.sep, "/") for name in names]
    width = len(str(max(count - 1, 0)))
    return [f"{index:0{width}d}" for index in range(count)]


def _file_name(text: str) -> str:
    """``text`` as one path component: separators and other awkward characters become '_'."""
    return re.sub(r"[^\w.+-]+", "_", text).strip(".") or "_"


def _plain(value):
    """``value`` as JSON (a cache key): mappings and sequences kept, anything else its ``repr``."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _version(cls: type) -> str | None:
    package = importlib.import_module(cls.__module__.split(".")[0])
    return getattr(package, "__version__", None)


# ---------------------------------------------------------------------- the registry's tonic: names

_OURS = tuple(field.name for field in dataclasses.fields(TonicDataset)
              if field.kw_only and field.name != "tonic_options")


def tonic_entry(name: str) -> Callable[..., TonicDataset]:
    """The registry entry of ``tonic:<name>``: ``entry(root, train, time_steps, **options)``, whose
    options are ours (``TonicDataset``'s) and the tonic class's own constructor parameters (one named
    like ours is offered as ``tonic_<name>``), each with a one-line description."""
    cls = tonic_class(name)
    constructor = _constructor_parameters(cls)
    takes_train = "train" in constructor
    theirs = {}
    for parameter in constructor.values():
        if parameter.name in _SET_HERE or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        offered = f"tonic_{parameter.name}" if parameter.name in (*_OURS, "root", "time_steps") else parameter.name
        theirs[offered] = parameter

    def entry(root=None, train=True, time_steps=16, **options):
        ours = {key: options.pop(key) for key in _OURS if key in options}
        unknown = sorted(set(options) - set(theirs))
        if unknown:
            raise TypeError(f"tonic:{name} has no option {unknown[0]!r}")
        passed = {theirs[key].name: value for key, value in options.items()}
        return TonicDataset(name, root, train, time_steps, **ours, tonic_options=passed)

    fields = {field.name: field for field in dataclasses.fields(TonicDataset)}
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
                  inspect.Parameter("train", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=True),
                  inspect.Parameter("time_steps", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=16)]
    for key in _OURS:
        default = fields[key].default
        if key == "split":
            default = "official" if takes_train else UNSPLIT[0]
        parameters.append(inspect.Parameter(key, keyword, default=default))
    described = _documented_parameters(cls)
    for offered, parameter in theirs.items():
        parameters.append(inspect.Parameter(offered, keyword, default=parameter.default))
    entry.__signature__ = inspect.Signature(parameters)
    entry.__name__ = entry.__qualname__ = f"tonic_{cls.__name__}"
    entry.__doc__ = f"tonic's {cls.__name__} as frames (spikeformers.data.tonic.TonicDataset)."
    entry.option_help = {
        **{key: fields[key].metadata["help"] for key in _OURS},
        **{offered: described.get(parameter.name) or f"tonic's {cls.__name__} option {parameter.name!r}"
           for offered, parameter in theirs.items()},
    }
    return entry


_DOCUMENTED = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(\S.*)$")


def _documented_parameters(cls: type) -> dict[str, str]:
    """``name: first line`` of each parameter the class docstring lists as ``name (type): text``."""
    found = {}
    for line in (inspect.getdoc(cls) or "").splitlines():
        match = _DOCUMENTED.match(line)
        if match and match.group(1) not in found:
            found[match.group(1)] = match.group(2).strip()
    return found


register_dataset_prefix("tonic", tonic_entry)
