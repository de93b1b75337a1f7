"""DVSDigits: a small neuromorphic data set built in, no download needed.

Provenance: the 1,797 real handwritten digits that scikit-learn ships
(``sklearn.datasets.load_digits``: 8x8 images, values 0..16, 10 classes,
from the UCI "Optical Recognition of Handwritten Digits" set), each recorded
by this library's event-camera emulator the way N-MNIST was recorded (the
digit, bright on a dark background, fills the sensor and moves in three
saccades; see ``spikeformers.data.emulator`` and ``EMULATOR_SETTINGS``), then integrated
into T frames of event counts with ``events_to_frames(split_by='number')``.

Split: a fixed stratified split, 25% test (1,347 train, 450 test recordings),
drawn by ``StratifiedShuffleSplit(random_state=0)``; it does not depend on
the emulation ``seed``, so the same digits are always test digits.

The emulation runs once per process for each ``(sensor_size, seed)``, for
all 1,797 digits at once, in about a second; train and test share it. With
``cache_dir`` the recordings are also kept on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import reprlib
import sys
import zipfile
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ...atomic import atomic_write
from ..emulator import emulate_events_batch
from ..events import EVENT_DTYPE
from ..frames import check_sensor_size, events_to_frames
from ..registry import option, register_dataset

# How the digits are recorded. value_range maps sklearn's 0..16 ink scale to
# the full intensity range. Threshold 0.3 gives about 1,600 events per digit
# on 24x24 pixels, enough that each of 4 frames shows the strokes' edges;
# mismatch, refractory period and noise make the recordings less clean, as a
# real sensor's are.
EMULATOR_SETTINGS = {
    "value_range": (0.0, 16.0),
    "saccade_amplitude": 2.0,
    "duration_us": 300_000,
    "time_samples": 60,
    "contrast_threshold": 0.3,
    "threshold_mismatch": 0.05,
    "refractory_us": 1_000,
    "noise_rate_hz": 0.2,
    "log_eps": 0.1,
}
# The smallest and largest sensor side: the saccades need a few pixels; the frames of all
# 1,797 recordings stay in memory (1797 x T x 2 x H x W int16, 1.9 GB at 128x128 and T=16).
SENSOR_SIDES = (4, 128)
TEST_FRACTION = 0.25
SPLIT_RANDOM_STATE = 0
# Part of the cache key: bump it whenever a change to the emulator or to
# these settings changes the recordings, so that stale disk caches are not read.
CACHE_FORMAT = 1

# Per process: (sensor_size, seed) -> (all events, offsets), and
# (sensor_size, seed, time_steps) -> int16 frames of all 1,797 digits.
_RECORDINGS: dict = {}
_FRAMES: dict = {}


@register_dataset("dvs_digits")
@dataclass(eq=False, repr=False)
class DVSDigits(Dataset):
    """scikit-learn's digits as event-camera recordings; items are ``(frames, label)``.

    ``frames`` is a float32 tensor ``[time_steps, 2, H, W]`` of event counts
    (channel 0 = OFF, 1 = ON), ``label`` an int 0..9. See the module
    docstring for provenance. Registered as ``dvs_digits``, whose data root
    is ``cache_dir``.
    """

    num_classes: ClassVar[int] = 10
    in_channels: ClassVar[int] = 2
    classes: ClassVar[tuple[str, ...]] = tuple(str(digit) for digit in range(10))
    root_option: ClassVar[str] = "cache_dir"

    train: bool = True
    time_steps: int = 4
    sensor_size: tuple[int, int] = option(
        (24, 24), "(H, W) of the emulated sensor: the digits are 8x8 images, so a larger one adds compute, "
                  "not information")
    seed: int = option(0, "the seed of the emulator's randomness (threshold mismatch, noise), not of the split")
    cache_dir: str | os.PathLike | None = option(None, "a folder to keep the emulated recordings in")

    def __post_init__(self):
        for name, value, low in (("time_steps", self.time_steps, 1), ("seed", self.seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"dvs_digits: {name} must be an integer >= {low}; got {reprlib.repr(value)}")
        self.time_steps = int(self.time_steps)
        self.sensor_size = check_digits_sensor(self.sensor_size)
        self.seed = int(self.seed)
        self.indices = _split_indices(self.train)  # rows of sklearn's load_digits()
        self.targets = _digits().target[self.indices]
        self._all_events, self._offsets = _recordings(self.sensor_size, self.seed, self.cache_dir)
        self._all_frames = _frames(self.sensor_size, self.seed, self.time_steps, self.cache_dir)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames = self._all_frames[self.indices[index]].astype(np.float32)
        return torch.from_numpy(frames), int(self.targets[index])

    def events(self, index: int) -> np.ndarray:
        """The event recording of sample ``index`` (read-only ``EVENT_DTYPE`` array)."""
        digit = self.indices[index]
        return self._all_events[self._offsets[digit] : self._offsets[digit + 1]]

    def describe(self) -> str:
        """Where the samples come from and how they were made, in a few lines."""
        counts = np.diff(self._offsets)[self.indices]
        settings = ", ".join(f"{name}={value}" for name, value in EMULATOR_SETTINGS.items())
        return (
            f"DVSDigits {'train' if self.train else 'test'}: {len(self)} of the 1797 sklearn "
            f"load_digits images (8x8, 0..16), stratified split test_size={TEST_FRACTION}, "
            f"random_state={SPLIT_RANDOM_STATE}.\n"
            f"Recorded by spikeformers.data.emulate_events_batch on a {self.sensor_size[0]}x"
            f"{self.sensor_size[1]} sensor, seed={self.seed}: {settings}.\n"
            f"Events per recording: mean {counts.mean():.0f}, min {counts.min()}, max {counts.max()}; "
            f"frames: events_to_frames(split_by='number'), T={self.time_steps}."
        )


def check_digits_sensor(sensor_size) -> tuple[int, int]:
    """``sensor_size`` as ``(H, W)``, each side in ``SENSOR_SIDES``, or a ValueError saying so."""
    sides = list(sensor_size) if isinstance(sensor_size, (tuple, list, np.ndarray)) else []
    if len(sides) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sides):
        raise ValueError(f"dvs_digits: sensor_size must be (H, W), two integers; got {reprlib.repr(sensor_size)}")
    low, high = SENSOR_SIDES
    if not all(low <= side <= high for side in sides):
        raise ValueError(f"dvs_digits: sensor_size must be between {low}x{low} and {high}x{high} (the digits are "
                         f"8x8 images; a larger sensor only enlarges them); got {sides[0]}x{sides[1]}")
    return check_sensor_size(sides)


def clear_memory_cache() -> None:
    """Forget the recordings and frames generated in this process."""
    _RECORDINGS.clear()
    _FRAMES.clear()


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits  # here: importing sklearn costs about 2 s

    return load_digits()


@functools.lru_cache(maxsize=2)
def _split_indices(train: bool) -> np.ndarray:
    from sklearn.model_selection import StratifiedShuffleSplit

    digits = _digits()
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=TEST_FRACTION, random_state=SPLIT_RANDOM_STATE)
    train_indices, test_indices = next(splitter.split(digits.images, digits.target))
    indices = np.sort(train_indices if train else test_indices)
    indices.flags.writeable = False
    return indices


def _recordings(sensor_size, seed, cache_dir) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 recordings concatenated, and the offsets where each starts."""
    key = (sensor_size, seed)
    if key not in _RECORDINGS:
        path = None if cache_dir is None else _cache_path(cache_dir, sensor_size, seed)
        loaded = _load_cache(path, sensor_size, seed) if path is not None else None
        if loaded is None:
            recordings = emulate_events_batch(_digits().images, sensor_size, seed=seed, **EMULATOR_SETTINGS)
            events = np.concatenate(recordings)
            offsets = np.concatenate([[0], np.cumsum([len(recording) for recording in recordings])])
            if path is not None:
                _save_cache(path, events, offsets, sensor_size, seed)
        else:
            events, offsets = loaded
        events.flags.writeable = False  # shared by every instance: no one may edit it
        offsets.flags.writeable = False
        _RECORDINGS[key] = (events, offsets)
    return _RECORDINGS[key]


