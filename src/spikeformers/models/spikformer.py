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

from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting, SpikingSelfAttention
from ..neurons import neuron_factory
from .registry import register_model


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class Spikformer(nn.Module):
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
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.img_size = _pair(img_size)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.time_steps = time_steps
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

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Accept ``[T, B, C, H, W]`` sequences, or ``[B, C, H, W]`` images repeated over T."""
        C, (H, W) = self.in_channels, self.img_size
        if x.dim() == 4 and tuple(x.shape[1:]) == (C, H, W):
            return x.unsqueeze(0).expand(self.time_steps, *x.shape)  # direct encoding
        if x.dim() != 5 or tuple(x.shape[2:]) != (C, H, W):
            raise ValueError(
                f"{type(self).__name__} expects input [T, B, C, H, W] with C={C}, H={H}, W={W} "
                f"(time first; or static images [B, {C}, {H}, {W}]), got shape {tuple(x.shape)}"
            )
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block."""
        return self.blocks(self.patch_embed(self.check_input(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> Spikformer:
    return Spikformer(**{**defaults, **overrides})


def _register(fn):
    fn.model_class = Spikformer
    return register_model(fn)


@_register
def spikformer_dvs(**overrides: Any) -> Spikformer:
    """Spikformer-2-256, CIFAR10-DVS, T=16, 128x128 (ICLR 2023: 80.9% top-1; 78.9% at T=10)."""
    return _create(dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256,
                        depth=2, num_heads=16, mlp_ratio=4.0, attn_scale=0.25), overrides)


@_register
def spikformer_tiny(**overrides: Any) -> Spikformer:
    """A 1-64 Spikformer for the built-in DVS digits (24x24, T=4); trains on a laptop CPU in minutes."""
    return _create(dict(img_size=24, in_channels=2, num_classes=10, time_steps=4, embed_dim=64,
                        depth=1, num_heads=4, mlp_ratio=4.0, attn_scale=0.25,
                        sps_pool_stages=(1, 2)), overrides)
