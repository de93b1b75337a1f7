"""TIM (Shen et al., "TIM: An Efficient Temporal Interaction Module for Spiking Transformer", IJCAI 2024).

A Spikformer-2-256 on 64x64 event frames, T=10 (16 tokens), whose SSA
replaces the spike query Q by TIM(Q), the Temporal Interaction Module
(``layers/tim.py``): SPS stem -> L x [x + TIM-SSA(x); x + MLP(x)] -> mean
over tokens and time -> Linear. The SSA projection has no bias. Exact
architecture: ``shared/specs/tim.md``; the authors' unused tensors (the
LayerNorms, 2,048 parameters, and every neuron's two scalar Parameters, 50)
are not built.

The authors' neuron (braincog ``MyNode``) is LIF with tau 2, hard reset to 0,
threshold 1, sigmoid surrogate alpha 4, and a membrane detached at every step
(no gradient through time), so this model's neurons default to
``detach_mem=True``; ``neuron_kwargs=dict(detach_mem=False)`` restores BPTT.

The released code's quirk, ``official_quirks``: ``MyNode`` takes its
threshold as ``threshold=`` and silently swallows the ``v_threshold=`` the
authors wrote, so the attention neuron (written 0.5) and TIM's two neurons
(written 0.3 and 0.5) fire at the default threshold 1.0 like every other
neuron. TIM's output neuron then never fires (its input is at most 1, tau 2;
exact up to T=25 in float32), and TIM returns Q[0] at t=0 and exact zeros
for t >= 1: Q reaches the attention only at the first step. The interactor
conv and TIM's input neuron still take part in the surrogate backward pass,
so the whole loop is run.

- ``official_quirks=False`` (default): the module the paper describes, with
  the thresholds as written (attention 0.5, TIM 0.3 / 0.5).
- ``official_quirks=True``: what the released code computes. Any checkpoint
  trained with Fancyssc/TIM or BrainCog's ``examples/TIM`` depends on it, and
  so does the reported 81.6% on CIFAR10-DVS as far as the published code
  shows (the authors' later STEP re-implementation also has a TIM output
  neuron that never fires; spec section 9). Those three neurons then take the
  threshold of the other neurons (1.0 unless ``neuron_kwargs`` sets one), as
  the released code gives them its neuron's default.

Not reproduced: the code before 2024-09-23 split Q, K and V into heads
without transposing tokens and channels (spec section 7), so attention mixed
channel groups; the paper's numbers may predate that fix. This model uses the
current layout.

Neuron settings: ``neuron`` (a name or class) and ``neuron_kwargs`` reach
every neuron the model builds. The attention neuron and TIM's two neurons
keep their own thresholds (above): a ``v_threshold`` in ``neuron_kwargs``
changes every other neuron but not those; set ``attn_threshold``,
``tim_in_threshold`` or ``tim_out_threshold`` to change them (an explicit
value wins over ``official_quirks``).

Checkpoints of the released code (no trained one is published) load with
``create_model('tim_dvs', official_quirks=True, checkpoint_path=FILE)``: the
converter below renames the authors' keys and drops their unused tensors.

Input size: TIM's interactor treats the tokens as channels, so it is built
for the token count of ``img_size`` (16 at 64x64, where it equals the
authors' ``dim // num_heads``); the model accepts only that size (a
``ValueError`` names it). The authors' code runs only at 64x64; another
``img_size`` builds an interactor for its own token count, as the STEP
re-implementation does (spec sections 4 and 9).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Sequence

import torch
from torch import nn

from ..layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting
from ..layers.tim import TimSelfAttention
from ..neurons import neuron_factory
from .base import SpikingClassifier
from .checkpoints import StateDict, register_converter, rename_state_dict
from .registry import register_model

# The thresholds the authors write for their attention and TIM neurons.
WRITTEN_THRESHOLDS = dict(attn=0.5, tim_in=0.3, tim_out=0.5)


class TIMSpikformer(SpikingClassifier):
    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        in_channels: int = 2,
        num_classes: int = 10,
        time_steps: int = 10,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        attn_scale: float = 0.25,
        tim_kernel_size: int = 5,
        tim_alpha: float = 0.5,
        official_quirks: bool = False,
        attn_threshold: float | None = None,
        tim_in_threshold: float | None = None,
        tim_out_threshold: float | None = None,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        self.official_quirks = bool(official_quirks)
        spiking = neuron_factory(neuron, **{"detach_mem": True, **(neuron_kwargs or {})})

        def threshold(own: float | None, written: float) -> float | None:
            # None: the factory's threshold, which is what the released code's neurons get
            if own is not None:
                return float(own)
            return None if self.official_quirks else written

        self.patch_embed = SpikingPatchSplitting(in_channels, embed_dim, spiking, img_size=self.img_size)
        num_tokens = self.patch_embed.num_tokens
        self.blocks = nn.Sequential(*[
            Block(
                TimSelfAttention(
                    embed_dim, num_heads, num_tokens, spiking, scale=attn_scale,
                    attn_threshold=threshold(attn_threshold, WRITTEN_THRESHOLDS["attn"]),
                    tim_kernel_size=tim_kernel_size, tim_alpha=tim_alpha,
                    tim_in_threshold=threshold(tim_in_threshold, WRITTEN_THRESHOLDS["tim_in"]),
                    tim_out_threshold=threshold(tim_out_threshold, WRITTEN_THRESHOLDS["tim_out"]),
                ),
                SpikingMLP(embed_dim, spiking, mlp_ratio),
            )
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


# The authors' tensors that the forward never reads (spec section 8): the blocks' LayerNorms and every
# braincog neuron's two scalar Parameters (its threshold and its surrogate's alpha).
_UNUSED = re.compile(r"^(block\.\d+\.norm[12]\.(weight|bias)|.+_lif\d?\.(threshold|act_fun\.alpha))$")
_RENAMES = [  # authors' key -> ours (spec section 8)
    (re.compile(r"^patch_embed\.proj_(conv|bn)(\d?)\.(.+)$"),
     lambda m: f"patch_embed.stages.{m[2] or 0}.conv_bn.{m[1]}.{m[3]}"),
    (re.compile(r"^patch_embed\.rpe_(conv|bn)\.(.+)$"), lambda m: f"patch_embed.rpe.0.{m[1]}.{m[2]}"),
    (re.compile(r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_conv\.(.+)$"),
     lambda m: f"blocks.{m[1]}.{m[2]}.{m[3]}.linear.{m[4]}"),
    (re.compile(r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_bn\.(.+)$"),
     lambda m: f"blocks.{m[1]}.{m[2]}.{m[3]}.bn.{m[4]}"),
    (re.compile(r"^block\.(\d+)\.attn\.TIM\.interactor\.(weight|bias)$"),
     lambda m: f"blocks.{m[1]}.attn.tim.interactor.{m[2]}"),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m[1]}"),
]
# The neurons whose thresholds the paper and the released code disagree on: authors' name -> ours.
_QUIRK_NEURONS = re.compile(r"^block\.(\d+)\.attn\.(attn_lif|TIM\.in_lif|TIM\.out_lif)\.threshold$")
_OUR_NEURON = {"attn_lif": "attn_neuron", "TIM.in_lif": "tim.in_neuron", "TIM.out_lif": "tim.out_neuron"}


@register_converter(TIMSpikformer)
def convert_official_tim(official: StateDict, model: TIMSpikformer) -> StateDict:
    """Fancyssc/TIM (= BrainCog ``examples/TIM``) state_dicts to this model's keys.

    The unused LayerNorms and the neurons' scalar ``threshold`` / ``act_fun.alpha``
    Parameters are dropped; Conv1d kernels ``[out, in, 1]`` become Linear weights.
    The thresholds a checkpoint stores are the ones its neurons fired at (1.0
    everywhere in the released code, which ignores the written 0.5 / 0.3 / 0.5):
    where the attention or TIM neurons of ``model`` have other thresholds, a
    warning names them and points to ``official_quirks=True``, the model that
    computes what the checkpoint was trained with. Unknown keys are kept, so
    that the loader reports them.
    """
    modules = dict(model.named_modules())
    differing = []
    for key, value in official.items():
        m = _QUIRK_NEURONS.match(key)
        if m is None or value.numel() != 1:
            continue
        ours = modules.get(f"blocks.{m[1]}.attn.{_OUR_NEURON[m[2]]}")
        if ours is not None and abs(float(value) - ours.v_threshold) > 1e-6:
            differing.append(f"{key} = {float(value):g} (model: {ours.v_threshold:g})")
    if differing:
        warnings.warn(
            "The checkpoint's neurons fired at other thresholds than this model's: " + "; ".join(differing)
            + ". Its weights are loaded; build the model with official_quirks=True to compute what it was "
            "trained with.", stacklevel=3)
    return rename_state_dict(official, _RENAMES, model, unused=_UNUSED)


PAPER = "TIM (IJCAI 2024)"
_DVS = dict(img_size=64, in_channels=2, num_classes=10, time_steps=10, embed_dim=256, depth=2, num_heads=16,
            mlp_ratio=4.0, attn_scale=0.25, tim_kernel_size=5, tim_alpha=0.5)


@register_model(model_class=TIMSpikformer, paper=PAPER, dataset="CIFAR10-DVS", reported="81.6",
                source="Fancyssc/Spiking-Transformers README (by the TIM first author)")
def tim_dvs(**overrides: Any) -> TIMSpikformer:
    """TIM Spikformer-2-256, CIFAR10-DVS, T=10, 64x64 (IJCAI 2024: 81.6% top-1; released code: official_quirks)."""
    return TIMSpikformer(**{**_DVS, **overrides})
