"""What the static-image data sets (CIFAR-10/100, ImageNet) share: normalisation and direct encoding.

A spiking transformer sees a static image through direct encoding: the
normalised image is the input current at every one of the T time steps, so
the first (convolutional) layer receives analog values and the first spiking
layer does the encoding (Spikformer: ``x.unsqueeze(0).repeat(T, 1, 1, 1, 1)``).

The data sets yield ``(float32 [T, 3, H, W], label)``: the same image T
times, as an expanded view (no copy until the loader stacks the batch). This
is the event data sets' item layout, so the training loop, which batches
items to ``[B, T, ...]`` and moves time first, takes both unchanged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_time_steps(time_steps) -> int:
    if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)) or time_steps < 1:
        raise ValueError(f"time_steps must be an integer >= 1; got {time_steps!r}")
    return int(time_steps)


def check_statistics(mean, std, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as ``[C, 1, 1]`` tensors, or a ValueError naming the bad one."""
    tensors = []
    for name, values in (("mean", mean), ("std", std)):
        try:
            tensor = torch.tensor([float(v) for v in values], dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {channels} numbers; got {values!r}") from None
        if tensor.numel() != channels:
            raise ValueError(f"{name} must be {channels} numbers; got {values!r}")
        tensors.append(tensor.view(channels, 1, 1))
    if (tensors[1] <= 0).any():
        raise ValueError(f"std must be positive; got {std!r}")
    return tensors[0], tensors[1]


def encode(image_uint8: np.ndarray, mean: torch.Tensor, std: torch.Tensor, time_steps: int) -> torch.Tensor:
    """``[3, H, W]`` uint8 -> normalised float32 ``[T, 3, H, W]`` (an expanded view: T shares memory)."""
    image = torch.from_numpy(np.ascontiguousarray(image_uint8)).float().div_(255.0)
    image = (image - mean) / std
    return image.unsqueeze(0).expand(time_steps, *image.shape)


def denormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The inverse of the normalisation, clipped to [0, 1] (for showing an image)."""
    mean = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    std = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)
