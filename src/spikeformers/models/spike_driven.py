"""Spike-driven Transformer (Yao et al., "Spike-driven Transformer", NeurIPS 2023), V1.

[optional 2x2 input average] -> MS_SPS stem (membrane features) ->
L x [x = x + SDSA(x); x = x + MLP(x)] -> mean over tokens -> neuron -> Linear
-> mean over T. Every branch starts with a neuron and ends with a BN, and
residuals add membranes (the "membrane shortcut"). The authors' unused modules
(``attn_lif``, ``rpe_lif``, the ``talking_heads`` Conv1d, DropPath) are not
built. Its quirks (``erode``, ``input_pool``, ``tet``) and neuron settings:
docs/models.md, "Spike-driven Transformer".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.embed import SPS_STREAM_RENAMES
from ..layers import (Block, MembraneMLP, SpikeDrivenSelfAttention, SpikingPatchSplitting, SpikingTokenMeanHead,
                      halving_widths, over_time)
from .base import SpikingClassifier
from .registry import Config, register_configs


class SpikeDrivenTransformer(SpikingClassifier):
    """``erode``: SDSA's max-pool erodes (``layers/spike_driven.py``); ``input_pool``: average
    ``input_pool x input_pool`` pixels first (``img_size`` is the size of the input the model is given);
    ``tet``: return per-step logits ``[T, B, classes]``; ``sps_pool_stages``: the stem stages followed by a
    max-pool (the authors' ``pooling_stat``: "0011" is ``(2, 3)``); ``sps_widths``: the stem widths
    (default D/8, D/4, D/2, D); ``kv_threshold``: SDSA's kv neuron's own threshold."""

    official_unused = r"^block\.\d+\.attn\.talking_heads\.weight$"
    official_renames = SPS_STREAM_RENAMES + (
        (r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_(conv|bn)\.(.+)$", r"blocks.\1.\2.\3.\4.\5"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 4.0,
                 kv_threshold: float = 0.5, erode: str | None = "authors", input_pool: int = 2, tet: bool = False,
                 sps_pool_stages: Sequence[int] = (2, 3), sps_widths: Sequence[int] | None = None, **common: Any):
        super().__init__(**common)
        if int(input_pool) != input_pool or input_pool < 1:
            raise ValueError(f"input_pool must be an integer >= 1, got {input_pool!r}")
        if any(s % input_pool for s in self.img_size):
            raise ValueError(f"img_size {self.img_size} must be divisible by input_pool {input_pool}")
        self.input_pool = int(input_pool)
        neuron = self.neuron_factory
        widths = halving_widths(embed_dim, 4) if sps_widths is None else list(sps_widths)
        self.patch_embed = SpikingPatchSplitting(
            self.in_channels, embed_dim, neuron, img_size=tuple(s // self.input_pool for s in self.img_size),
            num_stages=len(widths), pool_stages=sps_pool_stages, widths=widths, stream="membrane", tokens=False)
        self.blocks = nn.Sequential(*[
            Block(SpikeDrivenSelfAttention(embed_dim, num_heads, neuron, kv_threshold=kv_threshold, erode=erode),
                  MembraneMLP(embed_dim, neuron, mlp_ratio))
            for _ in range(depth)
        ])
        self.head = SpikingTokenMeanHead(embed_dim, self.num_classes, neuron, per_step=tet)
        # the authors' _init_weights: timm's trunc_normal_(std=.02) (cut at +-2 absolute) on every Conv2d,
        # zero biases; BN and the head's Linear keep PyTorch's defaults
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return super().check_input(x)
        except ValueError as err:
            if self.input_pool > 1:  # a pre-resized input is the likeliest mistake
                H, W = self.img_size
                raise ValueError(
                    f"{err}; this model averages {self.input_pool}x{self.input_pool} pixels itself "
                    f"(input_pool={self.input_pool}: {H}x{W} in, {H // self.input_pool}x"
                    f"{W // self.input_pool} inside); for pre-resized frames use "
                    f"img_size={H // self.input_pool}, input_pool=1"
                ) from None
            raise

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D, h, w]`` after the last block, for an already checked input."""
        if self.input_pool > 1:
            x = over_time(lambda frames: F.avg_pool2d(frames, self.input_pool), x)
        return self.blocks(self.patch_embed(x))


THIRD = "paper, as quoted by third parties (unverified)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=8,
            erode="authors", input_pool=2, sps_pool_stages=(2, 3))
# conf/gesture/*.yml: 128x128 frames as they are, pooling_stat "0111" (16x16 tokens), no erode (train.py sets
# dvs_mode for CIFAR10-DVS only), no TET.
_GESTURE = dict(img_size=128, in_channels=2, num_classes=11, time_steps=16, embed_dim=256, depth=2, num_heads=8,
                erode=None, input_pool=1, sps_pool_stages=(1, 2, 3))
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=512, depth=2, num_heads=8,
              erode=None, input_pool=1, sps_pool_stages=(2, 3))

register_configs(SpikeDrivenTransformer, "Spike-driven Transformer (NeurIPS 2023)", {
    "spike_driven_dvs": Config(_DVS, "CIFAR10-DVS", "80.0", THIRD, note="128x128 averaged to 64x64"),
    "spike_driven_dvs_t10": Config({**_DVS, "time_steps": 10}, "CIFAR10-DVS",
                                   source="the authors' released config (conf/cifar10-dvs/2_256_200E_t10_TET.yml)",
                                   note="the authors' released config; 80.0% is at T=16"),
    "spike_driven_gesture": Config(_GESTURE, "DVS128 Gesture", "99.3", THIRD,
                                   note="the authors' conf/gesture/2_256_200E_t16.yml"),
    "spike_driven_gesture_t10": Config({**_GESTURE, "time_steps": 10}, "DVS128 Gesture",
                                       source="the authors' released config (conf/gesture/2_256_200E_t10.yml)",
                                       note="the authors' released config; 99.3% is at T=16"),
    "spike_driven_cifar10": Config(_CIFAR, "CIFAR10", "95.6", THIRD, note="2-512"),
    "spike_driven_cifar10_2_256": Config({**_CIFAR, "embed_dim": 256}, "CIFAR10",
                                         source="the authors' config conf/cifar10/2_256_300E_t4.yml", note="2-256"),
    "spike_driven_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "78.4", THIRD, note="2-512"),
})
