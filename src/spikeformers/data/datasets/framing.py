"""Making a recording's frames for the frame cache, in a worker process: read, cut, integrate.

Each function is a module-level function of picklable arguments (the cache's
process pool runs it), and every problem with a file's content comes out as an
``EventFileError`` naming the file.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from ..frames import integrate
from ..readers import EventFileError, read_event_frames, read_events


def frames_from_file(path: str, *, time_steps: int, sensor_size: tuple[int, int], split_by: str,
                     format: str | None = None, orientation: str | None = None) -> np.ndarray:
    """Read one recording and integrate it: int32 ``[T, 2, H, W]`` (``read_event_frames``)."""
    options = {"orientation": orientation} if orientation is not None else {}
    with naming(path):  # the fused reader: AEDAT 2.0 straight to frames, the frames of read_events + integrate
        return read_event_frames(path, time_steps, split_by, format=format, sensor_size=sensor_size, **options)


def frames_from_windows(source: tuple[str, Sequence[tuple[int, int]]], *, time_steps: int,
                        sensor_size: tuple[int, int], split_by: str, format: str | None = None,
                        orientation: str | None = None) -> list[np.ndarray]:
    """``source = (path, windows)``: read the recording once and integrate the events of each
    window ``(start, end)`` (``start <= t < end``, microseconds), in order."""
    path, windows = source
    events = read_recording(path, sensor_size, format, orientation)
    return [integrate_file(cut_window(events, window), path, time_steps, sensor_size, split_by)
            for window in windows]


def read_recording(path: str, sensor_size, format: str | None, orientation: str | None) -> np.ndarray:
    """The events of the recording at ``path`` read on ``sensor_size``."""
    options = {"orientation": orientation} if orientation is not None else {}
    return read_events(path, format=format, sensor_size=sensor_size, **options).events


def cut_window(events: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """The events with ``start <= t < end``, in file order (SpikingJelly cuts DVS Gesture this way)."""
    start, end = window
    return events[(events["t"] >= start) & (events["t"] < end)]


def integrate_file(events: np.ndarray, path: str, time_steps: int, sensor_size, split_by: str) -> np.ndarray:
    """``integrate`` of events read from ``path``; an error names the file."""
    with naming(path):
        return integrate(events, time_steps, sensor_size, split_by)


@contextlib.contextmanager
def naming(path: str):
    """A ValueError about a recording's content raised inside becomes an ``EventFileError`` naming
    ``path`` (one that already is one passes unchanged)."""
    try:
        yield
    except EventFileError:
        raise
    except ValueError as error:
        raise EventFileError(path, f"cannot integrate into frames: {error}") from error
