"""QKFormer's token mixers on channel-last tokens ``[T, B, N, C]``.

- ``TokenQKAttention`` (Q-K token attention): Q and K are spikes of
  Linear -> BN -> neuron; Q summed over the channels of each head gives one
  integer per (head, token), which a low-threshold neuron (0.5) turns into a
  binary token mask; the masked K goes through Linear (with bias) -> BN ->
  neuron. There is no V, no scale and no softmax, and the cost is linear in N.

QKFormer's other mixer is Spikformer's SSA (``layers.attention``) with its
``batch_leak`` flag, QKFormer's quirk.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import LinearBN


class TokenQKAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, mask_threshold: float = 0.5):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = LinearBN(dim, dim, bias=False)
        self.q_neuron = neuron()
        self.k = LinearBN(dim, dim, bias=False)
        self.k_neuron = neuron()
        self.mask_neuron = neuron(v_threshold=mask_threshold)
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_neuron = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        heads = (T, B, N, self.num_heads, C // self.num_heads)  # channel c = head * d + j
        q = self.q_neuron(self.q(x)).reshape(heads)
        k = self.k_neuron(self.k(x)).reshape(heads)
        mask = self.mask_neuron(q.sum(-1, keepdim=True))  # [T, B, N, h, 1]: which tokens each head keeps
        return self.proj_neuron(self.proj((mask * k).reshape(T, B, N, C)))
