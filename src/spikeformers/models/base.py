"""What every classifier in the zoo shares: its input contract and the attributes the engine reads."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def to_pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class SpikingClassifier(nn.Module):
    """Base of the zoo's models: ``[T, B, C, H, W]`` (or static ``[B, C, H, W]``) to logits ``[B, classes]``.

    Subclasses call ``super().__init__(img_size, in_channels, num_classes,
    time_steps)`` and implement ``forward_features`` (input already checked)
    and ``head``. The engine reads ``img_size``, ``in_channels``,
    ``num_classes`` and ``time_steps``. A model runs exactly its ``time_steps``; one whose
    weights are shaped by T names why in ``weights_tied_to_time_steps``.
    """

    weights_tied_to_time_steps: str | None = None

    def __init__(self, img_size: int | Sequence[int], in_channels: int, num_classes: int, time_steps: int):
        super().__init__()
        self.img_size = to_pair(img_size)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.time_steps = time_steps

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Accept ``[T, B, C, H, W]`` sequences of the model's own T, or ``[B, C, H, W]`` images repeated over T
        (direct encoding). Any other T is refused: a ``[B, T, ...]`` batch (a plain ``DataLoader``'s) has the
        same rank, and with ``B == T`` no shape check could tell the two apart."""
        C, (H, W) = self.in_channels, self.img_size
        if x.dim() == 4 and tuple(x.shape[1:]) == (C, H, W):
            return x.unsqueeze(0).expand(self.time_steps, *x.shape)
        if x.dim() != 5 or tuple(x.shape[2:]) != (C, H, W):
            raise ValueError(
                f"{type(self).__name__} expects input [T, B, C, H, W] with C={C}, H={H}, W={W} "
                f"(time first; or static images [B, {C}, {H}, {W}]), got shape {tuple(x.shape)}"
            )
        if x.shape[0] != self.time_steps:
            T = x.shape[0]
            how = (f"its weights are tied to T ({self.weights_tied_to_time_steps}), so it runs only "
                   f"T={self.time_steps}" if self.weights_tied_to_time_steps else
                   f"its weights do not depend on T, so to run {T} steps build it with time_steps={T} "
                   f"and load the same weights")
            raise ValueError(
                f"{type(self).__name__} was built for T={self.time_steps} but got T={T} in [T, B, C, H, W] = "
                f"{tuple(x.shape)}. A DataLoader over a data set yields [B, T, ...]: use "
                f"spikeformers.data.time_major_loader (or batch.transpose(0, 1)). Otherwise {how}."
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(self.check_input(x)))
