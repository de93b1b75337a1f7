"""SGLFormer's local parts: a spiking depthwise conv unit and the LocalBlock built from it.

``DepthwiseConvBNSpike``: depthwise 3x3 Conv (no bias) -> BN -> neuron on
``[T, B, C, H, W]``. ``LocalBlock`` is the branch ``loc`` of an SGLFormer
block; on spikes ``x`` it returns ``y + F(y)`` with ``y = x + DW(x)`` and
``F`` = Conv1x1 (D -> hidden) -> DW(hidden) -> Conv1x1 (hidden -> D), every
unit Conv -> BN -> neuron. The caller adds ``x`` once more (the block's
residual), so the block's first step is ``2x + DW(x) + F(x + DW(x))``: the
authors' code counts the input twice, and so does this.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .qk_embed import ConvBNPoolSpike


class DepthwiseConvBNSpike(nn.Module):
    def __init__(self, channels: int, neuron: NeuronFactory, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.neuron = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return self.neuron(y.reshape(T, B, *y.shape[1:]))


class LocalBlock(nn.Module):
    """``[T, B, D, H, W]`` -> ``[T, B, D, H, W]`` (residual not added by this module)."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.dw = DepthwiseConvBNSpike(dim, neuron)
        self.expand = ConvBNPoolSpike(dim, hidden, neuron, kernel_size=1)
        self.dw_hidden = DepthwiseConvBNSpike(hidden, neuron)
        self.reduce = ConvBNPoolSpike(hidden, dim, neuron, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.dw(x)
        return y + self.reduce(self.dw_hidden(self.expand(y)))
