"""Prophesee / ATIS DAT files (N-CARS), from Prophesee's published description of the format.

Layout, little-endian:

- an ASCII header of lines that start with ``%`` and end in ``\\n``
  (``% Data file containing ...``, ``% Version 2``, ``% Date ...``, and
  optionally ``% Width W`` and ``% Height H``); it ends at the first byte
  that is not ``%``;
- two bytes: the event type (``0x00`` Event2d, ``0x0C`` EventCd: the
  contrast-detection events this reader decodes; ``0x0E`` EventExtTrigger
  and any other type are refused) and the event size, which must be 8;
- 8-byte records: ``uint32`` timestamp (microseconds), then a ``uint32``
  with x in bits 0..13, y in bits 14..27 and the polarity in bits 28..31
  (0 = OFF, 1 = ON; any other value is damage). The origin is the top left.

Sensor size: the ``sensor_size`` given; else the header's ``% Width`` and
``% Height`` when it has both; else the first standard size that holds every
event, ``(100, 120)`` (N-CARS's samples, 120 wide and 100 high), then the
ATIS sensor ``(240, 304)``, then the data extent. A body that is not a
whole number of records is an error unless ``allow_truncated=True``.
"""

from __future__ import annotations

import numpy as np

from ._common import EventFileError, EventRecording, build_events, check_record_length, resolve_size
from .counting import frames_from_dat

MAGIC = b"% Data file containing"  # the first line Prophesee's writers put first (what detection looks for)
HEADER_MARK = 0x25  # '%'
EVENT_TYPES = {0x00: "Event2d", 0x0C: "EventCd"}
OTHER_TYPES = {0x0E: "EventExtTrigger (external trigger events, not contrast detection)"}
EVENT_SIZE = 8
SENSOR_SIZES = ((100, 120), (240, 304))
_RECORD = np.dtype([("t", "<u4"), ("word", "<u4")])


def parse_header(path, data: bytes) -> tuple[list[bytes], int]:
    """``(header lines without '%' and line end, offset of the event type byte)``."""
    if data[:1] != b"%":
        raise EventFileError(path, f"bad header: a DAT file starts with '%' header lines, got {data[:16]!r}")
    lines, position, size = [], 0, len(data)
    while position < size and data[position] == HEADER_MARK:
        end = data.find(b"\n", position)
        if end < 0:
            raise EventFileError(path, f"truncated header: the line starting at byte {position} has no line end "
                                       f"before the end of the file ({size} bytes)")
        lines.append(data[position + 1:end].strip())
        position = end + 1
    return lines, position


def header_size(path, lines: list[bytes]) -> tuple[int, int] | None:
    """``(H, W)`` from the ``Height`` and ``Width`` lines when there are both, else None."""
    declared = {}
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] in (b"Width", b"Height"):
            try:
                value = int(words[1])
            except ValueError:
                value = -1
            if value < 1 or len(words) != 2:
                raise EventFileError(path, f"bad header line {line.decode('ascii', 'replace')!r}: "
                                           f"{words[0].decode()} must be one positive integer")
            declared[words[0]] = value
    if len(declared) < 2:
        return None
    return declared[b"Height"], declared[b"Width"]


def decode(path, data: bytes, allow_truncated: bool = False) -> tuple[list[bytes], np.ndarray]:
    """``(header lines, the records as a _RECORD array viewing data)``, after the checks of the
    module docstring."""
    lines, position = parse_header(path, data)
    if len(data) - position < 2:
        raise EventFileError(path, f"truncated: the header ends at byte {position} without the event type and "
                                   f"event size bytes ({len(data)} bytes in all)")
    event_type, event_size = data[position], data[position + 1]
    if event_type not in EVENT_TYPES:
        what = OTHER_TYPES.get(event_type, "unknown")
        raise EventFileError(path, f"event type 0x{event_type:02X} ({what}); this reader decodes "
                                   f"{', '.join(f'0x{k:02X} {v}' for k, v in EVENT_TYPES.items())}")
    if event_size != EVENT_SIZE:
        raise EventFileError(path, f"event size {event_size}; DAT contrast-detection events are {EVENT_SIZE} bytes")
    body = position + 2
    count = check_record_length(path, len(data) - body, EVENT_SIZE, "DAT", allow_truncated)
    return lines, np.frombuffer(data, dtype=_RECORD, count=count, offset=body)


def _columns(records: np.ndarray):
    word = records["word"]
    return word & 0x3FFF, (word >> 14) & 0x3FFF, word >> 28


def read_dat(path, data: bytes, *, sensor_size=None, allow_truncated: bool = False) -> EventRecording:
    lines, records = decode(path, data, allow_truncated)
    x, y, p = _columns(records)
    return build_events(path, records["t"], x, y, p, sensor_size, default_size=header_size(path, lines),
                        candidates=SENSOR_SIZES)


def read_dat_frames(path, data: bytes, time_steps: int, split_by: str, *, sensor_size=None,
                    allow_truncated: bool = False) -> np.ndarray | None:
    """The frames of ``read_dat`` then ``integrate``, counted from the records (``counting``), or None."""
    lines, records = decode(path, data, allow_truncated)
    default = header_size(path, lines)
    if sensor_size is None and default is None:
        x, y, _ = _columns(records)
        size = resolve_size(path, x, y, None, None, SENSOR_SIZES)
    else:
        size = resolve_size(path, None, None, sensor_size, default)
    return frames_from_dat(records, time_steps, split_by, size)
