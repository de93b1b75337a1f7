"""Meta-SpikeFormer's convolutional parts (Spike-driven Transformer V2, ICLR 2024): the
downsampling layer and the conv block of its first two stages.

All take and return *membrane* maps ``[T, B, C, H, W]`` (real values): each
branch starts with a neuron and ends with a BN, and residuals add membranes
(the V2 "membrane shortcut"), as in the Spike-driven Transformer V1.

- :class:`SpikingDownsample` (the authors' ``MS_DownSampling``): neuron
  (none for the first layer, which reads the input frames) -> Conv2d with a
  bias, any kernel / stride / padding -> BN.
- :class:`SeparableConv` (``SepConv``, MobileNetV2's inverted separable
  conv): neuron -> 1x1 C -> rC -> BN -> neuron -> 7x7 depthwise -> 1x1 rC -> C
  -> BN; no BN or neuron between the depthwise and the second pointwise conv.
- :class:`MetaConvBlock` (``MS_ConvBlock``): ``x = x + SepConv(x)``, then
  ``x + BN(Conv3x3(neuron(BN(Conv3x3(neuron(x))))))`` with widths C -> mC -> C.
  No conv here has a bias.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory


def folded(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to ``[T, B, ...]`` through the folded ``[T*B, ...]`` view."""
    T, B = x.shape[:2]
    y = module(x.flatten(0, 1))
    return y.reshape(T, B, *y.shape[1:])


class SpikingDownsample(nn.Module):
    """[neuron ->] Conv2d(kernel, stride, padding, bias) -> BN, on ``[T, B, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory | None,
                 kernel_size: int = 3, stride: int = 2, padding: int = 1):
        super().__init__()
        self.neuron = neuron() if neuron is not None else None  # None: the first layer reads the frames
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=True)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.neuron is not None:
            x = self.neuron(x)
        return folded(lambda s: self.bn(self.conv(s)), x)


class SeparableConv(nn.Module):
    """SepConv branch (residual not added): membrane ``[T, B, C, H, W]`` in and out."""

    def __init__(self, dim: int, neuron: NeuronFactory, expansion: int = 2, kernel_size: int = 7):
        super().__init__()
        hidden = int(expansion * dim)
        self.neuron1 = neuron()
        self.pwconv1 = nn.Conv2d(dim, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.neuron2 = neuron()
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False)
        self.pwconv2 = nn.Conv2d(hidden, dim, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = folded(lambda s: self.bn1(self.pwconv1(s)), self.neuron1(x))
        return folded(lambda s: self.bn2(self.pwconv2(self.dwconv(s))), self.neuron2(x))


class MetaConvBlock(nn.Module):
    """MS_ConvBlock: SepConv with its residual, then a 3x3 channel MLP (C -> ratio*C -> C) with its own."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.sep = SeparableConv(dim, neuron)
        self.neuron1 = neuron()
        self.conv1 = nn.Conv2d(dim, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.neuron2 = neuron()
        self.conv2 = nn.Conv2d(hidden, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        h = folded(lambda s: self.bn1(self.conv1(s)), self.neuron1(x))
        return x + folded(lambda s: self.bn2(self.conv2(s)), self.neuron2(h))
