"""SGLFormer (Zhang et al., "SGLFormer: Spiking Global-Local-Fusion Transformer with
high performance", Frontiers in Neuroscience, 2024, doi:10.3389/fnins.2024.1371290).

Conv-BN-neuron stem -> four Conv-BN-MaxPool-neuron tokenizer stages (spikes,
8x8 tokens from 128x128) -> L x SGL block [x + Local(x); x + LocalSSA(x);
x + MLP(x); 2 x (x + GlobalSSA(x); x + MLP(x))] -> spatio-temporal head (a
depthwise conv with a (tokens x T) kernel, BN, Linear). Every branch ends in
a neuron, so spikes are added to the stream (SEW residuals); nothing of the
authors' is left unbuilt. The head's kernel ties the model to its
``time_steps`` and ``img_size``. Neuron settings: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ConvUnit, SpikingSelfAttention, pooled_size
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs


class LocalBlock(nn.Module):
    """The branch ``loc`` of an SGL block, ``[T, B, D, H, W]`` spikes in and out (residual not added): on
    ``x`` it returns ``y + F(y)`` with ``y = x + DW(x)`` and ``F`` = Conv1x1 (D -> hidden) -> DW(hidden) ->
    Conv1x1 (hidden -> D), every unit Conv -> BN -> neuron and DW a depthwise 3x3. The caller adds ``x``
    once more, so the block's first step is ``2x + DW(x) + F(x + DW(x))``: the authors' code counts the
    input twice, and so does this."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.dw = ConvUnit(dim, dim, neuron, groups=dim)
        self.expand = ConvUnit(dim, hidden, neuron, kernel_size=1)
        self.dw_hidden = ConvUnit(hidden, hidden, neuron, groups=hidden)
        self.reduce = ConvUnit(hidden, dim, neuron, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.dw(x)
        return y + self.reduce(self.dw_hidden(self.expand(y)))


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
    """Spikformer's SSA on the tokens of a ``[T, B, C, H, W]`` spike map, with a bias-free projection. With
    ``partition`` n > 1 (the authors' ``num_hw``; LocalSSA) attention runs within each of the n*n sub-images
    :func:`partition` cuts: *interleaved* sub-lattices, not contiguous windows, as the authors' reshape
    does. The batch norms see the same values either way."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, partition: int = 1, scale: float = 0.125,
                 attn_threshold: float = 0.5):
        super().__init__(dim, num_heads, neuron, scale=scale, attn_threshold=attn_threshold, proj_bias=False)
        if partition < 1:
            raise ValueError(f"partition must be >= 1, got {partition}")
        self.partition = int(partition)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.partition
        if x.shape[-2] % n or x.shape[-1] % n:
            raise ValueError(f"{type(self).__name__}: map {tuple(x.shape[-2:])} is not divisible by partition {n}")
        return integrate(super().forward(partition(x, n)), n) if n > 1 else super().forward(x)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, partition={self.partition}"


class ConvMLP(nn.Module):
    """Conv1x1 -> BN -> neuron, twice (no biases), spikes out, on ``[T, B, C, H, W]``."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = ConvUnit(dim, hidden, neuron, kernel_size=1)
        self.fc2 = ConvUnit(hidden, dim, neuron, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


class SGLBlock(nn.Module):
    """``x = x + LocalBlock(x)``, then ``x = x + LocalSSA(x); x = x + MLP(x)`` (attention within the
    interleaved sub-lattices of ``local_partition``), then ``num_global`` times ``x = x + GlobalSSA(x);
    x = x + MLP(x)``."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, mlp_ratio: float = 4.0,
                 local_partition: int = 2, num_global: int = 2, attn_scale: float = 0.125,
                 attn_threshold: float = 0.5):
        super().__init__()
        self.local = LocalBlock(dim, neuron, mlp_ratio)
        self.mixers = nn.Sequential(*[
            Block(SGLSelfAttention(dim, num_heads, neuron, partition=local_partition if i == 0 else 1,
                                   scale=attn_scale, attn_threshold=attn_threshold),
                  ConvMLP(dim, neuron, mlp_ratio))
            for i in range(1 + num_global)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixers(x + self.local(x))


class SpatioTemporalHead(nn.Module):
    """The authors' "spatio-temporal block": ``[T, B, C, H, W]`` -> ``[B, C, H*W, T]`` -> depthwise Conv2d
    with a full-size kernel ``(H*W, T)`` and a bias (one weight per channel, token and step) -> ``[B, C]`` ->
    BatchNorm -> Linear; no neuron and no averaging. Its BatchNorm sees one value per channel and sample,
    so training needs batches of at least 2 (the authors train with 16 and drop_last): a clear error says so.
    """

    def __init__(self, dim: int, num_tokens: int, time_steps: int, num_classes: int):
        super().__init__()
        self.num_tokens, self.time_steps = num_tokens, time_steps
        self.conv = nn.Conv2d(dim, dim, (num_tokens, time_steps), groups=dim, bias=True)  # PyTorch's init
        self.bn = nn.BatchNorm2d(dim)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)  # timm's init, as the authors' _init_weights
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        if (H * W, T) != (self.num_tokens, self.time_steps):
            raise ValueError(f"{type(self).__name__} takes {self.num_tokens} tokens x {self.time_steps} time steps "
                             f"(its kernel), got {H * W} x {T}")
        if self.training and B < 2:
            raise ValueError(f"{type(self).__name__}: training needs a batch of at least 2 (its BatchNorm normalises "
                             f"one value per channel and sample over the batch), got B={B}; use eval() for B=1")
        y = self.conv(x.flatten(3).permute(1, 2, 3, 0))  # [B, C, N, T] -> [B, C, 1, 1]
        return self.fc(self.bn(y).flatten(1))


def _unit(name: str) -> str:
    """Our name for the authors' Conv3x3 / Conv1x1 modules' ``.conv3x3`` / ``.conv1x1`` and ``.bn``."""
    return "conv" if name.startswith("conv") else "bn"


_UNIT = r"(conv3x3|conv1x1|bn)"
_LOCAL = dict(conv="dw", conv1x1_1="expand", dwconv3x3="dw_hidden", conv1x1_2="reduce")


class SGLFormer(SpikingClassifier):
    """``depth`` counts SGL blocks (1 in the authors' model, which has 3 SSAs); ``num_global`` the global
    SSA + MLP pairs per block (2); ``local_partition`` the LocalSSA's sub-lattice split per side (2: four
    interleaved 4x4 sub-images of the 8x8 map); ``attn_scale`` (0.125); ``stem_width`` (default D // 6,
    the authors' 42); ``tokenizer_widths`` (default D/4, D/2, D, D); ``tokenizer_pool_stages``: the tokenizer
    stages that max-pool (default all; the authors' CIFAR file pools in the last two only, 32 -> 8)."""

    weights_tied_to_time_steps = "the head's full-size convolution spans the T steps"
    official_renames = (
        (rf"^stem\.conv\.{_UNIT}\.(.+)$", lambda m: f"stem.{_unit(m[1])}.{m[2]}"),
        (rf"^tokenizer\.conv([1-9]\d*)\.{_UNIT}\.(.+)$", lambda m: f"tokenizer.{int(m[1]) - 1}.{_unit(m[2])}.{m[3]}"),
        (rf"^blocks\.(\d+)\.loc\.(conv|conv1x1_1|dwconv3x3|conv1x1_2)\.{_UNIT}\.(.+)$",
         lambda m: f"blocks.{m[1]}.local.{_LOCAL[m[2]]}.{_unit(m[3])}.{m[4]}"),
        (rf"^blocks\.(\d+)\.ssa([1-9]\d*)\.(q|k|v|proj)_conv\.{_UNIT}\.(.+)$",
         lambda m: f"blocks.{m[1]}.mixers.{int(m[2]) - 1}.attn.{m[3]}.{'bn' if m[4] == 'bn' else 'linear'}.{m[5]}"),
        (rf"^blocks\.(\d+)\.mlp([1-9]\d*)\.mlp([12])\.{_UNIT}\.(.+)$",
         lambda m: f"blocks.{m[1]}.mixers.{int(m[2]) - 1}.mlp.fc{m[3]}.{_unit(m[4])}.{m[5]}"),
        (r"^full_size_conv\.(weight|bias)$", r"head.conv.\1"),
        (r"^bn\.(.+)$", r"head.bn.\1"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depth: int = 1, num_heads: int = 16, mlp_ratio: float = 4.0,
                 num_global: int = 2, local_partition: int = 2, attn_scale: float = 0.125,
                 attn_threshold: float = 0.5, stem_width: int | None = None,
                 tokenizer_widths: Sequence[int] | None = None, tokenizer_pool_stages: Sequence[int] | None = None,
                 **common: Any):
        super().__init__(**common)
        if embed_dim % 4:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by 4 (tokenizer widths D/4, D/2, D, D)")
        neuron = self.neuron_factory
        stem_width = stem_width or embed_dim // 6
        widths = list(tokenizer_widths or [embed_dim // 4, embed_dim // 2, embed_dim, embed_dim])
        if not widths or widths[-1] != embed_dim:
            raise ValueError(f"tokenizer_widths {widths} must end in embed_dim {embed_dim}")
        pools = tuple(range(len(widths)) if tokenizer_pool_stages is None else tokenizer_pool_stages)
        if any(not 0 <= i < len(widths) for i in pools):
            raise ValueError(f"tokenizer_pool_stages {pools} must lie in 0..{len(widths) - 1}")
        self.grid_size = tuple(pooled_size(s, len(pools)) for s in self.img_size)
        if any(s % local_partition for s in self.grid_size):
            raise ValueError(f"the {self.grid_size[0]}x{self.grid_size[1]} token grid (img_size {self.img_size}) "
                             f"is not divisible by local_partition {local_partition}")
        self.stem = ConvUnit(self.in_channels, stem_width, neuron)
        self.tokenizer = nn.Sequential(*[
            ConvUnit(c_in, c_out, neuron, "conv bn pool neuron" if i in pools else "conv bn neuron")
            for i, (c_in, c_out) in enumerate(zip([stem_width] + widths[:-1], widths))])
        self.blocks = nn.Sequential(*[
            SGLBlock(embed_dim, num_heads, neuron, mlp_ratio, local_partition=local_partition,
                     num_global=num_global, attn_scale=attn_scale, attn_threshold=attn_threshold)
            for _ in range(depth)
        ])
        self.head = SpatioTemporalHead(embed_dim, self.grid_size[0] * self.grid_size[1], self.time_steps,
                                       self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Spike-sum map ``[T, B, D, h, w]`` after the last block, for an already checked input."""
        return self.blocks(self.tokenizer(self.stem(x)))


SOURCE = "authors' README (ZhangHanN1/SGLFormer)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=1, num_heads=16,
            num_global=2, local_partition=2, attn_scale=0.125)

_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=1, num_heads=16,
              num_global=2, local_partition=2, attn_scale=0.125, tokenizer_pool_stages=(2, 3))

register_configs(SGLFormer, "SGLFormer (Frontiers in Neuroscience 2024)", {
    "sglformer_dvs": Config(_DVS, "CIFAR10-DVS", "82.6", SOURCE, note="SGLFormer-3-256; 82.9% at T=10"),
    "sglformer_dvs_t10": Config({**_DVS, "time_steps": 10}, "CIFAR10-DVS", "82.9", SOURCE,
                                note="SGLFormer-3-256, the README's runs"),
    "sglformer_gesture": Config({**_DVS, "num_classes": 11}, "DVS128 Gesture", "98.6", SOURCE,
                                note="SGLFormer-3-256; 97.2% at T=10"),
    "sglformer_gesture_t10": Config({**_DVS, "num_classes": 11, "time_steps": 10}, "DVS128 Gesture", "97.2", SOURCE,
                                    note="SGLFormer-3-256"),
    "sglformer_cifar10": Config(_CIFAR, "CIFAR10", "96.76", SOURCE, note="SGLFormer-4-384"),
    "sglformer_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "82.26", SOURCE, note="SGLFormer-4-384"),
})
