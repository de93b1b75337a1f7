"""MATLAB event files of Bi et al. (ASL-DVS, UCF101-DVS, HMDB51-DVS), from MathWorks' MAT-File Format.

Each recording is a MAT-file (level 5, as MATLAB writes by default) holding
the variables ``ts`` (timestamps, microseconds), ``x``, ``y`` and ``pol``
(0 or 1), vectors of equal length in any numeric class (whole numbers),
recorded by a DAVIS240C: 240 columns, 180 rows, ``y`` counted from the bottom
row. Other variables are ignored.

``orientation``:

- ``'tonic'`` (default; also BrainCog's UCF101-DVS and HMDB51-DVS readers):
  ``y`` flipped, ``H - 1 - y``, so that row 0 is the top row, as every other
  reader here returns it; ``x`` as stored;
- ``'spikingjelly'``: ``x`` flipped too (``W - 1 - x``), as SpikingJelly's
  ASL-DVS conversion does (the picture turned by 180 degrees);
- ``'raw'``: as stored.

Sensor size: ``sensor_size`` if given (the flips use it), else ``(180, 240)``.

Layout read: a 128-byte header (level 5; byte order ``IM`` little-endian or
``MI`` big-endian; a level 7.3 file is HDF5 and refused), then tagged data
elements (8-byte tags, or the small format for 1 to 4 bytes), each variable a
miMATRIX (array flags, dimensions, name, real part) or a miCOMPRESSED zlib
stream of one. Every declared size is checked before it is used: each element
against the file, each compressed element inflated with its output bounded
(``DEFLATE_MAX_RATIO`` times its compressed size and ``MAX_INFLATED_BYTES``),
each sub-element against its matrix, and a variable's dimensions against the
bytes of its real part, which are then viewed in place (no copy). scipy is not
needed; its ``loadmat`` gives the same numbers (tested).
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from ._common import EventFileError, EventRecording, build_events, resolve_size
from .archive import DEFLATE_MAX_RATIO
from .counting import frames_from_columns
from .npz import whole_numbers

MAGIC = b"MATLAB 5.0 MAT-file"
HEADER_BYTES = 128
VARIABLES = ("ts", "x", "y", "pol")
SENSOR_SIZE = (180, 240)
ORIENTATIONS = ("tonic", "spikingjelly", "raw")

# One recording's four variables inflated: 32 million events stored as doubles. Real recordings
# are far smaller (a few million events at most); a file declaring more is damage or a bomb.
MAX_INFLATED_BYTES = 2**30

MI_MATRIX, MI_COMPRESSED = 14, 15
MI_INT8, MI_UINT32, MI_INT32 = 1, 6, 5
# The numeric storage types a matrix's real part may use (data type -> NumPy type, byte order apart).
NUMERIC_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
NUMERIC_CLASSES = range(6, 16)  # mxDOUBLE_CLASS .. mxUINT64_CLASS
COMPLEX_FLAG = 0x0800
_STEP = 1 << 20  # inflate in steps of this many bytes


class _Elements:
    """The data elements of a byte string in a MAT-file's byte order, each bounds-checked."""

    def __init__(self, path, data: bytes, order: str, where: str):
        self.path, self.data, self.order, self.where = path, data, order, where

    def tag(self, position: int, end: int) -> tuple[int, int, int, int]:
        """``(data type, byte count, data offset, offset of the next element)`` of the element at
        ``position``, which must lie before ``end``; the small format (type and count in 4 bytes)
        included."""
        if end - position < 8:
            raise EventFileError(self.path, f"truncated {self.where}: an element tag at byte {position} needs 8 "
                                            f"bytes, {max(end - position, 0)} are left")
        (first,) = struct.unpack_from(self.order + "I", self.data, position)
        if first >> 16:  # small data element: count and type in the first 4 bytes, data in the next 4
            kind, count = first & 0xFFFF, first >> 16
            if count > 4:
                raise EventFileError(self.path, f"bad small element at byte {position} of the {self.where}: it "
                                                f"declares {count} bytes in a 4-byte field")
            return kind, count, position + 4, position + 8
        kind, count = first, struct.unpack_from(self.order + "I", self.data, position + 4)[0]
        start = position + 8
        if count > end - start:
            raise EventFileError(self.path, f"element at byte {position} of the {self.where} declares {count} "
                                            f"bytes; {end - start} are left")
        return kind, count, start, min(start + count + (-count % 8), end)


