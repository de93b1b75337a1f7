"""Spike-driven Transformer's MLP branch (MS_MLP): neuron -> Conv1x1 -> BN -> neuron -> Conv1x1 -> BN.

Takes and returns membrane maps ``[T, B, C, H, W]``; the caller adds the
residual (a membrane shortcut). Both 1x1 convs have a bias. When the hidden
width equals the input width the authors add a second, inner membrane
shortcut after the first BN; that is reproduced.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory
from .folded import ConvBN


class MembraneMLP(nn.Module):
    def __init__(self, dim: int, neuron: NeuronFactory, mlp_ratio: float = 4.0, inner_shortcut: bool | None = None):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        # The Spike-driven Transformer's `res` branch, which its code takes whenever hidden == dim.
        self.inner_shortcut = hidden == dim if inner_shortcut is None else inner_shortcut
        self.fc1_neuron = neuron()
        self.fc1 = ConvBN(dim, hidden, kernel_size=1, bias=True)
        self.fc2_neuron = neuron()
        self.fc2 = ConvBN(hidden, dim, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.fc1_neuron(x))
        if self.inner_shortcut:  # authors: x1 = x + f1; out = x1 + f2(x1), so the branch is f1 + f2(x1)
            return h + self.fc2(self.fc2_neuron(x + h))
        return self.fc2(self.fc2_neuron(h))
