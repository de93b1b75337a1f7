"""SpikingJelly's ``.npz`` caches.

- Event caches (``events_np/<class>/*.npz``): 1-D arrays ``t``, ``x``, ``y``,
  ``p`` of equal length (``read_events``). Values must be whole numbers
  (float arrays holding whole numbers are accepted), ``t >= 0``,
  ``0 <= x, y < 32768`` and ``p`` 0 or 1. The cache stores no sensor size:
  pass ``sensor_size``, or get the first standard size that holds every
  event, (34, 34) N-MNIST, (128, 128) DVS128 (CIFAR10-DVS, DVS Gesture),
  (180, 240) N-Caltech101, else the data extent; zero events give (34, 34).
- Frame caches (``frames_number_{T}_split_by_{number|time}/<class>/*.npz``):
  one array ``frames`` of shape ``[T, 2, H, W]`` (``read_frames_npz``).

Files are opened with ``allow_pickle=False``; a file that is not a readable
zip of ``.npy`` arrays is an ``EventFileError``.
"""

from __future__ import annotations

import numpy as np

from ._common import EventFileError, EventRecording, build_events

SENSOR_SIZES = ((34, 34), (128, 128), (180, 240))
EVENT_KEYS = ("t", "x", "y", "p")


def _load(path) -> dict:
    """Every array of the archive, or an EventFileError."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise EventFileError(path, "is a single .npy array, not a .npz archive")
            return {name: archive[name] for name in archive.files}
    except EventFileError:
        raise
    except FileNotFoundError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # zipfile, zlib, format and pickle errors of a damaged file
        raise EventFileError(
            path, f"cannot be read as a .npz archive ({type(error).__name__}: {error})"
        ) from error


def _whole_numbers(path, name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim != 1:
        raise EventFileError(path, f"array {name!r} has shape {array.shape}; it must be 1-D")
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and np.issubdtype(array.dtype, np.unsignedinteger) and array.max() > np.iinfo(np.int64).max:
            raise EventFileError(path, f"array {name!r} holds values beyond int64")
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all() or (array.size and (np.abs(array).max() >= 2.0**62)):
            raise EventFileError(path, f"array {name!r} holds non-finite or huge values")
        if not (array == np.round(array)).all():
            raise EventFileError(path, f"array {name!r} holds values that are not whole numbers")
        return array.astype(np.int64)
    raise EventFileError(path, f"array {name!r} has dtype {array.dtype}; it must be numeric")


def read_npz_events(path, *, sensor_size=None) -> EventRecording:
    arrays = _load(path)
    missing = [key for key in EVENT_KEYS if key not in arrays]
    if missing:
        hint = "; it is a frame cache: use read_frames_npz" if "frames" in arrays else ""
        raise EventFileError(
            path, f"an event cache needs arrays {EVENT_KEYS}; missing {missing}, "
                  f"has {sorted(arrays)}{hint}"
        )
    columns = {key: _whole_numbers(path, key, arrays[key]) for key in EVENT_KEYS}
    lengths = {key: len(column) for key, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise EventFileError(path, f"arrays t, x, y, p differ in length: {lengths}")
    for key in ("x", "y"):
        column = columns[key]
        if column.size and (column.min() < 0 or column.max() > np.iinfo(np.int16).max):
            raise EventFileError(
                path, f"{key} ranges over [{column.min()}, {column.max()}]; it must be in [0, 32767]"
            )
    return build_events(path, columns["t"], columns["x"], columns["y"], columns["p"],
                        sensor_size, candidates=SENSOR_SIZES)


def read_frames_npz(path) -> np.ndarray:
    """The ``frames`` array of a SpikingJelly frame cache, shape ``[T, 2, H, W]``.

    Returned as stored (SpikingJelly writes float counts); it must be numeric,
    finite, non-negative and 4-D with 2 polarity channels, else an
    ``EventFileError``.
    """
    arrays = _load(path)
    if "frames" not in arrays:
        hint = "; it is an event cache: use read_events" if all(k in arrays for k in EVENT_KEYS) else ""
        raise EventFileError(path, f"a frame cache needs an array 'frames'; has {sorted(arrays)}{hint}")
    frames = arrays["frames"]
    if frames.dtype != bool and not np.issubdtype(frames.dtype, np.number):
        raise EventFileError(path, f"'frames' has dtype {frames.dtype}; it must be numeric")
    if np.issubdtype(frames.dtype, np.complexfloating):
        raise EventFileError(path, f"'frames' has complex dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise EventFileError(
            path, f"'frames' has shape {frames.shape}; it must be [T, 2, H, W] (2 polarity channels)"
        )
    if frames.size:
        if np.issubdtype(frames.dtype, np.floating) and not np.isfinite(frames).all():
            raise EventFileError(path, "'frames' holds non-finite values")
        if frames.min() < 0:
            raise EventFileError(path, f"'frames' holds negative counts (min {frames.min()})")
    return frames
