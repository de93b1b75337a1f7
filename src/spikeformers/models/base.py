"""What every classifier in the zoo shares: the input contract, the arguments every family takes, the
neuron factory built from them, and the class-level tables a family fills in.

A family class lists only its own arguments and passes the rest on
(``**common``); ``inspect.signature(Family)`` shows both, and
``create_model`` checks overrides against it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, ClassVar, MutableMapping, Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory, neuron_factory

# A rename rule of a class-level table: (regex on a key, replacement template or function of the match).
Rename = tuple[str, Any]


def to_pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def constructor_signature(cls: type) -> inspect.Signature:
    """``cls``'s constructor arguments, with those its ``**kwargs`` pass on to its bases, all as keywords."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        own = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]  # less self
        for p in own:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                params.setdefault(p.name, p.replace(kind=p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in own) or klass is SpikingClassifier:
            break
    return inspect.Signature(list(params.values()))


class _ConstructorSignature:
    """``Family.__signature__``: what ``inspect.signature`` shows for the class (an instance keeps its own)."""

    def __get__(self, instance: Any, owner: type) -> inspect.Signature | None:
        return None if instance is not None else constructor_signature(owner)


def upgrade_legacy_keys(model: nn.Module, state: MutableMapping[str, Any], prefix: str = "") -> None:
    """Rename in place the keys of checkpoints written by spikeformers 0.1.0 whose module layout has
    changed since: each module of ``model`` whose class has a ``legacy_renames`` table (rules on the keys
    below the module) says how. A key whose new name is already present is left for the loader to report."""
    for name, module in model.named_modules(prefix=prefix.rstrip(".")):
        rules = getattr(type(module), "legacy_renames", ())
        if not rules:
            continue
        below = f"{name}." if name else ""
        for key in [k for k in state if k.startswith(below)]:
            for pattern, replacement in rules:
                renamed, found = re.subn(pattern, replacement, key[len(below):], count=1)
                if found:
                    if below + renamed not in state:
                        state[below + renamed] = state.pop(key)
                    break


class SpikingClassifier(nn.Module):
    """Base of the zoo's models: ``[T, B, C, H, W]`` (or static ``[B, C, H, W]``) to logits ``[B, classes]``.

    The arguments every family takes (by keyword):

    - ``img_size`` (an int or ``(H, W)``), ``in_channels``, ``num_classes``,
      ``time_steps``: the input the model is built for. A model runs exactly
      its ``time_steps``; one whose weights are shaped by T names why in
      ``weights_tied_to_time_steps``.
    - ``neuron`` (a registered name or a neuron class) and ``neuron_kwargs``:
      the neuron every part builds, on top of the family's ``neuron_defaults``.
      Which neurons keep their own thresholds: docs/models.md, "Neuron settings".

    A family builds its parts from ``self.neuron_factory`` and implements
    ``forward_features`` (for an already checked input) and ``head``. Its
    class-level tables: ``neuron_defaults`` (the settings its authors' neurons
    have, under the user's), ``official_renames`` and ``official_unused`` (the
    authors' checkpoint keys, read by ``models/checkpoints.py``) and
    ``legacy_renames`` (keys of 0.1.0 checkpoints renamed since).
    """

    __signature__ = _ConstructorSignature()
    weights_tied_to_time_steps: ClassVar[str | None] = None
    neuron_defaults: ClassVar[dict[str, Any]] = {}
    official_renames: ClassVar[Sequence[Rename]] = ()
    official_unused: ClassVar[str | None] = None
    legacy_renames: ClassVar[Sequence[Rename]] = ()

    def __init__(
        self,
        img_size: int | Sequence[int] = 128,
        in_channels: int = 2,
        num_classes: int = 10,
        time_steps: int = 16,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.img_size = to_pair(img_size)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.time_steps = time_steps
        self.neuron_factory: NeuronFactory = neuron_factory(neuron, **{**self.neuron_defaults, **(neuron_kwargs or {})})

    def official_warnings(self, official: dict[str, torch.Tensor]) -> list[str]:
        """What an authors' checkpoint holds that its conversion cannot carry over (one sentence each)."""
        return []

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        upgrade_legacy_keys(self, state_dict, prefix)  # before any part reads its keys
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Accept ``[T, B, C, H, W]`` sequences of the model's own T, or ``[B, C, H, W]`` images repeated over T
        (direct encoding). Any other T is refused: a ``[B, T, ...]`` batch (a plain ``DataLoader``'s) has the
        same rank, and with ``B == T`` no shape check could tell the two apart."""
        C, (H, W) = self.in_channels, self.img_size
        if x.dim() == 4 and tuple(x.shape[1:]) == (C, H, W):
            return x.unsqueeze(0).expand(self.time_steps, *x.shape)
        if x.dim() != 5 or tuple(x.shape[2:]) != (C, H, W):
            raise ValueError(
                f"{type(self).__name__} expects input [T, B, C, H, W] with C={C}, H={H}, W={W} "
                f"(time first; or static images [B, {C}, {H}, {W}]), got shape {tuple(x.shape)}"
            )
        if x.shape[0] != self.time_steps:
            T = x.shape[0]
            how = (f"its weights are tied to T ({self.weights_tied_to_time_steps}), so it runs only "
                   f"T={self.time_steps}" if self.weights_tied_to_time_steps else
                   f"its weights do not depend on T, so to run {T} steps build it with time_steps={T} "
                   f"and load the same weights")
            raise ValueError(
                f"{type(self).__name__} was built for T={self.time_steps} but got T={T} in [T, B, C, H, W] = "
                f"{tuple(x.shape)}. A DataLoader over a data set yields [B, T, ...]: use "
                f"spikeformers.data.time_major_loader (or batch.transpose(0, 1)). Otherwise {how}."
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(self.check_input(x)))
