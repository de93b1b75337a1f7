"""Meta-SpikeFormer's spike-driven self-attention with re-parameterisable convolutions
(the authors' ``MS_Attention_RepConv_qkv_id``, Spike-driven Transformer V2, ICLR 2024).

On a membrane map ``x`` ``[T, B, C, H, W]``: spikes ``s = neuron(x)``;
``q, k, v = neuron(BN(RepConv(s)))``; per head (channel ``c`` is head
``c // d``, in-head index ``c % d``) ``y = q @ (k^T @ v) * scale`` (scale
0.125 whatever the head width, no softmax; ``k^T v`` first, the linear
attention order); ``y`` back to channels, ``neuron(y)`` with its own
threshold (0.5); the output is ``BN(RepConv(.))``, a membrane for the
caller's residual, with no neuron after it.

RepConv (:class:`RepConv`) is a 1x1 conv, a BN whose output is padded by one
pixel with the BN's response to a zero input (:class:`PaddedBatchNorm`), a
3x3 depthwise conv without padding, a 1x1 conv and a BN: at inference it
folds into one 3x3 conv on zero-padded input.

The authors' quirk, behind ``official_quirks`` (default True): the border
value is ``bias - running_mean * weight / sqrt(running_var + eps)`` with
weight and bias detached, read from the running statistics *after* the
forward's own update, also in training, where the interior is normalised
with the batch's statistics. So in train mode the border is not the BN's
response to zero, and no gradient reaches the BN's weight and bias through
it. Every result and checkpoint of the authors was trained with it (eval-mode
outputs are the same either way). ``official_quirks=False`` pads with the
response to zero under the statistics the BN normalised with (the batch's
in training), with gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons import NeuronFactory
from .meta_conv import folded


class PaddedBatchNorm(nn.Module):
    """BatchNorm2d on ``[N, C, H, W]``, its output padded by ``pad`` pixels with BN(0) per channel."""

    def __init__(self, num_features: int, pad: int = 1, official_quirks: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features)
        self.pad = pad
        self.official_quirks = official_quirks

    def border(self, x: torch.Tensor) -> torch.Tensor:
        """BN's response to a zero input, per channel (call after ``self.bn(x)``: see the module doc)."""
        bn = self.bn
        if self.official_quirks:
            return bn.bias.detach() - bn.running_mean * bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        if bn.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        else:
            var, mean = bn.running_var, bn.running_mean
        return bn.bias - mean * bn.weight / torch.sqrt(var + bn.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        if self.pad == 0:
            return y
        H, W = y.shape[-2:]
        inside = F.pad(torch.ones(H, W, dtype=torch.bool, device=y.device), [self.pad] * 4)
        # torch.where, not arithmetic, so the interior is bit-for-bit the BN output
        return torch.where(inside, F.pad(y, [self.pad] * 4), self.border(x).view(1, -1, 1, 1).to(y.dtype))


class RepConv(nn.Module):
    """1x1 conv -> padded BN -> 3x3 depthwise conv (no padding) -> 1x1 conv -> BN, on ``[N, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, official_quirks: bool = True):
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.bn_pad = PaddedBatchNorm(in_channels, pad=1, official_quirks=official_quirks)
        self.dwconv = nn.Conv2d(in_channels, in_channels, 3, groups=in_channels, bias=False)
        self.pwconv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pwconv(self.dwconv(self.bn_pad(self.conv1x1(x)))))


class RepConvBN(nn.Module):
    """RepConv then one more BN (the authors' ``Sequential(RepConv, BatchNorm2d)``), on ``[T, B, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, official_quirks: bool = True):
        super().__init__()
        self.rep = RepConv(in_channels, out_channels, official_quirks)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return folded(lambda s: self.bn(self.rep(s)), x)


class RepConvSelfAttention(nn.Module):
    """The attention branch ``[T, B, C, H, W]`` membrane -> ``[T, B, C, H, W]`` membrane (residual not added)."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, scale: float = 0.125,
                 attn_threshold: float = 0.5, official_quirks: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = scale
        self.input_neuron = neuron()
        self.q = RepConvBN(dim, dim, official_quirks)
        self.q_neuron = neuron()
        self.k = RepConvBN(dim, dim, official_quirks)
        self.k_neuron = neuron()
        self.v = RepConvBN(dim, dim, official_quirks)
        self.v_neuron = neuron()
        self.attn_neuron = neuron(v_threshold=attn_threshold)
        self.proj = RepConvBN(dim, dim, official_quirks)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape  # -> [T, B, heads, N, d], channel c = head * d + j
        return x.reshape(T, B, self.num_heads, C // self.num_heads, H * W).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_neuron(x)
        q = self._heads(self.q_neuron(self.q(s)))
        k = self._heads(self.k_neuron(self.k(s)))
        v = self._heads(self.v_neuron(self.v(s)))
        y = (q @ (k.transpose(-2, -1) @ v)) * self.scale  # the authors' order: k^T v first
        y = self.attn_neuron(y.transpose(-1, -2).reshape(x.shape))
        return self.proj(y)
