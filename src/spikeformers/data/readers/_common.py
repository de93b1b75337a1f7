"""Pieces shared by the event-file readers: the error class, the result type,
reading a file and turning decoded columns into an ``EVENT_DTYPE`` array."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..events import EVENT_DTYPE
from ..frames import check_sensor_size

_INT16_MAX = int(np.iinfo(np.int16).max)

# The largest sensor side a reader takes from a file, as its declared size or as the extent of its
# events, when the caller gives no sensor_size. The largest event cameras are 1280 pixels wide
# (Prophesee / Sony IMX636: 1280x720; Samsung DVS Gen4: 1280x960), so a larger size read from a
# file is damage, and framing it would allocate T x 2 x H x W counts for what may be a 1 KB file
# (at 32768x32768 that is 8 GiB a frame; at this bound, 32 MiB). A caller who means a larger
# sensor says so with sensor_size.
MAX_SENSOR_SIDE = 2048


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
    """The whole file, read into memory. OS errors (missing file, directory, ...) propagate unchanged.

    Read, never memory-mapped: a mapped file that shrinks while it is read (a
    copy still being written, a file replaced under a running job) kills the
    process with SIGBUS at the first access past the new end, which no Python
    code can catch. A read gives the bytes that were there, and a short file
    is then an ``EventFileError`` like any truncated one.
    """
    with open(path, "rb") as handle:
        return handle.read()


def split_text_header(data: bytes, path, magic: bytes, end_line: bytes | None = None):
    """Split a header of ``#`` lines (``\\n`` or ``\\r\\n`` ends) off ``data``.

    The first line must start with ``magic``. Without ``end_line`` the header
    runs to the first line that does not start with ``#`` (AEDAT 2.0); with it,
    the header runs to and including that line, which must come (AEDAT 3.1).
    Returns ``(lines without their line ends, offset of the body)``.
    """
    if data[: len(magic)] != magic:  # (a memory map has no startswith)
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

    The size is ``resolve_size``'s. Events outside it, negative coordinates or
    timestamps, or polarities other than 0/1 are an ``EventFileError``.
    """
    t = np.asarray(t, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.int64)
    height, width = resolve_size(path, x, y, sensor_size, default_size, candidates)
    if len(t):
        check_inside(path, x, y, (height, width))
        # One reduction each; the first bad event is looked for only when there is one.
        if p.min() < 0 or p.max() > 1:
            first = int(np.flatnonzero((p != 0) & (p != 1))[0])
            raise EventFileError(path, f"event {first} has polarity {int(p[first])}; it must be 0 or 1")
        if t.min() < 0:
            first = int(np.flatnonzero(t < 0)[0])
            raise EventFileError(path, f"event {first} has a negative timestamp {int(t[first])}")
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["t"] = t
    events["x"] = x
    events["y"] = y
    events["p"] = p
    return EventRecording(events, (height, width))


def resolve_size(path, x, y, sensor_size, default_size=None, candidates=()) -> tuple[int, int]:
    """The sensor size ``(H, W)`` of decoded columns: the caller's ``sensor_size`` wins; else
    ``default_size`` (the format's, or the one the file declares); else
    ``infer_sensor_size(candidates)``. A size taken from the file (declared or inferred) beyond
    ``MAX_SENSOR_SIDE`` is an ``EventFileError``."""
    if sensor_size is None:
        source = "the size the file declares"
        if default_size is None:
            default_size = infer_sensor_size(x, y, candidates)
            source = "the extent of its events (the largest y and x, plus one)"
        check_plausible_size(path, default_size, source)
    return resolve_sensor_size(path, sensor_size, default_size)


def check_plausible_size(path, size, source: str) -> None:
    """An ``EventFileError`` when a sensor size ``(H, W)`` read from the file exceeds ``MAX_SENSOR_SIDE``."""
    height, width = (int(side) for side in size)
    if height > MAX_SENSOR_SIDE or width > MAX_SENSOR_SIDE:
        raise EventFileError(
            path,
            f"implausible sensor size (H, W)={(height, width)} from {source}: no event camera is "
            f"larger than {MAX_SENSOR_SIDE} pixels a side; pass sensor_size=(H, W) if this one is",
        )


def resolve_sensor_size(path, sensor_size, default_size) -> tuple[int, int]:
    """The caller's ``sensor_size`` (checked) if given, else ``default_size``; an
    ``EventFileError`` when it does not fit ``EVENT_DTYPE``'s int16 coordinates."""
    height, width = check_sensor_size(sensor_size) if sensor_size is not None else default_size
    if height > _INT16_MAX + 1 or width > _INT16_MAX + 1:
        raise EventFileError(path, f"sensor size {(height, width)} does not fit int16 coordinates")
    return int(height), int(width)


def check_inside(path, x: np.ndarray, y: np.ndarray, sensor_size: tuple[int, int]) -> None:
    """An ``EventFileError`` naming the first event with ``x`` or ``y`` outside ``(H, W)``."""
    height, width = sensor_size
    for name, values, limit in (("x", x, width), ("y", y, height)):
        if len(values) and (values.min() < 0 or values.max() >= limit):
            bad = np.flatnonzero((values < 0) | (values >= limit))
            first = int(bad[0])
            raise EventFileError(
                path,
                f"event {first} has {name}={int(values[first])}, outside the sensor size "
                f"(H, W)={(height, width)} ({bad.size} such events)",
            )
