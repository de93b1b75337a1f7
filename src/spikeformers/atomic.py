"""Files written atomically, and a full disk that says which file it stopped.

``atomic_write(path, write)`` writes through a temporary file beside ``path``
(``.<name>.<random>.tmp``) and renames it with ``os.replace``, so a reader
sees the old file or the whole new one, never a part; on any failure the
temporary file is removed. A full disk (or quota) becomes a ``DiskFullError``
whose message is "no space left on device while writing PATH".
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import BinaryIO, Callable

_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


class DiskFullError(OSError):
    """No space (or quota) left while writing ``filename``; ``str()`` is the one-line message.

    Built as ``DiskFullError(errno, message, filename)``, so it pickles like any ``OSError``
    (a process pool sends it back to its parent)."""

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full(error: OSError, path: str | os.PathLike) -> OSError:
    """``error`` as a ``DiskFullError`` naming ``path`` when the disk or quota is full, else ``error``."""
    if isinstance(error, DiskFullError) or error.errno not in _FULL:
        return error
    return DiskFullError(error.errno, f"{_FULL[error.errno]} while writing {os.fspath(path)}", os.fspath(path))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it, and rename it to ``path``
    (making the folder if needed)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    temporary = None
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data on disk before the name: a crash leaves no empty final file
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        full = disk_full(error, path)
        if full is error:
            raise
        raise full from error
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
