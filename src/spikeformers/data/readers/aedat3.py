"""AEDAT 3.1 (cAER / libcaer), the format of DVS128 Gesture.

Layout: ASCII header lines starting with ``#`` (the first is
``#!AER-DAT3.1``) ending with the line ``#!END-HEADER`` (``\\r\\n``). Then
packets, each a 28-byte little-endian header

    int16 eventType (1 = polarity), int16 eventSource, int32 eventSize,
    int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity,
    int32 eventNumber, int32 eventValid

followed by ``eventCapacity * eventSize`` bytes, of which the first
``eventNumber`` events are used. Only polarity packets hold events; packets of
other (non-negative) types are skipped. A polarity event is 8 bytes:
``uint32 data`` (bit 0 valid, bit 1 polarity, bits 2..16 y, bits 17..31 x)
and ``int32 timestamp``; the time is ``timestamp | eventTSOverflow << 31``
microseconds. Events whose valid bit is 0 are dropped. Origin top-left, so x
and y are used as they are (as SpikingJelly does).

Sensor size: the ``sensor_size`` given; else from the header's
``#Source N: <camera>`` line for known cameras (DVS128 -> (128, 128),
DAVIS240 -> (180, 240), DAVIS346 -> (260, 346), DVXplorer -> (480, 640));
else (128, 128) if every event fits, else the data extent.

Errors: bad magic or header, a packet header or body beyond the end of the
file (``allow_truncated=True`` keeps the whole events of a cut last packet
instead), negative or inconsistent sizes/counts, a polarity packet whose
event size is not 8, negative timestamps or overflow counters.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from ._common import EventFileError, EventRecording, build_events, split_text_header

MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
POLARITY_EVENT = 1
PACKET_HEADER = struct.Struct("<hhiiiiii")
KNOWN_CAMERAS = (
    ("DVS128", (128, 128)),
    ("DAVIS240", (180, 240)),
    ("DAVIS346", (260, 346)),
    ("DVXPLORER", (480, 640)),
)
_SOURCE_LINE = re.compile(rb"^#Source\s+-?\d+:\s*(.*)$", re.IGNORECASE)
_POLARITY_DTYPE = np.dtype([("data", "<u4"), ("timestamp", "<i4")])


def header_sensor_size(lines):
    """(H, W) of the first known camera named in a ``#Source`` line, or None."""
    for line in lines:
        match = _SOURCE_LINE.match(line)
        if not match:
            continue
        name = match.group(1).decode("ascii", "replace").upper()
        for camera, size in KNOWN_CAMERAS:
            if camera in name:
                return size
    return None


def read_aedat3(path, data: bytes, *, sensor_size=None, allow_truncated: bool = False) -> EventRecording:
    lines, position = split_text_header(data, path, MAGIC, end_line=END_HEADER)
    size = len(data)
    bodies, overflows, counts = [], [], []
    while position < size:
        if size - position < PACKET_HEADER.size:
            if allow_truncated:
                break
            raise EventFileError(
                path,
                f"truncated packet header at byte {position}: {size - position} bytes left, "
                f"a packet header has {PACKET_HEADER.size}",
            )
        (event_type, _source, event_size, ts_offset, ts_overflow,
         capacity, number, valid) = PACKET_HEADER.unpack_from(data, position)
        fields = (f"type={event_type}, eventSize={event_size}, eventTSOffset={ts_offset}, "
                  f"eventTSOverflow={ts_overflow}, eventCapacity={capacity}, "
                  f"eventNumber={number}, eventValid={valid}")
        if (event_type < 0 or event_size <= 0 or ts_offset < 0 or ts_offset > event_size - 4
                or ts_overflow < 0 or capacity < 0 or not 0 <= number <= capacity
                or not 0 <= valid <= number):
            raise EventFileError(path, f"bad packet header at byte {position}: {fields}")
        if event_type == POLARITY_EVENT and (event_size != 8 or ts_offset != 4):
            raise EventFileError(
                path,
                f"unsupported polarity packet at byte {position}: events of {event_size} bytes "
                f"with the timestamp at offset {ts_offset} (expected 8 and 4); {fields}",
            )
        body_start = position + PACKET_HEADER.size
        end = body_start + capacity * event_size
        if end > size:
            if not allow_truncated:
                raise EventFileError(
                    path,
                    f"packet at byte {position} runs {end - size} bytes beyond the end of the "
                    f"file ({size} bytes): {fields}",
                )
            if event_type == POLARITY_EVENT:
                whole = min(number, (size - body_start) // event_size)
                bodies.append(data[body_start:body_start + whole * event_size])
                overflows.append(ts_overflow)
                counts.append(whole)
            break
        if event_type == POLARITY_EVENT and number:
            bodies.append(data[body_start:body_start + number * event_size])
            overflows.append(ts_overflow)
            counts.append(number)
        position = end

    packed = np.frombuffer(b"".join(bodies), dtype=_POLARITY_DTYPE)
    overflow = np.repeat(np.asarray(overflows, dtype=np.int64), np.asarray(counts, dtype=np.int64))
    word = packed["data"].astype(np.int64)
    timestamp = packed["timestamp"].astype(np.int64)
    negative = np.flatnonzero(timestamp < 0)
    if negative.size:
        first = int(negative[0])
        raise EventFileError(
            path, f"polarity event {first} has a negative timestamp {int(timestamp[first])}"
        )
    kept = (word & 1) == 1
    word = word[kept]
    t = timestamp[kept] | (overflow[kept] << 31)
    x = (word >> 17) & 0x7FFF
    y = (word >> 2) & 0x7FFF
    p = (word >> 1) & 1
    default = header_sensor_size(lines)
    return build_events(path, t, x, y, p, sensor_size, default_size=default,
                        candidates=((128, 128),))
