"""Spike-driven Transformer's head: mean over tokens (membrane) -> neuron -> Linear -> mean over T.

With ``per_step=True`` the per-time-step logits ``[T, B, classes]`` are
returned instead (the authors' TET output); their mean over T is the
default output.
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import NeuronFactory


class SpikingTokenMeanHead(nn.Module):
    """``[T, B, C, H, W]`` membrane map -> logits ``[B, classes]`` (or ``[T, B, classes]``)."""

    def __init__(self, dim: int, num_classes: int, neuron: NeuronFactory, per_step: bool = False):
        super().__init__()
        self.neuron = neuron()
        self.fc = nn.Linear(dim, num_classes)  # PyTorch's default init, as in the authors' code
        self.per_step = per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(self.neuron(x.flatten(3).mean(-1)))  # [T, B, classes]
        return logits if self.per_step else logits.mean(0)
