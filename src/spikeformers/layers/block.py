"""The encoder block: token mixer and MLP, each with a residual connection.

Spikformer adds the branches' spikes to the stream (``x + f(x)``), so the
stream carries small non-negative integers, not binary spikes; there is no
normalisation and no drop-path in the authors' forward pass.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """``x = x + attn(x); x = x + mlp(x)`` for any two ``[T, B, N, C]`` branches."""

    def __init__(self, attn: nn.Module, mlp: nn.Module):
        super().__init__()
        self.attn = attn
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)
