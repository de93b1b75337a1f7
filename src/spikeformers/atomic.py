"""Files written atomically, and a write that fails names the file it stopped.

``atomic_write(path, write)`` writes through a temporary file beside ``path``
(``.<name>.<random>.tmp``), syncs it, renames it with ``os.replace`` and syncs
the folder, so a reader sees the old file or the whole new one, never a part;
on any failure the temporary file is removed and the old file stays. Every
writer of the library goes through it: checkpoints, run records, plots,
frame caches, converted weights.

A failed write raises an ``OSError`` whose message names the file: a full
disk (or quota) is a ``DiskFullError``, "no space left on device while
writing PATH".
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


class DiskFullError(OSError):
    """No space (or quota) left while writing ``filename``; ``str()`` is the one-line message.

    Built as ``DiskFullError(errno, message, filename)``, so it pickles like any ``OSError``
    (a process pool sends it back to its parent)."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_error(error: OSError, path: str | os.PathLike, note: str = "") -> OSError:
    """``error`` as one line naming ``path``: a ``DiskFullError`` for a full disk or quota, else an
    ``OSError`` "REASON while writing PATH" with the same errno."""
    if isinstance(error, DiskFullError):
        return error
    path = os.fspath(path)
    if error.errno in _FULL:
        return DiskFullError(error.errno, f"{_FULL[error.errno]} while writing {path}{note}", path)
    reason = (error.strerror or str(error)).lower()
    return OSError(error.errno, f"{reason} while writing {path}{note}", path)


class _RecordingFile:
    """A file that remembers the first OSError its writes raised: ``torch.save`` hides that error behind
    an opaque ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``."""

    def __init__(self, file: BinaryIO):
        self.file = file
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name):  # everything else (flush, tell, seek, ...) as the file itself
        return getattr(self.file, name)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it, and rename it to ``path``
    (making the folder if needed)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    temporary, recording = None, None
    existed = os.path.exists(path)
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            recording = _RecordingFile(file)
            write(recording)
            file.flush()
            os.fsync(file.fileno())  # the data on disk before the name: a crash leaves no empty final file
        os.replace(temporary, path)
        temporary = None
    except BaseException as error:
        cause = recording.error if recording is not None and recording.error is not None else error
        if isinstance(cause, OSError):
            raise write_error(cause, path, " (its previous version is intact)" if existed else "") from None
        raise
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
    folder = os.open(directory, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def remove_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that writes killed midway left in ``folder``; return them."""
    removed = []
    for leftover in Path(folder).glob(".*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed
