"""Spiking MLP: Linear -> BN -> neuron -> Linear -> BN -> neuron on tokens ``[T, B, N, C]``."""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .fold import LinearBN


class SpikingMLP(nn.Module):
    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0, out_dim: int | None = None):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = LinearBN(dim, hidden)
        self.fc1_neuron = neuron(channels=hidden, channel_dim=-1)
        self.fc2 = LinearBN(hidden, out_dim or dim)
        self.fc2_neuron = neuron(channels=out_dim or dim, channel_dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2_neuron(self.fc2(self.fc1_neuron(self.fc1(x))))
