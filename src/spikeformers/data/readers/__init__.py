"""Read event-camera recordings from the files the data sets ship.

    events, sensor_size = read_events(path)            # format detected
    recording = read_events(path, format="aedat2", orientation="raw")
    recording.events, recording.sensor_size
    frames = read_frames_npz(path)                     # SpikingJelly frame cache
    frames = read_event_frames(path, 16, "number")     # int32 [T, 2, H, W]

``read_events`` returns an ``EventRecording`` (a named tuple): ``events``, an
``EVENT_DTYPE`` structured array in file order (t in microseconds, x column,
y row with row 0 at the top, p 1 = ON), and ``sensor_size`` ``(H, W)`` with
every event inside it.

Formats (``FORMATS``; see each module for the layout and its sensor size):

- ``'aedat2'``: AEDAT 2.0 with DVS128 addresses (CIFAR10-DVS); option
  ``orientation='spikingjelly'`` (default) or ``'raw'``,
- ``'aedat3'``: AEDAT 3.1 (DVS128 Gesture),
- ``'aedat4'``: AEDAT 4.0 (tonic's CIFAR10-DVS copy), needs the optional
  ``aedat`` package,
- ``'nmnist'``: the N-MNIST / N-Caltech101 binary (5 bytes an event),
- ``'npz'``: SpikingJelly's event cache (arrays t, x, y, p).

Detection when ``format`` is None: by content first, a file starting with
``#!AER-DAT2.0`` / ``#!AER-DAT3.1`` / ``#!AER-DAT4.0`` is AEDAT 2.0 / 3.1 /
4.0 (another ``#!AER-DAT`` version is an error), one starting with a zip
signature (``PK\\x03\\x04`` or ``PK\\x05\\x06``) is ``npz``; then by extension,
``.bin`` is ``nmnist`` and ``.npz`` is ``npz``. Anything else is an
``EventFileError`` that lists the supported formats.

Options: ``sensor_size=(H, W)`` overrides the format's size (events outside
it are an error); without it a size the file declares or its events reach
beyond ``MAX_SENSOR_SIDE`` (2048) a side is an error. ``allow_truncated=True``
drops a partial trailing record (AEDAT 2.0, N-MNIST) or the cut end of the
last packet (AEDAT 3.1) instead of raising, since by default a truncated file
is an error, never silently shortened.

A path that runs through a ``.zip`` file reads that archive's member
(``airplane.zip/airplane/cifar10_airplane_0.aedat``; see ``archive``), for
every format but AEDAT 4. Files are read into memory, never memory-mapped, so
a file that shrinks while it is read is at worst an ``EventFileError``; sizes
a file declares are checked against the file before anything is allocated.

``read_event_frames(path, T, split_by, ...)`` takes the same options and
returns ``events_to_frames`` of the recording, the events of the time modes
put in time order first (stable; recordings occasionally hold a timestamp out
of order). AEDAT 2.0 files take a direct path (addresses looked up as frame
pixels, no event array; ``benchmarks/data_throughput.py`` measures it); the
frames are the same.

Every problem with a file's content raises ``EventFileError`` (a
``ValueError``) naming the file and what is wrong; OS errors such as a
missing file propagate unchanged; bad arguments raise ``ValueError``.
"""

from __future__ import annotations

import os

import numpy as np

from ..events import sort_events
from ..frames import check_frame_options, events_to_frames
from ._common import MAX_SENSOR_SIDE, EventFileError, EventRecording, read_bytes
from .aedat2 import ORIENTATIONS, read_aedat2, read_aedat2_frames
from .archive import read_member, split_archive_path
from .aedat3 import read_aedat3
from .aedat4 import read_aedat4
from .nmnist import read_nmnist
from .npz import read_frames_npz, read_npz_events

FORMATS = ("aedat2", "aedat3", "aedat4", "nmnist", "npz")

_MAGICS = (
    (b"#!AER-DAT2.0", "aedat2"),
    (b"#!AER-DAT3.1", "aedat3"),
    (b"#!AER-DAT4.0", "aedat4"),
    (b"PK\x03\x04", "npz"),
    (b"PK\x05\x06", "npz"),
)
_EXTENSIONS = {".bin": "nmnist", ".npz": "npz"}
_HEAD_BYTES = 64


def _supported() -> str:
    return ", ".join(FORMATS)


def detect_format_from_bytes(head: bytes, path) -> str:
    """The format of a file whose first bytes are ``head`` (see the module doc)."""
    for magic, name in _MAGICS:
        if head.startswith(magic):
            return name
    if head.startswith(b"#!AER-DAT"):
        version = head.split(b"\n", 1)[0].strip()
        raise EventFileError(
            path, f"unsupported AEDAT version {version!r}; supported: 2.0, 3.1, 4.0"
        )
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if isinstance(extension, bytes):
        extension = extension.decode("ascii", "replace")
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    raise EventFileError(
        path,
        f"cannot tell the format from the content (starts with {head[:16]!r}) or the extension "
        f"{extension!r}; supported formats: {_supported()} (pass format=...)",
    )