def _frames(sensor_size, seed, time_steps, cache_dir) -> np.ndarray:
    key = (sensor_size, seed, time_steps)
    if key not in _FRAMES:
        events, offsets = _recordings(sensor_size, seed, cache_dir)
        frames = np.stack(
            [
                events_to_frames(events[start:end], time_steps, sensor_size, split_by="number")
                for start, end in zip(offsets[:-1], offsets[1:])
            ]
        )
        # int16 halves the memory of int32; the counts stay far below its limit.
        if frames.max() > np.iinfo(np.int16).max:
            raise ValueError(f"a frame count of {frames.max()} does not fit int16")
        frames = frames.astype(np.int16)
        frames.flags.writeable = False
        _FRAMES[key] = frames
    return _FRAMES[key]


def _cache_description(sensor_size, seed) -> str:
    """Everything that determines the recordings, as canonical JSON."""
    return json.dumps(
        {"format": CACHE_FORMAT, "sensor_size": list(sensor_size), "seed": int(seed), "emulator": EMULATOR_SETTINGS},
        sort_keys=True,
    )


def _cache_path(cache_dir, sensor_size, seed) -> str:
    digest = hashlib.sha256(_cache_description(sensor_size, seed).encode()).hexdigest()[:16]
    height, width = sensor_size
    return os.path.join(os.fspath(cache_dir), f"dvsdigits_{height}x{width}_seed{seed}_{digest}.npz")


