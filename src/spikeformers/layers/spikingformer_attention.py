"""Spikingformer's self-attention branch: SSA in pre-activation form, on membrane maps.

``[T, B, C, H, W]`` membrane -> neuron (the branch's input neuron, the
authors' ``proj_lif``) -> Spikformer's SSA on the ``H*W`` tokens (spiking Q,
K, V from Linear -> BN -> neuron, ``Q K^T V * scale``, the attention neuron
with its own threshold, Linear -> BN) -> ``[T, B, C, H, W]`` membrane. The
projection has no neuron after it: the branch ends in BN and the caller adds
the membrane to the stream. The dense maps are :class:`SpikingSelfAttention`'s
own (a 1x1 Conv1d + BN1d over ``[T*B, C, N]`` is the same map as Linear + BN
over the tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .attention import SpikingSelfAttention


class PreActivationSelfAttention(SpikingSelfAttention):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        scale: float = 0.125,
        attn_threshold: float = 0.5,
        qkv_bias: bool = False,
    ):
        super().__init__(dim, num_heads, neuron, scale=scale, attn_threshold=attn_threshold, qkv_bias=qkv_bias)
        self.input_neuron = neuron()
        self.proj_neuron = nn.Identity()  # the branch ends in the projection's BN: a membrane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        tokens = self.input_neuron(x).flatten(3).transpose(2, 3)  # [T, B, N, C], row-major tokens
        y = super().forward(tokens)
        return y.transpose(2, 3).reshape(T, B, C, H, W)
