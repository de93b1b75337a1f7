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

Formats (``FORMATS``, one row of ``_FORMATS`` each; see each module for the
layout and its sensor size):

- ``'aedat2'``: AEDAT 2.0 with DVS128 addresses (CIFAR10-DVS); option
  ``orientation='spikingjelly'`` (default) or ``'raw'``,
- ``'aedat3'``: AEDAT 3.1 (DVS128 Gesture),
- ``'aedat4'``: AEDAT 4.0 (tonic's CIFAR10-DVS copy), needs the optional
  ``aedat`` package,
- ``'nmnist'``: the N-MNIST / N-Caltech101 binary (5 bytes an event),
- ``'npz'``: SpikingJelly's event cache (arrays t, x, y, p), also HARDVS's
  released recordings,
- ``'dat'``: Prophesee / ATIS DAT (N-CARS),
- ``'mat'``: the MATLAB files of ASL-DVS, UCF101-DVS and HMDB51-DVS (variables
  ts, x, y, pol; decoded here, scipy is not needed); option
  ``orientation='tonic'`` (default), ``'spikingjelly'`` or ``'raw'``,
- ``'npy'``: one structured array with fields t, x, y, p (DVS-Lip).

Detection when ``format`` is None: by content first, a file starting with
``#!AER-DAT2.0`` / ``#!AER-DAT3.1`` / ``#!AER-DAT4.0`` is AEDAT 2.0 / 3.1 /
4.0 (another ``#!AER-DAT`` version is an error), one starting with a zip
signature (``PK\\x03\\x04`` or ``PK\\x05\\x06``) is ``npz``, with
``% Data file containing`` ``dat``, with ``MATLAB 5.0 MAT-file`` ``mat``, with
``\\x93NUMPY`` ``npy``; then by extension, ``.bin`` is ``nmnist``, ``.npz``
``npz``, ``.dat`` ``dat``, ``.mat`` ``mat`` and ``.npy`` ``npy``. Anything
else is an ``EventFileError`` that lists the supported formats.

Options: ``sensor_size=(H, W)`` overrides the format's size (events outside
it are an error); without it a size the file declares or its events reach
beyond ``MAX_SENSOR_SIDE`` (2048) a side is an error. ``allow_truncated=True``
drops a partial trailing record (AEDAT 2.0, N-MNIST, DAT) or the cut end of the
last packet (AEDAT 3.1) instead of raising, since by default a truncated file
is an error, never silently shortened.

A path that runs through a ``.zip`` file reads that archive's member
(``airplane.zip/airplane/cifar10_airplane_0.aedat``; see ``archive``), for
every format but AEDAT 4. Files are read into memory, never memory-mapped, so
a file that shrinks while it is read is at worst an ``EventFileError``; sizes
a file declares are checked against the file before anything is allocated.

``read_event_frames(path, T, split_by, ...)`` takes the same options and
returns ``integrate`` of the recording (``events_to_frames``, the events of the
time modes put in time order first). AEDAT 2.0 files take a direct path (addresses looked up as frame
pixels, no event array; ``benchmarks/data_throughput.py`` measures it), and DAT,
MAT, ``.npy`` and ``.npz`` event files another (their decoded columns counted by
``counting``, no event array; ``benchmarks/event_formats_vs_tonic.py``); the
frames are the same.

Every problem with a file's content raises ``EventFileError`` (a
``ValueError``) naming the file and what is wrong; OS errors such as a
missing file propagate unchanged; bad arguments raise ``ValueError``.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

import numpy as np

from ..frames import check_frame_options, integrate
from ._common import MAX_SENSOR_SIDE, EventFileError, EventRecording, read_bytes
from .aedat2 import ORIENTATIONS, read_aedat2, read_aedat2_frames
from .aedat3 import read_aedat3
from .aedat4 import read_aedat4
from .archive import read_member, split_archive_path
from .dat import read_dat, read_dat_frames
from .mat import ORIENTATIONS as MAT_ORIENTATIONS
from .mat import read_mat, read_mat_frames
from .nmnist import read_nmnist
from .npy import read_npy_events, read_npy_frames
from .npz import read_frames_npz, read_npz_events, read_npz_frames


class Format(NamedTuple):
    """How ``read_events`` tells a format and decodes it.

    ``decode(path, data, *, sensor_size, **options)`` turns the file's bytes into an
    ``EventRecording``; ``options`` are the ``read_events`` options the format takes
    besides ``sensor_size``. ``magics``: what its files start with (the content
    decides first), ``extensions``: what they are named (when the content does not
    tell). ``reads_path``: decoded from the file itself, not from its bytes (an AEDAT 4
    file, by the aedat package; never a zip member). ``orientations``: the values its
    ``orientation`` option takes, the default first.
    """

    decode: Callable[..., EventRecording]
    magics: tuple[bytes, ...] = ()
    extensions: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    reads_path: bool = False
    orientations: tuple[str, ...] = ()


