"""Stems: ``[T, B, C, H, W]`` frames to the first spike tokens or membrane maps, built from :class:`ConvUnit`.

- :class:`SpikingPatchSplitting`: Spikformer's SPS, stages of 3x3 Conv-BN
  units with max-pools and a relative position embedding; ``stream`` picks
  where its neurons sit, which is what the Spike-driven Transformer's MS_SPS
  and Spikingformer's tokenizer change.
- :class:`ShortcutPatchEmbed`: QKFormer's patch embedding, Conv-BN-[pool]-neuron
  units plus a spiking strided 1x1 shortcut.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .fold import ConvUnit

STREAMS = ("spikes", "membrane", "pre_activation")


def pooled_size(size: int, times: int) -> int:
    """Side length after ``times`` MaxPool2d(3, stride 2, padding 1)."""
    for _ in range(times):
        size = (size - 1) // 2 + 1
    return size


def halving_widths(embed_dim: int, num_stages: int) -> list[int]:
    """D/2^(n-1), ..., D/2, D: the stage widths of Spikformer's stem and its successors."""
    if embed_dim % 2 ** (num_stages - 1):
        raise ValueError(f"embed_dim {embed_dim} must be divisible by 2^(num_stages-1) = {2 ** (num_stages - 1)}")
    return [embed_dim // 2 ** (num_stages - 1 - i) for i in range(num_stages)]


# The authors' key names of this stem (their `patch_embed.proj_conv<i>` / `proj_bn<i>` and the
# `rpe_*` unit), as rows of a family's `official_renames`: every stage a `stages` unit (Spikformer),
# or the fourth unit the stream's `last` (the Spike-driven Transformer's).
SPS_RENAMES = (
    (r"^patch_embed\.proj_(conv|bn)(\d?)\.(.+)$", lambda m: f"patch_embed.stages.{m[2] or 0}.{m[1]}.{m[3]}"),
    (r"^patch_embed\.rpe_(conv|bn)\.(.+)$", r"patch_embed.rpe.\1.\2"),
)
SPS_STREAM_RENAMES = (
    (r"^patch_embed\.proj_(conv|bn)([012]?)\.(.+)$", lambda m: f"patch_embed.stages.{m[2] or 0}.{m[1]}.{m[3]}"),
    (r"^patch_embed\.proj_(conv|bn)3\.(.+)$", r"patch_embed.last.\1.\2"),
    (r"^patch_embed\.rpe_(conv|bn)\.(.+)$", r"patch_embed.rpe.\1.\2"),
)


class SpikingPatchSplitting(nn.Module):
    """SPS: ``num_stages`` 3x3 Conv-BN stages of widths ``widths`` (default D/2^(n-1), ..., D/2, D), a 3x3
    stride-2 max-pool after the stages in ``pool_stages``, then the relative position embedding (RPE), a
    Conv-BN-neuron unit whose output is added to its input. ``stream`` says what the stem hands the blocks:

    - ``"spikes"`` (Spikformer): every stage is Conv-BN-neuron-[pool]; the RPE is Conv-BN-neuron, so the
      output is a sum of spikes, in {0, 1, 2}.
    - ``"membrane"`` (the Spike-driven Transformer's MS_SPS): the last stage has no neuron and pools its BN
      output (a membrane); the RPE is neuron-Conv-BN, a membrane shortcut.
    - ``"pre_activation"`` (Spikingformer's tokenizer): a first Conv-BN on the frames, then one
      neuron-[pool]-Conv-BN unit per later width, so every other conv reads spikes and the stem ends in a BN;
      stage i's pool is the one after conv i. Spikingformer builds no RPE (``rpe=False``).

    ``cml`` (Zhou et al., "Enhancing the Performance of Transformer-based Spiking Neural Networks by
    SNN-optimized Downsampling with Precise Gradient Backpropagation", arXiv 2305.05954): every pool takes
    the BN output, before the neuron, rather than the spikes (conv-BN-pool-neuron; in the pre-activation
    stream each pool follows its BN). The modules and their names are the same either way.

    ``tokens``: return ``[T, B, h*w, D]`` tokens (row-major positions, as the authors flatten) rather than
    the ``[T, B, D, h, w]`` map.
    """

    # 0.1.0's layout: its units held a ConvBN, its RPE was Sequential(ConvBN, neuron) (SPS) or a ConvBN after
    # ``rpe_neuron`` (MS_SPS); read by models/base.py's upgrade_legacy_keys.
    legacy_renames = (
        (r"^stages\.(\d+)\.conv_bn\.", r"stages.\1."),
        (r"^rpe\.0\.", "rpe."),
        (r"^rpe\.1\.", "rpe.neuron."),
        (r"^rpe_neuron\.", "rpe.neuron."),
    )

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (128, 128),
        num_stages: int = 4,
        pool_stages: Sequence[int] = (0, 1, 2, 3),
        rpe: bool = True,
        widths: Sequence[int] | None = None,
        stream: str = "spikes",
        tokens: bool = True,
        cml: bool = False,
    ):
        super().__init__()
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        widths = halving_widths(embed_dim, num_stages) if widths is None else list(widths)
        if len(widths) != num_stages or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list {num_stages} stage widths ending in embed_dim {embed_dim}")
        pool_stages = tuple(pool_stages)
        poolable = num_stages - 1 if stream == "pre_activation" else num_stages  # nothing follows the last conv
        if any(not 0 <= i < poolable for i in pool_stages):
            raise ValueError(f"pool_stages {pool_stages} must lie in 0..{poolable - 1}")
        self.stream, self.tokens, self.cml = stream, tokens, bool(cml)
        c = [in_channels] + widths
        pool = [" pool" if i in pool_stages else "" for i in range(num_stages)]  # the pool after conv i

        if stream == "pre_activation":
            if cml:
                self.first = ConvUnit(c[0], c[1], order=f"conv bn{pool[0]}")
                orders = [f"neuron conv bn{pool[i]}" for i in range(1, num_stages)]
            else:
                self.first = ConvUnit(c[0], c[1], order="conv bn")
                orders = [f"neuron{pool[i - 1]} conv bn" for i in range(1, num_stages)]
            self.stages = nn.Sequential(*[ConvUnit(c[i], c[i + 1], neuron, order)
                                          for i, order in zip(range(1, num_stages), orders)])
        else:
            firing = num_stages if stream == "spikes" else num_stages - 1
            unit = "conv bn{} neuron" if cml else "conv bn neuron{}"
            self.stages = nn.Sequential(*[ConvUnit(c[i], c[i + 1], neuron, unit.format(pool[i]))
                                          for i in range(firing)])
            if stream == "membrane":
                self.last = ConvUnit(c[-2], c[-1], order=f"conv bn{pool[-1]}")
        rpe_order = "conv bn neuron" if stream == "spikes" else "neuron conv bn"
        self.rpe = ConvUnit(embed_dim, embed_dim, neuron, rpe_order) if rpe else None
        self.grid_size = tuple(pooled_size(s, len(pool_stages)) for s in img_size)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stream == "pre_activation":
            x = self.first(x)
        x = self.stages(x)
        if self.stream == "membrane":
            x = self.last(x)
        if self.rpe is not None:
            x = x + self.rpe(x)
        return x.flatten(3).transpose(2, 3) if self.tokens else x


