"""SpikingResformer (Shi et al., "SpikingResformer: Bridging ResNet and Vision Transformer in Spiking
Neural Networks", CVPR 2024).

Stem -> stages of [downsample] + k x [DSSA, GWFFN] -> mean over the map and time -> Linear (no bias).
Every unit starts with a neuron and ends in batch norm, and each adds its
membrane output to the stream it read (a ResNet-style stream of membranes).
DSSA, the dual spike self-attention, multiplies spikes by spikes twice and
rescales each product by the inverse square root of a running firing rate;
GWFFN is a grouped-convolution feed-forward unit. The authors' neurons are
SpikingJelly's LIF (tau 2, hard reset to 0, detach_reset) with the arctan
surrogate, and PLIF for DVS128 Gesture. Neuron settings: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import ConvUnit
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs


class DualSpikeSelfAttention(nn.Module):
    """DSSA on membrane maps ``[T, B, C, H, W]``, with its own residual (``x + DSSA(x)`` in one module).

    The input fires (``in_neuron``); a ``patch x patch`` stride-``patch`` Conv-BN of the spikes gives 2C
    channels, per head ``y1`` (the first C/heads of its 2C/heads) and ``y2`` (the rest), on the N' patch
    positions. Then ``attn = neuron(y1^T s * c1)`` ``[T, B, heads, N', H*W]`` and
    ``out = neuron(y2 attn * c2)``, a 1x1 Conv-BN, and the residual. The scales are
    ``c1 = 1 / sqrt(r_s * C / heads)`` and ``c2 = 1 / sqrt(r_attn * N')``, with ``r`` per-head running
    firing rates of the spikes ``s`` and of ``attn``: in training each is updated from the batch (momentum
    0.999; set to the batch's rate while still all zero) before it is used, so training and evaluation
    both scale by the running rate. In evaluation a rate still zero (an untrained model) is taken from the
    batch rather than dividing by zero; no trained model has one.
    """

    momentum = 0.999

    def __init__(self, dim: int, num_heads: int, patch_size: int, num_patches: int, neuron: NeuronFactory):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.num_patches = num_heads, num_patches
        self.in_neuron = neuron(channels=dim, channel_dim=2)
        self.kv = ConvUnit(dim, 2 * dim, order="conv bn", kernel_size=patch_size, stride=patch_size, padding=0)
        self.attn_neuron = neuron(channels=num_heads, channel_dim=2)  # sees [T, B, heads, N', H*W]
        self.out_neuron = neuron(channels=dim, channel_dim=2)
        self.proj = ConvUnit(dim, dim, order="conv bn", kernel_size=1)
        self.register_buffer("firing_rate_x", torch.zeros(1, 1, num_heads, 1, 1))
        self.register_buffer("firing_rate_attn", torch.zeros(1, 1, num_heads, 1, 1))
        # a running rate is set from the first training batch only once, as the authors' flags do
        self._started = {"firing_rate_x": False, "firing_rate_attn": False}

    def _running_rate(self, name: str, values: torch.Tensor) -> torch.Tensor:
        running = getattr(self, name)
        batch = values.detach().mean((0, 1, 3, 4), keepdim=True)
        if self.training:
            if not self._started[name] and not running.any():
                running = batch
            self._started[name] = True
            running = running * self.momentum + batch * (1 - self.momentum)
            with torch.no_grad():
                getattr(self, name).copy_(running)
            return running
        return torch.where(running == 0, batch, running)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        h, d = self.num_heads, C // self.num_heads
        s = self.in_neuron(x)
        y = self.kv(s).reshape(T, B, h, 2 * d, -1)
        y1, y2 = y[:, :, :, :d], y[:, :, :, d:]
        s = s.reshape(T, B, h, d, H * W)
        scale1 = 1.0 / torch.sqrt(self._running_rate("firing_rate_x", s) * d)
        attn = self.attn_neuron((y1.transpose(-1, -2) @ s) * scale1)
        scale2 = 1.0 / torch.sqrt(self._running_rate("firing_rate_attn", attn) * self.num_patches)
        out = self.out_neuron(((y2 @ attn) * scale2).reshape(T, B, C, H, W))
        return self.proj(out) + x


class GroupedFeedForward(nn.Module):
    """GWFFN on membrane maps, with its own residual: ``x + down(u + convs(u))`` where ``u = up(x)``; up
    (1x1, ``ratio`` times wider), the grouped 3x3 convolutions (groups of ``group_size`` channels) and down
    (1x1) are each neuron -> conv -> BN."""

    def __init__(self, dim: int, neuron: NeuronFactory, ratio: int = 4, group_size: int = 64, num_conv: int = 1):
        super().__init__()
        inner = dim * ratio
        if inner % group_size:
            raise ValueError(f"GWFFN's inner width {inner} ({ratio} x {dim}) must be a multiple of group_size {group_size}")
        self.up = ConvUnit(dim, inner, neuron, "neuron conv bn", kernel_size=1)
        self.convs = nn.ModuleList(ConvUnit(inner, inner, neuron, "neuron conv bn", groups=inner // group_size)
                                   for _ in range(num_conv))
        self.down = ConvUnit(inner, dim, neuron, "neuron conv bn", kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.up(x)
        y = u
        for conv in self.convs:
            y = conv(y)
        return self.down(y + u) + x


class MeanLinearHead(nn.Module):
    """Membrane map ``[T, B, C, h, w]`` -> mean over the map and time -> Linear without bias."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((3, 4)).mean(0))


_UNIT_PARTS = {"0": "neuron", "1": "conv", "2": "bn"}  # the authors' Sequential(activation, conv, BN wrapper)


def _unit(index: str, rest: str) -> str:
    part = _UNIT_PARTS[index]
    return f"{part}.{rest[3:] if part == 'bn' else rest}"  # their BN wrapper holds the BatchNorm2d as .bn


class SpikingResformer(SpikingClassifier):
    """SpikingResformer with stage widths ``dims``, ``depths`` [DSSA, GWFFN] pairs per stage, ``num_heads``
    and DSSA ``patch_sizes`` per stage; ``group_size``: GWFFN's channels per group; ``stem``: ``"imagenet"``
    (7x7 stride-2 Conv-BN and a 3x3 stride-2 max-pool) or ``"cifar"`` (3x3 Conv-BN);
    ``sum_channel``: append the sum of the input's channels as one more channel, as the authors' event
    pipeline does (it feeds the two polarities and their sum)."""

    neuron_defaults = {"surrogate": "atan"}  # SpikingJelly's ATan, alpha 2
    official_renames = (
        (r"^prologue\.0\.weight$", "stem.conv.weight"),
        (r"^prologue\.1\.bn\.(.+)$", r"stem.bn.\1"),
        # the downsampling unit opening each stage after the first
        (r"^layers\.(\d+)\.0\.activation\.(.+)$", r"stages.\1.0.neuron.\2"),
        (r"^layers\.(\d+)\.0\.conv\.weight$", r"stages.\1.0.conv.weight"),
        (r"^layers\.([1-9]\d*)\.0\.norm\.bn\.(.+)$", r"stages.\1.0.bn.\2"),
        # DSSA
        (r"^layers\.(\d+)\.(\d+)\.activation_(in|attn|out)\.(.+)$", r"stages.\1.\2.\3_neuron.\4"),
        (r"^layers\.(\d+)\.(\d+)\.W\.weight$", r"stages.\1.\2.kv.conv.weight"),
        (r"^layers\.(\d+)\.(\d+)\.norm\.bn\.(.+)$", r"stages.\1.\2.kv.bn.\3"),
        (r"^layers\.(\d+)\.(\d+)\.(firing_rate_(?:x|attn))$", r"stages.\1.\2.\3"),
        (r"^layers\.(\d+)\.(\d+)\.Wproj\.weight$", r"stages.\1.\2.proj.conv.weight"),
        (r"^layers\.(\d+)\.(\d+)\.norm_proj\.bn\.(.+)$", r"stages.\1.\2.proj.bn.\3"),
        # GWFFN
        (r"^layers\.(\d+)\.(\d+)\.(up|down)\.([012])\.(.+)$", lambda m: f"stages.{m[1]}.{m[2]}.{m[3]}.{_unit(m[4], m[5])}"),
        (r"^layers\.(\d+)\.(\d+)\.conv\.(\d+)\.([012])\.(.+)$",
         lambda m: f"stages.{m[1]}.{m[2]}.convs.{m[3]}.{_unit(m[4], m[5])}"),
        (r"^classifier\.weight$", "head.fc.weight"),
    )

    def __init__(self, dims: Sequence[int] = (64, 192, 384), depths: Sequence[int] = (1, 2, 3),
                 num_heads: Sequence[int] = (1, 3, 6), patch_sizes: Sequence[int] = (4, 2, 1), group_size: int = 64,
                 mlp_ratio: int = 4, stem: str = "imagenet", sum_channel: bool = False, **common: Any):
        super().__init__(**common)
        dims, depths = [int(d) for d in dims], [int(d) for d in depths]
        heads, patches = [int(h) for h in num_heads], [int(p) for p in patch_sizes]
        if not len(dims) == len(depths) == len(heads) == len(patches) or not dims:
            raise ValueError(f"dims {dims}, depths {depths}, num_heads {heads} and patch_sizes {patches} "
                             f"must give one value per stage")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.sum_channel = bool(sum_channel)
        size = [s // 4 for s in self.img_size] if stem == "imagenet" else list(self.img_size)
        if stem == "imagenet" and any(s % 4 for s in self.img_size):
            raise ValueError(f"the imagenet stem shrinks the input by 4: img_size {self.img_size} must be divisible by 4")
        neuron = self.neuron_factory
        c_in = self.in_channels + self.sum_channel
        if stem == "imagenet":
            self.stem = ConvUnit(c_in, dims[0], order="conv bn pool", kernel_size=7, stride=2, padding=3)
        else:
            self.stem = ConvUnit(c_in, dims[0], order="conv bn")
        self.stages = nn.ModuleList()
        for i, (dim, depth, h, p) in enumerate(zip(dims, depths, heads, patches)):
            units: list[nn.Module] = []
            if i:
                if any(s % 2 for s in size):
                    raise ValueError(f"img_size {self.img_size}: stage {i} halves a {size[0]}x{size[1]} map")
                units.append(ConvUnit(dims[i - 1], dim, neuron, "neuron conv bn", stride=2))
                size = [s // 2 for s in size]
            if any(s % p for s in size):
                raise ValueError(f"img_size {self.img_size}: stage {i}'s {size[0]}x{size[1]} map is not divisible "
                                 f"by its DSSA patch size {p}")
            for _ in range(depth):
                units.append(DualSpikeSelfAttention(dim, h, p, (size[0] // p) * (size[1] // p), neuron))
                units.append(GroupedFeedForward(dim, neuron, mlp_ratio, group_size))
            self.stages.append(nn.Sequential(*units))
        self.head = MeanLinearHead(dims[-1], self.num_classes)
        # the authors' init_weight: trunc_normal_(std=.02) (cut at +-2 absolute) on convs and linears
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, C, h, w]`` after the last stage, for an already checked input."""
        if self.sum_channel:
            x = torch.cat([x, x.sum(2, keepdim=True)], 2)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


PAPER = "SpikingResformer (CVPR 2024)"
UNVERIFIED = "paper, as quoted by third parties (unverified)"
STEP = "Fancyssc/STEP README (transfer learning)"
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, depths=(1, 2, 3), patch_sizes=(4, 2, 1),
                 stem="imagenet")
# spikingresformer_cifar: the CIFAR and CIFAR10-DVS model; events come as [off, on, off + on] at 64x64
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, dims=(64, 192, 384), depths=(1, 2, 3),
              num_heads=(1, 3, 6), patch_sizes=(4, 2, 1), stem="cifar")
_DVS = {**_CIFAR, "img_size": 64, "in_channels": 2, "time_steps": 16, "sum_channel": True}

register_configs(SpikingResformer, PAPER, {
    "spikingresformer_imagenet_ti": Config({**_IMAGENET, "dims": (64, 192, 384), "num_heads": (1, 3, 6)}, "ImageNet",
                                           "74.34", UNVERIFIED),
    "spikingresformer_imagenet_s": Config({**_IMAGENET, "dims": (64, 256, 512), "num_heads": (1, 4, 8)}, "ImageNet",
                                          "75.95", UNVERIFIED),
    "spikingresformer_imagenet_m": Config({**_IMAGENET, "dims": (64, 384, 768), "num_heads": (1, 6, 12)}, "ImageNet",
                                          "77.24", UNVERIFIED),
    "spikingresformer_imagenet_l": Config({**_IMAGENET, "dims": (128, 512, 1024), "num_heads": (2, 8, 16)}, "ImageNet",
                                          "78.77", UNVERIFIED, note="79.40% at 288x288"),
    "spikingresformer_cifar10": Config(_CIFAR, "CIFAR10", "97.40", STEP,
                                       note="with transfer from ImageNet; the recipe is the direct-training one"),
    "spikingresformer_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "85.98", STEP,
                                        note="with transfer from ImageNet; the recipe is the direct-training one"),
    "spikingresformer_dvs": Config(_DVS, "CIFAR10-DVS", "84.8", STEP,
                                   note="with transfer from ImageNet; frames resized to 64x64, polarity sum added"),
    "spikingresformer_gesture": Config(
        {**_DVS, "num_classes": 11, "dims": (32, 96, 192), "group_size": 32, "neuron": "plif"}, "DVS128 Gesture",
        "93.4", UNVERIFIED, note="PLIF neurons; frames resized to 64x64, polarity sum added"),
})
