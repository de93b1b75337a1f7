"""Meta-SpikeFormer (Yao et al., "Spike-driven Transformer V2: Meta Spiking Neural Network
Architecture Inspiring the Design of Next-generation Neuromorphic Chips", ICLR 2024).

A MetaFormer with four stages on membrane maps ``[T, B, C, H, W]``, widths
``embed_dims = (D0, D1, D2, D3)``:

1. Conv 7x7 stride 2 to D0/2 (no neuron before it) -> conv block; neuron,
   Conv 3x3 stride 2 to D0 -> conv block;
2. neuron, Conv 3x3 stride 2 to D1 -> 2 conv blocks;
3. neuron, Conv 3x3 stride 2 to D2 -> 6 transformer blocks;
4. neuron, Conv 3x3 stride 1 to D3 -> 2 transformer blocks;

then mean over tokens -> neuron -> Linear -> mean over T. Conv blocks are
SepConv + a 3x3 channel MLP (``layers/meta_conv.py``); transformer blocks
are ``x + attn(x)``, ``x + mlp(x)`` with RepConv q/k/v/proj and
``q (k^T v) * 0.125`` (``layers/meta_attention.py``) and the V1 membrane MLP
(1x1 convs with bias). Every branch starts with a neuron and ends with a BN;
residuals add membranes. Neurons are SpikingJelly's LIF (tau 2, threshold 1,
hard reset to 0, sigmoid surrogate alpha 4, detach_reset); the attention
neuron's threshold is 0.5. Only the Linear heads are initialised (truncated
normal, std 0.02, bias 0); convs and BNs keep PyTorch's defaults. Exact
architecture: ``shared/specs/more_models.md`` section C.

Options beyond the authors' hard-coded values: ``depths`` (blocks per
stage: conv blocks of the two halves of stage 1, of stage 2, then
transformer blocks of stages 3 and 4; the authors' 1, 1, 2, 6, 2) and
``mlp_ratio`` (the authors' code only runs with 4). The authors' DropPath is
built and never applied, so it is not built here.

Authors' details, each an explicit option:

- ``official_quirks`` (default True): RepConv's padded BN takes its border
  from the running statistics even in training, with weight and bias
  detached (``layers/meta_attention.py``). Train-mode outputs and gradients,
  hence every published result, depend on it; eval outputs do not.
- ``kd`` (the authors' ``kd=True``, used by their T=4 fine-tuning with a
  distillation teacher): a second Linear head ``head_kd`` on the same
  spikes. The model then returns, like the authors', the pair
  ``(logits, logits_kd)`` in training and their average in eval. This
  library's training loop takes one tensor: train ``kd`` models only with a
  distillation loss of your own (the default is ``kd=False``).
- Time steps: the authors' model repeats a static image ``T`` times with
  ``T = 1`` hard-coded and set by their scripts (1 from scratch, 4 when
  fine-tuning); here ``time_steps`` (4, the reported results).

Neuron settings: ``neuron`` (a name or class) and ``neuron_kwargs`` reach
every neuron the model builds; the attention neuron keeps ``attn_threshold``
(0.5) unless it is set.

The repository has no CIFAR10-DVS configuration (nor any DVS result for V2);
``meta_spikformer_dvs`` is ours: the smallest released widths on the sensor's
128x128 two-channel event frames (the authors' constructor defaults are
128x128 and 2 channels), T=16, 10 classes. Not 64x64: with 4x4 tokens the
untrained model's attention neurons stay silent (``k^T v`` sums too few
tokens), and a silent attention gives RepConv's BN and the BN after it a
constant map, whose train-mode backward scales the gradient by
``weight / sqrt(eps)`` ~ 316 each; over the 8 blocks, on random event
counts, the input gradient reached 1e10 to 1e20 at T=4 and 10 and
overflowed float32 at T=16, while at 128x128 every neuron fired and it
stayed near 0.1. The model has no size restriction:
every stride-2 layer pads, so any input size works (224 gives 14x14 tokens,
128 gives 8x8).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block
from ..layers.meta_attention import RepConvSelfAttention
from ..layers.meta_conv import MetaConvBlock, SpikingDownsample
from ..layers.sdt_mlp import MembraneMLP
from ..neurons import NeuronFactory, neuron_factory
from .base import SpikingClassifier
from .checkpoints import StateDict, register_converter, rename_state_dict
from .registry import register_model


class DistillableHead(nn.Module):
    """Mean over tokens -> neuron -> Linear -> mean over T; with ``kd`` a second Linear on the same spikes."""

    def __init__(self, dim: int, num_classes: int, neuron: NeuronFactory, kd: bool = False):
        super().__init__()
        self.neuron = neuron()
        self.fc = nn.Linear(dim, num_classes)
        self.fc_kd = nn.Linear(dim, num_classes) if kd else None
        for fc in filter(None, (self.fc, self.fc_kd)):
            nn.init.trunc_normal_(fc.weight, std=0.02)  # timm's trunc_normal_: cut at +-2 absolute
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s = self.neuron(x.flatten(3).mean(-1))  # [T, B, C]
        logits = self.fc(s).mean(0)
        if self.fc_kd is None:
            return logits
        logits_kd = self.fc_kd(s).mean(0)
        return (logits, logits_kd) if self.training else (logits + logits_kd) / 2


class MetaSpikeFormer(SpikingClassifier):
    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        in_channels: int = 3,
        num_classes: int = 1000,
        time_steps: int = 4,
        embed_dims: Sequence[int] = (96, 192, 384, 480),
        depths: Sequence[int] = (1, 1, 2, 6, 2),
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        attn_scale: float = 0.125,
        attn_threshold: float = 0.5,
        official_quirks: bool = True,
        kd: bool = False,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        embed_dims, depths = [int(d) for d in embed_dims], [int(d) for d in depths]
        if len(embed_dims) != 4 or embed_dims[0] % 2:
            raise ValueError(f"embed_dims must be 4 stage widths, the first even, got {embed_dims}")
        if len(depths) != 5 or min(depths) < 0:
            raise ValueError(f"depths must be 5 block counts (conv 1a, conv 1b, conv 2, attention 3, "
                             f"attention 4), got {depths}")
        self.embed_dims, self.depths = tuple(embed_dims), tuple(depths)
        self.official_quirks = bool(official_quirks)
        spiking = neuron_factory(neuron, **(neuron_kwargs or {}))
        D0, D1, D2, D3 = embed_dims

        def conv_stage(c_in, c_out, n, kernel=3, first=False):
            down = SpikingDownsample(c_in, c_out, None if first else spiking, kernel, 2, kernel // 2)
            return nn.Sequential(down, *[MetaConvBlock(c_out, spiking, mlp_ratio) for _ in range(n)])

        def attention_stage(c_in, c_out, n, stride):
            blocks = [Block(RepConvSelfAttention(c_out, num_heads, spiking, attn_scale, attn_threshold,
                                                 self.official_quirks),
                            MembraneMLP(c_out, spiking, mlp_ratio, inner_shortcut=False)) for _ in range(n)]
            return nn.Sequential(SpikingDownsample(c_in, c_out, spiking, 3, stride, 1), *blocks)

        self.stages = nn.Sequential(
            conv_stage(in_channels, D0 // 2, depths[0], kernel=7, first=True),
            conv_stage(D0 // 2, D0, depths[1]),
            conv_stage(D0, D1, depths[2]),
            attention_stage(D1, D2, depths[3], stride=2),
            attention_stage(D2, D3, depths[4], stride=1),
        )
        self.head = DistillableHead(D3, num_classes, spiking, kd=kd)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D3, h, w]`` after the last block, for an already checked input."""
        return self.stages(x)


