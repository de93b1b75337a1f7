"""The Spike-driven Transformer's parts (Yao et al., NeurIPS 2023), which its successors share.

Every branch here starts with a neuron and ends with a BN, so it takes and
returns *membrane* maps ``[T, B, C, H, W]`` and the caller adds the branch to
a stream of membranes (the "membrane shortcut"):

- :class:`SpikeDrivenSelfAttention` (SDSA): spikes ``s = neuron(x)``;
  ``q, k, v = neuron(BN(Conv1x1(s)))`` (no bias); ``kv = sum over tokens of
  k*v`` per channel; ``kv = neuron(kv)`` with its own threshold (0.5, the
  authors' ``talking_heads_lif``); the output is ``BN(Conv1x1(q * kv))``
  (with bias). No matrix product and no scale: ``q * kv`` masks q's channels,
  so heads matter only to the erode.
- :class:`MembraneMLP` (MS_MLP): neuron -> Conv1x1 -> BN -> neuron -> Conv1x1
  -> BN, both convs with a bias (also Meta-SpikeFormer's and Spikingformer's MLP).
- :class:`SpikingTokenMeanHead`: mean over tokens (a membrane) -> neuron ->
  Linear -> mean over T (also Meta-SpikeFormer's, with its distillation head).

The erode of SDSA (the authors' ``dvs_mode``) is a 3x3 max-pool, stride 1, on spikes:

- ``'authors'``: exactly the authors' code. k and v are eroded spatially
  (3x3 over H, W per channel); ``k*v`` and ``q*kv`` are eroded in the
  ``[T, B, heads, N, d]`` layout, so the 3x3 window spans neighbours in the
  *flattened* token order (token (r, w-1) touches (r+1, 0); vertical
  neighbours do not touch) and neighbouring channels within one head. The
  published CIFAR10-DVS results were trained with this.
- ``'spatial'``: all four erodes 3x3 over (H, W) per channel, what the
  operation's name suggests. Not the authors' computation.
- ``None``: no erode (the authors' static-image models).

With the 'authors' erode every nonzero kv sum is at least 2 (the window
spans tokens n-1..n+1), so any ``kv_threshold`` in (0, 1] gives the same
output; without erode (static images) 0.5 differs from 1. The authors'
unused ``attn_lif``, ``talking_heads`` Conv1d and ``scale`` are not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons import NeuronFactory
from .fold import ConvBN

ERODE_MODES = (None, "authors", "spatial")


def erode_map(x: torch.Tensor) -> torch.Tensor:
    """3x3 max over (H, W), stride 1, for every ``[T, B, C]`` of a ``[T, B, C, H, W]`` map."""
    return F.max_pool2d(x.flatten(0, 2).unsqueeze(1), 3, 1, 1).reshape(x.shape)


def erode_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The authors' erode of ``[T, B, C, H, W]`` seen as ``[T, B, heads, N, d]``: 3x3 max over (n, j)."""
    T, B, C, H, W = x.shape
    heads = x.reshape(T, B, num_heads, C // num_heads, H * W).transpose(-1, -2)  # [T,B,h,N,d], c = head*d + j
    heads = F.max_pool2d(heads.reshape(-1, 1, H * W, C // num_heads), 3, 1, 1)
    return heads.reshape(T, B, num_heads, H * W, C // num_heads).transpose(-1, -2).reshape(x.shape)


class SpikeDrivenSelfAttention(nn.Module):
    """SDSA branch ``[T, B, C, H, W]`` membrane -> ``[T, B, C, H, W]`` membrane (residual not added)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        kv_threshold: float = 0.5,
        erode: str | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if erode not in ERODE_MODES:
            raise ValueError(f"erode must be one of {ERODE_MODES}, got {erode!r}")
        self.num_heads = num_heads
        self.erode = erode
        maps = dict(channels=dim, channel_dim=2)  # every neuron here sees [T, B, C, H, W] (kv: [T, B, C, 1, 1])
        self.input_neuron = neuron(**maps)
        self.q = ConvBN(dim, dim, kernel_size=1)
        self.q_neuron = neuron(**maps)
        self.k = ConvBN(dim, dim, kernel_size=1)
        self.k_neuron = neuron(**maps)
        self.v = ConvBN(dim, dim, kernel_size=1)
        self.v_neuron = neuron(**maps)
        self.kv_neuron = neuron(**maps, v_threshold=kv_threshold)
        self.proj = ConvBN(dim, dim, kernel_size=1, bias=True)

    def _erode_product(self, x: torch.Tensor) -> torch.Tensor:
        if self.erode == "authors":
            return erode_heads(x, self.num_heads)
        return erode_map(x) if self.erode == "spatial" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_neuron(x)
        q = self.q_neuron(self.q(s))
        k = self.k_neuron(self.k(s))
        v = self.v_neuron(self.v(s))
        if self.erode is not None:
            k, v = erode_map(k), erode_map(v)
        kv = self._erode_product(k * v).sum((-2, -1), keepdim=True)  # [T, B, C, 1, 1]: sum over tokens
        y = self._erode_product(q * self.kv_neuron(kv))
        return self.proj(y)


class MembraneMLP(nn.Module):
    """MS_MLP branch, membrane ``[T, B, C, H, W]`` in and out (residual not added).

    When the hidden width equals the input width the Spike-driven Transformer's
    code adds a second, inner membrane shortcut after the first BN
    (``inner_shortcut``, by default exactly then); its successors build
    the MLP without it.
    """

    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0, inner_shortcut: bool | None = None):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.inner_shortcut = hidden == dim if inner_shortcut is None else inner_shortcut
        self.fc1_neuron = neuron(channels=dim, channel_dim=2)
        self.fc1 = ConvBN(dim, hidden, kernel_size=1, bias=True)
        self.fc2_neuron = neuron(channels=hidden, channel_dim=2)
        self.fc2 = ConvBN(hidden, dim, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.fc1_neuron(x))
        if self.inner_shortcut:  # authors: x1 = x + f1; out = x1 + f2(x1), so the branch is f1 + f2(x1)
            return h + self.fc2(self.fc2_neuron(x + h))
        return self.fc2(self.fc2_neuron(h))


class SpikingTokenMeanHead(nn.Module):
    """``[T, B, C, H, W]`` membrane map -> mean over tokens -> neuron -> Linear -> mean over T: logits ``[B, classes]``.

    ``per_step``: return the per-time-step logits ``[T, B, classes]`` instead
    (the Spike-driven Transformer's TET output). ``kd`` (Meta-SpikeFormer's
    distillation): a second Linear ``fc_kd`` on the same spikes; the head then
    returns the pair ``(logits, logits_kd)`` in training and their average in
    eval. ``trunc_normal``: initialise the Linear layers with timm's truncated
    normal (std 0.02, cut at +-2 absolute) and zero biases, as Meta-SpikeFormer
    does; otherwise PyTorch's default, as the Spike-driven Transformer.
    """

    def __init__(self, dim: int, num_classes: int, neuron: NeuronFactory, per_step: bool = False, kd: bool = False,
                 trunc_normal: bool = False):
        super().__init__()
        self.neuron = neuron(channels=dim, channel_dim=-1)  # sees [T, B, C]
        self.fc = nn.Linear(dim, num_classes)
        self.fc_kd = nn.Linear(dim, num_classes) if kd else None
        self.per_step = per_step
        if trunc_normal:
            for fc in filter(None, (self.fc, self.fc_kd)):
                nn.init.trunc_normal_(fc.weight, std=0.02)
                nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s = self.neuron(x.flatten(3).mean(-1))  # [T, B, C]
        logits = self.fc(s) if self.per_step else self.fc(s).mean(0)
        if self.fc_kd is None:
            return logits
        logits_kd = self.fc_kd(s) if self.per_step else self.fc_kd(s).mean(0)
        return (logits, logits_kd) if self.training else (logits + logits_kd) / 2
