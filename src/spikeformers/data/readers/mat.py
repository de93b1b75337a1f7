"""MATLAB event files of Bi et al. (ASL-DVS, UCF101-DVS, HMDB51-DVS), read with ``scipy.io``.

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

The file's structure is checked here before scipy reads a byte of it: the
128-byte header (level 5, byte order ``IM`` or ``MI``; a level 7.3 file is
HDF5 and refused), then each top-level element's declared size against the
file, each compressed element inflated by ``zlib`` in bounded steps (at most
``DEFLATE_MAX_RATIO`` times its compressed size and ``MAX_INFLATED_BYTES``),
and, for the four variables, the sub-elements of the matrix (flags,
dimensions, name, real part) against the matrix and the declared dimensions
against the stored bytes, so that no size a damaged file merely declares is
allocated. scipy (the optional extra ``pip install 'spikeformers[mat]'``)
then decodes the four checked matrices, uncompressed, from memory.
"""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np

from ._common import EventFileError, EventRecording, build_events
from .archive import DEFLATE_MAX_RATIO
from .npz import whole_numbers

MAGIC = b"MATLAB 5.0 MAT-file"
HEADER_BYTES = 128
VARIABLES = ("ts", "x", "y", "pol")
SENSOR_SIZE = (180, 240)
ORIENTATIONS = ("tonic", "spikingjelly", "raw")
INSTALL_HINT = "reading MAT files needs scipy: pip install 'spikeformers[mat]' (or pip install scipy)"

# One recording's four variables inflated: 32 million events stored as doubles. Real recordings
# are far smaller (a few million events at most); a file declaring more is damage or a bomb.
MAX_INFLATED_BYTES = 2**30

MI_MATRIX, MI_COMPRESSED = 14, 15
MI_INT8, MI_UINT32, MI_INT32 = 1, 6, 5
# The numeric storage types (data type -> item size) a matrix's real part may use.
NUMERIC_TYPES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
NUMERIC_CLASSES = range(6, 16)  # mxDOUBLE_CLASS .. mxUINT64_CLASS
COMPLEX_FLAG = 0x0800
_STEP = 1 << 20  # inflate in steps of this many bytes


def _import_scipy_io():
    try:
        import scipy.io
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return scipy.io


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


def matrices(path, data: bytes, order: str) -> dict[str, bytes]:
    """The miMATRIX elements (tag included, inflated when compressed) of the wanted variables,
    each checked by ``check_matrix``; the first of each name counts."""
    found: dict[str, bytes] = {}
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
                check_matrix(path, element, order, name)
                found[name] = element
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


def check_matrix(path, element: bytes, order: str, name: str) -> None:
    """A numeric, real, dense vector whose stored bytes are what its dimensions declare."""
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
    kind, count, _ = real
    if kind not in NUMERIC_TYPES:
        raise EventFileError(path, f"bad {where}: its real part has data type {kind}, not a numeric type")
    if count != size * NUMERIC_TYPES[kind]:
        raise EventFileError(path, f"bad {where}: dimensions {dims} of {NUMERIC_TYPES[kind]}-byte values declare "
                                   f"{size * NUMERIC_TYPES[kind]} bytes; its real part holds {count}")


def decode(path, data: bytes) -> dict[str, np.ndarray]:
    """The four variables as 1-D int64 arrays (``split_header``, ``matrices``, then scipy)."""
    order = split_header(path, data)
    found = matrices(path, data, order)
    scipy_io = _import_scipy_io()
    stream = io.BytesIO(data[:HEADER_BYTES] + b"".join(found[name] for name in VARIABLES))
    try:
        variables = scipy_io.loadmat(stream, variable_names=VARIABLES, squeeze_me=False)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as error:  # scipy's errors on a matrix that passed the checks but is still damaged
        raise EventFileError(path, f"scipy cannot read its variables ({type(error).__name__}: {error})") from error
    columns = {name: whole_numbers(path, name, np.asarray(variables[name]).reshape(-1)) for name in VARIABLES}
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise EventFileError(path, f"the variables {', '.join(VARIABLES)} differ in length: {lengths}")
    return columns


def read_mat(path, data: bytes, *, sensor_size=None, orientation: str | None = None) -> EventRecording:
    orientation = orientation or ORIENTATIONS[0]
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r} for MAT files; valid: {ORIENTATIONS}")
    columns = decode(path, data)
    height, width = SENSOR_SIZE if sensor_size is None else sensor_size
    x, y = columns["x"], columns["y"]
    if orientation != "raw":
        y = (int(height) - 1) - y
    if orientation == "spikingjelly":
        x = (int(width) - 1) - x
    return build_events(path, columns["ts"], x, y, columns["pol"], sensor_size, default_size=SENSOR_SIZE)
