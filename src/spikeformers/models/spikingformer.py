"""Spikingformer (Zhou et al., arXiv 2304.11954, 2023; first titled "Spike-driven Residual
Learning for Transformer-based Spiking Neural Network").

Pre-activation tokenizer (membrane maps) -> L x [x = x + SSA(x); x = x + MLP(x)]
-> mean over tokens and time -> Linear. Every branch starts with a neuron and
ends in BN, so the stream between blocks carries membrane potentials and no
neuron follows a residual sum (the "spike-driven residual"); every
convolution and projection reads spikes, apart from the first convolution on
the frames. Neurons are SpikingJelly's LIF with **tau 1.5** (the authors'
``tau_thr``), hard reset to 0, threshold 1, sigmoid surrogate alpha 4,
detach_reset; threshold 0.5 in the attention neuron. Exact architecture:
``shared/specs/more_models.md``, section A. The authors' unused LayerNorms
(``norm1``/``norm2``, 2,048 parameters in the DVS model) and DropPath are not
built, so the DVS model has 2,566,666 parameters (the spec's 2,568,714 less
those 2,048).

Neuron settings: ``neuron`` (a name or class) and ``neuron_kwargs`` apply to
every neuron the model builds, on top of this family's default ``tau=1.5``
(``neuron_kwargs=dict(tau=2.0)`` changes it; other keys keep it). The
attention neuron's threshold is the model's own ``attn_threshold`` (0.5): a
``v_threshold`` in ``neuron_kwargs`` changes every other neuron but not that
one; set ``attn_threshold`` to change it.

Options beyond the usual: ``attn_scale`` (0.125), ``attn_threshold``,
``qkv_bias`` (False), ``tokenizer_widths`` (default D/8, D/4, D/2, D, D; the
input shrinks by 2 per width after the first).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead
from ..layers.sdt_mlp import MembraneMLP
from ..layers.spikingformer_attention import PreActivationSelfAttention
from ..layers.spikingformer_embed import PreActivationTokenizer
from ..neurons import neuron_factory
from .base import SpikingClassifier
from .checkpoints import StateDict, register_converter, rename_state_dict
from .registry import register_model

NEURON_DEFAULTS = {"tau": 1.5}  # the authors' module constant tau_thr, for every LIF


def _pre_activation_mlp(dim: int, spiking, mlp_ratio: float) -> MembraneMLP:
    """neuron -> Conv1x1 (bias) -> BN -> neuron -> Conv1x1 (bias) -> BN, membrane in and out
    (without the Spike-driven Transformer's extra shortcut at mlp_ratio 1)."""
    return MembraneMLP(dim, spiking, mlp_ratio, inner_shortcut=False)


class Spikingformer(SpikingClassifier):
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
        attn_scale: float = 0.125,
        attn_threshold: float = 0.5,
        qkv_bias: bool = False,
        tokenizer_widths: Sequence[int] | None = None,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        spiking = neuron_factory(neuron, **{**NEURON_DEFAULTS, **(neuron_kwargs or {})})

        self.patch_embed = PreActivationTokenizer(in_channels, embed_dim, spiking, img_size=self.img_size,
                                                  widths=tokenizer_widths)
        self.blocks = nn.Sequential(*[
            Block(
                PreActivationSelfAttention(embed_dim, num_heads, spiking, scale=attn_scale,
                                           attn_threshold=attn_threshold, qkv_bias=qkv_bias),
                _pre_activation_mlp(embed_dim, spiking, mlp_ratio),
            )
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, num_classes)  # no neuron before it: membranes are averaged

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x)).flatten(3).transpose(2, 3)


# The authors' parameters that their forward never uses (spec A.2); dropped on conversion.
_UNUSED = re.compile(r"^block\.\d+\.norm[12]\.(weight|bias)$")
_RENAMES = [  # authors' key -> ours (spec A.3)
    (re.compile(r"^patch_embed\.proj_(conv|bn)\.(.+)$"), lambda m: f"patch_embed.first.{m[1]}.{m[2]}"),
    (re.compile(r"^patch_embed\.proj([1-9]\d*)_(conv|bn)\.(.+)$"),
     lambda m: f"patch_embed.stages.{int(m[1]) - 1}.conv_bn.{m[2]}.{m[3]}"),
    (re.compile(r"^block\.(\d+)\.attn\.(q|k|v|proj)_conv\.(.+)$"),
     lambda m: f"blocks.{m[1]}.attn.{m[2]}.linear.{m[3]}"),
    (re.compile(r"^block\.(\d+)\.attn\.(q|k|v|proj)_bn\.(.+)$"), lambda m: f"blocks.{m[1]}.attn.{m[2]}.bn.{m[3]}"),
    (re.compile(r"^block\.(\d+)\.mlp\.mlp([12])_(conv|bn)\.(.+)$"),
     lambda m: f"blocks.{m[1]}.mlp.fc{m[2]}.{m[3]}.{m[4]}"),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m[1]}"),
]


@register_converter(Spikingformer)
def convert_official_spikingformer(official: StateDict, model: Spikingformer) -> StateDict:
    """zhouchenlin2096/Spikingformer (``cifar10-dvs/model.py``) state_dicts to this model's keys.

    The attention's Conv1d kernels ``[out, in, 1]`` become Linear weights
    ``[out, in]``; the unused LayerNorms are dropped; unknown keys are kept
    so that the loader reports them.
    """
    return rename_state_dict(official, _RENAMES, model, unused=_UNUSED)


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> Spikingformer:
    return Spikingformer(**{**defaults, **overrides})


PAPER = "Spikingformer (arXiv 2304.11954)"
SOURCE = "authors' README (zhouchenlin2096/Spikingformer)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, embed_dim=256, depth=2, num_heads=16, mlp_ratio=4.0,
            attn_scale=0.125)


@register_model(model_class=Spikingformer, paper=PAPER, dataset="CIFAR10-DVS", reported="81.3", source=SOURCE)
def spikingformer_dvs(**overrides: Any) -> Spikingformer:
    """Spikingformer-2-256, CIFAR10-DVS, T=16, 128x128, LIF tau 1.5 (README: 81.3% top-1; 79.9% at T=10)."""
    return _create(dict(_DVS, time_steps=16), overrides)


@register_model(model_class=Spikingformer, paper=PAPER, dataset="CIFAR10-DVS", reported="79.9", source=SOURCE)
def spikingformer_dvs_t10(**overrides: Any) -> Spikingformer:
    """Spikingformer-2-256, CIFAR10-DVS, T=10, 128x128, LIF tau 1.5 (README: 79.9% top-1)."""
    return _create(dict(_DVS, time_steps=10), overrides)
