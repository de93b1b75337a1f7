"""SGLFormer's spiking self-attention on maps, global or local (on strided sub-lattices).

``SGLSelfAttention`` is Spikformer's SSA (``layers.attention``: spiking Q, K,
V from Linear -> BN -> neuron, ``Q K^T V * scale``, the attention neuron with
its own threshold, projection -> BN -> neuron) on the tokens of a
``[T, B, C, H, W]`` map, with a bias-free projection. With ``partition`` n > 1
(the authors' ``num_hw``; LocalSSA) attention runs within each of the n*n
sub-images that :func:`partition` cuts: these are *interleaved* sub-lattices
(sub-image (hi, wi) holds pixels (n*i + hi, n*j + wi)), not contiguous
windows, exactly as the authors' reshape does. The batch norms see the same
values either way, so their statistics do not depend on the partition.
"""

from __future__ import annotations

import torch

from ..neurons import NeuronFactory
from .attention import SpikingSelfAttention
from .folded import LinearBN


def partition(x: torch.Tensor, n: int) -> torch.Tensor:
    """``[T, B, C, H, W]`` -> ``[T, B*n*n, C, H/n, W/n]``; sub-image ``b*n*n + hi*n + wi`` holds
    pixels ``(n*i + hi, n*j + wi)``."""
    T, B, C, H, W = x.shape
    x = x.reshape(T, B, C, H // n, n, W // n, n).permute(0, 1, 4, 6, 2, 3, 5)  # [T, B, hi, wi, C, i, j]
    return x.reshape(T, B * n * n, C, H // n, W // n)


def integrate(x: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`partition`."""
    T, Bnn, C, h, w = x.shape
    x = x.reshape(T, Bnn // (n * n), n, n, C, h, w).permute(0, 1, 4, 5, 2, 6, 3)  # [T, B, C, i, hi, j, wi]
    return x.reshape(T, Bnn // (n * n), C, h * n, w * n)


class SGLSelfAttention(SpikingSelfAttention):
    """``[T, B, C, H, W]`` spikes -> ``[T, B, C, H, W]`` spikes (residual not added)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        partition: int = 1,
        scale: float = 0.125,
        attn_threshold: float = 0.5,
    ):
        super().__init__(dim, num_heads, neuron, scale=scale, attn_threshold=attn_threshold, qkv_bias=False)
        if partition < 1:
            raise ValueError(f"partition must be >= 1, got {partition}")
        self.partition = int(partition)
        self.proj = LinearBN(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.partition
        if x.shape[-2] % n or x.shape[-1] % n:
            raise ValueError(f"{type(self).__name__}: map {tuple(x.shape[-2:])} is not divisible by partition {n}")
        if n > 1:
            x = partition(x, n)
        T, B, C, H, W = x.shape
        y = super().forward(x.flatten(3).transpose(2, 3)).transpose(2, 3).reshape(T, B, C, H, W)
        return integrate(y, n) if n > 1 else y

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, partition={self.partition}"
