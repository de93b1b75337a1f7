"""Pieces shared by the event-file readers: the error class, the result type,
reading a file and turning decoded columns into an ``EVENT_DTYPE`` array."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..events import EVENT_DTYPE
from ..frames import check_sensor_size

_INT16_MAX = int(np.iinfo(np.int16).max)
_INT64_MAX = int(np.iinfo(np.int64).max)


class EventFileError(ValueError):
    """A file that cannot be decoded: bad magic or header, truncated record,
    packet beyond the end of the file, out-of-range field, ...

    ``path`` is the file and ``problem`` what is wrong with it; ``str(error)``
    is ``"<path>: <problem>"``. A subclass of ``ValueError``.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep it picklable (DataLoader workers)
        return (type(self), (self.path, self.problem))


class EventRecording(NamedTuple):
    """What ``read_events`` returns; unpacks as ``events, sensor_size = ...``.

    - ``events``: ``EVENT_DTYPE`` structured array (t in microseconds,
      x column, y row, p 1 = ON), in file order (not re-sorted),
    - ``sensor_size``: ``(H, W)``; every event has ``0 <= x < W`` and
      ``0 <= y < H``.
    """

    events: np.ndarray
    sensor_size: tuple[int, int]


def read_bytes(path) -> bytes:
    """The whole file. OS errors (missing file, directory, ...) propagate unchanged."""
    with open(path, "rb") as handle:
        return handle.read()


def split_text_header(data: bytes, path, magic: bytes, end_line: bytes | None = None):
    """Split a header of ``#`` lines (``\\n`` or ``\\r\\n`` ends) off ``data``.

    The first line must start with ``magic``. Without ``end_line`` the header
    runs to the first line that does not start with ``#`` (AEDAT 2.0); with it,
    the header runs to and including that line, which must come (AEDAT 3.1).
    Returns ``(lines without their line ends, offset of the body)``.
    """
    if not data.startswith(magic):
        shown = data[: len(magic) + 8]
        raise EventFileError(
            path, f"bad magic: expected the file to start with {magic.decode()!r}, got {shown!r}"
        )
    lines = []
    position = 0
    size = len(data)
    while position < size and data[position] == 0x23:  # '#'
        end = data.find(b"\n", position)
        if end < 0:
            raise EventFileError(
                path,
                f"truncated header: the line starting at byte {position} has no line end "
                f"before the end of the file ({size} bytes)",
            )
        line = data[position:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        lines.append(line)
        position = end + 1
        if end_line is not None and line == end_line:
            return lines, position
    if end_line is not None:
        where = "the end of the file" if position >= size else f"byte {position}, which is not a '#' line"
        raise EventFileError(
            path, f"bad header: it reaches {where} without the line {end_line.decode()!r}"
        )
    return lines, position


def check_record_length(path, body_size: int, record: int, what: str, allow_truncated: bool) -> int:
    """Number of whole records; a partial trailing record is an error unless allowed."""
    count, rest = divmod(body_size, record)
    if rest and not allow_truncated:
        raise EventFileError(
            path,
            f"truncated event record: the {what} body has {body_size} bytes, not a multiple of "
            f"{record} ({count} whole events and {rest} bytes left over); pass "
            "allow_truncated=True to drop the partial record",
        )
    return count


def infer_sensor_size(x: np.ndarray, y: np.ndarray, candidates) -> tuple[int, int]:
    """The first of ``candidates`` ((H, W) sizes) that holds every event, else
    the data extent ``(max y + 1, max x + 1)``; ``candidates[0]`` when empty."""
    if len(x) == 0:
        return tuple(candidates[0]) if candidates else (1, 1)
    max_x, max_y = int(x.max()), int(y.max())
    for height, width in candidates:
        if max_x < width and max_y < height:
            return (height, width)
    return (max_y + 1, max_x + 1)


def build_events(path, t, x, y, p, sensor_size, default_size=None, candidates=()) -> EventRecording:
    """Check the decoded columns and pack them into an ``EventRecording``.

    ``sensor_size`` (the caller's) wins; else ``default_size`` (the format's);
    else ``infer_sensor_size(candidates)``. Events outside the size, negative
    coordinates or timestamps, or polarities other than 0/1 are an
    ``EventFileError``.
    """
    t = np.asarray(t, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.int64)
    if sensor_size is not None:
        height, width = check_sensor_size(sensor_size)
    elif default_size is not None:
        height, width = default_size
    else:
        height, width = infer_sensor_size(x, y, candidates)
    if height > _INT16_MAX + 1 or width > _INT16_MAX + 1:
        raise EventFileError(path, f"sensor size {(height, width)} does not fit int16 coordinates")
    if len(t):
        for name, values, limit in (("x", x, width), ("y", y, height)):
            bad = np.flatnonzero((values < 0) | (values >= limit))
            if bad.size:
                first = int(bad[0])
                raise EventFileError(
                    path,
                    f"event {first} has {name}={int(values[first])}, outside the sensor size "
                    f"(H, W)={(height, width)} ({bad.size} such events)",
                )
        bad = np.flatnonzero((p != 0) & (p != 1))
        if bad.size:
            raise EventFileError(
                path, f"event {int(bad[0])} has polarity {int(p[bad[0]])}; it must be 0 or 1"
            )
        bad = np.flatnonzero(t < 0)
        if bad.size:
            raise EventFileError(
                path, f"event {int(bad[0])} has a negative timestamp {int(t[bad[0]])}"
            )
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["t"] = t
    events["x"] = x
    events["y"] = y
    events["p"] = p
    return EventRecording(events, (int(height), int(width)))
