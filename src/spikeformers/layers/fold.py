"""Dense layers on sequences: the folded ``[T*B, ...]`` view, and conv / linear + batch norm on it.

Every dense operation folds the time axis into the batch, so one batch-norm
statistic per channel is shared by all time steps, as in every published
spiking transformer. :func:`over_time` applies any module that way;
:class:`ConvUnit` is the one Conv-BN unit, with a neuron and a max-pool where a
paper puts them, that the zoo's stems, convolutional MLPs and downsampling
layers are built from.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..neurons import NeuronFactory
from .pooling import MaxPool2d


def over_time(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to ``[T, B, ...]`` through the folded ``[T*B, ...]`` view."""
    T, B = x.shape[:2]
    y = module(x.flatten(0, 1))
    return y.reshape(T, B, *y.shape[1:])


class ConvUnit(nn.Module):
    """Conv2d -> BatchNorm2d on ``[T, B, C, H, W]``, with a neuron and a max-pool where ``order`` puts them.

    ``order`` names the steps in forward order; the modules are built (and
    named ``conv``, ``bn``, ``pool``, ``neuron``) in that order:

    - ``"conv bn neuron pool"``: Spikformer's SPS (the pool takes the spikes);
    - ``"conv bn pool neuron"``: QKFormer and SGLFormer (the pool takes the BN output);
    - ``"neuron pool conv bn"``, ``"neuron conv bn"``: pre-activation units, whose conv reads spikes
      (Spikingformer's stem, Meta-SpikeFormer's downsampling, the Spike-driven Transformer's RPE);
    - ``"conv bn"``: no neuron (:class:`ConvBN`).

    The pool is 3x3, stride 2, padding 1. ``padding`` defaults to
    ``kernel_size // 2``; a 1x1 kernel with stride s then samples pixel
    ``(s*i, s*j)`` (QKFormer's shortcut). The neuron sees ``[T, B, C, H, W]``.
    """

    STEPS = ("conv", "bn", "pool", "neuron")

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory | None = None,
                 order: str = "conv bn neuron", kernel_size: int = 3, stride: int = 1, padding: int | None = None,
                 groups: int = 1, bias: bool = False):
        super().__init__()
        steps = tuple(order.split())
        if (not set(steps) <= set(self.STEPS) or len(set(steps)) != len(steps) or "conv bn" not in " ".join(steps)
                or ("neuron" in steps) != (neuron is not None)):
            raise ValueError(f"order {order!r} must name conv then bn, and at most once each pool and neuron "
                             f"(neuron exactly when a neuron factory is given)")
        self.order = steps
        self.pool = self.neuron = None  # a unit without them says so
        conv_seen = False
        for step in steps:
            if step == "conv":
                self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                      padding=kernel_size // 2 if padding is None else padding, groups=groups, bias=bias)
                conv_seen = True
            elif step == "bn":
                self.bn = nn.BatchNorm2d(out_channels)
            elif step == "pool":
                self.pool = MaxPool2d(kernel_size=3, stride=2, padding=1)
            else:
                self.neuron = neuron(channels=out_channels if conv_seen else in_channels, channel_dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.order:
            # the neuron on [T, B, ...] itself, the rest folded: a neuron's output reshaped straight back and
            # forth would make torch.export guard the batch size
            x = self.neuron(x) if step == "neuron" else over_time(getattr(self, step), x)
        return x

    def extra_repr(self) -> str:
        return f"order={' '.join(self.order)!r}"


class ConvBN(ConvUnit):
    """Conv2d then BatchNorm2d on ``[T, B, C, H, W]``: a :class:`ConvUnit` without neuron or pool."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False):
        super().__init__(in_channels, out_channels, None, "conv bn", kernel_size=kernel_size, bias=bias)


class LinearBN(nn.Module):
    """Linear then BatchNorm1d on channel-last tokens ``[T, B, N, C]``.

    The same maps as the authors' 1x1 Conv1d + BatchNorm1d on ``[T*B, C, N]``
    (statistics over T, B and the tokens), without the transposes.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.linear(x.reshape(-1, x.shape[-1])))
        return y.reshape(*x.shape[:-1], y.shape[-1])
