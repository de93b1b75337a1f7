"""Classification head: mean over tokens, then over time, then a Linear layer."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """``[T, B, N, C]`` -> logits ``[B, num_classes]`` (no neuron before the Linear)."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)  # timm's init, as the authors' _init_weights
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(2).mean(0))
