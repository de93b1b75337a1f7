"""Spikingformer (Zhou et al., arXiv 2304.11954, 2023; first titled "Spike-driven Residual
Learning for Transformer-based Spiking Neural Network").

Pre-activation tokenizer (membrane maps) -> L x [x = x + SSA(x); x = x + MLP(x)]
-> mean over tokens and time -> Linear. Every branch starts with a neuron and
ends in BN, so the stream between blocks carries membrane potentials and no
neuron follows a residual sum (the "spike-driven residual"). Its LIF has
tau 1.5 (the authors' ``tau_thr``); the authors' unused LayerNorms and
DropPath are not built. Neuron settings: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, MembraneMLP, SpikingPatchSplitting, SpikingSelfAttention, halving_widths
from .base import SpikingClassifier
from .registry import Config, register_configs


class Spikingformer(SpikingClassifier):
    """``tokenizer_widths``: the stem's widths (default D/8, D/4, D/2, D, D); ``tokenizer_pool_stages``: the
    convolutions followed by a max-pool (default all but the last: the input shrinks by 2 per width after
    the first; the authors' CIFAR files pool after convs 2 and 3 only); ``cml``: each pool takes the BN
    output rather than the next neuron's spikes (CML, ``models/cml.py``); ``attn_scale``,
    ``attn_threshold``, ``qkv_bias``: the pre-activation SSA's."""

    neuron_defaults = {"tau": 1.5}  # the authors' module constant tau_thr, for every LIF
    official_unused = r"^block\.\d+\.norm[12]\.(weight|bias)$"
    official_renames = (
        (r"^patch_embed\.proj_(conv|bn)\.(.+)$", r"patch_embed.first.\1.\2"),
        (r"^patch_embed\.proj([1-9]\d*)_(conv|bn)\.(.+)$", lambda m: f"patch_embed.stages.{int(m[1]) - 1}.{m[2]}.{m[3]}"),
        (r"^block\.(\d+)\.attn\.(q|k|v|proj)_conv\.(.+)$", r"blocks.\1.attn.\2.linear.\3"),
        (r"^block\.(\d+)\.attn\.(q|k|v|proj)_bn\.(.+)$", r"blocks.\1.attn.\2.bn.\3"),
        (r"^block\.(\d+)\.mlp\.mlp([12])_(conv|bn)\.(.+)$", r"blocks.\1.mlp.fc\2.\3.\4"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depth: int = 2, num_heads: int = 16, mlp_ratio: float = 4.0,
                 attn_scale: float = 0.125, attn_threshold: float = 0.5, qkv_bias: bool = False,
                 tokenizer_widths: Sequence[int] | None = None, tokenizer_pool_stages: Sequence[int] | None = None,
                 cml: bool = False, **common: Any):
        super().__init__(**common)
        neuron = self.neuron_factory
        widths = [*halving_widths(embed_dim, 4), embed_dim] if tokenizer_widths is None else list(tokenizer_widths)
        if len(widths) < 2:
            raise ValueError(f"tokenizer_widths {widths} must list at least 2 stage widths")
        self.patch_embed = SpikingPatchSplitting(
            self.in_channels, embed_dim, neuron, img_size=self.img_size, num_stages=len(widths),
            pool_stages=range(len(widths) - 1) if tokenizer_pool_stages is None else tokenizer_pool_stages,
            rpe=False, widths=widths, stream="pre_activation", tokens=False, cml=cml)
        self.blocks = nn.Sequential(*[
            Block(SpikingSelfAttention(embed_dim, num_heads, neuron, scale=attn_scale, attn_threshold=attn_threshold,
                                       qkv_bias=qkv_bias, pre_activation=True),
                  MembraneMLP(embed_dim, neuron, mlp_ratio, inner_shortcut=False))
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, self.num_classes)  # no neuron before it: membranes are averaged

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x)).flatten(3).transpose(2, 3)


SOURCE = "authors' README (zhouchenlin2096/Spikingformer)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16,
            attn_scale=0.125)
# The CIFAR and ImageNet files: LIF tau 2.0; CIFAR pools after convs 2 and 3 only, 12 heads for CIFAR10 and 8
# for CIFAR100 (cifar10.yml, cifar100.yml); ImageNet 8 heads (imagenet.yml).
_TAU2 = {"neuron_kwargs": {"tau": 2.0}}
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, num_heads=12,
              tokenizer_pool_stages=(2, 3), **_TAU2)
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, num_heads=8, **_TAU2)

register_configs(Spikingformer, "Spikingformer (arXiv 2304.11954)", {
    "spikingformer_dvs": Config(_DVS, "CIFAR10-DVS", "81.3", SOURCE, note="LIF tau 1.5; 79.9% at T=10"),
    "spikingformer_dvs_t10": Config({**_DVS, "time_steps": 10}, "CIFAR10-DVS", "79.9", SOURCE, note="LIF tau 1.5"),
    "spikingformer_gesture": Config({**_DVS, "num_classes": 11}, "DVS128 Gesture", "98.3", SOURCE,
                                    note="LIF tau 1.5; 96.2% at T=10"),
    "spikingformer_gesture_t10": Config({**_DVS, "num_classes": 11, "time_steps": 10}, "DVS128 Gesture", "96.2",
                                        SOURCE, note="LIF tau 1.5"),
    "spikingformer_cifar10": Config(_CIFAR, "CIFAR10", "95.81", SOURCE, note="4-384, 400 epochs; LIF tau 2"),
    "spikingformer_cifar100": Config({**_CIFAR, "num_classes": 100, "num_heads": 8}, "CIFAR100", "79.21", SOURCE,
                                     note="4-384, 400 epochs; LIF tau 2"),
    # the README's smaller CIFAR models; their head counts are not published (none changes a parameter count)
    "spikingformer_cifar10_4_256": Config({**_CIFAR, "embed_dim": 256, "num_heads": 8}, "CIFAR10", "94.77", SOURCE,
                                          note="4-256; LIF tau 2; heads not published (8)"),
    "spikingformer_cifar10_2_384": Config({**_CIFAR, "depth": 2}, "CIFAR10", "95.22", SOURCE, note="2-384; LIF tau 2"),
    "spikingformer_cifar100_4_256": Config({**_CIFAR, "num_classes": 100, "embed_dim": 256, "num_heads": 8},
                                           "CIFAR100", "77.43", SOURCE, note="4-256; LIF tau 2; heads not published (8)"),
    "spikingformer_cifar100_2_384": Config({**_CIFAR, "num_classes": 100, "depth": 2, "num_heads": 8}, "CIFAR100",
                                           "78.34", SOURCE, note="2-384; LIF tau 2"),
    "spikingformer_imagenet_8_384": Config({**_IMAGENET, "embed_dim": 384}, "ImageNet", "72.45", SOURCE,
                                           note="LIF tau 2"),
    "spikingformer_imagenet_8_512": Config({**_IMAGENET, "embed_dim": 512}, "ImageNet", "74.79", SOURCE,
                                           note="LIF tau 2"),
    "spikingformer_imagenet_8_768": Config({**_IMAGENET, "embed_dim": 768}, "ImageNet", "75.85", SOURCE,
                                           note="LIF tau 2"),
})
