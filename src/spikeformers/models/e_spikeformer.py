"""E-SpikeFormer (Yao et al., "Scaling Spike-driven Transformer with Efficient Spike Firing Approximation
Training", IEEE TPAMI 2025, arXiv 2411.16061; Spike-driven Transformer V3), its base classification models.

Meta-SpikeFormer's four-stage MetaFormer on membrane maps, with two changes:

- **Integer spikes** (the paper's Spike Firing Approximation): every neuron is
  :class:`MultiSpike`, ``round(clamp(x, 0, D)) / D`` with D=4 and a
  straight-through gradient inside ``[0, D]``, trained with T=1; at inference
  an integer k is meant to be emitted as k binary spikes over D steps, so
  T=1 here stands for D=4 spike steps. No membrane is carried across steps.
- **Blocks**: every convolution block is ``x + SepConv(x)`` with a neuron before
  each of its three convolutions, then a 3x3 conv MLP; every transformer block
  is ``x + SepConv3x3(x); x + LinearAttention(x); x + MLP(x)``, where the
  attention's value is 4x wider than q and k, ``(q k^T) v`` is scaled by
  ``2 / sqrt(head width)``, and q/k/v/proj are 1x1 convolutions.

Layout (widths ``embed_dims = (D0, D1, D2, D3)``): Conv 7x7 stride 2 to D0/2
(no neuron) -> conv block; neuron, Conv 3x3 stride 2 to D0 -> conv block;
neuron, Conv 3x3 stride 2 to D1 -> 2 conv blocks; neuron, Conv 3x3 stride 2 to
D2 -> 6 transformer blocks; neuron, Conv 3x3 stride 1 to D3 -> 2 transformer
blocks; mean over tokens -> neuron (integer counts, not divided by D) ->
Linear. The HARDVS configuration (T=8 event frames, undivided counts, layer
scales) and what is not implemented (the large models' spike masked-autoencoder
pre-training): docs/models.md, "E-SpikeFormer".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import ConvUnit, MembraneMLP
from ..neurons import MultiSpike, NeuronFactory, neuron_factory
from .base import SpikingClassifier
from .meta_spikeformer import _STAGE, DOWNSAMPLE_RENAMES
from .registry import Config, register_configs


class SepConvSpike(nn.Module):
    """Inverted separable convolution with a neuron before each conv, membrane ``[T, B, C, H, W]`` in and
    out (residual not added): neuron -> 1x1 C -> 2C -> BN -> neuron -> kxk depthwise -> BN -> neuron ->
    1x1 2C -> C -> BN; no biases."""

    def __init__(self, dim: int, neuron: NeuronFactory, kernel_size: int = 7, expansion: int = 2):
        super().__init__()
        hidden = expansion * dim
        self.pwconv1 = ConvUnit(dim, hidden, neuron, "neuron conv bn", kernel_size=1)
        self.dwconv = ConvUnit(hidden, hidden, neuron, "neuron conv bn", kernel_size=kernel_size, groups=hidden)
        self.pwconv2 = ConvUnit(hidden, dim, neuron, "neuron conv bn", kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pwconv2(self.dwconv(self.pwconv1(x)))


class ConvBlock(nn.Module):
    """``x = x + SepConvSpike(x)`` (7x7), then ``x + BN(Conv3x3(neuron(BN(Conv3x3(neuron(x))))))``, widths
    C -> ``mlp_ratio`` C -> C, no biases."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: int = 4):
        super().__init__()
        self.sep = SepConvSpike(dim, neuron, kernel_size=7)
        self.conv1 = ConvUnit(dim, dim * mlp_ratio, neuron, "neuron conv bn")
        self.conv2 = ConvUnit(dim * mlp_ratio, dim, neuron, "neuron conv bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        return x + self.conv2(self.conv1(x))


class LinearSpikingAttention(nn.Module):
    """The authors' ``MS_Attention_linear``, membrane ``[T, B, C, H, W]`` in and out (residual not added):
    ``s = neuron(x)``; q, k = neuron(BN(Conv1x1(s))) of width C, v of width ``v_ratio`` C; per head (channel
    ``c`` is head ``c // d``) ``y = (q k^T) v * 2 / sqrt(C / heads)``; ``y`` back to channels, a neuron,
    then BN(Conv1x1(v_ratio C -> C)). No softmax and no biases. Products of integer spikes are exact in
    either order; the cheaper one is taken."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, v_ratio: int = 4):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = 2 * (dim // num_heads) ** -0.5
        self.input_neuron = neuron(channels=dim, channel_dim=2)
        self.q = ConvUnit(dim, dim, neuron, "conv bn neuron", kernel_size=1)
        self.k = ConvUnit(dim, dim, neuron, "conv bn neuron", kernel_size=1)
        self.v = ConvUnit(dim, dim * v_ratio, neuron, "conv bn neuron", kernel_size=1)
        self.proj = ConvUnit(dim * v_ratio, dim, neuron, "neuron conv bn", kernel_size=1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape  # -> [T, B, heads, N, C / heads]
        return x.reshape(T, B, self.num_heads, C // self.num_heads, H * W).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_neuron(x)
        q, k, v = self._heads(self.q(s)), self._heads(self.k(s)), self._heads(self.v(s))
        N, d, dv = q.shape[-2], q.shape[-1], v.shape[-1]
        y = q @ (k.transpose(-2, -1) @ v) if N * N * (d + dv) > N * d * dv * 2 else (q @ k.transpose(-2, -1)) @ v
        T, B, _, H, W = x.shape
        y = (y * self.scale).transpose(-1, -2).reshape(T, B, -1, H, W)
        return self.proj(y)


class TransformerBlock(nn.Module):
    """``x = x + SepConvSpike3x3(x); x = x + LinearSpikingAttention(x); x = x + MLP(x)``. ``layer_scale``
    (the authors' HARDVS model, initial value 1e-6): each branch is scaled per channel by a learned vector
    (``layer_scale1``, ``2``, ``3``) before it is added."""

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, mlp_ratio: float = 4.0, v_ratio: int = 4,
                 layer_scale: float | None = None):
        super().__init__()
        self.sep = SepConvSpike(dim, neuron, kernel_size=3)
        self.attn = LinearSpikingAttention(dim, num_heads, neuron, v_ratio=v_ratio)
        self.mlp = MembraneMLP(dim, neuron, mlp_ratio, inner_shortcut=False)
        self.scaled = layer_scale is not None
        if self.scaled:
            for i in (1, 2, 3):
                setattr(self, f"layer_scale{i}", nn.Parameter(torch.full((dim,), float(layer_scale))))

    def _branch(self, i: int, y: torch.Tensor) -> torch.Tensor:
        return y * getattr(self, f"layer_scale{i}").view(-1, 1, 1) if self.scaled else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._branch(1, self.sep(x))
        x = x + self._branch(2, self.attn(x))
        return x + self._branch(3, self.mlp(x))


class CountHead(nn.Module):
    """Mean over tokens -> neuron -> times ``gain`` -> Linear -> mean over T: logits ``[B, classes]``. The
    authors' head neuron is not normalised (``MultiSpike(Norm=1)``: counts 0..D), which is the model's
    neuron times its ``norm`` (``gain``; exact in floating point for a power of 2)."""

    def __init__(self, dim: int, num_classes: int, neuron: NeuronFactory, gain: float):
        super().__init__()
        self.neuron = neuron(channels=dim, channel_dim=-1)  # sees [T, B, C]
        self.gain = float(gain)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)  # the authors' _init_weights (timm's, cut at +-2)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.neuron(x.flatten(3).mean(-1)) * self.gain).mean(0)


_SEP = {"pwconv1.0": "pwconv1.conv", "pwconv1.1": "pwconv1.bn", "dwconv.0": "dwconv.conv", "dwconv.1": "dwconv.bn",
        "pwconv2.0": "pwconv2.conv", "pwconv2.1": "pwconv2.bn"}


class ESpikeFormer(SpikingClassifier):
    """``embed_dims``: the four stage widths; ``depths``: blocks per stage (conv blocks of the two halves of
    stage 1, of stage 2, then transformer blocks of stages 3 and 4; the authors' 1, 1, 2, 6, 2);
    ``mlp_ratio`` (4; the conv blocks' must be an integer); ``v_ratio``: the attention value's width over
    q's (4). The neuron is :class:`MultiSpike` (D=4) unless ``neuron`` says otherwise; ``spike_norm``: what
    MultiSpike divides its counts by (default D; 1 in the authors' HARDVS model; no effect on another
    neuron); the head's gain undoes it (1 for another neuron); ``layer_scale``: the initial value of learned per-channel branch scales in the
    transformer blocks (None: none; 1e-6 in the authors' HARDVS model)."""

    # BICLab/Spike-Driven-Transformer-V3 SDT_V3/Classification/Model_Base/models.py
    official_renames = DOWNSAMPLE_RENAMES + (
        (r"^(ConvBlock\d_\d\.0)\.Conv\.(pwconv1\.[01]|dwconv\.[01]|pwconv2\.[01])\.(.+)$",
         lambda m: f"stages.{_STAGE[m[1]]}.sep.{_SEP[m[2]]}.{m[3]}"),
        (r"^(ConvBlock\d_\d\.0)\.(conv|bn)([12])\.(.+)$", lambda m: f"stages.{_STAGE[m[1]]}.conv{m[3]}.{m[2]}.{m[4]}"),
        (r"^block([34])\.(\d+)\.conv\.(pwconv1\.[01]|dwconv\.[01]|pwconv2\.[01])\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.sep.{_SEP[m[3]]}.{m[4]}"),
        (r"^block([34])\.(\d+)\.attn\.(q|k|v|proj)_conv\.([01])\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.attn.{m[3]}.{'conv' if m[4] == '0' else 'bn'}.{m[5]}"),
        (r"^block([34])\.(\d+)\.mlp\.(fc[12])_(conv|bn)\.(.+)$",
         lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.mlp.{m[3]}.{m[4]}.{m[5]}"),
        (r"^block([34])\.(\d+)\.(layer_scale[123])$", lambda m: f"stages.{m[1]}.{int(m[2]) + 1}.{m[3]}"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dims: Sequence[int] = (32, 64, 128, 192), depths: Sequence[int] = (1, 1, 2, 6, 2),
                 num_heads: int = 8, mlp_ratio: float = 4.0, v_ratio: int = 4, spike_norm: float | None = None,
                 layer_scale: float | None = None,
                 neuron: str | type[nn.Module] = "multispike", **common: Any):
        super().__init__(neuron=neuron, **common)
        # a setting of MultiSpike's: a registered configuration keeps it when another neuron is asked for
        if spike_norm is not None and self.neuron_factory.neuron_class is MultiSpike:
            settings = {**self.neuron_factory.neuron_kwargs, "norm": spike_norm}
            self.neuron_factory = neuron_factory(MultiSpike, **settings)
        embed_dims, depths = [int(d) for d in embed_dims], [int(d) for d in depths]
        if len(embed_dims) != 4 or embed_dims[0] % 2:
            raise ValueError(f"embed_dims must be 4 stage widths, the first even, got {embed_dims}")
        if len(depths) != 5 or min(depths) < 0:
            raise ValueError(f"depths must be 5 block counts (conv 1a, conv 1b, conv 2, attention 3, "
                             f"attention 4), got {depths}")
        if int(mlp_ratio) != mlp_ratio:
            raise ValueError(f"mlp_ratio must be an integer (the conv blocks' width multiplier), got {mlp_ratio}")
        self.embed_dims, self.depths = tuple(embed_dims), tuple(depths)
        neuron = self.neuron_factory
        D0, D1, D2, D3 = embed_dims

        def down(c_in, c_out, kernel, stride, first=False):
            return ConvUnit(c_in, c_out, None if first else neuron, "conv bn" if first else "neuron conv bn",
                            kernel_size=kernel, stride=stride, padding=kernel // 2, bias=True)

        def conv_stage(c_in, c_out, n, kernel=3, first=False):
            return nn.Sequential(down(c_in, c_out, kernel, 2, first),
                                 *[ConvBlock(c_out, neuron, int(mlp_ratio)) for _ in range(n)])

        def attention_stage(c_in, c_out, n, stride):
            return nn.Sequential(down(c_in, c_out, 3, stride),
                                 *[TransformerBlock(c_out, num_heads, neuron, mlp_ratio, v_ratio, layer_scale)
                                   for _ in range(n)])

        self.stages = nn.Sequential(
            conv_stage(self.in_channels, D0 // 2, depths[0], kernel=7, first=True),
            conv_stage(D0 // 2, D0, depths[1]),
            conv_stage(D0, D1, depths[2]),
            attention_stage(D1, D2, depths[3], stride=2),
            attention_stage(D2, D3, depths[4], stride=1),
        )
        head_neuron = neuron(channels=D3, channel_dim=-1)
        self.head = CountHead(D3, self.num_classes, neuron, gain=getattr(head_neuron, "norm", 1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D3, h, w]`` after the last block, for an already checked input."""
        return self.stages(x)


PAPER = "E-SpikeFormer / Spike-driven Transformer V3 (TPAMI 2025)"
ABSTRACT = "paper abstract (arXiv 2411.16061)"
_IMAGENET = dict(img_size=224, in_channels=3, num_classes=1000, time_steps=1, depths=(1, 1, 2, 6, 2), num_heads=8)
WEIGHTS = "authors' released weights (README)"

register_configs(ESpikeFormer, PAPER, {
    "e_spikeformer_t": Config({**_IMAGENET, "embed_dims": (24, 48, 96, 128)}, "ImageNet",
                              source="authors' Efficient_Spiking_Transformer_t; no result published",
                              note="widths 24-48-96-128; integer spikes D=4, T=1"),
    "e_spikeformer_s": Config({**_IMAGENET, "embed_dims": (32, 64, 128, 192)}, "ImageNet",
                              source="authors' Efficient_Spiking_Transformer_s (5.1M; weights released, accuracy "
                                     "not in the README)",
                              note="widths 32-64-128-192; integer spikes D=4, T=1"),
    "e_spikeformer_m": Config({**_IMAGENET, "embed_dims": (48, 96, 192, 240)}, "ImageNet", "78.5", ABSTRACT,
                              note="widths 48-96-192-240 (10M); integer spikes D=4, T=1"),
    "e_spikeformer_l": Config({**_IMAGENET, "embed_dims": (64, 128, 256, 360)}, "ImageNet", "79.8", ABSTRACT,
                              note="widths 64-128-256-360 (19M); integer spikes D=4, T=1"),
    # SDT_V3/DVS/Hardvs: Efficient_Spiking_Transformer_scaling_8_19M, T = main_finetune.py's --time-steps 8
    "e_spikeformer_hardvs": Config({**_IMAGENET, "in_channels": 2, "num_classes": 300, "time_steps": 8,
                                    "embed_dims": (64, 128, 256, 360), "spike_norm": 1, "layer_scale": 1e-6}, "HARDVS",
                                   source="authors' Efficient_Spiking_Transformer_scaling_8_19M (no result readable)",
                                   note="19M; 2x224x224 event frames, T=8, integer spikes 0..4 not divided"),
})
