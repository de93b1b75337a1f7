"""A data set of event recordings in per-class folders, served as frames.

``EventFolderDataset`` is the machinery the concrete data sets
(``CIFAR10DVS``, ``NMNIST``, ``NCaltech101``) share: given the chosen
recordings (class, file name, path), it integrates each into T frames with
``events_to_frames``, keeps the frames in a ``FrameCache`` on disk (built once,
in parallel, at construction; later epochs and runs read frames, not events),
and yields ``(float32 frames [T, 2, H, W], int label)``. It can also serve a
SpikingJelly frame cache (``frames_number_{T}_split_by_{mode}``) directly.

A sample can be a time window of a recording (``windows``: DVS Gesture cuts
each recording at its label rows); the cache then reads each recording once
for all its windows. ``resize=(H, W)`` with ``resize_mode`` resizes the frames
as they are served (``spikeformers.data.resize``); the cache keeps the exact
counts at the sensor's size.

The split's file list is available as ``split_files()`` and can be written
into a run folder with ``write_split_files(run_dir)``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write
from .events import sort_events
from .frame_cache import CacheFileError, FrameCache, cache_key
from .frames import SPLIT_MODES, check_sensor_size, events_to_frames
from .readers import EventFileError, read_event_frames, read_events, read_frames_npz
from .resize import check_resize, resize_frames


class DatasetNotFoundError(FileNotFoundError):
    """A data set that is missing or incomplete on disk; the message says what
    was expected where and where the data set is published."""


def frames_from_file(path: str, *, time_steps: int, sensor_size: tuple[int, int], split_by: str,
                     format: str | None = None, orientation: str | None = None) -> np.ndarray:
    """Read one recording and integrate it: int32 ``[T, 2, H, W]``.

    For the time modes the events are first put in time order (stable), since
    ``events_to_frames`` needs them sorted and recordings occasionally hold a
    timestamp out of order. Every problem with the content is an
    ``EventFileError`` naming ``path``.
    """
    options = {"orientation": orientation} if orientation is not None else {}
    try:  # the fused reader: AEDAT 2.0 straight to frames, the same frames as read_events + integrate
        return read_event_frames(path, time_steps, split_by, format=format, sensor_size=sensor_size, **options)
    except EventFileError:
        raise
    except ValueError as error:
        raise EventFileError(path, f"cannot integrate into frames: {error}") from error


def frames_from_windows(source: tuple[str, Sequence[tuple[int, int]]], *, time_steps: int,
                        sensor_size: tuple[int, int], split_by: str, format: str | None = None,
                        orientation: str | None = None) -> list[np.ndarray]:
    """``source = (path, windows)``: read the recording once and integrate the events of each
    window ``(start, end)`` (``start <= t < end``, microseconds), in order."""
    path, windows = source
    events = _read(path, sensor_size, format, orientation)
    return [integrate(cut_window(events, window), path, time_steps=time_steps, sensor_size=sensor_size,
                      split_by=split_by) for window in windows]


def cut_window(events: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """The events with ``start <= t < end``, in file order (SpikingJelly cuts DVS Gesture this way)."""
    start, end = window
    return events[(events["t"] >= start) & (events["t"] < end)]


def integrate(events: np.ndarray, path: str, *, time_steps: int, sensor_size, split_by: str) -> np.ndarray:
    """``events_to_frames`` with the events time-sorted first for the time modes; errors name ``path``."""
    if split_by != "number" and len(events) > 1 and np.any(np.diff(events["t"]) < 0):
        events = sort_events(events)
    try:
        return events_to_frames(events, time_steps, sensor_size, split_by=split_by)
    except ValueError as error:
        raise EventFileError(path, f"cannot integrate into frames: {error}") from error


def _read(path: str, sensor_size, format: str | None, orientation: str | None) -> np.ndarray:
    options = {"orientation": orientation} if orientation is not None else {}
    return read_events(path, format=format, sensor_size=sensor_size, **options).events


def list_files(folder: str | os.PathLike, extensions: Sequence[str]) -> list[str]:
    """File names in ``folder`` with one of ``extensions`` (lower case, with dot), sorted;
    hidden files and temporary files are skipped."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if os.path.splitext(entry.name)[1].lower() in extensions:
                names.append(entry.name)
    return sorted(names)


def scan_class_folders(folder: str, classes: Sequence[str], extensions: Sequence[str]):
    """``(files per class, problems)``: the sorted file names in ``folder/<class>``
    with one of ``extensions``, and a line for each class folder missing or empty."""
    files, problems = {}, []
    for name in classes:
        class_dir = os.path.join(folder, name)
        if not os.path.isdir(class_dir):
            problems.append(f"{class_dir} is missing")
            continue
        found = list_files(class_dir, extensions)
        if not found:
            problems.append(f"{class_dir} holds no {'/'.join(extensions)} files")
        files[name] = found
    return files, problems