_FORMATS = {
    "aedat2": Format(read_aedat2, (b"#!AER-DAT2.0",), options=("orientation", "allow_truncated"),
                     orientations=ORIENTATIONS),
    "aedat3": Format(read_aedat3, (b"#!AER-DAT3.1",), options=("allow_truncated",)),
    "aedat4": Format(lambda path, data, **options: read_aedat4(path, **options), (b"#!AER-DAT4.0",),
                     reads_path=True),
    "nmnist": Format(read_nmnist, extensions=(".bin",), options=("allow_truncated",)),
    "npz": Format(read_npz_events, (b"PK\x03\x04", b"PK\x05\x06"), (".npz",)),
    "dat": Format(read_dat, (b"% Data file containing",), (".dat",), options=("allow_truncated",)),
    "mat": Format(read_mat, (b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file"), (".mat",), options=("orientation",),
                  orientations=MAT_ORIENTATIONS),
    "npy": Format(read_npy_events, (b"\x93NUMPY",), (".npy",)),
}
FORMATS = tuple(_FORMATS)
# Formats whose frames are counted from the decoded columns, no event array (``counting``).
_DIRECT_FRAMES = {"dat": read_dat_frames, "mat": read_mat_frames, "npy": read_npy_frames, "npz": read_npz_frames}

_HEAD_BYTES = 64


def _supported() -> str:
    return ", ".join(FORMATS)


def detect_format_from_bytes(head: bytes, path) -> str:
    """The format of a file whose first bytes are ``head`` (see the module doc)."""
    for name, format in _FORMATS.items():
        if any(head.startswith(magic) for magic in format.magics):
            return name
    if head.startswith(b"#!AER-DAT"):
        version = head.split(b"\n", 1)[0].strip()
        raise EventFileError(
            path, f"unsupported AEDAT version {version!r}; supported: 2.0, 3.1, 4.0"
        )
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if isinstance(extension, bytes):
        extension = extension.decode("ascii", "replace")
    for name, format in _FORMATS.items():
        if extension in format.extensions:
            return name
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
    ``orientation``: AEDAT 2.0, ``'spikingjelly'`` (default) or ``'raw'``; MAT
    files, ``'tonic'`` (default), ``'spikingjelly'`` or ``'raw'``.
    ``allow_truncated``: drop a partial trailing record instead of raising
    (AEDAT 2.0, AEDAT 3.1, N-MNIST, DAT).

    Raises ``EventFileError`` (a ValueError naming the file) for any problem
    with the content, ``ValueError`` for bad arguments, ``ImportError`` for an
    AEDAT 4 file without the ``aedat`` package.
    """
    format, data, options = _open(path, format, orientation, allow_truncated)
    return _FORMATS[format].decode(path, data, sensor_size=sensor_size, **options)


def read_event_frames(path, time_steps: int, split_by: str = "number", *, format: str | None = None,
                      sensor_size=None, orientation: str | None = None,
                      allow_truncated: bool = False) -> np.ndarray:
    """A recording integrated into int32 frames ``[T, 2, H, W]`` (``integrate``).

    The options are ``read_events``'s; the frames are ``integrate(events,
    time_steps, sensor_size, split_by)`` of its events. Errors are
    ``read_events``'s and ``events_to_frames``'s.
    """
    check_frame_options(time_steps, split_by)
    format, data, options = _open(path, format, orientation, allow_truncated)
    if format == "aedat2":
        frames = read_aedat2_frames(path, data, time_steps, split_by, sensor_size=sensor_size, **options)
        if frames is not None:
            return frames
        # Declined: addresses beyond DVS128 (read_aedat2 reports the error) or a
        # sensor size below 128x128 (read_aedat2 checks every event against it).
    direct = _DIRECT_FRAMES.get(format)
    if direct is not None:
        frames = direct(path, data, time_steps, split_by, sensor_size=sensor_size, **options)
        if frames is not None:
            return frames
        # Declined (see counting): the general path gives the same frames, or the error.
    recording = _FORMATS[format].decode(path, data, sensor_size=sensor_size, **options)
    return integrate(recording.events, time_steps, recording.sensor_size, split_by)


def _open(path, format, orientation, allow_truncated) -> tuple[str, bytes | None, dict]:
    """``(format, the file's bytes, the options its decoder takes)`` after checking the options
    against the format (detected when None); no bytes for a format that reads the file itself."""
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown event file format {format!r}; supported: {_supported()}")
    oriented = {value for known in _FORMATS.values() for value in known.orientations}
    if orientation is not None and orientation not in oriented:
        raise ValueError(f"unknown orientation {orientation!r}; valid: "
                         + "; ".join(f"{name}: {', '.join(known.orientations)}"
                                     for name, known in _FORMATS.items() if known.orientations))
    member = split_archive_path(path)
    data = None
    if member is not None:
        data = read_member(*member, path)
        if format is None:
            format = detect_format_from_bytes(data[:_HEAD_BYTES], path)
    elif format is None:
        format = detect_format(path)
    takes = _FORMATS[format].options
    if orientation is not None and orientation not in _FORMATS[format].orientations:
        applies = ", ".join(name for name, known in _FORMATS.items() if known.orientations)
        if "orientation" not in takes:
            raise ValueError(f"orientation applies to the formats {applies} only, not to format {format!r}")
        raise ValueError(f"orientation {orientation!r} does not apply to format {format!r}; "
                         f"valid: {_FORMATS[format].orientations}")
    if allow_truncated and "allow_truncated" not in takes:
        truncatable = ", ".join(name for name, known in _FORMATS.items() if "allow_truncated" in known.options)
        raise ValueError(f"allow_truncated applies to {truncatable}, not to {format!r}")
    options = {key: value for key, value in (("orientation", orientation), ("allow_truncated", allow_truncated))
               if key in takes}
    if _FORMATS[format].reads_path:
        if member is not None:
            raise EventFileError(path, f"a {format} file is read from a file of its own (AEDAT 4: by the aedat "
                                       "package), not from a zip member; extract it from the zip archive first")
        return format, None, options
    return format, data if data is not None else read_bytes(path), options


__all__ = [
    "FORMATS",
    "MAT_ORIENTATIONS",
    "MAX_SENSOR_SIDE",
    "ORIENTATIONS",
    "EventFileError",
    "EventRecording",
    "detect_format",
    "read_event_frames",
    "read_events",
    "read_frames_npz",
]
