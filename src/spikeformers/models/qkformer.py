"""QKFormer (Zhou et al., "QKFormer: Hierarchical Spiking Transformer using Q-K Attention", NeurIPS 2024).

A hierarchical spiking transformer (HST): patch embedding 1 -> stage 1 ->
patch embedding 2 -> stage 2 [-> patch embedding 3 -> stage 3] -> mean over
tokens and time -> Linear. Each patch embedding halves the grid (the first
one more) and doubles the width, with a spiking strided 1x1 shortcut added
(``layers.ShortcutPatchEmbed``); every stage but the last is made of Q-K
token-attention blocks, the last of SSA blocks; blocks add their branches'
spikes to the stream (``x + f(x)``), and the MLP ratio is the same
everywhere. The authors' Conv1d 1x1 + BatchNorm1d projections are
``LinearBN`` on channel-last tokens (the same maps). The SSA's batch leak
(``ssa_batch_leak``), the embedding styles and neuron settings:
docs/models.md, "QKFormer".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, ShortcutPatchEmbed, SpikingMLP, SpikingSelfAttention, TokenQKAttention
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs

# Per style: the first embedding's widths (as divisors of stage 1's width), pools, shortcut
# source unit and stride; then the pools of each later embedding's two units.
EMBED_STYLES: dict[str, dict[str, Any]] = {
    "dvs": dict(width_divs=(8, 4, 2, 1), pools=(False, True, True, True), shortcut_from=1, shortcut_stride=4,
                stage_pools=(False, True)),
    "cifar": dict(width_divs=(2, 1), pools=(False, False), shortcut_from=0, shortcut_stride=1,
                  stage_pools=(False, True)),
    "imagenet": dict(width_divs=(2, 1, 1), pools=(True, True, False), shortcut_from=0, shortcut_stride=2,
                     stage_pools=(True, False)),
}


def first_patch_embed(style: str, in_channels: int, dim: int, neuron: NeuronFactory) -> ShortcutPatchEmbed:
    s = EMBED_STYLES[style]
    return ShortcutPatchEmbed(in_channels, [dim // d for d in s["width_divs"]], s["pools"], neuron,
                              shortcut_from=s["shortcut_from"], shortcut_stride=s["shortcut_stride"])


def stage_patch_embed(style: str, in_dim: int, dim: int, neuron: NeuronFactory) -> ShortcutPatchEmbed:
    """Between stages: two 3x3 units (one of them pooling) and a stride-2 1x1 shortcut from the input."""
    return ShortcutPatchEmbed(in_dim, [dim, dim], EMBED_STYLES[style]["stage_pools"], neuron,
                              shortcut_from=-1, shortcut_stride=2)


def _embed_unit(match) -> str:
    """The unit an authors' ``patch_embedN.projK_*`` key belongs to: in the first embedding ``proj``,
    ``proj1``, ``proj2``, ... are units 0, 1, 2, ...; in a later one ``proj`` (DVS file) or ``proj3``
    (CIFAR file) is unit 0 and ``proj4`` unit 1."""
    embed, k = int(match[1]), match[2]
    if embed == 1:
        return k or "0"
    return "1" if k == "4" else "0"


class QKFormer(SpikingClassifier):
    """HST-``sum(depths)``-``embed_dim``: ``len(depths)`` stages of widths ``embed_dim / 2^k``, ..., ``embed_dim``.

    ``depths`` gives each stage's block count (Q-K token attention in all but
    the last stage, SSA in the last); ``num_heads`` one count for every stage
    or one per stage; ``mlp_ratio`` the MLP's hidden width over its input's;
    ``attn_scale`` the SSA's scale (0.125); ``attn_threshold`` and
    ``qk_threshold`` the SSA's and the token mask's neuron thresholds;
    ``embed_style`` and ``ssa_batch_leak``: docs/models.md.
    """

    # The authors' CIFAR10-DVS and CIFAR10 files (the ImageNet file's patch embeddings are not mapped);
    # their ImageNet stage blocks name the attention `attn` and the MLP `fc1/fc2`.
    official_renames = (
        (r"^patch_embed(\d)\.proj_res_(conv|bn)\.(.+)$", lambda m: f"patch_embeds.{int(m[1]) - 1}.shortcut.{m[2]}.{m[3]}"),
        (r"^patch_embed(\d)\.proj(\d?)_(conv|bn)\.(.+)$",
         lambda m: f"patch_embeds.{int(m[1]) - 1}.units.{_embed_unit(m)}.{m[3]}.{m[4]}"),
        (r"^stage(\d)\.(\d+)\.(?:tssa|ssa|attn)\.(q|k|v|proj)_(conv|bn)\.(.+)$",
         lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.attn.{m[3]}.{'linear' if m[4] == 'conv' else 'bn'}.{m[5]}"),
        (r"^stage(\d)\.(\d+)\.mlp\.(?:mlp|fc)([12])_(conv|bn)\.(.+)$",
         lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.mlp.fc{m[3]}.{'linear' if m[4] == 'conv' else 'bn'}.{m[5]}"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depths: Sequence[int] = (1, 1), num_heads: int | Sequence[int] = 16,
                 mlp_ratio: float = 1.0, attn_scale: float = 0.125, attn_threshold: float = 0.5,
                 qk_threshold: float = 0.5, qkv_bias: bool = False, embed_style: str = "dvs",
                 ssa_batch_leak: bool = True, **common: Any):
        super().__init__(**common)
        if embed_style not in EMBED_STYLES:
            raise ValueError(f"Unknown embed_style {embed_style!r}; choose from {', '.join(EMBED_STYLES)}")
        depths = tuple(int(d) for d in depths)
        num_stages = len(depths)
        if num_stages < 1 or min(depths) < 1:
            raise ValueError(f"depths {depths} must give at least one block to each of at least one stage")
        heads = (num_heads,) * num_stages if isinstance(num_heads, int) else tuple(num_heads)
        if len(heads) != num_stages:
            raise ValueError(f"num_heads {tuple(num_heads)} must give one value per stage ({num_stages})")
        style = EMBED_STYLES[embed_style]
        min_width = 2 ** (num_stages - 1) * max(style["width_divs"])
        if embed_dim % min_width:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by {min_width} "
                             f"({num_stages} stages, embed_style {embed_style!r})")
        stride = 2 ** (sum(style["pools"]) + num_stages - 1)
        if any(s % stride for s in self.img_size):
            raise ValueError(f"QKFormer with embed_style {embed_style!r} and {num_stages} stages needs img_size "
                             f"divisible by {stride} (each embedding must shrink the grid exactly, "
                             f"as the authors' reshapes assume); "
                             f"got {self.img_size[0]}x{self.img_size[1]}")
        dims = [embed_dim // 2 ** (num_stages - 1 - i) for i in range(num_stages)]
        self.dims = dims
        self.grid_sizes = [(self.img_size[0] * 2 ** i // stride, self.img_size[1] * 2 ** i // stride)
                           for i in reversed(range(num_stages))]
        neuron = self.neuron_factory
        self.patch_embeds = nn.ModuleList(
            [first_patch_embed(embed_style, self.in_channels, dims[0], neuron)]
            + [stage_patch_embed(embed_style, dims[i - 1], dims[i], neuron) for i in range(1, num_stages)]
        )
        self.stages = nn.ModuleList()
        for i, (dim, depth, h) in enumerate(zip(dims, depths, heads)):
            last = i == num_stages - 1
            self.stages.append(nn.Sequential(*[
                Block(
                    SpikingSelfAttention(dim, h, neuron, scale=attn_scale, attn_threshold=attn_threshold,
                                         qkv_bias=qkv_bias, batch_leak=ssa_batch_leak)
                    if last else TokenQKAttention(dim, h, neuron, mask_threshold=qk_threshold),
                    SpikingMLP(dim, neuron, mlp_ratio),
                )
                for _ in range(depth)
            ]))
        self.head = ClassifierHead(embed_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last stage, for an already checked input."""
        T, B = x.shape[:2]
        for i, (embed, stage) in enumerate(zip(self.patch_embeds, self.stages)):
            if i:  # tokens back to the grid the next embedding convolves
                x = x.transpose(2, 3).reshape(T, B, self.dims[i - 1], *self.grid_sizes[i - 1])
            x = stage(embed(x).flatten(3).transpose(2, 3))  # grid [T, B, C, h, w] -> tokens [T, B, h*w, C]
        return x


