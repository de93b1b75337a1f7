"""Spike-driven Transformer's stem (MS_SPS): conv stages, then a membrane-shortcut RPE.

``[T, B, C, H, W]`` frames -> ``[T, B, D, h, w]`` *membrane* feature maps
(real values, not spikes: Spike-driven Transformer blocks start with a
neuron, so the stream between them carries membrane potentials).

Stages 0..n-2 are 3x3 Conv -> BN -> neuron, each optionally followed by a 3x3
stride-2 max-pool on its spikes. The last stage is Conv -> BN with its
max-pool applied to the BN output (the membrane), before any neuron; that
pooled map ``f`` is the stem's feature. The relative position embedding is
then ``f + BN(Conv(neuron(f)))``: a membrane shortcut, with no neuron after
the RPE's BN (the authors build one, ``rpe_lif``, and never call it; it is
not built here).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN
from .patch_embed import ConvBNSpike, pooled_size
from .pooling import MaxPool2d


class MembranePatchEmbed(nn.Module):
    """MS_SPS. ``pool_stages`` lists the stages followed by a max-pool: the
    authors' ``pooling_stat`` string with '1' at those positions ("0011" is
    ``(2, 3)``, "1111" is ``(0, 1, 2, 3)``)."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        neuron: NeuronFactory,
        img_size: tuple[int, int] = (64, 64),
        pool_stages: Sequence[int] = (2, 3),
        widths: Sequence[int] | None = None,
    ):
        super().__init__()
        if widths is None:
            if embed_dim % 8:
                raise ValueError(f"embed_dim {embed_dim} must be divisible by 8 (stem widths D/8, D/4, D/2, D)")
            widths = [embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        widths = list(widths)
        if not widths or widths[-1] != embed_dim:
            raise ValueError(f"widths {widths} must list the stem's stage widths, ending in embed_dim {embed_dim}")
        n = len(widths)
        pool_stages = tuple(pool_stages)
        if any(not 0 <= i < n for i in pool_stages):
            raise ValueError(f"pool_stages {pool_stages} must lie in 0..{n - 1}")
        channels = [in_channels] + widths
        self.stages = nn.Sequential(*[
            ConvBNSpike(channels[i], channels[i + 1], neuron, pool=i in pool_stages) for i in range(n - 1)
        ])
        self.last = ConvBN(channels[n - 1], embed_dim)
        self.last_pool = MaxPool2d(kernel_size=3, stride=2, padding=1) if (n - 1) in pool_stages else None
        self.rpe_neuron = neuron()
        self.rpe = ConvBN(embed_dim, embed_dim)
        self.grid_size = tuple(pooled_size(s, len(pool_stages)) for s in img_size)

    @property
    def num_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.last(self.stages(x))
        if self.last_pool is not None:  # pooled on the membrane, before the neuron (authors' stage 3)
            T, B = f.shape[:2]
            f = self.last_pool(f.flatten(0, 1))
            f = f.reshape(T, B, *f.shape[1:])
        return f + self.rpe(self.rpe_neuron(f))
