"""Loading weights into models: this library's checkpoints, safetensors files, and the
authors' checkpoints through a per-family key converter.

Nothing is loaded partially: every key is checked (missing, unexpected,
mis-shaped) before a single tensor is copied, and a mismatch raises one error
that lists them all; weights holding NaN or inf are refused, and a run's
checkpoint is verified as ``engine/checkpoint.py`` reads it (declared sizes,
checksum) before its weights are taken.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..atomic import atomic_write
from ..engine.checkpoint import FORMAT, read_torch_file, require, verify

StateDict = dict[str, torch.Tensor]
Converter = Callable[[StateDict, nn.Module], StateDict]

_CONVERTERS: dict[type, Converter] = {}

# Where training scripts usually put the weights inside a checkpoint dict.
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module", "net")
# Prefixes that DataParallel/DDP and torch.compile add to every key.
_KEY_PREFIXES = ("module.", "_orig_mod.")


class CheckpointMismatchError(ValueError):
    pass


def register_converter(model_class: type):
    """Register ``fn(official_state_dict, model) -> state_dict`` for the authors' key names."""

    def decorator(fn: Converter) -> Converter:
        _CONVERTERS[model_class] = fn
        return fn

    return decorator


def rename_state_dict(official: StateDict, rules, model: nn.Module, unused: re.Pattern | None = None) -> StateDict:
    """The authors' keys renamed to ``model``'s by ``rules`` (``(pattern, fn(match) -> key)``, first
    match wins); keys matching ``unused`` dropped; 1x1 convolution kernels ``[out, in, 1(, 1)]`` reshaped
    to Linear weights where the model holds a Linear. Unknown keys are kept, so the loader reports them."""
    own = model.state_dict()
    converted: StateDict = {}
    for key, tensor in official.items():
        if unused is not None and unused.match(key):
            continue
        new_key = next((rename(m) for pattern, rename in rules if (m := pattern.match(key))), key)
        if new_key in own and tensor.dim() > own[new_key].dim() and all(s == 1 for s in tensor.shape[2:]):
            tensor = tensor.reshape(tensor.shape[:2])
        converted[new_key] = tensor
    return converted


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
    """Load a checkpoint into ``model``: ours as is, the authors' through their family's converter."""
    state = read_state_dict(path)
    own_keys = set(model.state_dict())
    if not own_keys <= set(state):
        converter = next((fn for cls, fn in _CONVERTERS.items() if isinstance(model, cls)), None)
        if converter is not None:
            state = converter(state, model)
    check_state_dict(model, state, path)
    poisoned = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if poisoned is not None:
        raise ValueError(f"{path} holds NaN or inf in {poisoned}; nothing was loaded")
    model.load_state_dict(state, strict=True)
    return model


def check_state_dict(model: nn.Module, state: StateDict, source: str | os.PathLike = "the checkpoint") -> None:
    """Raise one :class:`CheckpointMismatchError`, one line naming ``source`` and every missing, unexpected or
    mis-shaped key (the first 20 of each)."""
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
