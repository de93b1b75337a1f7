"""Spike-driven self-attention (SDSA, Spike-driven Transformer V1, NeurIPS 2023).

On a membrane map ``x`` ``[T, B, C, H, W]``: spikes ``s = neuron(x)``; then
``q, k, v = neuron(BN(Conv1x1(s)))`` (no bias); ``kv = sum over tokens of
k*v`` per channel; ``kv = neuron(kv)`` with its own threshold (0.5, the
authors' ``talking_heads_lif``); the output is ``BN(Conv1x1(q * kv))`` (with
bias), a membrane value for the caller's residual. No matrix product and no
scale: ``q * kv`` masks q's channels, so heads matter only to the erode.

The erode (authors' ``dvs_mode``) is a 3x3 max-pool, stride 1, on spikes:

- ``'authors'``: exactly the authors' code. k and v are eroded spatially
  (3x3 over H, W per channel); ``k*v`` and ``q*kv`` are eroded in the
  ``[T, B, heads, N, d]`` layout, so the 3x3 window spans neighbours in the
  *flattened* token order (token (r, w-1) touches (r+1, 0); vertical
  neighbours do not touch) and neighbouring channels within one head. The
  published CIFAR10-DVS results were trained with this.
- ``'spatial'``: all four erodes 3x3 over (H, W) per channel, what the
  operation's name suggests. Not the authors' computation.
- ``None``: no erode (the authors' static-image models).

With the 'authors' erode every nonzero kv sum is at least 2 (the window
spans tokens n-1..n+1), so any ``kv_threshold`` in (0, 1] gives the same
output; without erode (static images) 0.5 differs from 1.

The authors' unused ``attn_lif``, ``talking_heads`` Conv1d and ``scale``
are not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN

ERODE_MODES = (None, "authors", "spatial")


def erode_map(x: torch.Tensor) -> torch.Tensor:
    """3x3 max over (H, W), stride 1, for every ``[T, B, C]`` of a ``[T, B, C, H, W]`` map."""
    return F.max_pool2d(x.flatten(0, 2).unsqueeze(1), 3, 1, 1).reshape(x.shape)


def erode_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The authors' erode of ``[T, B, C, H, W]`` seen as ``[T, B, heads, N, d]``: 3x3 max over (n, j)."""
    T, B, C, H, W = x.shape
    heads = x.reshape(T, B, num_heads, C // num_heads, H * W).transpose(-1, -2)  # [T,B,h,N,d], c = head*d + j
    heads = F.max_pool2d(heads.reshape(-1, 1, H * W, C // num_heads), 3, 1, 1)
    return heads.reshape(T, B, num_heads, H * W, C // num_heads).transpose(-1, -2).reshape(x.shape)


class SpikeDrivenSelfAttention(nn.Module):
    """SDSA branch ``[T, B, C, H, W]`` membrane -> ``[T, B, C, H, W]`` membrane (residual not added)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        kv_threshold: float = 0.5,
        erode: str | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if erode not in ERODE_MODES:
            raise ValueError(f"erode must be one of {ERODE_MODES}, got {erode!r}")
        self.num_heads = num_heads
        self.erode = erode
        self.input_neuron = neuron()
        self.q = ConvBN(dim, dim, kernel_size=1)
        self.q_neuron = neuron()
        self.k = ConvBN(dim, dim, kernel_size=1)
        self.k_neuron = neuron()
        self.v = ConvBN(dim, dim, kernel_size=1)
        self.v_neuron = neuron()
        self.kv_neuron = neuron(v_threshold=kv_threshold)
        self.proj = ConvBN(dim, dim, kernel_size=1, bias=True)

    def _erode_product(self, x: torch.Tensor) -> torch.Tensor:
        if self.erode == "authors":
            return erode_heads(x, self.num_heads)
        return erode_map(x) if self.erode == "spatial" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_neuron(x)
        q = self.q_neuron(self.q(s))
        k = self.k_neuron(self.k(s))
        v = self.v_neuron(self.v(s))
        if self.erode is not None:
            k, v = erode_map(k), erode_map(v)
        kv = self._erode_product(k * v).sum((-2, -1), keepdim=True)  # [T, B, C, 1, 1]: sum over tokens
        y = self._erode_product(q * self.kv_neuron(kv))
        return self.proj(y)
