"""Spikformer V2 (Zhou et al., "Spikformer V2: Join the High Accuracy Club on ImageNet with an SNN Ticket",
arXiv 2401.02020): Spikformer with its SPS stem replaced by a Spiking Convolutional Stem (SCS).

There is NO public code or checkpoint for V2, so this is not a reproduction
but the best-supported reconstruction (``shared/specs/spikformer_v2.md``).

From the paper (abstract): V2 = Spikformer's SSA blocks + an SCS "with
supplementary convolutional layers"; an 8-layer V2 reaches 80.38% ImageNet
top-1 at T=4; a 172M-parameter 16-layer V2 reaches 81.10% at T=1 after
masked-image-modelling pre-training (not implemented here).

From third parties: the ImageNet sizes V2-8-384 = 29.11M and V2-8-512 =
51.55M parameters, 224x224 input, T=4, with 78.80% and 80.38% top-1.

Inferred (not stated anywhere readable):

- the SCS layer list (``layers/scs_stem.py``): four stages of widths D/8,
  D/4, D/2, D, each a 2x2 stride-2 Conv -> BN -> neuron, then 3x3 Conv
  C -> 4C -> BN and 3x3 Conv 4C -> C -> BN; no position convolution. It is the
  structure that gives exactly 29,111,272 parameters for 8-384 and
  51,545,064 for 8-512 (172,278,760 for 16-768, the paper's "172M");
- whether a neuron sits between the two 3x3 convolutions
  (``scs_mid_neuron``, default True, so that the reduction conv reads spikes
  like every other conv after Spikformer's first) and whether the pair has a
  residual (``scs_residual``, default False: none is mentioned);
- everything after the stem is Spikformer's ImageNet code unchanged: SSA
  (scale 0.125, no softmax, attention neuron threshold 0.5), MLP ratio 4,
  spike-sum residuals, mean over tokens and time, Linear head; LIF tau 2,
  threshold 1, hard reset, sigmoid surrogate alpha 4; head dimension 64
  (6 heads at 384, 8 at 512; the count does not change the parameters);
- the CIFAR10-DVS configuration: V2's CIFAR10-DVS setting and result could
  not be retrieved, so ``spikformer_v2_dvs`` is Spikformer-DVS's (2-256,
  16 heads, scale 0.25, T=16, 128x128, 2 channels) with the SCS stem.

Neuron settings: ``neuron`` and ``neuron_kwargs`` reach every neuron, stem
included; the attention neuron keeps ``attn_threshold`` (0.5) unless it is set.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, SpikingMLP, SpikingSelfAttention
from ..layers.scs_stem import SpikingConvolutionalStem
from ..neurons import neuron_factory
from .base import SpikingClassifier
from .registry import register_model


class SpikformerV2(SpikingClassifier):
    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        in_channels: int = 3,
        num_classes: int = 1000,
        time_steps: int = 4,
        embed_dim: int = 512,
        depth: int = 8,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        attn_scale: float = 0.125,
        attn_threshold: float = 0.5,
        qkv_bias: bool = False,
        scs_stages: int = 4,
        scs_widths: Sequence[int] | None = None,
        scs_expansion: int = 4,
        scs_mid_neuron: bool = True,
        scs_residual: bool = False,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        spiking = neuron_factory(neuron, **(neuron_kwargs or {}))

        self.patch_embed = SpikingConvolutionalStem(
            in_channels, embed_dim, spiking, img_size=self.img_size, num_stages=scs_stages,
            widths=scs_widths, expansion=scs_expansion, mid_neuron=scs_mid_neuron, residual=scs_residual,
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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> SpikformerV2:
    return SpikformerV2(**{**defaults, **overrides})


PAPER = "Spikformer V2 (arXiv 2401.02020)"
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depth=8, mlp_ratio=4.0,
                 attn_scale=0.125)
# Inferred: Spikformer-DVS's configuration (spikformer.md section 3) with the SCS stem.
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, num_heads=16,
            mlp_ratio=4.0, attn_scale=0.25)


@register_model(model_class=SpikformerV2, paper=PAPER, dataset="ImageNet", reported="78.80",
                source="Nanhu-AI-Lab/MSViT README (third party)")
def spikformer_v2_imagenet_8_384(**overrides: Any) -> SpikformerV2:
    """Spikformer V2-8-384, ImageNet, T=4, 224x224, inferred SCS stem (29.11M; 78.80% top-1 reported)."""
    return _create({**_IMAGENET, "embed_dim": 384, "num_heads": 6}, overrides)


@register_model(model_class=SpikformerV2, paper=PAPER, dataset="ImageNet", reported="80.38",
                source="paper abstract; size from Nanhu-AI-Lab/MSViT README")
def spikformer_v2_imagenet_8_512(**overrides: Any) -> SpikformerV2:
    """Spikformer V2-8-512, ImageNet, T=4, 224x224, inferred SCS stem (51.55M; 80.38% top-1 reported)."""
    return _create({**_IMAGENET, "embed_dim": 512, "num_heads": 8}, overrides)


@register_model(model_class=SpikformerV2, paper=PAPER, dataset="CIFAR10-DVS",
                source="no V2 CIFAR10-DVS result readable; configuration inferred from Spikformer-DVS")
def spikformer_v2_dvs(**overrides: Any) -> SpikformerV2:
    """Spikformer V2-2-256, CIFAR10-DVS, T=16, 128x128: Spikformer-DVS with the SCS stem (inferred; no result)."""
    return _create(_DVS, overrides)
