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
SepConv + a 3x3 channel MLP; transformer blocks are ``x + attn(x)``,
``x + mlp(x)`` with RepConv q/k/v/proj and ``q (k^T v) * 0.125`` and the
Spike-driven Transformer's membrane MLP. Every branch starts with a neuron
and ends with a BN; residuals add membranes. Only the Linear heads are
initialised (truncated normal); convs and BNs keep PyTorch's defaults. The
authors' quirk (``official_quirks``), the distillation head (``kd``), time
steps and the CIFAR10-DVS configuration: docs/models.md, "Meta-SpikeFormer".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Block, ConvUnit, MembraneMLP, SpikingTokenMeanHead, over_time
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs


def _downsample(in_channels: int, out_channels: int, neuron: NeuronFactory | None, kernel_size: int,
                stride: int) -> ConvUnit:
    """MS_DownSampling: [neuron ->] Conv2d (with a bias) -> BN; the first reads the frames, with no neuron."""
    return ConvUnit(in_channels, out_channels, neuron, "conv bn" if neuron is None else "neuron conv bn",
                    kernel_size=kernel_size, stride=stride, padding=kernel_size // 2, bias=True)


class SeparableConv(nn.Module):
    """SepConv branch (MobileNetV2's inverted separable conv; residual not added), membrane
    ``[T, B, C, H, W]`` in and out: neuron -> 1x1 C -> rC -> BN -> neuron -> 7x7 depthwise -> 1x1 rC -> C
    -> BN; no BN or neuron between the depthwise and the second pointwise conv, and no bias."""

    def __init__(self, dim: int, neuron: NeuronFactory, expansion: int = 2, kernel_size: int = 7):
        super().__init__()
        hidden = int(expansion * dim)
        self.neuron1 = neuron(channels=dim, channel_dim=2)
        self.pwconv1 = nn.Conv2d(dim, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.neuron2 = neuron(channels=hidden, channel_dim=2)
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False)
        self.pwconv2 = nn.Conv2d(hidden, dim, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = over_time(lambda s: self.bn1(self.pwconv1(s)), self.neuron1(x))
        return over_time(lambda s: self.bn2(self.pwconv2(self.dwconv(s))), self.neuron2(x))


class MetaConvBlock(nn.Module):
    """MS_ConvBlock: ``x = x + SepConv(x)``, then ``x + BN(Conv3x3(neuron(BN(Conv3x3(neuron(x))))))`` with
    widths C -> ``mlp_ratio`` C -> C, no biases."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.sep = SeparableConv(dim, neuron)
        self.neuron1 = neuron(channels=dim, channel_dim=2)
        self.conv1 = nn.Conv2d(dim, hidden, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.neuron2 = neuron(channels=hidden, channel_dim=2)
        self.conv2 = nn.Conv2d(hidden, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        h = over_time(lambda s: self.bn1(self.conv1(s)), self.neuron1(x))
        return x + over_time(lambda s: self.bn2(self.conv2(s)), self.neuron2(h))


class PaddedBatchNorm(nn.Module):
    """BatchNorm2d on ``[N, C, H, W]``, its output padded by ``pad`` pixels with BN(0) per channel.

    The authors' quirk, behind ``official_quirks`` (default True): the border
    value is ``bias - running_mean * weight / sqrt(running_var + eps)`` with
    weight and bias detached, read from the running statistics *after* the
    forward's own update, also in training, where the interior is normalised
    with the batch's statistics. So in train mode the border is not the BN's
    response to zero, and no gradient reaches the BN's weight and bias through
    it. Every result and checkpoint of the authors was trained with it (eval-mode
    outputs are the same either way). ``official_quirks=False`` pads with the
    response to zero under the statistics the BN normalised with (the batch's
    in training), with gradients.
    """

    def __init__(self, num_features: int, pad: int = 1, official_quirks: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features)
        self.pad = pad
        self.official_quirks = official_quirks

    def border(self, x: torch.Tensor) -> torch.Tensor:
        """BN's response to a zero input, per channel (call after ``self.bn(x)``: see the class doc)."""
        bn = self.bn
        if self.official_quirks:
            return bn.bias.detach() - bn.running_mean * bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        if bn.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        else:
            var, mean = bn.running_var, bn.running_mean
        return bn.bias - mean * bn.weight / torch.sqrt(var + bn.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        if self.pad == 0:
            return y
        H, W = y.shape[-2:]
        inside = F.pad(torch.ones(H, W, dtype=torch.bool, device=y.device), [self.pad] * 4)
        # torch.where, not arithmetic, so the interior is bit-for-bit the BN output
        return torch.where(inside, F.pad(y, [self.pad] * 4), self.border(x).view(1, -1, 1, 1).to(y.dtype))


class RepConv(nn.Module):
    """1x1 conv -> padded BN -> 3x3 depthwise conv (no padding) -> 1x1 conv -> BN, on ``[N, C, H, W]``: at
    inference it folds into one 3x3 conv on zero-padded input."""

    def __init__(self, in_channels: int, out_channels: int, official_quirks: bool = True):
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.bn_pad = PaddedBatchNorm(in_channels, pad=1, official_quirks=official_quirks)
        self.dwconv = nn.Conv2d(in_channels, in_channels, 3, groups=in_channels, bias=False)
        self.pwconv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pwconv(self.dwconv(self.bn_pad(self.conv1x1(x)))))


class RepConvBN(nn.Module):
    """RepConv then one more BN (the authors' ``Sequential(RepConv, BatchNorm2d)``), on ``[T, B, C, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, official_quirks: bool = True):
        super().__init__()
        self.rep = RepConv(in_channels, out_channels, official_quirks)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(lambda s: self.bn(self.rep(s)), x)


class RepConvSelfAttention(nn.Module):
    """The authors' ``MS_Attention_RepConv_qkv_id``, membrane ``[T, B, C, H, W]`` in and out (residual not
    added): spikes ``s = neuron(x)``; ``q, k, v = neuron(BN(RepConv(s)))``; per head (channel ``c`` is head
    ``c // d``) ``y = q @ (k^T @ v) * scale`` (0.125 whatever the head width, no softmax, ``k^T v`` first);
    ``y`` back to channels, ``neuron(y)`` with its own threshold (0.5); the output is ``BN(RepConv(.))``."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, scale: float = 0.125,
                 attn_threshold: float = 0.5, official_quirks: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = scale
        maps = dict(channels=dim, channel_dim=2)  # every neuron here sees [T, B, C, H, W]
        self.input_neuron = neuron(**maps)
        self.q = RepConvBN(dim, dim, official_quirks)
        self.q_neuron = neuron(**maps)
        self.k = RepConvBN(dim, dim, official_quirks)
        self.k_neuron = neuron(**maps)
        self.v = RepConvBN(dim, dim, official_quirks)
        self.v_neuron = neuron(**maps)
        self.attn_neuron = neuron(**maps, v_threshold=attn_threshold)
        self.proj = RepConvBN(dim, dim, official_quirks)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape  # -> [T, B, heads, N, d], channel c = head * d + j
        return x.reshape(T, B, self.num_heads, C // self.num_heads, H * W).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_neuron(x)
        q = self._heads(self.q_neuron(self.q(s)))
        k = self._heads(self.k_neuron(self.k(s)))
        v = self._heads(self.v_neuron(self.v(s)))
        y = (q @ (k.transpose(-2, -1) @ v)) * self.scale  # the authors' order: k^T v first
        y = self.attn_neuron(y.transpose(-1, -2).reshape(x.shape))
        return self.proj(y)


# The authors' module names -> ours: their stage lists are one Sequential per stage here.
_STAGE = {"downsample1_1": "0.0", "ConvBlock1_1.0": "0.1", "downsample1_2": "1.0", "ConvBlock1_2.0": "1.1",
          "downsample2": "2.0", "ConvBlock2_1.0": "2.1", "ConvBlock2_2.0": "2.2"}
# The authors' downsampling units (their code's names), rows of Meta-SpikeFormer's rename table and of
# E-SpikeFormer's, whose code descends from it.
DOWNSAMPLE_RENAMES = (
    (r"^(downsample1_1|downsample1_2|downsample2)\.encode_(conv|bn)\.(.+)$",
     lambda m: f"stages.{_STAGE[m[1]]}.{m[2]}.{m[3]}"),
    (r"^downsample([34])\.encode_(conv|bn)\.(.+)$", r"stages.\1.0.\2.\3"),
)
_REP = {"body.0": "rep.conv1x1", "body.1.bn": "rep.bn_pad.bn", "body.2.0": "rep.dwconv", "body.2.1": "rep.pwconv",
        "body.2.2": "rep.bn"}


class MetaSpikeFormer(SpikingClassifier):
    """``embed_dims``: the four stage widths; ``depths``: blocks per stage (conv blocks of the two halves of
    stage 1, of stage 2, then transformer blocks of stages 3 and 4; the authors' 1, 1, 2, 6, 2);
    ``mlp_ratio`` (the authors' code only runs with 4); ``official_quirks``: RepConv's padded BN as the
    authors compute it; ``kd``: the distillation head (docs/models.md)."""

    # BICLab/Spike-Driven-Transformer-V2 (classification/models.py); a checkpoint with head_kd needs kd=True
    official_renames = DOWNSAMPLE_RENAMES + (
        (r"^(ConvBlock\d_\d\.0)\.Conv\.(pwconv1|bn1|dwconv|pwconv2|bn2)\.(.+)$",
         lambda m: f"stages.{_STAGE[m[1]]}.sep.{m[2]}.{m[3]}"),
        (r"^(ConvBlock\d_\d\.0)\.(conv1|bn1|conv2|bn2)\.(.+)$", lambda m: f"stages.{_STAGE[m[1]]}.{m[2]}.{m[3]}"),
        (r"^block([34])\.(\d+)\.attn\.(q|k|v|proj)_conv\.0\.(body\.0|body\.1\.bn|body\.2\.[012])\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.attn.{m[3]}.{_REP[m[4]]}.{m[5]}"),
        (r"^block([34])\.(\d+)\.attn\.(q|k|v|proj)_conv\.1\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.attn.{m[3]}.bn.{m[4]}"),
        (r"^block([34])\.(\d+)\.mlp\.(fc[12])_(conv|bn)\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.mlp.{m[3]}.{m[4]}.{m[5]}"),
        (r"^head(_kd)?\.(weight|bias)$", lambda m: f"head.fc{m[1] or ''}.{m[2]}"),
    )

    def __init__(self, embed_dims: Sequence[int] = (96, 192, 384, 480), depths: Sequence[int] = (1, 1, 2, 6, 2),
                 num_heads: int = 8, mlp_ratio: float = 4.0, attn_scale: float = 0.125, attn_threshold: float = 0.5,
                 official_quirks: bool = True, kd: bool = False, **common: Any):
        super().__init__(**common)
        embed_dims, depths = [int(d) for d in embed_dims], [int(d) for d in depths]
        if len(embed_dims) != 4 or embed_dims[0] % 2:
            raise ValueError(f"embed_dims must be 4 stage widths, the first even, got {embed_dims}")
        if len(depths) != 5 or min(depths) < 0:
            raise ValueError(f"depths must be 5 block counts (conv 1a, conv 1b, conv 2, attention 3, "
                             f"attention 4), got {depths}")
        self.embed_dims, self.depths = tuple(embed_dims), tuple(depths)
        self.official_quirks = bool(official_quirks)
        neuron = self.neuron_factory
        D0, D1, D2, D3 = embed_dims

        def conv_stage(c_in, c_out, n, kernel=3, first=False):
            down = _downsample(c_in, c_out, None if first else neuron, kernel, 2)
            return nn.Sequential(down, *[MetaConvBlock(c_out, neuron, mlp_ratio) for _ in range(n)])

        def attention_stage(c_in, c_out, n, stride):
            blocks = [Block(RepConvSelfAttention(c_out, num_heads, neuron, attn_scale, attn_threshold,
                                                 self.official_quirks),
                            MembraneMLP(c_out, neuron, mlp_ratio, inner_shortcut=False)) for _ in range(n)]
            return nn.Sequential(_downsample(c_in, c_out, neuron, 3, stride), *blocks)

        self.stages = nn.Sequential(
            conv_stage(self.in_channels, D0 // 2, depths[0], kernel=7, first=True),
            conv_stage(D0 // 2, D0, depths[1]),
            conv_stage(D0, D1, depths[2]),
            attention_stage(D1, D2, depths[3], stride=2),
            attention_stage(D2, D3, depths[4], stride=1),
        )
        self.head = SpikingTokenMeanHead(D3, self.num_classes, neuron, kd=kd, trunc_normal=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D3, h, w]`` after the last block, for an already checked input."""
        return self.stages(x)


_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depths=(1, 1, 2, 6, 2), num_heads=8)

register_configs(MetaSpikeFormer, "Meta-SpikeFormer / Spike-driven Transformer V2 (ICLR 2024)", {
    "meta_spikformer_imagenet_8_384": Config(
        {**_IMAGENET, "embed_dims": (96, 192, 384, 480)}, "ImageNet",
        source="paper's table (not verified here); the authors' README reports only the 55M model",
        note="widths 96-192-384-480, the authors' smallest builder"),
    "meta_spikformer_imagenet_8_512": Config({**_IMAGENET, "embed_dims": (128, 256, 512, 640)}, "ImageNet", "80.0",
                                             "authors' README (T=4, with distillation)",
                                             note="widths 128-256-512-640, the README's 55M model"),
    "meta_spikformer_dvs": Config(
        {**_IMAGENET, "img_size": 128, "in_channels": 2, "num_classes": 10, "time_steps": 16,
         "embed_dims": (96, 192, 384, 480)}, "CIFAR10-DVS",
        source="no V2 CIFAR10-DVS configuration or result published; configuration ours",
        note="8-384 widths on 128x128 event frames; our configuration, none published"),
})
