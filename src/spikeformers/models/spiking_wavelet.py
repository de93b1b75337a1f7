"""Spiking Wavelet Transformer (Fang et al., "Spiking Wavelet Transformer", ECCV 2024).

Membrane SPS stem -> L x [x + FATM(x); x + MLP(x)] -> mean over tokens and time -> Linear. The
frequency-aware token mixer (FATM) replaces attention: the input spikes go through a spiking 2D Haar
wavelet transform, a block-diagonal learned mixing of the channels of each wavelet coefficient, the
inverse transform, and two convolutions shared by the channel blocks. The wavelet transforms fire
ternary spikes (-1, 0, 1) between their matrix products, through integrate-and-fire neurons with a
negative threshold (:class:`TernaryIF`, the authors' ``MultiStepNegIFNode``), which keep their own
dynamics whatever ``neuron`` is; every other neuron is SpikingJelly's LIF. Details: docs/models.md.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.embed import SPS_STREAM_RENAMES
from ..layers import ClassifierHead, MembraneMLP, SpikingPatchSplitting, SpikingTokenMeanHead, over_time
from ..neurons import NeuronFactory, get_surrogate
from .base import SpikingClassifier
from .registry import Config, register_configs


class TernaryIF(nn.Module):
    """Integrate-and-fire with a positive and a negative threshold: ``v += x``; a spike of +1 when
    ``v >= v_threshold``, of -1 when ``v <= -(neg_v_threshold + 0.001)``; then a hard reset to 0 (not
    detached, so the gradient also flows through the reset). Sigmoid surrogate (alpha 4) on both sides.
    ``[T, ...]`` in, ``[T, ...]`` out; stateless."""

    inhibit = 1e-3  # the authors' margin below the negative threshold

    def __init__(self, v_threshold: float = 1.0, neg_v_threshold: float = 0.5, alpha: float = 4.0):
        super().__init__()
        self.v_threshold, self.neg_v_threshold, self.alpha = float(v_threshold), float(neg_v_threshold), float(alpha)

    def _step(self, u: torch.Tensor) -> torch.Tensor:
        spikes = (u >= 0).to(u.dtype)
        if u.requires_grad:  # zero in value: the surrogate's derivative for backward
            spikes = spikes + (u - u.detach()) * get_surrogate("sigmoid").grad(u.detach(), self.alpha)
        return spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            v = v + x[t]
            s = self._step(v - self.v_threshold) - self._step(-(v + self.neg_v_threshold + self.inhibit))
            v = (1.0 - s.abs()) * v
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, neg_v_threshold={self.neg_v_threshold}, alpha={self.alpha}"


def haar_matrix(n: int) -> torch.Tensor:
    """The orthonormal ``n x n`` Haar matrix (n a power of 2): row 0 constant, then the wavelets from the
    coarsest to the finest, each row normalised (float64)."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"the Haar transform needs a power-of-2 side, got {n}")
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        k = h.shape[0]
        h = torch.cat([torch.kron(h, torch.tensor([[1.0, 1.0]], dtype=torch.float64)),
                       torch.kron(torch.eye(k, dtype=torch.float64), torch.tensor([[1.0, -1.0]], dtype=torch.float64))])
    return h / torch.linalg.norm(h, dim=1, keepdim=True)


