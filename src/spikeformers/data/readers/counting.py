"""Frames straight from a file's decoded columns, for ``read_event_frames``: no event array, and
the counting done by a C++ pass (``frames_kernel.cpp``) instead of NumPy's frame by frame.

Each function gives the frames of ``integrate(read_events(...).events, T, size, split_by)``, or
None when it does not apply: no compiled kernel (no compiler, no torch), a time mode with
timestamps out of order (``integrate`` sorts them), or an event that ``read_events`` would refuse
(outside the sensor, a polarity other than 0 or 1, a negative timestamp); the caller then takes
the general path, which gives the same frames or the same error.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..frames import frame_bounds


@functools.cache  # asked once a file: spares building the source's path and its cache key each time
def _compiled():
    """The C++ counter, or None where it cannot be built or torch is absent."""
    try:
        from ... import cpp_build
    except ImportError:
        return None
    ext = cpp_build.load_extension(Path(__file__).with_name("frames_kernel.cpp"), "frames")
    return None if isinstance(ext, Exception) else ext


def _bounds(t: np.ndarray, count: int, time_steps: int, split_by: str):
    """``(starts, ends)`` of the frames, or None when a time mode meets timestamps out of order."""
    if split_by == "number":
        return frame_bounds(count, time_steps, split_by)
    try:
        return frame_bounds(count, time_steps, split_by, t)
    except ValueError:  # its one refusal: times out of order, which integrate sorts
        return None


def frames_from_columns(t, x, y, p, time_steps: int, split_by: str, size: tuple[int, int]) -> np.ndarray | None:
    """int32 frames ``[T, 2, H, W]`` of 1-D integer columns (any integer type in native byte order, any
    stride: a structured array's fields are read in place), or None (module docstring)."""
    counter = _compiled()
    if counter is None:
        return None
    columns = [column if column.dtype.kind in "iu" and column.dtype.isnative else column.astype(np.int64)
               for column in map(np.asarray, (t, x, y, p))]
    bounds = _bounds(columns[0], len(columns[1]), time_steps, split_by)
    if bounds is None:
        return None
    frames = np.zeros((time_steps, 2, *size), dtype=np.int32)
    return frames if counter.count_columns(*columns, *bounds, *size, frames) else None


def frames_from_dat(records: np.ndarray, time_steps: int, split_by: str, size: tuple[int, int]) -> np.ndarray | None:
    """int32 frames of Prophesee DAT records (``dat._RECORD``, viewing the file's bytes), or None."""
    counter = _compiled()
    if counter is None:
        return None
    bounds = _bounds(records["t"], len(records), time_steps, split_by)
    if bounds is None:
        return None
    body = records.view(np.uint8) if len(records) else np.zeros(0, np.uint8)
    frames = np.zeros((time_steps, 2, *size), dtype=np.int32)
    return frames if counter.count_dat(body, *bounds, *size, frames) else None
