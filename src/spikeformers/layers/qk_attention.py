"""QKFormer's token mixers on channel-last tokens ``[T, B, N, C]``.

- ``TokenQKAttention`` (Q-K token attention): Q and K are spikes of
  Linear -> BN -> neuron; Q summed over the channels of each head gives one
  integer per (head, token), which a low-threshold neuron (0.5) turns into a
  binary token mask; the masked K goes through Linear (with bias) -> BN ->
  neuron. There is no V, no scale and no softmax, and the cost is linear in N.
- ``QKSelfAttention``: Spikformer's SSA with QKFormer's optional ``batch_leak``
  of the output neuron (below).

The batch leak (QKFormer issues #14 and #17): the authors' SSA hands its output
neuron the ``[T*B, C, N]`` tensor, and a multi-step neuron takes dim 0 as time,
so one membrane runs through the T*B steps t-major (``t*B + b``) and leaks
from sample to sample within a batch: an output depends on the batch size and
on the other samples. ``BatchLeakNeuron`` reproduces that.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .attention import SpikingSelfAttention
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


class BatchLeakNeuron(nn.Module):
    """Runs ``neuron`` over ``[T, B, ...]`` folded to ``[T*B, ...]``: one sequence of T*B steps (t-major)."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x.flatten(0, 1)).reshape(x.shape)


class QKSelfAttention(SpikingSelfAttention):
    """SSA (``layers.attention``) whose output neuron leaks across the batch when ``batch_leak``."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, scale: float = 0.125,
                 attn_threshold: float = 0.5, qkv_bias: bool = False, batch_leak: bool = True):
        super().__init__(dim, num_heads, neuron, scale=scale, attn_threshold=attn_threshold, qkv_bias=qkv_bias)
        self.batch_leak = bool(batch_leak)
        if self.batch_leak:
            self.proj_neuron = BatchLeakNeuron(self.proj_neuron)
