"""A data set of event recordings, served as frames: ``EventFolderDataset``.

Given the chosen recordings (class, file name, path), it integrates each into
T frames (``framing``), keeps the frames in a ``FrameCache`` on disk (built
once, in parallel, at construction; later epochs and runs read frames, not
events), and yields ``(float32 frames [T, 2, H, W], int label)``. It can also
serve a SpikingJelly frame cache (``frames_number_{T}_split_by_{mode}``)
directly. The declared data sets (``EventDataset``) find the recordings and
hand them over; this class does the rest.

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

from ...atomic import atomic_write
from ..frames import check_frame_options, check_sensor_size
from ..readers import EventFileError, read_frames_npz
from ..resize import check_resize, resize_frames
from .frame_cache import CacheFileError, FrameCache, cache_key
from .framing import cut_window, frames_from_file, frames_from_windows, integrate_file, read_recording


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
        check_frame_options(time_steps, split_by)
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
        return integrate_file(self.events(index), path, self.time_steps, self.recording_size, self.split_by)

    def events(self, index: int) -> np.ndarray:
        """The event recording of sample ``index`` as read, cut to its window if it has one
        (not available for a frame cache source)."""
        path = self.samples[index][2]
        if self.source == "frames":
            raise ValueError(f"{self.name} reads a frame cache ({path}); it holds no events")
        read = functools.partial(read_recording, path, self.recording_size, self.reader.get("format"),
                                 self.reader.get("orientation"))
        if self.windows is None:
            return read()
        if self._recording[0] != path:  # consecutive samples mostly share a recording
            self._recording = (path, read())
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