_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depths=(1, 1), num_heads=16,
            mlp_ratio=1.0, embed_style="dvs")
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depths=(1, 1, 2),
              num_heads=8, mlp_ratio=4.0, embed_style="cifar")
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depths=(1, 2, 7), mlp_ratio=4.0,
                 embed_style="imagenet")
README = "authors' README"

register_configs(QKFormer, "QKFormer (NeurIPS 2024)", {
    "qkformer_dvs": Config(_DVS, "CIFAR10-DVS", "84.0", "paper, as quoted by third parties (authors' log: 84.1)"),
    "qkformer_gesture": Config({**_DVS, "num_classes": 11, "mlp_ratio": 4.0}, "DVS128 Gesture", "98.6",
                               "paper, as quoted by third parties (unverified)",
                               note="the authors' dvs128-gesture/model.py: MLP ratio 4"),
    "qkformer_cifar10": Config(_CIFAR, "CIFAR10", "96.18", "paper (unverified; authors' log: 96.21)"),
    "qkformer_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "81.15", "paper (unverified)"),
    "qkformer_imagenet_10_384": Config({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, "ImageNet", "78.80", README),
    "qkformer_imagenet_10_512": Config({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, "ImageNet", "82.04", README),
    "qkformer_imagenet_10_768": Config({**_IMAGENET, "embed_dim": 768, "num_heads": 12}, "ImageNet", "84.22", README,
                                       note="85.25% at 288, 85.65% at 384"),
})
