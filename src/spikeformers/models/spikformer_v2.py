"""Spikformer V2 (Zhou et al., "Spikformer V2: Join the High Accuracy Club on ImageNet with an SNN Ticket",
arXiv 2401.02020): Spikformer with its SPS stem replaced by a Spiking Convolutional Stem (SCS).

There is no public code or checkpoint for V2, so this is not a reproduction
but the best-supported reconstruction: what the paper states, what third
parties report, and what is inferred (the SCS layer list, its three open
options, the CIFAR10-DVS configuration) are in docs/models.md, "Spikformer V2".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, ConvBN, SpikingMLP, SpikingSelfAttention, halving_widths, over_time
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs


# Where the stem's stages end in a neuron (after the reduction's BN): nowhere, the last stage only, every stage.
OUT_NEURONS = ("none", "last", "every")


class SCSStage(nn.Module):
    """One SCS stage on ``[T, B, C, H, W]``::

        s = neuron(BN(Conv2x2, stride 2 (x)))           # down-sampling, no bias
        y = BN(Conv3x3 (C -> e*C)) [-> neuron]           # expansion e
        y = BN(Conv3x3 (e*C -> C)) [+ s] [-> neuron]     # reduction; out_neuron: spikes out
    """

    def __init__(self, in_channels: int, out_channels: int, neuron: NeuronFactory, expansion: int = 4,
                 mid_neuron: bool = True, residual: bool = False, out_neuron: bool = True):
        super().__init__()
        self.down = nn.Conv2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)
        self.down_bn = nn.BatchNorm2d(out_channels)
        self.down_neuron = neuron(channels=out_channels, channel_dim=2)
        self.expand = ConvBN(out_channels, out_channels * expansion)
        self.expand_neuron = neuron(channels=out_channels * expansion, channel_dim=2) if mid_neuron else None
        self.reduce = ConvBN(out_channels * expansion, out_channels)
        self.residual = residual
        self.out_neuron = neuron(channels=out_channels, channel_dim=2) if out_neuron else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.down_neuron(over_time(lambda frames: self.down_bn(self.down(frames)), x))
        y = self.expand(s)
        if self.expand_neuron is not None:
            y = self.expand_neuron(y)
        y = self.reduce(y)
        y = s + y if self.residual else y
        return y if self.out_neuron is None else self.out_neuron(y)

    def extra_repr(self) -> str:
        return f"residual={self.residual}"


class SpikingConvolutionalStem(nn.Module):
    """SCS: ``num_stages`` :class:`SCSStage` s of widths ``widths`` (default D/2^(n-1), ..., D), each halving
    the grid, then tokens ``[T, B, h*w, D]`` (row-major, as Spikformer's SPS). There is no relative-position
    convolution. Every convolution is bias-free. ``out_neuron`` (one of ``OUT_NEURONS``): the stages whose
    output passes a neuron after their last BN."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (224, 224),
        num_stages: int = 4,
        widths: Sequence[int] | None = None,
        expansion: int = 4,
        mid_neuron: bool = True,
        residual: bool = False,
        out_neuron: str = "every",
    ):
        super().__init__()
        if out_neuron not in OUT_NEURONS:
            raise ValueError(f"out_neuron must be one of {OUT_NEURONS}, got {out_neuron!r}")
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        widths = halving_widths(embed_dim, num_stages) if widths is None else list(widths)
        if len(widths) != num_stages or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list {num_stages} stage widths ending in embed_dim {embed_dim}")
        factor = 2 ** num_stages
        img_size = (int(img_size[0]), int(img_size[1]))
        if img_size[0] % factor or img_size[1] % factor:
            # each stage halves the grid with an unpadded 2x2 stride-2 conv, which would drop a border
            raise ValueError(f"img_size {img_size[0]}x{img_size[1]} must be divisible by 2^num_stages = {factor}")
        self.img_size = img_size
        last = num_stages - 1
        self.stages = nn.Sequential(*[
            SCSStage(c_in, c_out, neuron, expansion=expansion, mid_neuron=mid_neuron, residual=residual,
                     out_neuron=out_neuron == "every" or (out_neuron == "last" and i == last))
            for i, (c_in, c_out) in enumerate(zip([in_channels] + widths[:-1], widths))
        ])
        self.grid_size = (img_size[0] // factor, img_size[1] // factor)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[-2:]) != self.img_size:
            H, W = self.img_size
            raise ValueError(f"{type(self).__name__} expects [T, B, C, {H}, {W}] (built for {H}x{W} input), "
                             f"got shape {tuple(x.shape)}")
        return self.stages(x).flatten(3).transpose(2, 3)


class SpikformerV2(SpikingClassifier):
    """SCS stem -> L x [x + SSA(x); x + MLP(x)] -> mean over tokens and time -> Linear: Spikformer's ImageNet
    model after the stem. ``scs_mid_neuron``: a neuron between the stem's two 3x3 convolutions;
    ``scs_residual``: a residual around them; ``scs_out_neuron``: which stages end in a neuron after their
    last BN, ``'every'`` (so every convolution after the first reads spikes), ``'last'`` or ``'none'`` (all
    inferred; the evidence for each default: docs/models.md, "Spikformer V2")."""

    def __init__(self, embed_dim: int = 512, depth: int = 8, num_heads: int = 8, mlp_ratio: float = 4.0,
                 attn_scale: float = 0.125, attn_threshold: float = 0.5, qkv_bias: bool = False,
                 scs_stages: int = 4, scs_widths: Sequence[int] | None = None, scs_expansion: int = 4,
                 scs_mid_neuron: bool = True, scs_residual: bool = False, scs_out_neuron: str = "every",
                 **common: Any):
        super().__init__(**common)
        neuron = self.neuron_factory
        self.patch_embed = SpikingConvolutionalStem(
            self.in_channels, embed_dim, neuron, img_size=self.img_size, num_stages=scs_stages, widths=scs_widths,
            expansion=scs_expansion, mid_neuron=scs_mid_neuron, residual=scs_residual, out_neuron=scs_out_neuron)
        self.blocks = nn.Sequential(*[
            Block(SpikingSelfAttention(embed_dim, num_heads, neuron, scale=attn_scale, attn_threshold=attn_threshold,
                                       qkv_bias=qkv_bias),
                  SpikingMLP(embed_dim, neuron, mlp_ratio))
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, attn_scale=0.125)
# Inferred: Spikformer-DVS's configuration with the SCS stem.
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16,
            attn_scale=0.25)

register_configs(SpikformerV2, "Spikformer V2 (arXiv 2401.02020)", {
    "spikformer_v2_imagenet_8_384": Config({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, "ImageNet", "78.80",
                                           "Nanhu-AI-Lab/MSViT README (third party)", note="inferred SCS stem"),
    "spikformer_v2_imagenet_8_512": Config({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, "ImageNet", "80.38",
                                           "paper abstract; size from Nanhu-AI-Lab/MSViT README",
                                           note="inferred SCS stem"),
    "spikformer_v2_dvs": Config(_DVS, "CIFAR10-DVS",
                                source="no V2 CIFAR10-DVS result readable; configuration inferred from Spikformer-DVS",
                                note="Spikformer-DVS with the SCS stem, inferred"),
})
