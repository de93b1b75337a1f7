"""TIM (Shen et al., "TIM: An Efficient Temporal Interaction Module for Spiking Transformer", IJCAI 2024).

A Spikformer whose SSA replaces the spike query Q by TIM(Q), the Temporal
Interaction Module, on 64x64 event frames. The released code's quirks
(``official_quirks``), its neuron and its input size: docs/models.md, "TIM".
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting, SpikingSelfAttention
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs
from .spikformer import Spikformer

# The thresholds the authors write for their attention and TIM neurons.
WRITTEN_THRESHOLDS = dict(attn=0.5, tim_in=0.3, tim_out=0.5)


class TemporalInteraction(nn.Module):
    """TIM on the spike query ``[T, B, heads, N, d]``, one step at a time::

        y[0] = Q[0]
        y[t] = out_neuron(alpha * in_neuron(conv(y[t-1])) + (1 - alpha) * Q[t])   t >= 1

    ``conv`` is a Conv1d (kernel ``kernel_size``, padding k // 2, bias) whose
    channels are the N tokens (``num_tokens``) and which slides along the d
    entries of each head. The recursion feeds the previous output, not
    Q[t-1], so it is no single multi-step neuron call.

    The two neurons keep their membranes from step to step. The library's
    neurons are stateless (a call integrates a whole ``[T, ...]`` input from
    rest), so step t calls each neuron on all of its inputs so far and keeps
    the last step's spikes: the same values and gradients as a neuron carried
    from step to step, for any neuron class, at the cost of T(T-1)/2 neuron
    steps instead of T-1.

    ``in_threshold`` / ``out_threshold``: the two neurons' own thresholds
    (the authors write 0.3 and 0.5); None gives them the factory's.
    """

    def __init__(self, num_tokens: int, neuron: NeuronFactory, kernel_size: int = 5, alpha: float = 0.5,
                 in_threshold: float | None = 0.3, out_threshold: float | None = 0.5):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (padding k // 2 keeps the head dimension), got {kernel_size}")
        self.num_tokens = num_tokens
        self.alpha = float(alpha)
        self.interactor = nn.Conv1d(num_tokens, num_tokens, kernel_size, padding=kernel_size // 2, bias=True)
        # both see [t, B, heads, N, d]: the tokens are the interactor's channels
        width = dict(channels=num_tokens, channel_dim=3)
        self.in_neuron = neuron(**width) if in_threshold is None else neuron(**width, v_threshold=in_threshold)
        self.out_neuron = neuron(**width) if out_threshold is None else neuron(**width, v_threshold=out_threshold)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 5 or q.shape[3] != self.num_tokens:
            raise ValueError(
                f"TemporalInteraction expects [T, B, heads, N, head_dim] with N={self.num_tokens} tokens "
                f"(its interactor's channels), got shape {tuple(q.shape)}"
            )
        T, B, H, N, D = q.shape
        outputs = [q[0]]
        interactions: list[torch.Tensor] = []  # in_neuron's inputs so far
        mixtures: list[torch.Tensor] = []  # out_neuron's inputs so far
        for t in range(1, T):
            interactions.append(self.interactor(outputs[-1].reshape(B * H, N, D)).reshape(B, H, N, D))
            u = self.in_neuron(torch.stack(interactions))[-1]
            mixtures.append(self.alpha * u + (1.0 - self.alpha) * q[t])
            outputs.append(self.out_neuron(torch.stack(mixtures))[-1])
        return torch.stack(outputs)

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}, alpha={self.alpha}"


class TIMSpikformer(SpikingClassifier):
    """SPS stem -> L x [x + TIM-SSA(x); x + MLP(x)] -> mean over tokens and time -> Linear; the SSA
    projection has no bias. ``official_quirks``: the thresholds the released code fires at (docs/models.md);
    ``attn_threshold``, ``tim_in_threshold``, ``tim_out_threshold``: a number wins over both."""

    neuron_defaults = {"detach_mem": True}  # braincog's MyNode detaches the membrane at every step
    official_unused = r"^(block\.\d+\.norm[12]\.(weight|bias)|.+_lif\d?\.(threshold|act_fun\.alpha))$"
    official_renames = Spikformer.official_renames + (  # the authors' code is Spikformer's, plus TIM
        (r"^block\.(\d+)\.attn\.TIM\.interactor\.(weight|bias)$", r"blocks.\1.attn.q_mixer.interactor.\2"),
    )
    legacy_renames = ((r"^blocks\.(\d+)\.attn\.tim\.", r"blocks.\1.attn.q_mixer."),)

    def __init__(self, embed_dim: int = 256, depth: int = 2, num_heads: int = 16, mlp_ratio: float = 4.0,
                 attn_scale: float = 0.25, tim_kernel_size: int = 5, tim_alpha: float = 0.5,
                 official_quirks: bool = False, attn_threshold: float | None = None,
                 tim_in_threshold: float | None = None, tim_out_threshold: float | None = None, **common: Any):
        super().__init__(**common)
        self.official_quirks = bool(official_quirks)

        def threshold(own: float | None, written: str) -> float | None:
            # None: the factory's threshold, which is what the released code's neurons get
            if own is not None:
                return float(own)
            return None if self.official_quirks else WRITTEN_THRESHOLDS[written]

        neuron = self.neuron_factory
        self.patch_embed = SpikingPatchSplitting(self.in_channels, embed_dim, neuron, img_size=self.img_size)
        num_tokens = self.patch_embed.num_tokens
        self.blocks = nn.Sequential(*[
            Block(SpikingSelfAttention(
                      embed_dim, num_heads, neuron, scale=attn_scale, attn_threshold=threshold(attn_threshold, "attn"),
                      proj_bias=False,
                      q_mixer=TemporalInteraction(num_tokens, neuron, tim_kernel_size, tim_alpha,
                                                  threshold(tim_in_threshold, "tim_in"),
                                                  threshold(tim_out_threshold, "tim_out"))),
                  SpikingMLP(embed_dim, neuron, mlp_ratio))
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))

    def official_warnings(self, official: dict[str, torch.Tensor]) -> list[str]:
        """The thresholds a released checkpoint stores are those its neurons fired at (1.0 everywhere: the
        released code ignores the written 0.5 / 0.3 / 0.5); where this model's attention or TIM neurons
        differ, say so and point to ``official_quirks=True``."""
        ours = {"attn_lif": "attn_neuron", "TIM.in_lif": "q_mixer.in_neuron", "TIM.out_lif": "q_mixer.out_neuron"}
        modules = dict(self.named_modules())
        differing = []
        for key, value in official.items():
            m = re.match(r"^block\.(\d+)\.attn\.(attn_lif|TIM\.in_lif|TIM\.out_lif)\.threshold$", key)
            neuron = modules.get(f"blocks.{m[1]}.attn.{ours[m[2]]}") if m and value.numel() == 1 else None
            if neuron is not None and abs(float(value) - neuron.v_threshold) > 1e-6:
                differing.append(f"{key} = {float(value):g} (model: {neuron.v_threshold:g})")
        if not differing:
            return []
        return ["The checkpoint's neurons fired at other thresholds than this model's: " + "; ".join(differing)
                + ". Its weights are loaded; build the model with official_quirks=True to compute what it was "
                "trained with."]


_DVS = dict(img_size=64, in_channels=2, num_classes=10, time_steps=10, embed_dim=256, depth=2, num_heads=16,
            attn_scale=0.25, tim_kernel_size=5, tim_alpha=0.5)

register_configs(TIMSpikformer, "TIM (IJCAI 2024)", {
    "tim_dvs": Config(_DVS, "CIFAR10-DVS", "81.6", "Fancyssc/Spiking-Transformers README (by the TIM first author)",
                      note="released code: official_quirks=True"),
})
