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
"""

from __future__ import annotations

import numpy as np

from ._common import EventFileError, EventRecording, build_events, check_record_length, split_text_header

MAGIC = b"#!AER-DAT2.0"
SENSOR_SIZE = (128, 128)
ORIENTATIONS = ("spikingjelly", "raw")


def read_aedat2(path, data: bytes, *, sensor_size=None, orientation=None,
                allow_truncated: bool = False) -> EventRecording:
    orientation = "spikingjelly" if orientation is None else orientation
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; valid: {ORIENTATIONS}")
    lines, body_start = split_text_header(data, path, MAGIC)
    count = check_record_length(path, len(data) - body_start, 8, "AEDAT 2.0", allow_truncated)
    words = np.frombuffer(data, dtype=">u4", count=2 * count, offset=body_start).reshape(count, 2)
    address = words[:, 0].astype(np.int64)
    timestamp = words[:, 1].astype(np.int64)

    high = np.flatnonzero(address >> 16)
    if high.size:
        first = int(high[0])
        chips = [line.decode("ascii", "replace") for line in lines if b"AEChip" in line]
        chip = f" (the header names {chips[0].lstrip('# ')!r})" if chips else ""
        raise EventFileError(
            path,
            f"event {first} has address 0x{int(address[first]):08x}, which uses bits above 15: "
            f"not a DVS128 address{chip}; this reader decodes the DVS128 layout of CIFAR10-DVS "
            f"({high.size} such events)",
        )
    kept = (address & 0x8000) == 0  # bit 15: external event
    address = address[kept]
    x_raw = (address >> 1) & 0x7F
    y_raw = (address >> 8) & 0x7F
    p_raw = address & 1
    if orientation == "spikingjelly":
        x, y, p = 127 - y_raw, 127 - x_raw, 1 - p_raw
    else:
        x, y, p = x_raw, y_raw, p_raw
    return build_events(path, timestamp[kept], x, y, p, sensor_size, default_size=SENSOR_SIZE)