def detect_format(path) -> str:
    """The format name ``read_events`` would use for ``path`` (one of ``FORMATS``)."""
    member = split_archive_path(path)
    if member is not None:
        return detect_format_from_bytes(read_member(*member, path)[:_HEAD_BYTES], path)
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    return detect_format_from_bytes(head, path)


def read_events(path, format: str | None = None, *, sensor_size=None, orientation: str | None = None,
                allow_truncated: bool = False) -> EventRecording:
    """Read an event recording: an ``EventRecording(events, sensor_size)``.

    ``format``: one of ``FORMATS``, or None to detect it (module doc).
    ``sensor_size``: ``(H, W)`` to use instead of the format's own.
    ``orientation``: AEDAT 2.0 only, ``'spikingjelly'`` (default) or ``'raw'``.
    ``allow_truncated``: drop a partial trailing record instead of raising
    (AEDAT 2.0, AEDAT 3.1, N-MNIST).

    Raises ``EventFileError`` (a ValueError naming the file) for any problem
    with the content, ``ValueError`` for bad arguments, ``ImportError`` for an
    AEDAT 4 file without the ``aedat`` package.
    """
    format, data = _open(path, format, orientation, allow_truncated)
    return _decode(path, format, data, sensor_size, orientation, allow_truncated)


def _decode(path, format: str, data, sensor_size, orientation, allow_truncated) -> EventRecording:
    if format == "aedat4":
        return read_aedat4(path, sensor_size=sensor_size)
    if format == "npz":
        return read_npz_events(path, data, sensor_size=sensor_size)
    if format == "aedat2":
        return read_aedat2(path, data, sensor_size=sensor_size, orientation=orientation,
                           allow_truncated=allow_truncated)
    if format == "aedat3":
        return read_aedat3(path, data, sensor_size=sensor_size, allow_truncated=allow_truncated)
    return read_nmnist(path, data, sensor_size=sensor_size, allow_truncated=allow_truncated)


def read_event_frames(path, time_steps: int, split_by: str = "number", *, format: str | None = None,
                      sensor_size=None, orientation: str | None = None,
                      allow_truncated: bool = False) -> np.ndarray:
    """A recording integrated into int32 frames ``[T, 2, H, W]`` (``events_to_frames``).

    The options are ``read_events``'s; the frames are ``events_to_frames(events,
    time_steps, sensor_size, split_by)`` of its events, for the time modes
    after a stable sort by time when they are out of order. Errors are
    ``read_events``'s and ``events_to_frames``'s.
    """
    check_frame_options(time_steps, split_by)
    format, data = _open(path, format, orientation, allow_truncated)
    if format == "aedat2":
        frames = read_aedat2_frames(path, data, time_steps, split_by, sensor_size=sensor_size,
                                    orientation=orientation, allow_truncated=allow_truncated)
        if frames is not None:
            return frames
        # Declined: addresses beyond DVS128 (read_aedat2 reports the error) or a
        # sensor size below 128x128 (read_aedat2 checks every event against it).
        recording = read_aedat2(path, data, sensor_size=sensor_size, orientation=orientation,
                                allow_truncated=allow_truncated)
    else:
        recording = _decode(path, format, data, sensor_size, orientation, allow_truncated)
    events = recording.events
    if split_by != "number" and np.any(events["t"][1:] < events["t"][:-1]):
        events = sort_events(events)
    return events_to_frames(events, time_steps, recording.sensor_size, split_by)


def _open(path, format, orientation, allow_truncated) -> tuple[str, bytes | None]:
    """``(format, the file's bytes)`` after checking the options against the format
    (detected when None); no bytes for an AEDAT 4 file, which the aedat package reads."""
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown event file format {format!r}; supported: {_supported()}")
    if orientation is not None and orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; valid: {ORIENTATIONS}")
    member = split_archive_path(path)
    data = None
    if member is not None:
        data = read_member(*member, path)
        if format is None:
            format = detect_format_from_bytes(data[:_HEAD_BYTES], path)
    elif format is None:
        format = detect_format(path)
    if orientation is not None and format != "aedat2":
        raise ValueError(f"orientation applies to AEDAT 2.0 files only, not to format {format!r}")
    if allow_truncated and format not in ("aedat2", "aedat3", "nmnist"):
        raise ValueError(f"allow_truncated applies to aedat2, aedat3 and nmnist, not to {format!r}")
    if format == "aedat4":
        if member is not None:
            raise EventFileError(path, "an AEDAT 4 file is read by the aedat package from a file of its own; "
                                       "extract it from the zip archive first")
        return format, None
    return format, data if data is not None else read_bytes(path)


__all__ = [
    "FORMATS",
    "MAX_SENSOR_SIDE",
    "ORIENTATIONS",
    "EventFileError",
    "EventRecording",
    "detect_format",
    "read_event_frames",
    "read_events",
    "read_frames_npz",
]
