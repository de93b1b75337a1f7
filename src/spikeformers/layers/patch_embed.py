"""Spiking Patch Splitting (SPS, Spikformer): a convolutional stem that turns
``[T, B, C, H, W]`` frames into ``[T, B, N, D]`` spike tokens.

``num_stages`` stages of 3x3 Conv -> BN -> neuron with widths D/2^(n-1), ...,
D/2, D (or the explicit ``widths``), a 3x3 max-pool (stride 2) after the
stages listed in ``pool_stages``, then the relative position embedding (RPE): one more
Conv -> BN -> neuron whose spikes are added to its own input, so tokens take
values in {0, 1, 2}.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN
from .pooling import MaxPool2d


class ConvBNSpike(nn.Module):
    """3x3 Conv -> BN -> neuron, optionally followed by a 3x3 stride-2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory, pool: bool = False):
        super().__init__()
        self.conv_bn = ConvBN(in_channels, out_channels)
        self.neuron = neuron()
        self.pool = MaxPool2d(kernel_size=3, stride=2, padding=1) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.neuron(self.conv_bn(x))
        if self.pool is not None:
            T, B = x.shape[:2]
            x = self.pool(x.flatten(0, 1))
            x = x.reshape(T, B, *x.shape[1:])
        return x


def pooled_size(size: int, times: int) -> int:
    """Side length after ``times`` MaxPool2d(3, stride 2, padding 1)."""
    for _ in range(times):
        size = (size - 1) // 2 + 1
    return size


class SpikingPatchSplitting(nn.Module):
    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (128, 128),
        num_stages: int = 4,
        pool_stages: Sequence[int] = (0, 1, 2, 3),
        rpe: bool = True,
        widths: Sequence[int] | None = None,
    ):
        super().__init__()
        if widths is None:
            if embed_dim % 2 ** (num_stages - 1):
                raise ValueError(f"embed_dim {embed_dim} must be divisible by 2^(num_stages-1) = {2 ** (num_stages - 1)}")
            widths = [embed_dim // 2 ** (num_stages - 1 - i) for i in range(num_stages)]
        widths = list(widths)
        if len(widths) != num_stages or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list {num_stages} stage widths ending in embed_dim {embed_dim}")
        if any(not 0 <= i < num_stages for i in pool_stages):
            raise ValueError(f"pool_stages {tuple(pool_stages)} must lie in 0..{num_stages - 1}")
        self.stages = nn.Sequential(*[
            ConvBNSpike(c_in, c_out, neuron, pool=i in pool_stages)
            for i, (c_in, c_out) in enumerate(zip([in_channels] + widths[:-1], widths))
        ])
        self.rpe = nn.Sequential(ConvBN(embed_dim, embed_dim), neuron()) if rpe else None
        self.grid_size = tuple(pooled_size(s, len(pool_stages)) for s in img_size)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)
        if self.rpe is not None:
            x = x + self.rpe(x)
        # [T, B, D, h, w] -> tokens [T, B, h*w, D], row-major like the authors' flatten
        return x.flatten(3).transpose(2, 3)