def _load_cache(path, sensor_size, seed):
    """The cached (events, offsets), or None when absent, damaged or made otherwise (said in one
    line, and the caller regenerates and overwrites the file)."""
    if not os.path.exists(path):
        return None
    try:
        return _read_cache(path, sensor_size, seed)
    except Exception as error:  # noqa: BLE001  (whatever damaged bytes raise: regenerate)
        print(f"dvs_digits: regenerating the recordings, as the cache {path} is unusable ({str(error)[:200]})",
              file=sys.stderr, flush=True)
        return None


def _read_cache(path, sensor_size, seed) -> tuple[np.ndarray, np.ndarray]:
    """The cache's (events, offsets), checked against what ``_save_cache`` writes for these settings;
    a ValueError saying what differs."""
    height, width = sensor_size
    if not zipfile.is_zipfile(path):
        raise ValueError("it is not an npz (zip) file")
    with np.load(path, allow_pickle=False) as cached:
        expected = {"description", "offsets", *EVENT_DTYPE.names}
        if set(cached.files) != expected:
            raise ValueError(f"holds {sorted(cached.files)[:8]}, expected {sorted(expected)}")
        if str(cached["description"]) != _cache_description(sensor_size, seed):
            raise ValueError("it was made with other settings")
        offsets = cached["offsets"]
        columns = {name: cached[name] for name in EVENT_DTYPE.names}
    count = len(_digits().target)
    if offsets.shape != (count + 1,) or offsets.dtype.kind not in "iu":
        raise ValueError(f"offsets of {offsets.dtype} {offsets.shape}, expected {count + 1} integers")
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets that do not start at 0 and grow")
    for name, column in columns.items():
        if column.shape != (offsets[-1],) or column.dtype.kind not in "iu":
            raise ValueError(f"'{name}' of {column.dtype} {column.shape}, expected {offsets[-1]} integers")
    for name, limit in (("x", width), ("y", height), ("p", 2)):
        column = columns[name]
        if len(column) and (column.min() < 0 or column.max() >= limit):
            raise ValueError(f"'{name}' outside 0..{limit - 1}")
    events = np.empty(offsets[-1], dtype=EVENT_DTYPE)
    for name, column in columns.items():
        events[name] = column
    return events, offsets.astype(np.int64)


def _save_cache(path, events, offsets, sensor_size, seed) -> None:
    """Write the cache atomically: a reader sees the old file or the whole new one."""
    arrays = {"description": np.array(_cache_description(sensor_size, seed)), "offsets": offsets,
              **{field: events[field] for field in EVENT_DTYPE.names}}
    atomic_write(path, lambda file: np.savez(file, **arrays))
