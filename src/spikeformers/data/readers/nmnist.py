"""The N-MNIST / N-Caltech101 binary format (Orchard et al. 2015, ATIS camera).

5 bytes an event, big-endian bit order: x (8 bits), y (8 bits), polarity
(1 bit, 1 = ON), timestamp (23 bits, microseconds). No header, no magic.

Rows with ``y == 240`` are not events but timestamp-overflow markers: as in
the format's reference reader they are dropped and add 2**13 us to the
timestamps of every later event (N-MNIST and N-Caltech101 recordings are far
shorter than the 8.4 s that 23 bits hold, so they do not occur there).

Sensor size: the ``sensor_size`` given (events outside it are an error);
otherwise the first standard size that holds every event, (34, 34) for
N-MNIST, then (180, 240) for N-Caltech101 (the size SpikingJelly uses), and
beyond that the data extent ``(max y + 1, max x + 1)``. An empty file gives
zero events and (34, 34).
"""

from __future__ import annotations

import numpy as np

from ._common import EventFileError, EventRecording, build_events, check_record_length

SENSOR_SIZES = ((34, 34), (180, 240))
OVERFLOW_Y = 240
OVERFLOW_INCREMENT = 2**13
_OTHER_MAGICS = (b"#!AER-DAT", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")


def read_nmnist(path, data: bytes, *, sensor_size=None, allow_truncated: bool = False) -> EventRecording:
    for magic in _OTHER_MAGICS:
        if data.startswith(magic):
            raise EventFileError(
                path, f"starts with {magic!r}: another format's magic, not the N-MNIST binary"
            )
    count = check_record_length(path, len(data), 5, "N-MNIST binary", allow_truncated)
    rows = np.frombuffer(data, dtype=np.uint8, count=5 * count).reshape(count, 5).astype(np.int64)
    x = rows[:, 0]
    y = rows[:, 1]
    p = rows[:, 2] >> 7
    t = ((rows[:, 2] & 0x7F) << 16) | (rows[:, 3] << 8) | rows[:, 4]
    overflow = y == OVERFLOW_Y
    if overflow.any():
        t = t + OVERFLOW_INCREMENT * np.cumsum(overflow)
        kept = ~overflow
        x, y, p, t = x[kept], y[kept], p[kept], t[kept]
    return build_events(path, t, x, y, p, sensor_size, candidates=SENSOR_SIZES)
