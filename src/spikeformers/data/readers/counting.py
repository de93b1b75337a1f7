"""Frames straight from a file's decoded columns, for ``read_event_frames``: no event array, and
the counting done by a C++ pass (``frames_kernel.cpp``, a plain library called through ctypes)
instead of NumPy's frame by frame.

Each function gives the frames of ``integrate(read_events(...).events, T, size, split_by)``, or
None when it does not apply: no compiled kernel (no compiler, no torch), a time mode with
timestamps out of order (``integrate`` sorts them), or an event that ``read_events`` would refuse
(outside the sensor, a polarity other than 0 or 1, a negative timestamp); the caller then takes
the general path, which gives the same frames or the same error.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

from ..frames import frame_bounds


@functools.cache  # asked once a file: spares building the source's path and its cache key each time
def _compiled():
    """The C++ counter (a ``ctypes.CDLL``, its entry points typed), or None where it cannot be built
    or torch is absent."""
    try:
        from ... import cpp_build
    except ImportError:
        return None
    library = cpp_build.load_library(Path(__file__).with_name("frames_kernel.cpp"), "frames")
    if isinstance(library, Exception):
        return None
    i64, ptr, flag = ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)
    library.frames_count_dat.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, ptr, flag]
    library.frames_count_columns.argtypes = [ptr, ptr, ptr, ptr, i64, ptr, ptr, i64, i64, i64, ptr, flag]
    for entry in (library.frames_count_dat, library.frames_count_columns):
        entry.restype = ctypes.c_char_p
    return library


def _bounds(t: np.ndarray, count: int, time_steps: int, split_by: str):
    """``(starts, ends)`` as int64 arrays, or None when a time mode meets timestamps out of order."""
    if split_by == "number":
        bounds = frame_bounds(count, time_steps, split_by)
    else:
        try:
            bounds = frame_bounds(count, time_steps, split_by, t)
        except ValueError:  # its one refusal: times out of order, which integrate sorts
            return None
    return tuple(np.asarray(side, dtype=np.int64) for side in bounds)


def _finish(error: bytes | None, counted: ctypes.c_int, frames: np.ndarray) -> np.ndarray | None:
    if error is not None:
        raise RuntimeError(f"frames counter: {error.decode(errors='replace')}")
    return frames if counted.value else None


def frames_from_columns(t, x, y, p, time_steps: int, split_by: str, size: tuple[int, int]) -> np.ndarray | None:
    """int32 frames ``[T, 2, H, W]`` of 1-D integer columns (any integer type in native byte order, any
    stride: a structured array's fields are read in place), or None (module docstring)."""
    library = _compiled()
    if library is None:
        return None
    columns = [column if column.dtype.kind in "iu" and column.dtype.isnative else column.astype(np.int64)
               for column in map(np.asarray, (t, x, y, p))]
    count = len(columns[1])
    if any(column.ndim != 1 or len(column) != count for column in columns):
        raise ValueError("t, x, y, p must be 1-D columns of one length")
    bounds = _bounds(columns[0], count, time_steps, split_by)
    if bounds is None:
        return None
    starts, ends = bounds
    addresses = (ctypes.c_void_p * 4)(*(column.ctypes.data for column in columns))
    strides = np.array([column.strides[0] for column in columns], dtype=np.int64)
    itemsizes = np.array([column.dtype.itemsize for column in columns], dtype=np.int64)
    signs = np.array([column.dtype.kind == "i" for column in columns], dtype=np.intc)
    frames = np.zeros((time_steps, 2, *size), dtype=np.int32)
    counted = ctypes.c_int(0)
    error = library.frames_count_columns(addresses, strides.ctypes.data, itemsizes.ctypes.data, signs.ctypes.data,
                                         count, starts.ctypes.data, ends.ctypes.data, time_steps, *size,
                                         frames.ctypes.data, ctypes.byref(counted))
    return _finish(error, counted, frames)


def frames_from_dat(records: np.ndarray, time_steps: int, split_by: str, size: tuple[int, int]) -> np.ndarray | None:
    """int32 frames of Prophesee DAT records (``dat._RECORD``, viewing the file's bytes), or None."""
    library = _compiled()
    if library is None:
        return None
    bounds = _bounds(records["t"], len(records), time_steps, split_by)
    if bounds is None:
        return None
    starts, ends = bounds
    body = np.ascontiguousarray(records).view(np.uint8) if len(records) else np.zeros(0, np.uint8)
    frames = np.zeros((time_steps, 2, *size), dtype=np.int32)
    counted = ctypes.c_int(0)
    error = library.frames_count_dat(body.ctypes.data, len(records), starts.ctypes.data, ends.ctypes.data,
                                     time_steps, *size, frames.ctypes.data, ctypes.byref(counted))
    return _finish(error, counted, frames)
