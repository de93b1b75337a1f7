"""Spike-driven Transformer (Yao et al., "Spike-driven Transformer", NeurIPS 2023), V1.

[optional 2x2 input average] -> MS_SPS stem (membrane features) ->
L x [x = x + SDSA(x); x = x + MLP(x)] -> mean over tokens -> neuron -> Linear
-> mean over T. The stream between blocks carries membrane potentials:
every branch starts with a neuron and ends with a BN, and residuals add
membranes, with no neuron after the sum (the "membrane shortcut"). Neurons
are SpikingJelly's LIF (tau 2, hard reset to 0, threshold 1, sigmoid
surrogate alpha 4, detach_reset). Exact architecture:
``shared/specs/spike_driven_transformer.md``. The authors' unused modules
(``attn_lif``, ``rpe_lif``, the ``talking_heads`` Conv1d: 64 parameters per
block, DropPath) are not built, so counts are the spec's less 64 per block.

Neuron settings: ``neuron`` (a name or class) and ``neuron_kwargs`` apply to
every neuron the model builds. The one with its own threshold is SDSA's kv
neuron (the authors' ``talking_heads_lif``, 0.5): a ``v_threshold`` in
``neuron_kwargs`` changes every other neuron but not that one; set
``kv_threshold`` to change it.

Authors' quirks, each an explicit option:

- ``erode`` ('authors' in the CIFAR10-DVS configurations, the authors'
  ``dvs_mode``): 3x3 max-pool "erodes" of k, v, k*v and q*kv, the last two
  over *flattened* token order and in-head channels; see
  ``layers/sdt_attention.py``. The reported CIFAR10-DVS accuracy was trained
  with it; 'spatial' erodes 3x3 over (H, W) instead, None (the static-image
  configurations) not at all.
- ``input_pool`` (2 in the CIFAR10-DVS configurations): the authors resize
  CIFAR10-DVS frames 128x128 -> 64x64 in their dataset transform with
  torchvision <= 0.14's bilinear resize, which for a factor 2 is exactly a
  2x2 average of the event counts; here it is the model's first step, so the
  model takes the sensor's 128x128 frames. ``img_size`` is always the size
  of the input the model is given. (Current torchvision antialiases by
  default and gives other values.) Their DVS results depend on it; a model
  fed pre-resized 64x64 frames uses ``img_size=64, input_pool=1``.
- ``tet`` (the authors' ``TET``): return per-step logits ``[T, B, classes]``
  for the TET loss instead of their mean over T. The
  published CIFAR10-DVS model trained with it; evaluation uses the mean,
  which is the default output; ``spikeformers train --tet`` trains with it
  (``spikeformers.engine.losses.tet_loss``).

Other options: ``sps_pool_stages`` lists the stem stages followed by a
3x3 stride-2 max-pool (the authors' ``pooling_stat``: "0011" is ``(2, 3)``);
``sps_widths`` the stem widths (default D/8, D/4, D/2, D); ``kv_threshold``
the kv neuron's threshold.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Block
from ..layers.sdt_attention import SpikeDrivenSelfAttention
from ..layers.sdt_embed import MembranePatchEmbed
from ..layers.sdt_head import SpikingTokenMeanHead
from ..layers.sdt_mlp import MembraneMLP
from ..neurons import neuron_factory
from .base import SpikingClassifier
from .checkpoints import StateDict, register_converter, rename_state_dict
from .registry import register_model


class SpikeDrivenTransformer(SpikingClassifier):
    def __init__(
        self,
        img_size: int | Sequence[int] = 128,
        in_channels: int = 2,
        num_classes: int = 10,
        time_steps: int = 16,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        kv_threshold: float = 0.5,
        erode: str | None = "authors",
        input_pool: int = 2,
        tet: bool = False,
        sps_pool_stages: Sequence[int] = (2, 3),
        sps_widths: Sequence[int] | None = None,
        neuron: str | type[nn.Module] = "lif",
        neuron_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(img_size, in_channels, num_classes, time_steps)
        if int(input_pool) != input_pool or input_pool < 1:
            raise ValueError(f"input_pool must be an integer >= 1, got {input_pool!r}")
        if any(s % input_pool for s in self.img_size):
            raise ValueError(f"img_size {self.img_size} must be divisible by input_pool {input_pool}")
        self.input_pool = int(input_pool)
        spiking = neuron_factory(neuron, **(neuron_kwargs or {}))
        net_size = tuple(s // self.input_pool for s in self.img_size)

        self.patch_embed = MembranePatchEmbed(in_channels, embed_dim, spiking, img_size=net_size,
                                              pool_stages=tuple(sps_pool_stages), widths=sps_widths)
        self.blocks = nn.Sequential(*[
            Block(
                SpikeDrivenSelfAttention(embed_dim, num_heads, spiking, kv_threshold=kv_threshold, erode=erode),
                MembraneMLP(embed_dim, spiking, mlp_ratio),
            )
            for _ in range(depth)
        ])
        self.head = SpikingTokenMeanHead(embed_dim, num_classes, spiking, per_step=tet)
        self._init_convs()

    def _init_convs(self) -> None:
        # the authors' _init_weights: timm trunc_normal_(std=.02) (truncated at +-2 absolute) on every
        # Conv2d, zero biases; BN and the head's Linear keep PyTorch's defaults
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return super().check_input(x)
        except ValueError as err:
            if self.input_pool > 1:  # a pre-resized input is the likeliest mistake
                H, W = self.img_size
                raise ValueError(
                    f"{err}; this model averages {self.input_pool}x{self.input_pool} pixels itself "
                    f"(input_pool={self.input_pool}: {H}x{W} in, {H // self.input_pool}x"
                    f"{W // self.input_pool} inside); for pre-resized frames use "
                    f"img_size={H // self.input_pool}, input_pool=1"
                ) from None
            raise

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D, h, w]`` after the last block, for an already checked input."""
        if self.input_pool > 1:
            T, B = x.shape[:2]
            x = F.avg_pool2d(x.flatten(0, 1), self.input_pool)
            x = x.reshape(T, B, *x.shape[1:])
        return self.blocks(self.patch_embed(x))


