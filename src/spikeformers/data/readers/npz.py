"""SpikingJelly's ``.npz`` caches, and event files of that layout (HARDVS's released recordings).

- Event caches (``events_np/<class>/*.npz``, and HARDVS's ``action_NNN/*.npz``):
  1-D arrays ``t``, ``x``, ``y``, ``p`` of equal length (``read_events``). Values must be whole numbers
  (float arrays holding whole numbers are accepted), ``t >= 0``,
  ``0 <= x, y < 32768`` and ``p`` 0 or 1. The cache stores no sensor size:
  pass ``sensor_size``, or get the first standard size that holds every
  event, (34, 34) N-MNIST, (128, 128) DVS128 (CIFAR10-DVS, DVS Gesture),
  (180, 240) N-Caltech101, else the data extent; zero events give (34, 34).
- Frame caches (``frames_number_{T}_split_by_{number|time}/<class>/*.npz``):
  one array ``frames`` of shape ``[T, 2, H, W]`` (``read_frames_npz``).

A file that is not a readable zip of ``.npy`` arrays, an array of Python
objects (never unpickled), or an array whose header declares other sizes than
its zip member is an ``EventFileError``; every size is checked before the
array is allocated (``_load``).
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile

import numpy as np

from ._common import EventFileError, EventRecording, build_events, resolve_size
from .archive import check_member, open_zip, read_source
from .counting import frames_from_columns

SENSOR_SIZES = ((34, 34), (128, 128), (180, 240))
EVENT_KEYS = ("t", "x", "y", "p")
_NPY_MAGIC = b"\x93NUMPY"


def _load(path, data: bytes, wanted) -> tuple[dict, list[str]]:
    """``(arrays, names)``: the arrays ``wanted`` that the archive holds, and the names of all.

    Each array's declared size is checked before anything is allocated: its
    ``.npy`` header (shape and dtype) must describe exactly the bytes its zip
    member declares, and those within what the member's compression can give
    from its compressed bytes (``archive.check_member``); so an archive of N
    bytes never asks for more than about 1000 N. Arrays of Python objects are
    refused (never unpickled).
    """
    if data.startswith(_NPY_MAGIC):
        raise EventFileError(path, "is a single .npy array, not a .npz archive")
    with open_zip(io.BytesIO(data), path, "a .npz archive") as archive:
        members = {}
        for info in archive.infolist():
            name = info.filename
            members[name[:-4] if name.endswith(".npy") else name] = info
        arrays = {key: _read_array(path, archive, key, members[key], len(data))
                  for key in wanted if key in members}
    return arrays, sorted(members)


def _read_array(path, archive: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, archive_size: int) -> np.ndarray:
    check_member(path, info, archive_size)
    try:
        with archive.open(info) as stream:
            array = read_npy(path, stream, info.file_size, key)
            stream.read(1)  # the end of the member, where its CRC is checked
    except EventFileError:
        raise
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as error:  # zipfile, zlib, header format and value errors of a damaged file
        raise EventFileError(path, f"array {key!r} cannot be read ({type(error).__name__}: {error})") from error
    return array


def read_npy(path, stream, size: int, key: str) -> np.ndarray:
    """The array of an ``.npy`` file of ``size`` bytes read from ``stream``, its header checked first:
    format 1.0 or 2.0, a dtype of numbers (no Python objects, never unpickled), and a shape and
    dtype that describe exactly the bytes after the header, so that nothing a header merely
    declares is allocated. Problems are ``EventFileError`` naming ``path`` and the array ``key``;
    errors of the stream itself propagate."""
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError as error:
        raise EventFileError(path, f"array {key!r} is not an .npy array ({error})") from error
    if version not in ((1, 0), (2, 0)):
        raise EventFileError(path, f"array {key!r} has .npy format version {version}; versions 1.0 and 2.0 are read")
    try:
        with warnings.catch_warnings():  # a damaged header's escape sequences warn as numpy parses it
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(stream)
    except (ValueError, SyntaxError, TypeError) as error:
        raise EventFileError(path, f"array {key!r} has a damaged .npy header ({error})") from error
    if dtype.hasobject or dtype.itemsize == 0:
        raise EventFileError(path, f"array {key!r} has dtype {dtype}; it must hold numbers "
                                   "(arrays of Python objects are never unpickled)")
    count = math.prod(shape)
    declared = size - stream.tell()
    if count * dtype.itemsize != declared:
        raise EventFileError(path, f"array {key!r} declares shape {shape} of {dtype} "
                                   f"({count * dtype.itemsize} bytes); {declared} bytes follow its header")
    array = np.empty(count, dtype=dtype)
    read = stream.readinto(array.view(np.uint8)) if count else 0
    if read != count * dtype.itemsize:
        raise EventFileError(path, f"array {key!r} ends after {read} of its {count * dtype.itemsize} bytes")
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def event_column(path, name: str, array: np.ndarray, raw_integers: bool = False) -> np.ndarray:
    """``whole_numbers(array)``; with ``raw_integers``, a 1-D array of integers in native byte order
    as it is (no int64 copy: for ``counting``, which reads any integer type and refuses what
    ``read_events`` would)."""
    if raw_integers and array.ndim == 1 and array.dtype.kind in "iu" and array.dtype.isnative:
        return array
    return whole_numbers(path, name, array)


def whole_numbers(path, name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim != 1:
        raise EventFileError(path, f"array {name!r} has shape {array.shape}; it must be 1-D")
    if array.dtype == bool:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and np.issubdtype(array.dtype, np.unsignedinteger) and array.max() > np.iinfo(np.int64).max:
            raise EventFileError(path, f"array {name!r} holds values beyond int64")
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        # One conversion and one comparison: NaN, an infinity or a value beyond int64 converts to
        # something unequal to it, and so does a fraction.
        with np.errstate(invalid="ignore"):
            whole = array.astype(np.int64)
        if array.size and (whole.min() <= -2**62 or whole.max() >= 2**62 or not np.array_equal(whole, array)):
            if not np.isfinite(array).all() or np.abs(array[np.isfinite(array)]).max(initial=0) >= 2.0**62:
                raise EventFileError(path, f"array {name!r} holds non-finite or huge values")
            raise EventFileError(path, f"array {name!r} holds values that are not whole numbers")
        return whole
    raise EventFileError(path, f"array {name!r} has dtype {array.dtype}; it must be numeric")


def decode_events(path, data: bytes, raw_integers: bool = False) -> dict[str, np.ndarray]:
    """The arrays t, x, y, p of an event cache as int64 columns, after the module docstring's checks
    (``raw_integers``: see ``event_column``)."""
    arrays, names = _load(path, data, EVENT_KEYS)
    missing = [key for key in EVENT_KEYS if key not in arrays]
    if missing:
        hint = "; it is a frame cache: use read_frames_npz" if "frames" in names else ""
        raise EventFileError(
            path, f"an event cache needs arrays {EVENT_KEYS}; missing {missing}, "
                  f"has {names}{hint}"
        )
    columns = {key: event_column(path, key, arrays[key], raw_integers) for key in EVENT_KEYS}
    lengths = {key: len(column) for key, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise EventFileError(path, f"arrays t, x, y, p differ in length: {lengths}")
    for key in ("x", "y"):
        column = columns[key]
        if column.size and (column.min() < 0 or column.max() > np.iinfo(np.int16).max):
            raise EventFileError(
                path, f"{key} ranges over [{column.min()}, {column.max()}]; it must be in [0, 32767]"
            )
    return columns


def read_npz_events(path, data: bytes, *, sensor_size=None) -> EventRecording:
    columns = decode_events(path, data)
    return build_events(path, columns["t"], columns["x"], columns["y"], columns["p"],
                        sensor_size, candidates=SENSOR_SIZES)


def read_npz_frames(path, data: bytes, time_steps: int, split_by: str, *, sensor_size=None) -> np.ndarray | None:
    """The frames of ``read_npz_events`` then ``integrate``, counted from the columns (``counting``), or None."""
    columns = decode_events(path, data, raw_integers=True)
    size = resolve_size(path, columns["x"], columns["y"], sensor_size, None, SENSOR_SIZES)
    return frames_from_columns(columns["t"], columns["x"], columns["y"], columns["p"], time_steps, split_by, size)


def read_frames_npz(path) -> np.ndarray:
    """The ``frames`` array of a SpikingJelly frame cache, shape ``[T, 2, H, W]``.

    Returned as stored (SpikingJelly writes float counts); it must be numeric,
    finite, non-negative and 4-D with 2 polarity channels, else an
    ``EventFileError``.
    """
    arrays, names = _load(path, read_source(path), ("frames",))
    if "frames" not in arrays:
        hint = "; it is an event cache: use read_events" if all(k in names for k in EVENT_KEYS) else ""
        raise EventFileError(path, f"a frame cache needs an array 'frames'; has {names}{hint}")
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
