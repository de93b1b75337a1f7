"""Spiking Convolutional Stem (SCS, Spikformer V2): ``[T, B, C, H, W]`` frames to ``[T, B, N, D]`` tokens.

Spikformer V2 (arXiv 2401.02020) names the stem but its code is unpublished;
the structure here is the one ``shared/specs/spikformer_v2.md`` (section 6)
infers from the two published parameter counts. ``num_stages`` stages (4) of
widths D/8, D/4, D/2, D, each:

    s = neuron(BN(Conv2x2, stride 2 (s)))          # down-sampling, no bias
    y = BN(Conv3x3 (C -> e*C)) [-> neuron]          # expansion e = 4
    y = BN(Conv3x3 (e*C -> C)) [+ s]                # reduction; its output feeds the next stage

so the output grid is the input's divided by 2^num_stages (14x14 = 196 tokens
at 224x224, 8x8 = 64 at 128x128). There is no relative-position convolution.
Whether a neuron sits between the two 3x3 convolutions (``mid_neuron``) and
whether the pair has a residual (``residual``) are not known; both are
options. Every convolution is bias-free; BN statistics are shared over time
(the folded ``[T*B, ...]`` view), as everywhere in the library.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN


class SCSStage(nn.Module):
    """2x2 stride-2 Conv -> BN -> neuron, then 3x3 Conv (C -> e*C) -> BN [-> neuron] -> 3x3 Conv (e*C -> C) -> BN."""

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory, expansion: int = 4,
                 mid_neuron: bool = True, residual: bool = False):
        super().__init__()
        self.down = nn.Conv2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)
        self.down_bn = nn.BatchNorm2d(out_channels)
        self.down_neuron = neuron()
        self.expand = ConvBN(out_channels, out_channels * expansion)
        self.expand_neuron = neuron() if mid_neuron else None
        self.reduce = ConvBN(out_channels * expansion, out_channels)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.down_bn(self.down(x.flatten(0, 1)))
        s = self.down_neuron(y.reshape(T, B, *y.shape[1:]))
        y = self.expand(s)
        if self.expand_neuron is not None:
            y = self.expand_neuron(y)
        y = self.reduce(y)
        return s + y if self.residual else y

    def extra_repr(self) -> str:
        return f"residual={self.residual}"


class SpikingConvolutionalStem(nn.Module):
    """``num_stages`` :class:`SCSStage` s (widths ``widths`` or D/2^(n-1), ..., D), then tokens ``[T, B, h*w, D]``."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (224, 224),
        num_stages: int = 4,
        widths: Sequence[int] | None = None,
        expansion: int = 4,
        mid_neuron: bool = True,
        residual: bool = False,
    ):
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        if widths is None:
            if embed_dim % 2 ** (num_stages - 1):
                raise ValueError(f"embed_dim {embed_dim} must be divisible by "
                                 f"2^(num_stages-1) = {2 ** (num_stages - 1)}")
            widths = [embed_dim // 2 ** (num_stages - 1 - i) for i in range(num_stages)]
        widths = list(widths)
        if len(widths) != num_stages or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list {num_stages} stage widths ending in embed_dim {embed_dim}")
        factor = 2 ** num_stages
        img_size = (int(img_size[0]), int(img_size[1]))
        if img_size[0] % factor or img_size[1] % factor:
            # each stage halves the grid with an unpadded 2x2 stride-2 conv, which would drop a border
            raise ValueError(f"img_size {img_size[0]}x{img_size[1]} must be divisible by 2^num_stages = {factor}")
        self.img_size = img_size
        self.stages = nn.Sequential(*[
            SCSStage(c_in, c_out, neuron, expansion=expansion, mid_neuron=mid_neuron, residual=residual)
            for c_in, c_out in zip([in_channels] + widths[:-1], widths)
        ])
        self.grid_size = (img_size[0] // factor, img_size[1] // factor)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[-2:]) != self.img_size:
            H, W = self.img_size
            raise ValueError(f"{type(self).__name__} expects [T, B, C, {H}, {W}] (built for {H}x{W} input), "
                             f"got shape {tuple(x.shape)}")
        x = self.stages(x)
        # [T, B, D, h, w] -> tokens [T, B, h*w, D], row-major as Spikformer's SPS
        return x.flatten(3).transpose(2, 3)