class SpikingHaar2D(nn.Module):
    """The spiking 2D Haar transform of maps ``[..., n, n]``: forward ``H (fire(x H^T))`` (one ternary neuron,
    between the row and the column transforms), inverse ``H^T fire(fire(x) H)`` (two)."""

    def __init__(self, size: int, inverse: bool, threshold: float = 1.0):
        super().__init__()
        self.size, self.inverse = size, inverse
        self.row_neuron = TernaryIF(threshold) if inverse else None
        self.col_neuron = TernaryIF(threshold)
        self._matrices: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def matrix(self, like: torch.Tensor) -> torch.Tensor:
        """The Haar matrix in ``like``'s dtype and device, rounded once from float64 (a constant, not a weight)."""
        key = (like.dtype, like.device)
        if key not in self._matrices:
            self._matrices[key] = haar_matrix(self.size).to(dtype=like.dtype, device=like.device)
        return self._matrices[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H = self.matrix(x)
        if self.inverse:
            return H.T @ self.col_neuron(self.row_neuron(x) @ H)
        return H @ self.col_neuron(x @ H.T)


class FrequencyAwareTokenMixer(nn.Module):
    """FATM on membrane maps ``[T, B, C, n, n]`` (residual not added), in the authors' two variants.

    The input fires (LIF); its spiking Haar transform goes through BN and a LIF; each of ``blocks``
    channel blocks of every wavelet coefficient is multiplied by its own learned ``[C/blocks, C/blocks]``
    matrix (``haar_weight``); then BN, the spiking inverse transform and BN give ``f``. A 1x1 and a 3x3
    convolution, shared by the channel blocks, each with its BN, add local features:

    - ``style="event"`` (``event/model.py``): the spikes and ``f`` are eroded (a 3x3 stride-1 max), and the
      convolutions read ``f``: the output is ``conv1(f) + conv2(f)``;
    - ``style="cifar"`` (``cifar10-100/model.py``, and ``imagenet/module/ms_conv.py``): no erosion, and the
      convolutions read the input spikes in parallel: the output is ``f + conv1(s) + conv2(s)``.
    """

    STYLES = ("event", "cifar")

    def __init__(self, dim: int, size: int, neuron: NeuronFactory, blocks: int = 4, style: str = "event",
                 haar_threshold: float = 1.0):
        super().__init__()
        if dim % blocks:
            raise ValueError(f"dim {dim} is not divisible by the {blocks} frequency blocks")
        if style not in self.STYLES:
            raise ValueError(f"FATM style must be one of {self.STYLES}, got {style!r}")
        self.blocks, self.style = blocks, style
        width = dim // blocks
        self.x_neuron = neuron(channels=dim, channel_dim=2)
        self.haar_forward = SpikingHaar2D(size, inverse=False, threshold=haar_threshold)
        self.haar_forward_bn = nn.BatchNorm2d(dim)
        self.haar_neuron = neuron(channels=dim, channel_dim=2)
        self.haar_weight = nn.Parameter(0.02 * torch.randn(blocks, width, width))
        self.haar_multiply_bn = nn.BatchNorm2d(dim)
        self.haar_inverse = SpikingHaar2D(size, inverse=True, threshold=haar_threshold)
        self.haar_inverse_bn = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(width, width, 1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv1_bn = nn.BatchNorm2d(dim)
        self.conv2_bn = nn.BatchNorm2d(dim)

    def _erode(self, x: torch.Tensor) -> torch.Tensor:
        return over_time(lambda m: F.max_pool2d(m, 3, stride=1, padding=1), x) if self.style == "event" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self._erode(self.x_neuron(x))
        f = self.haar_neuron(over_time(self.haar_forward_bn, self.haar_forward(x)))
        f = f.reshape(T * B, self.blocks, C // self.blocks, H, W).permute(0, 3, 4, 1, 2)
        # per block: [..., 1, d] @ [d, d] (a batched matmul, which the operation counter sizes)
        f = (f.unsqueeze(-2) @ self.haar_weight).reshape(T * B, H, W, C).permute(0, 3, 1, 2)
        f = self.haar_multiply_bn(f).reshape(T, B, C, H, W)
        f = self._erode(over_time(self.haar_inverse_bn, self.haar_inverse(f)))
        local = f if self.style == "event" else x
        per_block = local.reshape(T * B * self.blocks, C // self.blocks, H, W)
        conv1 = self.conv1_bn(self.conv1(per_block).reshape(T * B, C, H, W)).reshape(T, B, C, H, W)
        conv2 = self.conv2_bn(self.conv2(per_block).reshape(T * B, C, H, W)).reshape(T, B, C, H, W)
        return conv1 + conv2 if self.style == "event" else f + conv1 + conv2


class MapMeanHead(ClassifierHead):
    """Membrane map ``[T, B, C, h, w]`` -> mean over the map and time -> Linear (no neuron)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(3).transpose(2, 3))


class SWTBlock(nn.Module):
    def __init__(self, mixer: nn.Module, mlp: nn.Module):
        super().__init__()
        self.mixer, self.mlp = mixer, mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(x)
        return x + self.mlp(x)


class SpikingWaveletTransformer(SpikingClassifier):
    """SWT-``depth``-``embed_dim``: ``freq_blocks`` channel blocks in FATM's learned mixing, ``mlp_ratio``;
    ``sps_pool_stages``: the stem stages followed by a max-pool (four for 128x128 events, the last two for
    CIFAR); ``fatm_style``: the event or the CIFAR variant of FATM (:class:`FrequencyAwareTokenMixer`);
    ``spiking_head``: the ImageNet model's head (mean over tokens, a LIF, Linear, mean over T) instead of
    the mean and Linear; ``haar_threshold``: the positive threshold of the transforms' ternary neurons (the
    authors' ``haar_vth``; their negative threshold stays 0.5). The token grid must be square with a
    power-of-2 side (the Haar transform's)."""

    official_renames = SPS_STREAM_RENAMES + (
        (r"^block\.(\d+)\.mlp\.(fc[12])_(conv|bn)\.(.+)$", r"blocks.\1.mlp.\2.\3.\4"),
        (r"^block\.(\d+)\.mixer\.(.+)$", r"blocks.\1.mixer.\2"),
        # the ImageNet file names the mixer attn and its coefficient BN haar_bn
        (r"^block\.(\d+)\.attn\.haar_bn\.(.+)$", r"blocks.\1.mixer.haar_multiply_bn.\2"),
        (r"^block\.(\d+)\.attn\.(.+)$", r"blocks.\1.mixer.\2"),
        (r"^head\.(weight|bias)$", r"head.fc.\1"),
    )

    def __init__(self, embed_dim: int = 256, depth: int = 2, mlp_ratio: float = 4.0, freq_blocks: int = 4,
                 sps_pool_stages: Sequence[int] = (0, 1, 2, 3), fatm_style: str = "event", spiking_head: bool = False,
                 haar_threshold: float = 1.0, **common: Any):
        super().__init__(**common)
        neuron = self.neuron_factory
        self.patch_embed = SpikingPatchSplitting(self.in_channels, embed_dim, neuron, img_size=self.img_size,
                                                 num_stages=4, pool_stages=sps_pool_stages, stream="membrane",
                                                 tokens=False)
        h, w = self.patch_embed.grid_size
        if h != w or h & (h - 1):
            raise ValueError(f"img_size {self.img_size} gives a {h}x{w} token grid; the Haar transform needs a "
                             f"square grid with a power-of-2 side")
        self.blocks = nn.Sequential(*[
            SWTBlock(FrequencyAwareTokenMixer(embed_dim, h, neuron, freq_blocks, fatm_style, haar_threshold),
                     MembraneMLP(embed_dim, neuron, mlp_ratio, inner_shortcut=False))
            for _ in range(depth)
        ])
        self.head = (SpikingTokenMeanHead(embed_dim, self.num_classes, neuron) if spiking_head
                     else MapMeanHead(embed_dim, self.num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Membrane map ``[T, B, D, h, w]`` after the last block, for an already checked input."""
        return self.blocks(self.patch_embed(x))


PAPER = "Spiking Wavelet Transformer (ECCV 2024)"
STEP = "Fancyssc/STEP README"
_DVS = dict(img_size=128, in_channels=2, num_classes=10, time_steps=16, embed_dim=256, depth=2, mlp_ratio=4.0,
            freq_blocks=4, sps_pool_stages=(0, 1, 2, 3), fatm_style="event")
_CIFAR = dict(img_size=32, in_channels=3, num_classes=10, time_steps=4, embed_dim=384, depth=4, mlp_ratio=4.0,
              freq_blocks=4, sps_pool_stages=(2, 3), fatm_style="cifar")

_IMAGENET = dict(img_size=256, in_channels=3, num_classes=1000, time_steps=4, embed_dim=512, mlp_ratio=4.0,
                 freq_blocks=2, sps_pool_stages=(0, 1, 2, 3), fatm_style="cifar", spiking_head=True)
IMAGENET_CKPT = "name of the authors' released checkpoint ({})"

register_configs(SpikingWaveletTransformer, PAPER, {
    "swt_dvs": Config(_DVS, "CIFAR10-DVS", "82.9", STEP,
                      note="2-256; the released cifar10dvs.yaml sets no width, 256 as the paper's event models"),
    "swt_cifar10": Config(_CIFAR, "CIFAR10", "96.1", STEP, note="4-384, the authors' cifar10.yaml"),
    "swt_cifar100": Config({**_CIFAR, "num_classes": 100}, "CIFAR100", "79.3", STEP, note="4-384"),
    "swt_imagenet_8_512": Config({**_IMAGENET, "depth": 8}, "ImageNet", "75.43",
                                 IMAGENET_CKPT.format("8-512-block-2-vth-1.-bs512-75.4259"),
                                 note="256x256 (a 16x16 grid); 75.34% in the STEP README"),
    "swt_imagenet_6_512": Config({**_IMAGENET, "depth": 6}, "ImageNet", "74.95",
                                 IMAGENET_CKPT.format("6-512-block-2-vth-1.0-bs512-74.9499"), note="256x256"),
})