class ShortcutPatchEmbed(nn.Module):
    """QKFormer's patch embedding: 3x3 Conv-BN-[pool]-neuron ``units`` (widths ``widths``, a pool where
    ``pools`` is True, on the BN output before the neuron) plus a "deformed shortcut", a 1x1 Conv-BN-neuron
    with stride ``shortcut_stride`` from the input (``shortcut_from=-1``) or from the output of unit
    ``shortcut_from``, whose spikes are added to the last unit's: the output, a ``[T, B, C, H, W]`` map,
    takes values in {0, 1, 2}.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], pools: Sequence[bool], neuron: NeuronFactory,
                 shortcut_from: int, shortcut_stride: int):
        super().__init__()
        widths, pools = list(widths), [bool(p) for p in pools]
        if len(widths) != len(pools) or not widths:
            raise ValueError(f"widths {widths} and pools {pools} must list the same (non-zero) number of units")
        if not -1 <= shortcut_from < len(widths) - 1:
            raise ValueError(f"shortcut_from {shortcut_from} must be -1 (the input) or a unit before the last")
        self.units = nn.ModuleList(
            ConvUnit(c_in, c_out, neuron, "conv bn pool neuron" if p else "conv bn neuron")
            for c_in, c_out, p in zip([in_channels] + widths[:-1], widths, pools)
        )
        self.shortcut_from = shortcut_from
        shortcut_in = in_channels if shortcut_from < 0 else widths[shortcut_from]
        self.shortcut = ConvUnit(shortcut_in, widths[-1], neuron, "conv bn neuron", kernel_size=1,
                                 stride=shortcut_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = x
        for i, unit in enumerate(self.units):
            x = unit(x)
            if i == self.shortcut_from:
                feat = x
        return x + self.shortcut(feat)