def find_class_folders(candidates, classes: Sequence[str]):
    """The first complete candidate: ``candidates`` is a sequence of ``(kind, folder,
    extensions, optional)``; an optional folder that does not exist is skipped
    silently. Returns ``(kind, folder, files per class)`` or ``(None, None, reports)``
    with ``reports`` a text of what each tried folder lacks (for the error)."""
    reports = []
    for kind, folder, extensions, optional in candidates:
        if optional and not os.path.isdir(folder):
            continue
        files, problems = scan_class_folders(folder, classes, extensions)
        if not problems:
            return kind, folder, files
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        reports.append(f"\n  under {folder}: {shown}")
    return None, None, "".join(reports) or " nothing"


DEFAULT_CACHE_NAME = "spikeformers_frames"


def default_cache_dir(cache_dir, root: str) -> str | None:
    """The data sets' ``cache_dir`` option: False for no cache, None or True for the default
    folder under the data root, or a folder of the user's choosing."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return os.path.join(root, DEFAULT_CACHE_NAME)
    return cache_dir


class EventFolderDataset(Dataset):
    """Recordings ``samples = [(class name, file name, path), ...]`` as frames.

    ``source='events'``: each path is an event file (``reader`` holds the
    ``read_events`` options ``format`` / ``orientation``); frames are cached
    under ``cache_dir/<key>`` unless ``cache_dir`` is None.
    ``source='frames'``: each path is a SpikingJelly frame cache ``.npz``.
    ``windows``: one ``(start, end)`` per sample (microseconds) when a sample
    is only that part of its recording; the file name is then the sample's
    name (unique within its class).
    ``resize`` / ``resize_mode``: see ``spikeformers.data.resize``;
    ``sensor_size`` is then the served size and ``recording_size`` the
    sensor's.
    """

    in_channels = 2

    def __init__(
        self,
        *,
        name: str,
        samples: Sequence[tuple[str, str, str]],
        classes: Sequence[str],
        sensor_size: tuple[int, int],
        time_steps: int,
        split_by: str = "number",
        source: str = "events",
        reader: dict | None = None,
        cache_dir: str | os.PathLike | None = None,
        key_params: dict | None = None,
        workers: int | None = None,
        split: str = "",
        train: bool = True,
        windows: Sequence[tuple[int, int]] | None = None,
        resize=None,
        resize_mode: str = "bilinear",
    ):
        if split_by not in SPLIT_MODES:
            raise ValueError(f"unknown split_by {split_by!r}; valid: {SPLIT_MODES}")
        if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)) or time_steps < 1:
            raise ValueError(f"time_steps must be an integer >= 1; got {time_steps!r}")
        if source not in ("events", "frames"):
            raise ValueError(f"source must be 'events' or 'frames'; got {source!r}")
        if windows is not None and (source != "events" or len(windows) != len(samples)):
            raise ValueError("windows need source='events' and one (start, end) per sample")
        self.name = name
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.recording_size = check_sensor_size(sensor_size)
        self.resize = check_resize(resize, resize_mode, self.recording_size)
        self.resize_mode = resize_mode
        self.sensor_size = self.resize or self.recording_size
        self.time_steps = int(time_steps)
        self.split_by = split_by
        self.source = source
        self.split = split
        self.train = train
        self.reader = dict(reader or {})
        index = {class_name: i for i, class_name in enumerate(self.classes)}
        self.samples = [(class_name, file_name, os.fspath(path)) for class_name, file_name, path in samples]
        self.windows = None if windows is None else [(int(start), int(end)) for start, end in windows]
        self.targets = [index[class_name] for class_name, _, _ in self.samples]
        self._relatives = [f"{class_name}/{os.path.splitext(file_name)[0]}" for class_name, file_name, _ in self.samples]
        options = dict(time_steps=self.time_steps, sensor_size=self.recording_size, split_by=self.split_by,
                       **self.reader)
        self._make_frames = functools.partial(frames_from_file, **options)
        self._make_windows = functools.partial(frames_from_windows, **options)
        self._recording = (None, None)  # (path, events): the last recording read, for windows without a cache
        self.cache = None
        if source == "events" and cache_dir is not None:
            params = {"dataset": name, "time_steps": self.time_steps, "split_by": split_by,
                      "sensor_size": list(self.recording_size), **self.reader, **(key_params or {})}
            prefix = f"{name}_T{self.time_steps}_{split_by}"
            if self.reader.get("orientation"):
                prefix += f"_{self.reader['orientation']}"
            self.cache = FrameCache(Path(cache_dir) / cache_key(prefix, **params), description=params,
                                    shape=(self.time_steps, self.in_channels, *self.recording_size))
            desc = f"{name} {'train' if train else 'test'}: caching T={self.time_steps} frames"
            if self.windows is None:
                self.cache.build(list(zip(self._relatives, (path for _, _, path in self.samples))),
                                 self._make_frames, workers=workers, desc=desc)
            else:
                self.cache.build_groups(self._window_jobs(), self._make_windows, workers=workers, desc=desc)

    def _window_jobs(self) -> list[tuple[list[str], tuple[str, tuple]]]:
        """One job per recording: its samples' relative names and ``(path, windows)``."""
        groups: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}
        for relative, (_, _, path), window in zip(self._relatives, self.samples, self.windows):
            relatives, windows = groups.setdefault(path, ([], []))
            relatives.append(relative)
            windows.append(window)
        return [(relatives, (path, tuple(windows))) for path, (relatives, windows) in groups.items()]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return resize_frames(self.frames(index), self.resize, self.resize_mode), self.targets[index]

    def frames(self, index: int) -> np.ndarray:
        """The integer frames ``[T, 2, H, W]`` of sample ``index`` at the recording's size
        (from the cache when there is one; not resized)."""
        path = self.samples[index][2]
        if self.source == "frames":
            frames = read_frames_npz(path)
            expected = (self.time_steps, 2, *self.recording_size)
            if frames.shape != expected:
                raise EventFileError(path, f"'frames' has shape {frames.shape}; expected {expected}")
            return frames
        if self.cache is None:
            return self._frames_from_events(index)
        relative = self._relatives[index]
        try:
            return self.cache.load(relative)
        except CacheFileError as error:
            # A cache file damaged after it was written (not a half-written
            # one: those never get the final name): rebuild it.
            frames = self._frames_from_events(index)
            self.cache.save(relative, frames)
            self.cache.tell_rebuilt(error.path, error.reason)
            return frames

    def _frames_from_events(self, index: int) -> np.ndarray:
        path = self.samples[index][2]
        if self.windows is None:
            return self._make_frames(path)
        return integrate(self.events(index), path, time_steps=self.time_steps, sensor_size=self.recording_size,
                         split_by=self.split_by)

    def events(self, index: int) -> np.ndarray:
        """The event recording of sample ``index`` as read, cut to its window if it has one
        (not available for a frame cache source)."""
        path = self.samples[index][2]
        if self.source == "frames":
            raise ValueError(f"{self.name} reads a frame cache ({path}); it holds no events")
        if self.windows is None:
            return _read(path, self.recording_size, self.reader.get("format"), self.reader.get("orientation"))
        if self._recording[0] != path:  # consecutive samples mostly share a recording
            self._recording = (path, _read(path, self.recording_size, self.reader.get("format"),
                                           self.reader.get("orientation")))
        return cut_window(self._recording[1], self.windows[index])

    def split_files(self) -> list[str]:
        """``<class>/<file name>`` of every sample, in data set order."""
        return [f"{class_name}/{file_name}" for class_name, file_name, _ in self.samples]

    def write_split_files(self, run_dir: str | os.PathLike) -> Path:
        """Write ``split_files()`` to ``<run_dir>/<name>_<train|test>_files.txt`` (atomically).

        The first line is a comment with the data set, split and part.
        """
        run_dir = Path(run_dir)
        part = "train" if self.train else "test"
        path = run_dir / f"{self.name}_{part}_files.txt"
        text = f"# {self.name} split={self.split} {part}: {len(self)} files\n" + "".join(
            line + "\n" for line in self.split_files())
        atomic_write(path, lambda file: file.write(text.encode()))
        return path

    def class_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for class_name, _, _ in self.samples:
            counts[class_name] += 1
        return counts

    def describe(self) -> str:
        where = self.cache.directory if self.cache is not None else "no frame cache"
        size = f"sensor {self.recording_size[0]}x{self.recording_size[1]}"
        if self.resize:
            size += f" resized to {self.resize[0]}x{self.resize[1]} ({self.resize_mode})"
        return (f"{self.name} {'train' if self.train else 'test'} (split {self.split!r}): {len(self)} samples "
                f"in {self.num_classes} classes, {size}, "
                f"T={self.time_steps}, split_by={self.split_by!r}, source {self.source}; {where}")
