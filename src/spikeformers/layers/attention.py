"""Spiking self-attention without softmax: Spikformer's SSA with its published variations, and
QKFormer's Q-K token attention.

SSA (Spikformer): ``Y = Q K^T V * scale`` per head, where Q, K, V are spikes
of Linear -> BN -> neuron projections of the same tokens; Y then passes the
attention neuron (its own, lower threshold: 0.5 in Spikformer) and a
Linear -> BN -> neuron projection. All products are of small integers, hence
exact in float32 in either order; the cheaper order is taken. Its published
variations are options:

- ``batch_leak`` (QKFormer's quirk, its issues #14 and #17): the authors' SSA
  hands its output neuron the ``[T*B, C, N]`` tensor, and a multi-step neuron
  takes dim 0 as time, so one membrane runs through the T*B steps t-major
  (``t*B + b``) and leaks from sample to sample: an output then depends on the
  batch size and on the other samples. QKFormer's published weights were
  trained with it.
- ``q_mixer`` (TIM): a module applied to the spike query ``[T, B, heads, N, d]``
  before the product (TIM's Temporal Interaction Module).
- ``pre_activation`` (Spikingformer): the branch takes membrane maps
  ``[T, B, C, H, W]``, fires them with its own input neuron, and ends in the
  projection's BN (no neuron), so it returns a membrane for the caller's
  residual.

The SSA takes ``[T, B, N, C]`` tokens or ``[T, B, C, H, W]`` maps (attending
over the ``H*W`` row-major positions) and returns the same layout.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .fold import LinearBN


class BatchLeakNeuron(nn.Module):
    """Runs ``neuron`` over ``[T, B, ...]`` folded to ``[T*B, ...]``: one sequence of T*B steps (t-major)."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x.flatten(0, 1)).reshape(x.shape)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Tokens ``[T, B, N, C]`` -> ``[T, B, heads, N, d]``; channel c is head ``c // d``, entry ``c % d``."""
    T, B, N, C = x.shape
    return x.reshape(T, B, N, num_heads, C // num_heads).transpose(2, 3)


class SpikingSelfAttention(nn.Module):
    """SSA and its variations (module docstring). ``attn_threshold`` is the attention neuron's own
    threshold; None gives it the factory's, like every other neuron."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        scale: float = 0.25,
        attn_threshold: float | None = 0.5,
        qkv_bias: bool = False,
        proj_bias: bool = True,
        batch_leak: bool = False,
        q_mixer: nn.Module | None = None,
        pre_activation: bool = False,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = scale
        tokens = dict(channels=dim, channel_dim=-1)  # every neuron here sees [T, B, N, C] (or [T*B, N, C])
        self.q = LinearBN(dim, dim, bias=qkv_bias)
        self.q_neuron = neuron(**tokens)
        self.k = LinearBN(dim, dim, bias=qkv_bias)
        self.k_neuron = neuron(**tokens)
        self.v = LinearBN(dim, dim, bias=qkv_bias)
        self.v_neuron = neuron(**tokens)
        own = {} if attn_threshold is None else dict(v_threshold=attn_threshold)
        self.attn_neuron = neuron(**tokens, **own)
        self.proj = LinearBN(dim, dim, bias=proj_bias)
        self.batch_leak = bool(batch_leak)
        if pre_activation:
            self.proj_neuron = nn.Identity()  # the branch ends in the projection's BN: a membrane
        else:
            self.proj_neuron = BatchLeakNeuron(neuron(**tokens)) if batch_leak else neuron(**tokens)
        # Registered after the rest, so that parameters keep the order of checkpoints written by 0.1.0
        # (an optimizer's state is matched to parameters by position).
        self.input_neuron = neuron(channels=dim, channel_dim=2) if pre_activation else None
        self.q_mixer = q_mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = x.dim() == 5
        if self.input_neuron is not None:
            if not maps:
                raise ValueError(f"a pre-activation SSA takes membrane maps [T, B, C, H, W], got shape {tuple(x.shape)}")
            x = self.input_neuron(x)
        if maps:
            T, B, C, H, W = x.shape
            x = x.flatten(3).transpose(2, 3)  # [T, B, N, C], row-major tokens
        T, B, N, C = x.shape
        q = split_heads(self.q_neuron(self.q(x)), self.num_heads)
        if self.q_mixer is not None:
            q = self.q_mixer(q)
        k = split_heads(self.k_neuron(self.k(x)), self.num_heads)
        v = split_heads(self.v_neuron(self.v(x)), self.num_heads)
        if N > C // self.num_heads:  # Q (K^T V): [d, d] in the middle instead of [N, N]
            y = q @ (k.transpose(-2, -1) @ v)
        else:
            y = (q @ k.transpose(-2, -1)) @ v
        y = (y * self.scale).transpose(2, 3).reshape(T, B, N, C)
        y = self.proj_neuron(self.proj(self.attn_neuron(y)))
        return y.transpose(2, 3).reshape(T, B, C, H, W) if maps else y


class TokenQKAttention(nn.Module):
    """QKFormer's Q-K token attention on tokens ``[T, B, N, C]``: Q and K are spikes of Linear -> BN ->
    neuron; Q summed over the channels of each head gives one integer per (token, head), which a
    low-threshold neuron (``mask_threshold``, 0.5) turns into a binary token mask; the masked K goes
    through Linear (with bias) -> BN -> neuron. There is no V, no scale and no softmax, and the cost is
    linear in N.
    """

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, mask_threshold: float = 0.5):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        tokens = dict(channels=dim, channel_dim=-1)
        self.q = LinearBN(dim, dim, bias=False)
        self.q_neuron = neuron(**tokens)
        self.k = LinearBN(dim, dim, bias=False)
        self.k_neuron = neuron(**tokens)
        # sees [T, B, N, heads, 1]: one value per token and head
        self.mask_neuron = neuron(channels=num_heads, channel_dim=3, v_threshold=mask_threshold)
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_neuron = neuron(**tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        heads = (T, B, N, self.num_heads, C // self.num_heads)  # channel c = head * d + j
        q = self.q_neuron(self.q(x)).reshape(heads)
        k = self.k_neuron(self.k(x)).reshape(heads)
        mask = self.mask_neuron(q.sum(-1, keepdim=True))  # [T, B, N, h, 1]: which tokens each head keeps
        return self.proj_neuron(self.proj((mask * k).reshape(T, B, N, C)))
