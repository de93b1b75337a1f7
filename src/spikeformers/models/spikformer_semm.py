"""Spikformer+SEMM (Zhou et al., "Spiking Transformer with Experts Mixture", NeurIPS 2024), as STEP
(Fancyssc/STEP, ``cls/models/static/spikf_semm_cifar.py``; its ImageNet network, a different one,
``spikf_semm_imagenet.py``, through the options of :class:`SpikformerSEMM`) implements it.

SPS stem -> L x [x + SEMM attention(x); x + gated MLP(x)] -> mean over tokens and time -> Linear.
The spiking experts mixture replaces SSA's query by ``num_experts`` expert queries: each expert's
``Q_i K^T V * scale`` fires through its own neuron, and a spiking router (Linear-BN-neuron on the tokens)
gates which experts reach each token. The MLP splits its hidden spikes in two halves and gates one with a
depthwise-convolved copy of the other. STEP's BrainCog LIF is SpikingJelly's (tau 2, hard reset to 0,
sigmoid surrogate alpha 4, reset detached). The router's quirk (``official_quirks``): docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..layers.embed import SPS_RENAMES
from ..layers import Block, ClassifierHead, ConvUnit, LinearBN, SpikingPatchSplitting
from ..neurons import NeuronFactory
from .base import SpikingClassifier
from .registry import Config, register_configs


class ExpertsMixtureAttention(nn.Module):
    """SEMM on tokens ``[T, B, N, C]``: ``sum_i r_i * neuron_i(Q_i K^T V * scale)``, then Linear-BN-neuron.

    K (width ``expert_dim``) and V (width C) are Linear-BN-neuron spikes; expert i's query Q_i is a
    Linear-BN-neuron of width ``expert_dim``; the router's spikes ``r`` ``[T, B, N, num_experts]`` say which
    experts reach each token. There are no heads: one product per expert over the whole width.

    ``kv_norm``: K and V pass a BN before their neurons (STEP's CIFAR file); without it they fire straight off
    the Linear, as STEP's ImageNet file computes them (it builds the two BNs and never calls them).
    ``qkv_bias``: the K, V and expert-query Linears have biases (CIFAR) or not (ImageNet).

    ``official_quirks``: STEP's router normalises its ``[T*B, experts, N]`` view and reshapes the result to
    ``[T, B, N, experts]`` without transposing back, so token n's gate for expert e is read from the normalised
    logit of expert ``(n * E + e) // N`` at token ``(n * E + e) % N``. Without the quirk each token's gates
    are its own.
    """

    def __init__(self, dim: int, neuron: NeuronFactory, num_experts: int = 4, expert_dim: int = 96,
                 scale: float = 0.125, official_quirks: bool = False, kv_norm: bool = True, qkv_bias: bool = True):
        super().__init__()
        self.scale, self.official_quirks = scale, bool(official_quirks)
        self.k = LinearBN(dim, expert_dim, bias=qkv_bias) if kv_norm else nn.Linear(dim, expert_dim, bias=qkv_bias)
        self.k_neuron = neuron(channels=expert_dim, channel_dim=-1)
        self.v = LinearBN(dim, dim, bias=qkv_bias) if kv_norm else nn.Linear(dim, dim, bias=qkv_bias)
        self.v_neuron = neuron(channels=dim, channel_dim=-1)
        self.router = LinearBN(dim, num_experts)
        self.router_neuron = neuron(channels=num_experts, channel_dim=-1)
        self.queries = nn.ModuleList(LinearBN(dim, expert_dim, bias=qkv_bias) for _ in range(num_experts))
        self.query_neurons = nn.ModuleList(neuron(channels=expert_dim, channel_dim=-1) for _ in range(num_experts))
        self.expert_neurons = nn.ModuleList(neuron(channels=dim, channel_dim=-1) for _ in range(num_experts))
        self.proj = LinearBN(dim, dim)
        self.proj_neuron = neuron(channels=dim, channel_dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape
        k = self.k_neuron(self.k(x))
        v = self.v_neuron(self.v(x))
        gates = self.router(x)
        if self.official_quirks:
            E = gates.shape[-1]
            gates = gates.reshape(T * B, N, E).transpose(1, 2).reshape(T, B, N, E)
        gates = self.router_neuron(gates)
        kv = k.transpose(-2, -1) @ v  # [T, B, expert_dim, C]: spikes, so exact in either order
        y = 0
        for i, (query, query_neuron, expert_neuron) in enumerate(zip(self.queries, self.query_neurons,
                                                                     self.expert_neurons)):
            q = query_neuron(query(x))
            y = y + gates[..., i:i + 1] * expert_neuron((q @ kv) * self.scale)
        return self.proj_neuron(self.proj(y))


MLP_WIDTHS = ("ratio", "thirds")


class GatedDepthwiseMLP(nn.Module):
    """Tokens ``[T, B, N, C]`` on a ``grid`` (h, w): Linear-BN-neuron to ``hidden`` channels (``width``
    ``"ratio"``: ``int(dim * mlp_ratio)``; ``"thirds"``: ``dim // 3 * 16``, whatever the ratio, as STEP's ImageNet
    file computes it); the first half, on the grid, through a depthwise 3x3 Conv-BN-neuron (its conv
    biased if ``dw_bias``), gates the second half (a product of spikes); then Linear-BN-neuron back to C."""

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float, grid: tuple[int, int],
                 width: str = "ratio", dw_bias: bool = False):
        super().__init__()
        if width not in MLP_WIDTHS:
            raise ValueError(f"mlp_width must be one of {', '.join(MLP_WIDTHS)}, not {width!r}")
        hidden = int(dim * mlp_ratio) if width == "ratio" else dim // 3 * 16
        if hidden % 2:
            raise ValueError(f"the MLP's hidden width {hidden} must be even (it is split in two halves)")
        self.grid = grid
        self.fc1 = LinearBN(dim, hidden)
        self.fc1_neuron = neuron(channels=hidden, channel_dim=-1)
        self.dw = ConvUnit(hidden // 2, hidden // 2, neuron, "conv bn neuron", groups=hidden // 2,
                           bias=dw_bias)
        self.fc2 = LinearBN(hidden // 2, dim)
        self.fc2_neuron = neuron(channels=dim, channel_dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, _ = x.shape
        x1, x2 = self.fc1_neuron(self.fc1(x)).chunk(2, dim=-1)
        half = x1.shape[-1]
        x1 = self.dw(x1.transpose(2, 3).reshape(T, B, half, *self.grid)).flatten(3).transpose(2, 3)
        return self.fc2_neuron(self.fc2(x1 * x2))


class SpikformerSEMM(SpikingClassifier):
    """Spikformer+SEMM-``depth``-``embed_dim``: ``num_experts`` experts of width ``expert_dim`` per block
    (STEP's factory keeps 4 and 96 whatever the width), ``attn_scale``, ``mlp_ratio``; ``sps_pool_stages``:
    the SPS stages followed by a max-pool (STEP's CIFAR stem: the last two; its ImageNet stem: all four).
    ``kv_norm``, ``qkv_bias`` (:class:`ExpertsMixtureAttention`), ``mlp_width`` and ``mlp_dw_bias``
    (:class:`GatedDepthwiseMLP`): the CIFAR file's choices by default; STEP's ImageNet file takes the other
    (no K/V BN, unbiased K/V/query Linears, a hidden width of ``embed_dim // 3 * 16``: ``mlp_width="thirds"``, a biased depthwise conv)
    and no attention scale (``attn_scale=1``); its blocks' 1x1 convs keep PyTorch's default initialisation
    (``trunc_normal_blocks=False``: only the head is drawn from timm's truncated normal). ``official_quirks``: the router's reshape as STEP's CIFAR file
    computes it (:class:`ExpertsMixtureAttention`); its ImageNet file gates each token by its own router
    spikes, so the quirk is off there."""

    # STEP's BrainCog neurons store their threshold and surrogate alpha as tensors: not weights here
    official_unused = r"^.+\.(threshold|act_fun\.alpha)$"
    official_renames = SPS_RENAMES + (
        # the ImageNet file's 1x1 convs (k/v: no BN there, so the Linear itself) and the CIFAR file's Linears
        (r"^block\.(\d+)\.attn\.(k|v)_conv\.(.+)$", r"blocks.\1.attn.\2.\3"),
        (r"^block\.(\d+)\.attn\.(k|v|proj)_(linear|conv|bn)\.(.+)$",
         lambda m: f"blocks.{m[1]}.attn.{m[2]}.{'bn' if m[3] == 'bn' else 'linear'}.{m[4]}"),
        (r"^block\.(\d+)\.attn\.router([12])\.(.+)$",
         lambda m: f"blocks.{m[1]}.attn.router.{'linear' if m[2] == '1' else 'bn'}.{m[3]}"),
        (r"^block\.(\d+)\.attn\.ff_list\.(\d+)\.unit_(linear|conv|bn)\.(.+)$",
         lambda m: f"blocks.{m[1]}.attn.queries.{m[2]}.{'bn' if m[3] == 'bn' else 'linear'}.{m[4]}"),
        (r"^block\.(\d+)\.mlp\.(fc[12])_(linear|conv|bn)\.(.+)$",
         lambda m: f"blocks.{m[1]}.mlp.{m[2]}.{'bn' if m[3] == 'bn' else 'linear'}.{m[4]}"),
        (r"^block\.(\d+)\.mlp\.dw_(conv|bn)\.(.+)$", r"blocks.\1.mlp.dw.\2.\3"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 384, depth: int = 4, mlp_ratio: float = 4.0, attn_scale: float = 0.125,
                 num_experts: int = 4, expert_dim: int = 96, sps_pool_stages: Sequence[int] = (2, 3),
                 official_quirks: bool = False, kv_norm: bool = True, qkv_bias: bool = True,
                 mlp_width: str = "ratio", mlp_dw_bias: bool = False, trunc_normal_blocks: bool = True,
                 **common: Any):
        super().__init__(**common)
        neuron = self.neuron_factory
        self.official_quirks = bool(official_quirks)
        # read by models/checkpoints.py from the model: a checkpoint of STEP's ImageNet file still holds the two
        # BNs it never calls
        if not kv_norm:
            self.official_unused = self.official_unused + r"|^block\.\d+\.attn\.(k|v)_bn\..+$"
        self.patch_embed = SpikingPatchSplitting(self.in_channels, embed_dim, neuron, img_size=self.img_size,
                                                 num_stages=4, pool_stages=sps_pool_stages)
        self.blocks = nn.Sequential(*[
            Block(ExpertsMixtureAttention(embed_dim, neuron, num_experts, expert_dim, attn_scale, official_quirks,
                                          kv_norm, qkv_bias),
                  GatedDepthwiseMLP(embed_dim, neuron, mlp_ratio, self.patch_embed.grid_size, mlp_width,
                                    mlp_dw_bias))
            for _ in range(depth)
        ])
        self.head = ClassifierHead(embed_dim, self.num_classes)
        # STEP's _init_weights: timm's trunc_normal_(std=.02) on every nn.Linear; its ImageNet file's blocks are
        # 1x1 convs, which that leaves at PyTorch's default (the same as a Linear's), so only its head is drawn
        for m in (self if trunc_normal_blocks else self.head).modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def official_warnings(self, official: dict[str, torch.Tensor]) -> list[str]:
        odd = sorted(k for k, v in official.items()
                     if (k.endswith(".threshold") and v.item() != 1.0) or (k.endswith("act_fun.alpha") and v.item() != 4.0))
        if not odd:
            return []
        return [f"the checkpoint's neurons {', '.join(odd[:5])}{' ...' if len(odd) > 5 else ''} fired at other "
                f"thresholds or surrogate alphas than STEP's 1.0 and 4.0; set them with neuron_kwargs"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, N, D]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


PAPER = "Spikformer+SEMM (NeurIPS 2024)"
STEP = "Fancyssc/STEP README"
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, mlp_ratio=4.0,
              attn_scale=0.125, num_experts=4, expert_dim=96, sps_pool_stages=(2, 3))

register_configs(SpikformerSEMM, PAPER, {
    "spikformer_semm_cifar10": Config(_CIFAR, "CIFAR10", "95.78", STEP, note="4-384"),
    "spikformer_semm_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "79.04", STEP, note="4-384"),
    # STEP's cls/configs/spikf_semm/imgnet.yaml built by cls/models/static/spikf_semm_imagenet.py (expert
    # width: the factory's default 96; MLP hidden width 512 // 3 * 16 = 2720, whatever mlp_ratio says)
    "spikformer_semm_imagenet_8_512": Config(
        dict(img_size=224, in_channels=3, num_classes=1000, time_steps=4, embed_dim=512, depth=8,
             attn_scale=1.0, num_experts=4, expert_dim=96, sps_pool_stages=(0, 1, 2, 3), kv_norm=False,
             qkv_bias=False, mlp_width="thirds", mlp_dw_bias=True, trunc_normal_blocks=False),
        "ImageNet", "75.93", STEP, note="8-512"),
})
