"""AEDAT 2.0 (jAER) with DVS128 addresses, the format of the CIFAR10-DVS originals.

Layout: ASCII header lines starting with ``#`` (the first is
``#!AER-DAT2.0``; lines end in ``\\r\\n`` or ``\\n``); the header ends at the
first line that does not start with ``#``. Then 8-byte events, big-endian
``uint32 address`` and ``uint32 timestamp`` (microseconds).

DVS128 address bits: polarity = bit 0 (1 = ON), x = bits 1..7, y = bits
8..14, bit 15 = external event (dropped). The sensor is 128x128 with its
origin at the bottom left. Addresses that use bits 16..31 are not DVS128
addresses (a DAVIS recording, or a corrupt file) and are an error rather than
silently wrong pixels.

``orientation``:

- ``'spikingjelly'`` (default; the convention of the Spikformer / QKFormer /
  Spike-driven Transformer CIFAR10-DVS results): ``x = 127 - y_raw``,
  ``y = 127 - x_raw``, ``p = 1 - p_raw``;
- ``'raw'``: the address bits as they are, ``x = x_raw``, ``y = y_raw``,
  ``p = p_raw``.

Timestamps are returned as recorded (file order, no sorting, no correction of
the 32-bit wrap-around after ~71 minutes, which CIFAR10-DVS recordings of
~1.3 s never reach). A header without events (e.g. a header-only file) gives
zero events and the DVS128 size.

Decoding views the body as records of the address's big-endian 16-bit halves
and the timestamp: the high half of every address must be zero, the low half
is the DVS128 address itself. ``read_aedat2`` decodes it into x, y, p
with a few bit operations; ``read_aedat2_frames`` looks each address up in a
32,768-entry table of frame pixel indices, so that framing needs no event
array at all: in one C++ pass over the file's bytes (``aedat2_kernel.cpp``)
when every record is a DVS128 event in time order, else frame by frame with
NumPy.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..events import EVENT_DTYPE
from ..frames import count_frames, frame_bounds
from ._common import (EventFileError, EventRecording, check_inside, check_record_length,
                      resolve_sensor_size, split_text_header)

MAGIC = b"#!AER-DAT2.0"
SENSOR_SIZE = (128, 128)
ORIENTATIONS = ("spikingjelly", "raw")
EXTERNAL_EVENT = 0x8000  # address bit 15

# One 8-byte event, with views that overlap: the address's high and low halves,
# the timestamp, and the address bytes as a little-endian word for a single
# bitwise-OR test of bits 15..31 (``_NOT_PLAIN``: big-endian bytes 0, 1 and
# the top bit of byte 2).
_RECORD = np.dtype({
    "names": ["address_high", "address", "timestamp", "address_bytes"],
    "formats": [">u2", ">u2", ">u4", "<u4"],
    "offsets": [0, 2, 4, 0],
    "itemsize": 8,
})
_NOT_PLAIN = int(np.frombuffer(b"\xff\xff\x80\x00", dtype="<u4")[0])


def read_aedat2(path, data, *, sensor_size=None, orientation=None,
                allow_truncated: bool = False) -> EventRecording:
    orientation = _check_orientation(orientation)
    lines, records = _records(path, data, allow_truncated)
    if not _is_plain(records):
        _check_dvs128(path, lines, records)
        records = records[records["address"] < EXTERNAL_EVENT]  # drop external events

    events = np.empty(len(records), dtype=EVENT_DTYPE)
    events["t"] = records["timestamp"]
    events["x"], events["y"], events["p"] = decode_addresses(records["address"], orientation)
    if sensor_size is None:
        return EventRecording(events, SENSOR_SIZE)  # 7-bit x and y always fit
    size = resolve_sensor_size(path, sensor_size, SENSOR_SIZE)
    check_inside(path, events["x"], events["y"], size)
    return EventRecording(events, size)


def read_aedat2_frames(path, data, time_steps: int, split_by: str, *, sensor_size=None,
                       orientation=None, allow_truncated: bool = False) -> np.ndarray | None:
    """The frames of ``events_to_frames`` (time modes: of the events in stable time
    order), computed without an event array; None when the file needs
    ``read_aedat2``: an address beyond DVS128 (an error it reports) or a
    ``sensor_size`` smaller than 128x128 (events may fall outside it)."""
    orientation = _check_orientation(orientation)
    _, records = _records(path, data, allow_truncated)
    size = SENSOR_SIZE if sensor_size is None else resolve_sensor_size(path, sensor_size, SENSOR_SIZE)
    if size[0] < SENSOR_SIZE[0] or size[1] < SENSOR_SIZE[1]:
        return None
    table = _pixel_table(orientation, *size)
    t = None if split_by == "number" else records["timestamp"].astype(np.uint32)
    in_order = t is None or not np.any(t[1:] < t[:-1])
    counter = _compiled_counter()
    if counter is not None and in_order:
        # The usual case (CIFAR10-DVS): events in time order; counted straight from the file's bytes
        # when every record is a DVS128 event (the counter checks, else gives None).
        starts, ends = frame_bounds(len(records), time_steps, split_by, t)
        body = np.frombuffer(records, dtype=np.uint8) if len(records) else np.zeros(0, np.uint8)
        frames = counter(body, table, starts, ends, 2 * size[0] * size[1])
        if frames is not None:
            return frames.reshape(time_steps, 2, *size)
    if not _is_plain(records):
        if records["address_high"].any():
            return None
        records = records[records["address"] < EXTERNAL_EVENT]  # drop external events
        if t is not None:
            t = records["timestamp"].astype(np.uint32)
            in_order = not np.any(t[1:] < t[:-1])
    address = records["address"]
    if not in_order:
        order = np.argsort(t, kind="stable")
        address, t = address[order], t[order]
    # np.take: a faster gather than fancy indexing.
    return count_frames(lambda start, end: np.take(table, address[start:end]), len(address),
                        time_steps, size, split_by, t)


def _compiled_counter():
    """The C++ counter (``aedat2_kernel.cpp``) as a function, or None where it cannot be built or torch
    is absent. It gives the frames ``[T, frame_size]`` (int32), or None when a record is not a DVS128
    event."""
    try:
        from ... import cpp_build
    except ImportError:
        return None
    library = cpp_build.load_library(Path(__file__).with_name("aedat2_kernel.cpp"), "aedat2")
    return None if isinstance(library, Exception) else _counter(library)


@functools.cache
def _counter(library):
    import ctypes

    entry = library.aedat2_count_frames
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    entry.argtypes = [ptr, i64, ptr, ptr, ptr, i64, i64, ptr, ctypes.POINTER(ctypes.c_int)]
    entry.restype = ctypes.c_char_p

    def count(body: np.ndarray, table: np.ndarray, starts, ends, frame_size: int) -> np.ndarray | None:
        body = np.ascontiguousarray(body, dtype=np.uint8)
        table = np.ascontiguousarray(table, dtype=np.int64)
        if table.shape != (32768,) or body.size % 8:
            raise ValueError("the AEDAT 2.0 counter takes whole 8-byte records and a table of 32768 pixels")
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        ends = np.ascontiguousarray(ends, dtype=np.int64)
        frames = np.zeros((len(starts), frame_size), dtype=np.int32)
        plain = ctypes.c_int(0)
        error = entry(body.ctypes.data, body.size // 8, table.ctypes.data, starts.ctypes.data, ends.ctypes.data,
                      len(starts), frame_size, frames.ctypes.data, ctypes.byref(plain))
        if error is not None:
            raise RuntimeError(f"AEDAT 2.0 counter: {error.decode(errors='replace')}")
        return frames if plain.value else None

    return count


def decode_addresses(address: np.ndarray, orientation: str):
    """``(x, y, p)`` (uint16) of 15-bit DVS128 addresses in ``orientation``."""
    if orientation == "spikingjelly":
        # x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw: on 7-bit and 1-bit
        # fields, subtracting from all ones is flipping every bit.
        address = address ^ np.uint16(0x7FFF)
        return (address >> 8) & 0x7F, (address >> 1) & 0x7F, address & 1
    return (address >> 1) & 0x7F, (address >> 8) & 0x7F, address & 1


@functools.lru_cache(maxsize=8)
def _pixel_table(orientation: str, height: int, width: int) -> np.ndarray:
    """For every address below bit 15, its event's index ``(p*H + y)*W + x`` in a
    flattened ``[2, H, W]`` frame (H, W >= 128), as ``np.intp`` for ``np.bincount``."""
    address = np.arange(EXTERNAL_EVENT, dtype=np.uint16)
    x, y, p = (field.astype(np.intp) for field in decode_addresses(address, orientation))
    table = (p * height + y) * width + x
    table.flags.writeable = False
    return table


def _check_orientation(orientation):
    orientation = "spikingjelly" if orientation is None else orientation
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; valid: {ORIENTATIONS}")
    return orientation


def _records(path, data, allow_truncated: bool):
    """``(header lines, the events as a _RECORD array viewing data)``."""
    lines, body_start = split_text_header(data, path, MAGIC)
    count = check_record_length(path, len(data) - body_start, 8, "AEDAT 2.0", allow_truncated)
    return lines, np.frombuffer(data, dtype=_RECORD, count=count, offset=body_start)


def _is_plain(records) -> bool:
    """No address uses bits 15..31 (the usual case, tested in one pass)."""
    return not len(records) or not np.bitwise_or.reduce(records["address_bytes"]) & _NOT_PLAIN


def _check_dvs128(path, lines, records) -> None:
    """An ``EventFileError`` naming the first address that uses bits 16..31, if any."""
    high = np.flatnonzero(records["address_high"])
    if not high.size:
        return
    first = int(high[0])
    address = (int(records["address_high"][first]) << 16) | int(records["address"][first])
    chips = [line.decode("ascii", "replace") for line in lines if b"AEChip" in line]
    chip = f" (the header names {chips[0].lstrip('# ')!r})" if chips else ""
    raise EventFileError(
        path,
        f"event {first} has address 0x{address:08x}, which uses bits above 15: "
        f"not a DVS128 address{chip}; this reader decodes the DVS128 layout of CIFAR10-DVS "
        f"({high.size} such events)",
    )
