"""Checkpoints: written atomically, read without executing pickled code.

A checkpoint is a plain dict of tensors and primitive values. It is written
to a temporary file in the same folder, flushed and fsynced, then renamed
over the target, so a crash leaves either the old file or the new one,
never half of one. Reading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "spikeformers-checkpoint"
VERSION = 1


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(file)`` on a temporary file, then atomically move it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint (or holds more than tensors and plain values): {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a spikeformers checkpoint (no 'format: {FORMAT}' entry); "
            "an authors' checkpoint must be converted first"
        )
    if state.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer spikeformers (format version {state['version']})")
    return state
