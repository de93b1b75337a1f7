"""QKFormer's patch embeddings: convolutional stages with a spiking "deformed shortcut".

Each embedding is a chain of 3x3 Conv -> BN -> [MaxPool] -> neuron units
(the pool, when there is one, acts on the BN output *before* the neuron, unlike
Spikformer's SPS) plus a shortcut: a strided 1x1 Conv -> BN -> neuron on an
earlier tensor of the chain, whose spikes are added to the chain's output. So
the output takes values in {0, 1, 2}. Input and output are grids
``[T, B, C, H, W]``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .pooling import MaxPool2d


class ConvBNPoolSpike(nn.Module):
    """Conv (no bias) -> BN -> optional MaxPool2d(3, 2, 1) -> neuron on ``[T, B, C, H, W]``.

    A 1x1 kernel takes no padding, so with ``stride`` s it samples pixels
    ``(s*i, s*j)``: QKFormer's shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory,
                 kernel_size: int = 3, stride: int = 1, pool: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = MaxPool2d(kernel_size=3, stride=2, padding=1) if pool else None
        self.neuron = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        if self.pool is not None:
            y = self.pool(y)
        return self.neuron(y.reshape(T, B, *y.shape[1:]))


class QKPatchEmbed(nn.Module):
    """``units`` (3x3 Conv-BN-[Pool]-neuron, widths ``widths``, pools where ``pools`` is True)
    plus a 1x1 ``shortcut`` with stride ``shortcut_stride`` from the input
    (``shortcut_from=-1``) or from the output of unit ``shortcut_from``; output = last unit + shortcut.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], pools: Sequence[bool], neuron: NeuronFactory,
                 shortcut_from: int, shortcut_stride: int):
        super().__init__()
        widths, pools = list(widths), [bool(p) for p in pools]
        if len(widths) != len(pools) or not widths:
            raise ValueError(f"widths {widths} and pools {pools} must list the same (non-zero) number of units")
        if not -1 <= shortcut_from < len(widths) - 1:
            raise ValueError(f"shortcut_from {shortcut_from} must be -1 (the input) or a unit before the last")
        self.units = nn.ModuleList(
            ConvBNPoolSpike(c_in, c_out, neuron, pool=p)
            for c_in, c_out, p in zip([in_channels] + widths[:-1], widths, pools)
        )
        self.shortcut_from = shortcut_from
        shortcut_in = in_channels if shortcut_from < 0 else widths[shortcut_from]
        self.shortcut = ConvBNPoolSpike(shortcut_in, widths[-1], neuron, kernel_size=1, stride=shortcut_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = x
        for i, unit in enumerate(self.units):
            x = unit(x)
            if i == self.shortcut_from:
                feat = x
        return x + self.shortcut(feat)
