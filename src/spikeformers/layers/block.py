"""The encoder block: token mixer and MLP, each with a residual connection.

The residual style is set by the branches, not by the block: Spikformer's
branches end in a neuron, so their spikes are added to the stream (which
then carries small non-negative integers); the Spike-driven Transformer's
start with a neuron and end in batch norm, so membrane potentials are added
(its "membrane shortcut"). Neither uses normalisation or drop-path around
the branches. The block works on any layout its branches take (``[T, B, N, C]``
tokens or ``[T, B, C, H, W]`` maps).
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """``x = x + attn(x); x = x + mlp(x)`` for any two shape-preserving branches."""

    def __init__(self, attn: nn.Module, mlp: nn.Module):
        super().__init__()
        self.attn = attn
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)
