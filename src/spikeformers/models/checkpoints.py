"""Loading weights into models: this library's checkpoints (those of 0.1.0 included), safetensors
files, and the authors' checkpoints through their family's class-level key tables.

Nothing is loaded partially: every key is checked (missing, unexpected,
mis-shaped) before a single tensor is copied, and a mismatch raises one error
that lists them all; weights holding NaN or inf are refused, and a run's
checkpoint is verified as ``engine/checkpoint.py`` reads it (declared sizes,
checksum) before its weights are taken.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..engine.checkpoint import FORMAT, read_torch_file, require, verify
from .base import SpikingClassifier, upgrade_legacy_keys

StateDict = dict[str, torch.Tensor]

# Where training scripts usually put the weights inside a checkpoint dict.
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module", "net")
# Prefixes that DataParallel/DDP and torch.compile add to every key.
_KEY_PREFIXES = ("module.", "_orig_mod.")


class CheckpointMismatchError(ValueError):
    pass


def convert_official(official: StateDict, model: SpikingClassifier) -> StateDict:
    """The authors' keys renamed to ``model``'s by its class's ``official_renames`` (``(pattern,
    replacement)``: a template for ``re.Match.expand`` or a function of the match; first match wins),
    keys matching the model's ``official_unused`` dropped (its class's, unless the instance sets its own for its
    options), and 1x1 kernels reshaped to the model's tensor where the two
    differ only by trailing 1-sized dimensions (a Conv1d or Conv2d 1x1 kernel for a Linear weight, or back).
    What the conversion cannot carry over (the model's ``official_warnings``) is warned about. Unknown keys
    are kept, so that the loader reports them."""
    cls = type(model)
    for message in model.official_warnings(official):
        warnings.warn(message, stacklevel=4)
    unused = re.compile(model.official_unused) if model.official_unused else None
    rules = [(re.compile(pattern), rename) for pattern, rename in cls.official_renames]
    own = model.state_dict()
    converted: StateDict = {}
    for key, tensor in official.items():
        if unused is not None and unused.match(key):
            continue
        for pattern, rename in rules:
            if match := pattern.match(key):
                key = rename(match) if callable(rename) else match.expand(rename)
                break
        if key in own and tensor.shape != own[key].shape and _core(tensor.shape) == _core(own[key].shape):
            tensor = tensor.reshape(own[key].shape)
        converted[key] = tensor
    return converted


def _core(shape: torch.Size) -> tuple[int, ...]:
    """A shape without its trailing 1-sized dimensions past the first two (a 1x1 kernel's)."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def upgrade_state_dict(model: nn.Module, state: StateDict) -> StateDict:
    """``state`` with the keys of checkpoints written by spikeformers 0.1.0 renamed to today's layout."""
    state = dict(state)
    upgrade_legacy_keys(model, state)
    return state


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """The tensors of a checkpoint file, unwrapped from the usual containers and prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:
            raise ValueError(f"{path} is not a readable safetensors file: {err}") from None
    state = read_torch_file(path)
    if isinstance(state, dict) and state.get("format") == FORMAT:  # a run's checkpoint: verified whole
        verify(state, path)
        require(state, path, "model")
    while isinstance(state, dict) and not _is_state_dict(state):
        inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            raise ValueError(f"{path} holds no state_dict (top-level keys: {sorted(map(str, state))[:10]})")
        state = inner
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state_dict")
    return {_strip_prefixes(k): v for k, v in state.items()}


def _is_state_dict(state: dict) -> bool:
    return bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def _strip_prefixes(key: str) -> str:
    for prefix in _KEY_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a checkpoint into ``model``: ours as is (0.1.0's upgraded), the authors' through their family's
    key tables."""
    state = upgrade_state_dict(model, read_state_dict(path))
    if not set(model.state_dict()) <= set(state) and isinstance(model, SpikingClassifier):
        state = convert_official(state, model)
    check_state_dict(model, state, path)
    poisoned = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if poisoned is not None:
        raise ValueError(f"{path} holds NaN or inf in {poisoned}; nothing was loaded")
    model.load_state_dict(state, strict=True)
    return model


def check_state_dict(model: nn.Module, state: StateDict, source: str | os.PathLike = "the checkpoint") -> None:
    """Raise one :class:`CheckpointMismatchError`, one line naming ``source`` and every missing, unexpected or
    mis-shaped key (the first 20 of each). Keys of 0.1.0's layout count as today's (``load_state_dict``
    renames them too)."""
    state = upgrade_state_dict(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or misshaped:
        parts = [f"{len(keys)} {title}: " + ", ".join(keys[:20]) + (" ..." if len(keys) > 20 else "")
                 for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
                 if keys]
        raise CheckpointMismatchError(f"{source} does not fit {type(model).__name__}; nothing was loaded: "
                                      + "; ".join(parts))


def save_safetensors(model: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write the model's tensors as safetensors, atomically (temporary file, then rename)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    data = save(tensors, metadata=metadata)
    atomic_write(path, lambda f: f.write(data))