def split_header(path, data: bytes) -> str:
    """The byte order (``'<'`` or ``'>'``) of a level 5 MAT-file, after checking its header."""
    if data.startswith(b"MATLAB 7.3 MAT-file"):
        raise EventFileError(path, "is a MATLAB 7.3 MAT-file (HDF5), which is not read; save it with "
                                   "save(..., '-v7') or read it with h5py")
    if not data.startswith(MAGIC):
        raise EventFileError(path, f"bad header: a level 5 MAT-file starts with {MAGIC.decode()!r}, "
                                   f"got {data[:24]!r}")
    if len(data) < HEADER_BYTES:
        raise EventFileError(path, f"truncated header: {len(data)} bytes, a MAT-file header has {HEADER_BYTES}")
    indicator = data[126:128]
    if indicator not in (b"IM", b"MI"):
        raise EventFileError(path, f"bad header: byte order indicator {indicator!r}, expected b'IM' or b'MI'")
    return "<" if indicator == b"IM" else ">"


def matrices(path, data: bytes, order: str) -> dict[str, np.ndarray]:
    """The real parts of the wanted variables (``check_matrix``), as 1-D views of the file's or
    the inflated bytes; the first matrix of each name counts."""
    found: dict[str, np.ndarray] = {}
    top = _Elements(path, data, order, "file")
    position, inflated_total = HEADER_BYTES, 0
    while position < len(data) and len(found) < len(VARIABLES):
        kind, count, start, following = top.tag(position, len(data))
        if kind == MI_COMPRESSED:
            element = _inflate(path, data[start:start + count], position)
            inflated_total += len(element)
            if inflated_total > MAX_INFLATED_BYTES:
                raise EventFileError(path, f"its compressed elements inflate to more than {MAX_INFLATED_BYTES} "
                                           "bytes, far beyond any event recording; refused")
            inner = _Elements(path, element, order, f"element compressed at byte {position}")
            inner_kind, inner_count, _, _ = inner.tag(0, len(element))
            element = element[:8 + inner_count]
            following = start + count  # compressed elements are not padded
        else:
            inner_kind, element = kind, data[position:start + count]
        if inner_kind == MI_MATRIX:
            name = matrix_name(path, element, order, position)
            if name in VARIABLES and name not in found:
                kind, count, start = check_matrix(path, element, order, name)
                dtype = np.dtype(NUMERIC_TYPES[kind]).newbyteorder(order)
                found[name] = np.frombuffer(element, dtype=dtype, count=count // dtype.itemsize, offset=start)
        position = following
    missing = [name for name in VARIABLES if name not in found]
    if missing:
        raise EventFileError(path, f"lacks the variable(s) {', '.join(missing)}; an event MAT-file holds "
                                   f"{', '.join(VARIABLES)}")
    return found


def _inflate(path, compressed: bytes, position: int) -> bytes:
    """A compressed element's bytes, inflated step by step and refused beyond deflate's bound
    of its compressed size or ``MAX_INFLATED_BYTES``, before that much is held."""
    bound = min(DEFLATE_MAX_RATIO * len(compressed) + 1024, MAX_INFLATED_BYTES)
    inflater = zlib.decompressobj()
    parts, total = [], 0
    try:
        part = inflater.decompress(compressed, _STEP)
        while True:
            parts.append(part)
            total += len(part)
            if total > bound:
                raise EventFileError(path, f"the element compressed at byte {position} ({len(compressed)} bytes) "
                                           f"inflates beyond {bound} bytes: refused as a decompression bomb")
            if not inflater.unconsumed_tail:
                break
            part = inflater.decompress(inflater.unconsumed_tail, _STEP)
        parts.append(inflater.flush())
    except zlib.error as error:
        raise EventFileError(path, f"the element compressed at byte {position} cannot be inflated ({error})") from None
    if not inflater.eof:
        raise EventFileError(path, f"the element compressed at byte {position} is cut short (its zlib stream "
                                   "does not end)")
    return b"".join(parts)


def _sub_elements(path, element: bytes, order: str, where: str, wanted: int):
    """The first ``wanted`` sub-elements of a matrix element, ``(type, count, data offset)`` each,
    every one inside the matrix's declared bytes."""
    reader = _Elements(path, element, order, where)
    _, count, start, _ = reader.tag(0, len(element))
    end = start + count
    subs, position = [], start
    for _ in range(wanted):
        kind, count, data, position = reader.tag(position, end)
        subs.append((kind, count, data))
    return subs


def matrix_name(path, element: bytes, order: str, position: int) -> str:
    """The variable name of a matrix element (its third sub-element)."""
    where = f"matrix at byte {position}"
    _, _, (kind, count, start) = _sub_elements(path, element, order, where, 3)
    if kind != MI_INT8:
        raise EventFileError(path, f"bad {where}: its name has data type {kind}, expected miINT8 ({MI_INT8})")
    return element[start:start + count].decode("latin-1")


def check_matrix(path, element: bytes, order: str, name: str) -> tuple[int, int, int]:
    """``(data type, byte count, data offset)`` of the real part of a numeric, real, dense vector
    whose stored bytes are what its dimensions declare, or an ``EventFileError``."""
    where = f"variable {name!r}"
    flags, dimensions, _, real = _sub_elements(path, element, order, where, 4)
    if flags[:2] != (MI_UINT32, 8):
        raise EventFileError(path, f"bad {where}: its array flags are {flags[1]} bytes of type {flags[0]}, "
                                   f"expected 8 of miUINT32 ({MI_UINT32})")
    word = struct.unpack_from(order + "I", element, flags[2])[0]
    array_class, complex_ = word & 0xFF, bool(word & COMPLEX_FLAG)
    if array_class not in NUMERIC_CLASSES or complex_:
        raise EventFileError(path, f"{where} has array class {array_class}{' (complex)' if complex_ else ''}; "
                                   "it must be a real numeric array")
    kind, count, start = dimensions
    if kind != MI_INT32 or count % 4 or count < 8:
        raise EventFileError(path, f"bad {where}: its dimensions are {count} bytes of type {kind}, "
                                   f"expected 2 or more miINT32 ({MI_INT32})")
    dims = struct.unpack_from(f"{order}{count // 4}i", element, start)
    size = math.prod(dims) if min(dims) >= 0 else -1
    if size < 0 or (size and sum(side != 1 for side in dims) > 1):
        raise EventFileError(path, f"{where} has dimensions {dims}; it must be a vector")
    kind, count, start = real
    if kind not in NUMERIC_TYPES:
        raise EventFileError(path, f"bad {where}: its real part has data type {kind}, not a numeric type")
    itemsize = np.dtype(NUMERIC_TYPES[kind]).itemsize
    if count != size * itemsize:
        raise EventFileError(path, f"bad {where}: dimensions {dims} of {itemsize}-byte values declare "
                                   f"{size * itemsize} bytes; its real part holds {count}")
    return kind, count, start


def decode(path, data: bytes) -> dict[str, np.ndarray]:
    """The four variables as 1-D int64 arrays (``split_header``, ``matrices``, ``whole_numbers``)."""
    found = matrices(path, data, split_header(path, data))
    columns = {name: whole_numbers(path, name, found[name]) for name in VARIABLES}
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise EventFileError(path, f"the variables {', '.join(VARIABLES)} differ in length: {lengths}")
    return columns


def _oriented(path, data: bytes, sensor_size, orientation):
    """``(t, x, y, p, size)``: the columns in ``orientation`` and the size they are on."""
    orientation = orientation or ORIENTATIONS[0]
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r} for MAT files; valid: {ORIENTATIONS}")
    columns = decode(path, data)
    size = resolve_size(path, None, None, sensor_size, SENSOR_SIZE)
    x, y = columns["x"], columns["y"]
    if orientation != "raw":
        y = np.subtract(size[0] - 1, y, out=y)  # the columns are this function's own: flipped in place
    if orientation == "spikingjelly":
        x = np.subtract(size[1] - 1, x, out=x)
    return columns["ts"], x, y, columns["pol"], size


def read_mat(path, data: bytes, *, sensor_size=None, orientation: str | None = None) -> EventRecording:
    t, x, y, p, _ = _oriented(path, data, sensor_size, orientation)
    return build_events(path, t, x, y, p, sensor_size, default_size=SENSOR_SIZE)


def read_mat_frames(path, data: bytes, time_steps: int, split_by: str, *, sensor_size=None,
                    orientation: str | None = None) -> np.ndarray | None:
    """The frames of ``read_mat`` then ``integrate``, counted from the columns (``counting``), or None."""
    t, x, y, p, size = _oriented(path, data, sensor_size, orientation)
    return frames_from_columns(t, x, y, p, time_steps, split_by, size)
