"""Checkpoints: written atomically, read without executing pickled code, verified before use.

A checkpoint is a plain dict of tensors and primitive values. It is written
to a temporary file in the same folder, flushed and fsynced, then renamed
over the target, so a crash leaves either the old file or the new one,
never half of one; a full disk is reported as such, naming the file.

Reading trusts nothing in the file: the zip archive's declared sizes are
checked against the file's own size before anything is unpacked, the load
is ``torch.load(weights_only=True)``, the sha256 ``checksum`` stored at save
time (format version 2) must match every value, and weights must be finite.
Files of format version 1 (spikeformers 0.1.0) have no checksum and load
without that one check.
"""

from __future__ import annotations

import hashlib
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from ..atomic import atomic_write

FORMAT = "spikeformers-checkpoint"
VERSION = 2  # 2: a sha256 checksum of the contents; 1 (0.1.0): none

# torch.save stores every member of its zip archive uncompressed, so a genuine file declares fewer
# bytes than it occupies; a few times the file's size leaves room for one re-zipped by another tool
# and none for a "zip bomb" of deflated zeros that would be inflated in memory before any check.
DECLARED_SIZE_FACTOR = 4
DECLARED_SIZE_SLACK = 1 << 20


def _leaves(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every tensor and plain value in a nested dict / list, with its path, in a fixed order."""
    if isinstance(value, dict):
        for key in sorted(value, key=repr):  # keys of mixed types (the optimiser's ints) sort by repr
            yield from _leaves(value[key], f"{where}/{key!r}")
    elif isinstance(value, (list, tuple)):
        yield f"{where}:{type(value).__name__}[{len(value)}]", None
        for i, item in enumerate(value):
            yield from _leaves(item, f"{where}[{i}]")
    else:
        yield where, value


def checksum(state: dict[str, Any]) -> str:
    """sha256 over every value of ``state`` but its ``checksum`` entry: tensors by dtype, shape and bytes."""
    digest = hashlib.sha256()
    for where, value in _leaves({k: v for k, v in state.items() if k != "checksum"}):
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{where}={tensor.dtype}{tuple(value.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy())
        else:
            digest.update(f"{where}={type(value).__name__}:{value!r}\n".encode())
    return digest.hexdigest()


def _weight_tensors(state: dict[str, Any]) -> Iterator[tuple[str, torch.Tensor]]:
    """The floating-point tensors of the model, the weight average and the optimiser's state."""
    for part in ("model", "ema", "optimizer"):
        for where, value in _leaves(state.get(part)):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                yield f"{part}{where}", value


def non_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether any of ``tensors`` holds NaN or inf, in one fused pass and one synchronisation (the largest
    magnitude, unlike a sum of squares, cannot overflow from finite values)."""
    if not tensors:
        return False
    largest = torch.stack([norm.float() for norm in torch._foreach_norm(tensors, math.inf)]).max()
    return not torch.isfinite(largest).item()


def first_non_finite(state: dict[str, Any]) -> str | None:
    """The first weight (model, weight average, optimiser state) holding NaN or inf, or None."""
    weights = list(_weight_tensors(state))
    if not non_finite([tensor for _, tensor in weights]):
        return None
    return next(where for where, tensor in weights if not torch.isfinite(tensor).all())


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (with the format, version and checksum) atomically; non-finite weights are refused."""
    poisoned = first_non_finite(state)
    if poisoned is not None:
        raise ValueError(f"Refusing to write {path}: {poisoned} holds NaN or inf")
    state = {"format": FORMAT, "version": VERSION, **state}
    state["checksum"] = checksum(state)
    atomic_write(path, lambda f: torch.save(state, f))


def check_declared_sizes(path: Path) -> None:
    """Refuse a zip archive whose members declare far more bytes than the file holds, before unpacking."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):  # not a readable zip: torch.load says what it is
        return
    bound = DECLARED_SIZE_FACTOR * size + DECLARED_SIZE_SLACK
    if declared > bound:
        raise ValueError(f"{path} declares {declared:,} bytes of contents in a {size:,}-byte file; "
                         "refusing to unpack it (torch.save never compresses)")


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` of a file, safely: declared sizes checked first, never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    check_declared_sizes(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint ({_load_failure(err)}); "
                         "nothing in it was run") from None


def _load_failure(err: Exception) -> str:
    """torch.load's reason in a few words, without its advice to retry with ``weights_only=False``,
    which would run whatever code the file holds."""
    text = str(err)
    refused = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please|\n|$)", text, re.S)
    if refused:
        return f"it holds more than tensors and plain values: {refused.group(1).strip()}"
    return text.strip().split("\n")[0].split(". ")[0][:300]


def verify(state: Any, path: str | Path) -> dict[str, Any]:
    """Check what ``torch.load`` returned is a spikeformers checkpoint, intact and finite."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a spikeformers checkpoint (no 'format: {FORMAT}' entry); "
            "an authors' checkpoint must be converted first"
        )
    version = state.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{path} was written by a newer spikeformers (format version {version})")
    if version >= 2:
        stored = state.get("checksum")
        if not isinstance(stored, str):
            raise ValueError(f"{path} has no checksum (format version {version} stores one): it was altered")
        if checksum(state) != stored:
            raise ValueError(f"{path} is damaged: its contents do not match the checksum stored when it was "
                             "written (flipped bits or an edit)")
    poisoned = first_non_finite(state)
    if poisoned is not None:
        raise ValueError(f"{path} holds NaN or inf in {poisoned}: a diverged state, not usable")
    return state


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (or 0.1.0), verified; ValueError naming ``path`` if not."""
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable checkpoint: not the zip archive torch.save writes")
    return verify(read_torch_file(path, map_location), path)


def run_checkpoint(path: str | Path) -> Path:
    """``path`` when it is a file; for a run folder, the checkpoint to use from it: ``best.pt`` (the best
    epoch's weights), or ``last.pt`` when the run has none yet (it stopped inside its first epoch)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path} is a folder without best.pt or last.pt: not a run folder of spikeformers train")


def require(state: dict[str, Any], path: str | Path, *keys: str) -> None:
    """One line naming the file and every entry it lacks (a checkpoint cut down or written by hand)."""
    missing = [key for key in keys if state.get(key) is None]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(repr(k) for k in missing)}: not a complete training "
                         "checkpoint")
    for key in keys:
        if key in ("model", "ema", "optimizer", "run", "model_overrides", "config") and not isinstance(state[key], dict):
            raise ValueError(f"{path}: its {key!r} entry is a {type(state[key]).__name__}, not a mapping")