# The authors' module names -> ours (spec C.2): their stage lists are one Sequential per stage here.
_STAGE = {"downsample1_1": "0.0", "ConvBlock1_1.0": "0.1", "downsample1_2": "1.0", "ConvBlock1_2.0": "1.1",
          "downsample2": "2.0", "ConvBlock2_1.0": "2.1", "ConvBlock2_2.0": "2.2"}
_REP = {"body.0": "rep.conv1x1", "body.1.bn": "rep.bn_pad.bn", "body.2.0": "rep.dwconv", "body.2.1": "rep.pwconv",
        "body.2.2": "rep.bn"}
_RENAMES = [  # authors' key -> ours
    (re.compile(r"^(downsample1_1|downsample1_2|downsample2)\.encode_(conv|bn)\.(.+)$"),
     lambda m: f"stages.{_STAGE[m[1]]}.{m[2]}.{m[3]}"),
    (re.compile(r"^(ConvBlock\d_\d\.0)\.Conv\.(pwconv1|bn1|dwconv|pwconv2|bn2)\.(.+)$"),
     lambda m: f"stages.{_STAGE[m[1]]}.sep.{m[2]}.{m[3]}"),
    (re.compile(r"^(ConvBlock\d_\d\.0)\.(conv1|bn1|conv2|bn2)\.(.+)$"),
     lambda m: f"stages.{_STAGE[m[1]]}.{m[2]}.{m[3]}"),
    (re.compile(r"^downsample([34])\.encode_(conv|bn)\.(.+)$"), lambda m: f"stages.{m[1]}.0.{m[2]}.{m[3]}"),
    (re.compile(r"^block([34])\.(\d+)\.attn\.(q|k|v|proj)_conv\.0\.(body\.0|body\.1\.bn|body\.2\.[012])\.(.+)$"),
     lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.attn.{m[3]}.{_REP[m[4]]}.{m[5]}"),
    (re.compile(r"^block([34])\.(\d+)\.attn\.(q|k|v|proj)_conv\.1\.(.+)$"),
     lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.attn.{m[3]}.bn.{m[4]}"),
    (re.compile(r"^block([34])\.(\d+)\.mlp\.(fc[12])_(conv|bn)\.(.+)$"),
     lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.mlp.{m[3]}.{m[4]}.{m[5]}"),
    (re.compile(r"^head(_kd)?\.(weight|bias)$"), lambda m: f"head.fc{m[1] or ''}.{m[2]}"),
]


@register_converter(MetaSpikeFormer)
def convert_official_meta_spikeformer(official: StateDict, model: MetaSpikeFormer) -> StateDict:
    """BICLab/Spike-Driven-Transformer-V2 (``classification/models.py``) state_dicts to this model's keys.

    The MLP's Conv1d kernels ``[out, in, 1]`` become this model's 1x1 Conv2d
    kernels ``[out, in, 1, 1]``. A checkpoint with ``head_kd`` needs a model
    built with ``kd=True`` (the loader names the key otherwise). Unknown keys
    are kept, so that the loader reports them.
    """
    own = model.state_dict()
    converted = rename_state_dict(official, _RENAMES, model)
    for key, tensor in converted.items():
        if key in own and tensor.dim() < own[key].dim() and tensor.numel() == own[key].numel():
            converted[key] = tensor.reshape(own[key].shape)
    return converted


PAPER = "Meta-SpikeFormer / Spike-driven Transformer V2 (ICLR 2024)"
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depths=(1, 1, 2, 6, 2),
                 num_heads=8, mlp_ratio=4.0)


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> MetaSpikeFormer:
    return MetaSpikeFormer(**{**defaults, **overrides})


@register_model(model_class=MetaSpikeFormer, paper=PAPER, dataset="ImageNet",
                source="paper's table (not verified here); the authors' README reports only the 55M model")
def meta_spikformer_imagenet_8_384(**overrides: Any) -> MetaSpikeFormer:
    """Meta-SpikeFormer 8-384 (widths 96-192-384-480, 31.3M), ImageNet 224x224, T=4: the authors' smallest builder."""
    return _create(dict(_IMAGENET, embed_dims=(96, 192, 384, 480)), overrides)


@register_model(model_class=MetaSpikeFormer, paper=PAPER, dataset="ImageNet", reported="80.0",
                source="authors' README (T=4, with distillation)")
def meta_spikformer_imagenet_8_512(**overrides: Any) -> MetaSpikeFormer:
    """Meta-SpikeFormer 8-512 (widths 128-256-512-640, 55.4M), ImageNet 224x224, T=4: the README's 55M model."""
    return _create(dict(_IMAGENET, embed_dims=(128, 256, 512, 640)), overrides)


@register_model(model_class=MetaSpikeFormer, paper=PAPER, dataset="CIFAR10-DVS",
                source="no V2 CIFAR10-DVS configuration or result published; configuration ours")
def meta_spikformer_dvs(**overrides: Any) -> MetaSpikeFormer:
    """Meta-SpikeFormer 8-384 widths on CIFAR10-DVS 128x128 frames, T=16 (our configuration; none published)."""
    return _create(dict(_IMAGENET, img_size=128, in_channels=2, num_classes=10, time_steps=16,
                        embed_dims=(96, 192, 384, 480)), overrides)
