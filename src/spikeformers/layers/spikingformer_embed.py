"""Spikingformer's tokenizer: a pre-activation convolutional stem that gives membrane maps.

``[T, B, C, H, W]`` frames -> ``[T, B, D, h, w]`` membrane potentials (BN
outputs, not spikes). The first stage is 3x3 Conv -> BN on the frames; each
later stage is neuron -> 3x3 max-pool (stride 2) on the spikes -> 3x3 Conv ->
BN, so every convolution reads spikes except the first, and the stem ends in
a BN like every branch of a Spikingformer block ("spike-driven residual"
design: the stream between blocks carries membranes). No relative position
embedding and no shortcut.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN
from .patch_embed import pooled_size
from .pooling import MaxPool2d


class SpikePoolConvBN(nn.Module):
    """neuron -> MaxPool2d(3, 2, 1) on the spikes -> 3x3 Conv (no bias) -> BN on ``[T, B, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory):
        super().__init__()
        self.neuron = neuron()
        self.pool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.conv_bn = ConvBN(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        s = self.pool(self.neuron(x).flatten(0, 1))
        return self.conv_bn(s.reshape(T, B, *s.shape[1:]))


class PreActivationTokenizer(nn.Module):
    """Conv-BN on the frames, then one :class:`SpikePoolConvBN` per later width.

    ``widths`` default to (D/8, D/4, D/2, D, D): the authors' 32, 64, 128,
    256, 256 for D = 256; the grid shrinks by a factor 2 per later stage.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (128, 128),
        widths: Sequence[int] | None = None,
    ):
        super().__init__()
        if widths is None:
            if embed_dim % 8:
                raise ValueError(f"embed_dim {embed_dim} must be divisible by 8 (tokenizer widths D/8, D/4, D/2, D, D)")
            widths = [embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim, embed_dim]
        widths = list(widths)
        if len(widths) < 2 or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list at least 2 stage widths, ending in embed_dim {embed_dim}")
        self.first = ConvBN(in_channels, widths[0])
        self.stages = nn.Sequential(*[SpikePoolConvBN(c_in, c_out, neuron)
                                      for c_in, c_out in zip(widths[:-1], widths[1:])])
        self.grid_size = tuple(pooled_size(s, len(widths) - 1) for s in img_size)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.first(x))
