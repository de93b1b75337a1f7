"""SGLFormer's MLP: Conv1x1 -> BN -> neuron, twice (no biases), spikes out, on ``[T, B, C, H, W]``."""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .qk_embed import ConvBNPoolSpike


class SpikingConvMLP(nn.Module):
    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = ConvBNPoolSpike(dim, hidden, neuron, kernel_size=1)
        self.fc2 = ConvBNPoolSpike(hidden, dim, neuron, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))
