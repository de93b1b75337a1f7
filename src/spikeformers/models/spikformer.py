"""Spikformer (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023).

SPS stem -> L x [x + SSA(x); x + MLP(x)] -> mean over tokens and time -> Linear,
with SpikingJelly's LIF (tau 2, hard reset to 0, threshold 1, sigmoid
surrogate alpha 4, detach_reset) everywhere and threshold 0.5 in the
attention neuron. Exact architecture: ``shared/specs/spikformer.md``; the
authors' unused tensors (``pos_embed`` and the LayerNorms, 18,944 parameters
in the DVS model) are not built.

Neuron settings: ``neuron`` (a name or class) and ``neuron_kwargs`` apply to
every neuron the model builds. The attention neuron's threshold is the
model's own ``attn_threshold`` (0.5): a ``v_threshold`` in ``neuron_kwargs``
changes every other neuron but not that one; set ``attn_threshold`` to
change it.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting, SpikingSelfAttention
from ..neurons import neuron_factory
from .base import SpikingClassifier
from .checkpoints import StateDict, register_converter, rename_state_dict
from .registry import register_model


class Spikformer(SpikingClassifier):
    def __init__(
        self,
        img_size: int | Sequence[int] = 128,
        in_channels: int = 2,
        num_classes: int = 10,
        time_steps: int = 16,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        attn_scale: float = 0.25,
        attn_threshold: float = 0.5,
        qkv_bias: bool = False,
        sps_stages: int = 4,
        sps_pool_stages: Sequence[int] = (0, 1, 2, 3),
        sps_widths: Sequence[int] | None = None,
        init: str = "kaiming",
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        if init not in ("kaiming", "trunc_normal"):
            raise ValueError(f"init must be 'kaiming' or 'trunc_normal', got {init!r}")
        spiking = neuron_factory(neuron, **(neuron_kwargs or {}))

        self.patch_embed = SpikingPatchSplitting(
            in_channels, embed_dim, spiking, img_size=self.img_size,
            num_stages=sps_stages, pool_stages=tuple(sps_pool_stages), widths=sps_widths,
        )
        self.blocks = nn.Sequential(*[
            Block(
                SpikingSelfAttention(embed_dim, num_heads, spiking, scale=attn_scale,
                                     attn_threshold=attn_threshold, qkv_bias=qkv_bias),
                SpikingMLP(embed_dim, spiking, mlp_ratio),
            )
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, num_classes)
        if init == "trunc_normal":
            # The CIFAR file builds q/k/v/proj/fc1/fc2 as nn.Linear, so timm's
            # _init_weights gives them all N(0, 0.02) and zero bias; the DVS and
            # ImageNet files use Conv1d/Conv2d, which keep PyTorch's default.
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(module.weight, std=0.02)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> Spikformer:
    return Spikformer(**{**defaults, **overrides})


PAPER = "Spikformer (ICLR 2023)"
QUOTED = "paper, as quoted by Fancyssc/Spiking-Transformers"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16,
            mlp_ratio=4.0, attn_scale=0.25)
# CIFAR file: 32x32 images repeated over T=4, no pooling in the first two SPS
# stages, nn.Linear projections with bias and trunc_normal init, scale 0.125.
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, num_heads=12,
              mlp_ratio=4.0, attn_scale=0.125, qkv_bias=True, sps_pool_stages=(2, 3), init="trunc_normal")
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, mlp_ratio=4.0,
                 attn_scale=0.125)


@register_model(model_class=Spikformer, paper=PAPER, dataset="CIFAR10-DVS",
                reported="80.9", source=QUOTED)
def spikformer_dvs(**overrides: Any) -> Spikformer:
    """Spikformer-2-256, CIFAR10-DVS, T=16, 128x128 (ICLR 2023: 80.9% top-1; 78.9% at T=10)."""
    return _create(_DVS, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="CIFAR10-DVS",
                reported="78.9", source=QUOTED)
def spikformer_dvs_t10(**overrides: Any) -> Spikformer:
    """Spikformer-2-256, CIFAR10-DVS, T=10, 128x128 (ICLR 2023: 78.9% top-1)."""
    return _create({**_DVS, "time_steps": 10}, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="DVS128 Gesture",
                reported="98.3", source="third-party tables (unverified)")
def spikformer_gesture(**overrides: Any) -> Spikformer:
    """Spikformer-2-256, DVS128 Gesture (11 classes), T=16, 128x128 (98.3% reported; 96.9% at T=10)."""
    return _create({**_DVS, "num_classes": 11}, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="CIFAR10",
                reported="95.41", source="Fancyssc/STEP README (probably 400 epochs)")
def spikformer_cifar10(**overrides: Any) -> Spikformer:
    """Spikformer-4-384, CIFAR10, T=4, 32x32 (ICLR 2023: 95.41% top-1)."""
    return _create(_CIFAR, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="CIFAR100",
                reported="78.21", source="Fancyssc/STEP README (probably 400 epochs)")
def spikformer_cifar100(**overrides: Any) -> Spikformer:
    """Spikformer-4-384, CIFAR100, T=4, 32x32 (ICLR 2023: 78.21% top-1)."""
    return _create({**_CIFAR, "num_classes": 100}, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="ImageNet",
                reported="70.24", source="Spikingformer README (commented-out rows)")
def spikformer_imagenet_8_384(**overrides: Any) -> Spikformer:
    """Spikformer-8-384, ImageNet, T=4, 224x224 (ICLR 2023: 70.24% top-1)."""
    return _create({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="ImageNet",
                reported="73.38", source="Spikingformer README (commented-out rows)")
def spikformer_imagenet_8_512(**overrides: Any) -> Spikformer:
    """Spikformer-8-512, ImageNet, T=4, 224x224 (ICLR 2023: 73.38% top-1)."""
    return _create({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, overrides)


@register_model(model_class=Spikformer, paper=PAPER, dataset="ImageNet",
                reported="74.81", source="Spikingformer README (commented-out rows)")
def spikformer_imagenet_8_768(**overrides: Any) -> Spikformer:
    """Spikformer-8-768, ImageNet, T=4, 224x224 (ICLR 2023: 74.81% top-1)."""
    return _create({**_IMAGENET, "embed_dim": 768, "num_heads": 12}, overrides)


@register_model(model_class=Spikformer, paper="(this project's demo)", dataset="DVS digits (built in)")
def spikformer_tiny(**overrides: Any) -> Spikformer:
    """A 1-64 Spikformer for the built-in DVS digits (24x24, T=4); trains on a laptop CPU in minutes."""
    return _create(dict(img_size=24, in_channels=2, num_classes=10, time_steps=4, embed_dim=64,
                        depth=1, num_heads=4, mlp_ratio=4.0, attn_scale=0.25,
                        sps_pool_stages=(1, 2)), overrides)


# The authors' parameters that their forward never uses (spec 3.3, 4.2, 5.2); dropped on conversion.
_UNUSED = re.compile(r"^(pos_embed|norm\.(weight|bias)|block\.\d+\.norm[12]\.(weight|bias))$")
_RENAMES = [  # authors' key -> ours; q/k/v/proj/fc are Conv1d, Conv2d 1x1 or Linear in their three files
    (re.compile(r"^patch_embed\.proj_(conv|bn)(\d?)\.(.+)$"),
     lambda m: f"patch_embed.stages.{m[2] or 0}.conv_bn.{m[1]}.{m[3]}"),
    (re.compile(r"^patch_embed\.rpe_(conv|bn)\.(.+)$"), lambda m: f"patch_embed.rpe.0.{m[1]}.{m[2]}"),
    (re.compile(r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_(conv|linear)\.(.+)$"),
     lambda m: f"blocks.{m[1]}.{m[2]}.{m[3]}.linear.{m[5]}"),
    (re.compile(r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_bn\.(.+)$"),
     lambda m: f"blocks.{m[1]}.{m[2]}.{m[3]}.bn.{m[4]}"),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m[1]}"),
]


@register_converter(Spikformer)
def convert_official_spikformer(official: StateDict, model: Spikformer) -> StateDict:
    """ZK-Zhou/spikformer state_dicts (any of the three files) to this model's keys.

    1x1 convolution kernels ``[out, in, 1(, 1)]`` become Linear weights
    ``[out, in]``; unused tensors are dropped; unknown keys are kept so that
    the loader reports them.
    """
    return rename_state_dict(official, _RENAMES, model, unused=_UNUSED)
