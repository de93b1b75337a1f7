"""Spikformer (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023).

SPS stem -> L x [x + SSA(x); x + MLP(x)] -> mean over tokens and time -> Linear,
with SpikingJelly's LIF (tau 2, hard reset to 0, threshold 1, sigmoid
surrogate alpha 4, detach_reset) everywhere and threshold 0.5 in the
attention neuron. The authors' unused tensors (``pos_embed`` and the
LayerNorms) are not built. Neuron settings: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers.embed import SPS_RENAMES
from ..layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting, SpikingSelfAttention
from .base import SpikingClassifier
from .registry import Config, register_configs


class Spikformer(SpikingClassifier):
    """Spikformer-``depth``-``embed_dim``. ``init='trunc_normal'`` initialises every Linear as the authors'
    CIFAR file does (its projections are ``nn.Linear``, which timm's ``_init_weights`` reaches); their DVS
    and ImageNet files use convolutions, which keep PyTorch's default. ``cml``: the stem pools the BN
    output before the neuron (CML, ``models/cml.py``)."""

    official_unused = r"^(pos_embed|norm\.(weight|bias)|block\.\d+\.norm[12]\.(weight|bias))$"
    # q/k/v/proj/fc are Conv1d, Conv2d 1x1 or Linear in the authors' three files
    official_renames = SPS_RENAMES + (
        (r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_(conv|linear)\.(.+)$", r"blocks.\1.\2.\3.linear.\5"),
        (r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_bn\.(.+)$", r"blocks.\1.\2.\3.bn.\4"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depth: int = 2, num_heads: int = 16, mlp_ratio: float = 4.0,
                 attn_scale: float = 0.25, attn_threshold: float = 0.5, qkv_bias: bool = False,
                 sps_stages: int = 4, sps_pool_stages: Sequence[int] = (0, 1, 2, 3),
                 sps_widths: Sequence[int] | None = None, init: str = "kaiming", cml: bool = False, **common: Any):
        super().__init__(**common)
        if init not in ("kaiming", "trunc_normal"):
            raise ValueError(f"init must be 'kaiming' or 'trunc_normal', got {init!r}")
        neuron = self.neuron_factory
        self.patch_embed = SpikingPatchSplitting(self.in_channels, embed_dim, neuron, img_size=self.img_size,
                                                 num_stages=sps_stages, pool_stages=sps_pool_stages, widths=sps_widths,
                                                 cml=cml)
        self.blocks = nn.Sequential(*[
            Block(SpikingSelfAttention(embed_dim, num_heads, neuron, scale=attn_scale, attn_threshold=attn_threshold,
                                       qkv_bias=qkv_bias),
                  SpikingMLP(embed_dim, neuron, mlp_ratio))
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, self.num_classes)
        if init == "trunc_normal":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(module.weight, std=0.02)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


QUOTED = "paper, as quoted by Fancyssc/Spiking-Transformers"
STEP = "Fancyssc/STEP README (probably 400 epochs)"
COMMENTED = "Spikingformer README (commented-out rows)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16,
            attn_scale=0.25)
# The CIFAR file: 32x32 images repeated over T=4, no pooling in the first two SPS stages, nn.Linear
# projections with bias and trunc_normal init, scale 0.125.
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, num_heads=12,
              attn_scale=0.125, qkv_bias=True, sps_pool_stages=(2, 3), init="trunc_normal")
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, attn_scale=0.125)
_TINY = dict(img_size=24, in_channels=2, num_classes=10, time_steps=4, embed_dim=64, depth=1, num_heads=4,
             attn_scale=0.25, sps_pool_stages=(1, 2))

register_configs(Spikformer, "Spikformer (ICLR 2023)", {
    "spikformer_dvs": Config(_DVS, "CIFAR10-DVS", "80.9", QUOTED, note="78.9% at T=10"),
    "spikformer_dvs_t10": Config({**_DVS, "time_steps": 10}, "CIFAR10-DVS", "78.9", QUOTED),
    "spikformer_gesture": Config({**_DVS, "num_classes": 11}, "DVS128 Gesture", "98.3",
                                 "third-party tables (unverified)", note="96.9% at T=10"),
    "spikformer_cifar10": Config(_CIFAR, "CIFAR10", "95.41", STEP),
    "spikformer_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "78.21", STEP),
    "spikformer_imagenet_8_384": Config({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, "ImageNet", "70.24", COMMENTED),
    "spikformer_imagenet_8_512": Config({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, "ImageNet", "73.38", COMMENTED),
    "spikformer_imagenet_8_768": Config({**_IMAGENET, "embed_dim": 768, "num_heads": 12}, "ImageNet", "74.81", COMMENTED),
    "spikformer_tiny": Config(_TINY, "DVS digits (built in)", paper="(this project's demo)",
                              note="1 block of width 64; trains on a laptop CPU in minutes"),
})
