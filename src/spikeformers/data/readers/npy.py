"""Event recordings stored as one NumPy ``.npy`` structured array (DVS-Lip's released files).

The array is 1-D with the fields ``t``, ``x``, ``y`` and ``p`` (any order, any
integer or boolean types, or floats holding whole numbers; other fields are
ignored). DVS-Lip writes ``t`` as ``int32`` microseconds and ``x``, ``y``,
``p`` as ``int8`` on its 128x128 crops of a DAVIS346.

The ``.npy`` header is checked before anything is allocated (format 1.0 or
2.0, no Python objects, a shape and dtype that describe exactly the bytes
after the header; ``npz.read_npy``). Sensor size: the ``sensor_size`` given,
else ``(128, 128)`` when every event fits (DVS-Lip), else the data extent.
"""

from __future__ import annotations

import io

import numpy as np

from ._common import EventFileError, EventRecording, build_events, resolve_size
from .counting import frames_from_columns
from .npz import EVENT_KEYS, event_column, read_npy

SENSOR_SIZES = ((128, 128),)


def decode(path, data: bytes, raw_integers: bool = False) -> dict[str, np.ndarray]:
    """The fields t, x, y, p as int64 columns, after the checks of the module docstring
    (``raw_integers``: see ``npz.event_column``)."""
    try:
        array = read_npy(path, io.BytesIO(data), len(data), "events")
    except EventFileError:
        raise
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as error:  # numpy's header parser on damaged bytes: any of its errors
        raise EventFileError(path, f"cannot be read as an .npy array ({type(error).__name__}: {error})") from error
    names = array.dtype.names
    if names is None:
        raise EventFileError(path, f"holds an array of {array.dtype} with shape {array.shape}; an event file is a "
                                   f"structured array with the fields {', '.join(EVENT_KEYS)}")
    missing = [key for key in EVENT_KEYS if key not in names]
    if missing:
        raise EventFileError(path, f"its structured array lacks the field(s) {missing}; it has {list(names)}")
    if array.ndim != 1:
        raise EventFileError(path, f"its structured array has shape {array.shape}; it must be 1-D")
    return {key: event_column(path, key, array[key], raw_integers) for key in EVENT_KEYS}


def read_npy_events(path, data: bytes, *, sensor_size=None) -> EventRecording:
    columns = decode(path, data)
    return build_events(path, columns["t"], columns["x"], columns["y"], columns["p"], sensor_size,
                        candidates=SENSOR_SIZES)


def read_npy_frames(path, data: bytes, time_steps: int, split_by: str, *, sensor_size=None) -> np.ndarray | None:
    """The frames of ``read_npy_events`` then ``integrate``, counted from the columns (``counting``), or None."""
    columns = decode(path, data, raw_integers=True)
    size = resolve_size(path, columns["x"], columns["y"], sensor_size, None, SENSOR_SIZES)
    return frames_from_columns(columns["t"], columns["x"], columns["y"], columns["p"], time_steps, split_by, size)
