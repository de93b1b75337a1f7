"""Spiking Self-Attention (SSA, Spikformer): attention on binary Q, K, V, without softmax.

``Y = Q K^T V * scale`` per head, where Q, K, V are spikes of Linear -> BN ->
neuron projections of the same tokens; Y then passes the attention neuron
(its own, lower threshold: 0.5 in Spikformer) and a Linear -> BN -> neuron
projection. All products are of small integers, hence exact in float32 in
either order; the cheaper order is taken.

``batch_leak`` reproduces QKFormer's quirk (its issues #14 and #17): the
authors' SSA hands its output neuron the ``[T*B, C, N]`` tensor, and a
multi-step neuron takes dim 0 as time, so one membrane runs through the T*B
steps t-major (``t*B + b``) and leaks from sample to sample: an output then
depends on the batch size and on the other samples. QKFormer's published
weights were trained with it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import LinearBN


class BatchLeakNeuron(nn.Module):
    """Runs ``neuron`` over ``[T, B, ...]`` folded to ``[T*B, ...]``: one sequence of T*B steps (t-major)."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x.flatten(0, 1)).reshape(x.shape)


class SpikingSelfAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        scale: float = 0.25,
        attn_threshold: float = 0.5,
        qkv_bias: bool = False,
        batch_leak: bool = False,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = scale
        self.q = LinearBN(dim, dim, bias=qkv_bias)
        self.q_neuron = neuron()
        self.k = LinearBN(dim, dim, bias=qkv_bias)
        self.k_neuron = neuron()
        self.v = LinearBN(dim, dim, bias=qkv_bias)
        self.v_neuron = neuron()
        self.attn_neuron = neuron(v_threshold=attn_threshold)
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_neuron = neuron()
        self.batch_leak = bool(batch_leak)
        if self.batch_leak:
            self.proj_neuron = BatchLeakNeuron(self.proj_neuron)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        return x.reshape(T, B, N, self.num_heads, C // self.num_heads).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        q = self.split_heads(self.q_neuron(self.q(x)))
        k = self.split_heads(self.k_neuron(self.k(x)))
        v = self.split_heads(self.v_neuron(self.v(x)))
        head_dim = C // self.num_heads
        if N > head_dim:  # Q (K^T V): [d, d] in the middle instead of [N, N]
            y = q @ (k.transpose(-2, -1) @ v)
        else:
            y = (q @ k.transpose(-2, -1)) @ v
        y = (y * self.scale).transpose(2, 3).reshape(T, B, N, C)
        return self.proj_neuron(self.proj(self.attn_neuron(y)))
