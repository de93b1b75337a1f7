"""SGLFormer's block: local convolution, then local and global spiking self-attention.

On spikes ``x`` ``[T, B, D, H, W]``: ``x = x + LocalBlock(x)``, then
``x = x + LocalSSA(x); x = x + MLP(x)`` (attention within interleaved
sub-lattices, ``local_partition``), then ``num_global`` times
``x = x + GlobalSSA(x); x = x + MLP(x)``. Every branch ends in a neuron, so
spikes are added to the running sum (SEW residuals) and the stream carries
small non-negative integers.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .block import Block
from .sgl_attention import SGLSelfAttention
from .sgl_local import LocalBlock
from .sgl_mlp import SpikingConvMLP


class SGLBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        mlp_ratio: float = 4.0,
        local_partition: int = 2,
        num_global: int = 2,
        attn_scale: float = 0.125,
        attn_threshold: float = 0.5,
    ):
        super().__init__()
        self.local = LocalBlock(dim, neuron, mlp_ratio)
        self.mixers = nn.Sequential(*[
            Block(
                SGLSelfAttention(dim, num_heads, neuron, partition=local_partition if i == 0 else 1,
                                 scale=attn_scale, attn_threshold=attn_threshold),
                SpikingConvMLP(dim, neuron, mlp_ratio),
            )
            for i in range(1 + num_global)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixers(x + self.local(x))
