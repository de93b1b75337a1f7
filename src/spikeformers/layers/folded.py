"""Dense layers on sequences: conv / linear + batch norm over the folded ``[T*B, ...]`` view.

The time axis is folded into the batch for every dense operation, so one
batch-norm statistic per channel is shared by all time steps, as in every
published spiking transformer.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Module):
    """Conv2d then BatchNorm2d on ``[T, B, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return y.reshape(T, B, *y.shape[1:])


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