# The authors' parameters that their forward never uses (spec section 8); dropped on conversion.
_UNUSED = re.compile(r"^block\.\d+\.attn\.talking_heads\.weight$")
_RENAMES = [  # authors' key -> ours (spec section 9)
    (re.compile(r"^patch_embed\.proj_(conv|bn)([012]?)\.(.+)$"),
     lambda m: f"patch_embed.stages.{m[2] or 0}.conv_bn.{m[1]}.{m[3]}"),
    (re.compile(r"^patch_embed\.proj_(conv|bn)3\.(.+)$"), lambda m: f"patch_embed.last.{m[1]}.{m[2]}"),
    (re.compile(r"^patch_embed\.rpe_(conv|bn)\.(.+)$"), lambda m: f"patch_embed.rpe.{m[1]}.{m[2]}"),
    (re.compile(r"^block\.(\d+)\.(attn|mlp)\.(q|k|v|proj|fc1|fc2)_(conv|bn)\.(.+)$"),
     lambda m: f"blocks.{m[1]}.{m[2]}.{m[3]}.{m[4]}.{m[5]}"),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m[1]}"),
]


@register_converter(SpikeDrivenTransformer)
def convert_official_spike_driven(official: StateDict, model: SpikeDrivenTransformer) -> StateDict:
    """BICLab/Spike-Driven-Transformer (V1, ``sdt``) state_dicts to this model's keys.

    The unused ``talking_heads`` weights are dropped; unknown keys are kept
    so that the loader reports them.
    """
    return rename_state_dict(official, _RENAMES, model, unused=_UNUSED)


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> SpikeDrivenTransformer:
    return SpikeDrivenTransformer(**{**defaults, **overrides})


PAPER = "Spike-driven Transformer (NeurIPS 2023)"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, embed_dim=256, depth=2, num_heads=8, mlp_ratio=4.0,
            erode="authors", input_pool=2, sps_pool_stages=(2, 3))
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, depth=2, num_heads=8, mlp_ratio=4.0,
              erode=None, input_pool=1, sps_pool_stages=(2, 3))


@register_model(model_class=SpikeDrivenTransformer, paper=PAPER, dataset="CIFAR10-DVS", reported="80.0",
                source="paper, as quoted by third parties (unverified)")
def spike_driven_dvs(**overrides: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-256, CIFAR10-DVS, T=16, 128x128 averaged to 64x64 (NeurIPS 2023: 80.0% top-1)."""
    return _create(dict(_DVS, time_steps=16), overrides)


@register_model(model_class=SpikeDrivenTransformer, paper=PAPER, dataset="CIFAR10-DVS",
                source="the authors' released config (conf/cifar10-dvs/2_256_200E_t10_TET.yml)")
def spike_driven_dvs_t10(**overrides: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-256, CIFAR10-DVS, T=10, authors' released config (NeurIPS 2023: 80.0% is at T=16)."""
    return _create(dict(_DVS, time_steps=10), overrides)


@register_model(model_class=SpikeDrivenTransformer, paper=PAPER, dataset="CIFAR10", reported="95.6",
                source="paper, as quoted by third parties (unverified)")
def spike_driven_cifar10(**overrides: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-512, CIFAR10, T=4, 32x32 (NeurIPS 2023: 95.6% top-1)."""
    return _create(dict(_CIFAR, embed_dim=512), overrides)


@register_model(model_class=SpikeDrivenTransformer, paper=PAPER, dataset="CIFAR10",
                source="the authors' config conf/cifar10/2_256_300E_t4.yml")
def spike_driven_cifar10_2_256(**overrides: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-256, CIFAR10, T=4, 32x32 (NeurIPS 2023 code's 2_256 config; no reported accuracy)."""
    return _create(dict(_CIFAR, embed_dim=256), overrides)


@register_model(model_class=SpikeDrivenTransformer, paper=PAPER, dataset="CIFAR100", reported="78.4",
                source="paper, as quoted by third parties (unverified)")
def spike_driven_cifar100(**overrides: Any) -> SpikeDrivenTransformer:
    """Spike-driven Transformer-2-512, CIFAR100, T=4, 32x32 (NeurIPS 2023: 78.4% top-1)."""
    return _create(dict(_CIFAR, embed_dim=512, num_classes=100), overrides)
