"""SGLFormer's head (the authors' "spatio-temporal block"): a per-channel weighted sum over
tokens and time steps, then BN and a Linear layer; no neuron and no averaging.

``[T, B, C, H, W]`` -> ``[B, C, H*W, T]`` -> depthwise Conv2d with a full-size
kernel ``(H*W, T)`` and a bias (one weight per channel, token and step) ->
``[B, C]`` -> BatchNorm -> Linear. The kernel fixes the number of tokens and
of time steps the head accepts. Its BatchNorm sees one value per channel and
sample, so training needs batches of at least 2 (a batch of 1 has no
statistics; the authors train with 16 and drop_last): a clear error, rather
than PyTorch's, says so.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatioTemporalHead(nn.Module):
    def __init__(self, dim: int, num_tokens: int, time_steps: int, num_classes: int):
        super().__init__()
        self.num_tokens, self.time_steps = num_tokens, time_steps
        self.conv = nn.Conv2d(dim, dim, (num_tokens, time_steps), groups=dim, bias=True)  # PyTorch's init
        self.bn = nn.BatchNorm2d(dim)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)  # timm's init, as the authors' _init_weights
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        if (H * W, T) != (self.num_tokens, self.time_steps):
            raise ValueError(f"{type(self).__name__} takes {self.num_tokens} tokens x {self.time_steps} time steps "
                             f"(its kernel), got {H * W} x {T}")
        if self.training and B < 2:
            raise ValueError(f"{type(self).__name__}: training needs a batch of at least 2 (its BatchNorm normalises "
                             f"one value per channel and sample over the batch), got B={B}; use eval() for B=1")
        y = self.conv(x.flatten(3).permute(1, 2, 3, 0))  # [B, C, N, T] -> [B, C, 1, 1]
        return self.fc(self.bn(y).flatten(1))
