"""What the static-image data sets (CIFAR-10/100, ImageNet) share: normalisation and direct encoding.

A spiking transformer sees a static image through direct encoding: the
normalised image is the input current at every one of the T time steps, so
the first (convolutional) layer receives analog values and the first spiking
layer does the encoding (Spikformer: ``x.unsqueeze(0).repeat(T, 1, 1, 1, 1)``).

The data sets yield ``(float32 [T, 3, H, W], label)``: the same image T
times, as an expanded view (no copy until the loader stacks the batch). This
is the event data sets' item layout, so the training loop, which batches
items to ``[B, T, ...]`` and moves time first, takes both unchanged.

Training images may first pass a per-sample ``ImageAugment`` (timm's
RandAugment, then colour jitter) on the uint8 image, before normalisation,
where timm runs them; its draws, like the data sets' other per-sample
draws, come from ``EpochSeeded.sample_generator(index)``: a function of
(seed, epoch, index), so resuming a run repeats them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..registry import option

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class ImageAugment:
    """The per-sample augmentation of a training image, uint8 ``[3, H, W]`` in and out:
    RandAugment (a timm config string, e.g. ``'rand-m9-n1-mstd0.4-inc1'``) and then
    colour jitter of strength ``color_jitter`` (torchvision's brightness, contrast and
    saturation jitter), each optional. The geometric ops bring in the grey of ``mean``
    (timm's ``img_mean``) and resample with ``interpolation``.

    timm's own ``create_transform`` drops the colour jitter when RandAugment is on;
    here both run when both are given, so a recipe that follows timm sets one.
    """

    def __init__(self, randaugment: str | None = None, color_jitter: float | None = None,
                 mean: Sequence[float] = IMAGENET_MEAN, interpolation: str = "random"):
        from ..augment.randaugment import ColorJitter, RandAugment

        fill = tuple(min(255, round(255 * float(m))) for m in mean)
        self.randaugment = None if randaugment is None else RandAugment(randaugment, fill, interpolation)
        self.color_jitter = None if color_jitter is None else ColorJitter(color_jitter)

    def __bool__(self) -> bool:
        return self.randaugment is not None or self.color_jitter is not None

    def __call__(self, image_uint8, generator: torch.Generator | None = None) -> torch.Tensor:
        image = torch.as_tensor(np.ascontiguousarray(image_uint8))
        if self.randaugment is not None:
            image = self.randaugment(image, generator)
        if self.color_jitter is not None:
            image = self.color_jitter(image, generator)
        return image

    def __repr__(self) -> str:
        parts = [repr(op) for op in (self.randaugment, self.color_jitter) if op is not None]
        return " + ".join(parts) or "none"


class EpochSeeded:
    """Per-sample random draws that are a function of (seed, epoch, index) alone.

    A static data set's training transforms (ImageNet's random crop and flip,
    RandAugment) draw from ``sample_generator(index)``; the training loop
    calls ``set_epoch(epoch, seed)`` before each epoch. So a resumed run draws
    exactly what an uninterrupted one drew, whatever the loader's workers.
    """

    seed = 0
    epoch = 0

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        self.epoch, self.seed = int(epoch), int(seed)

    def sample_generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(((self.seed * 1_000_003 + self.epoch) * 1_000_033 + int(index))
                                             % (2**63 - 1))


def encode(image_uint8, mean: torch.Tensor, std: torch.Tensor, time_steps: int) -> torch.Tensor:
    """``[3, H, W]`` uint8 (array or tensor) -> normalised float32 ``[T, 3, H, W]``
    (an expanded view: T shares memory)."""
    image = torch.as_tensor(np.ascontiguousarray(image_uint8)).float().div_(255.0)
    image = (image - mean) / std
    return image.unsqueeze(0).expand(time_steps, *image.shape)


def denormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The inverse of the normalisation, clipped to [0, 1] (for showing an image)."""
    mean = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    std = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)


@dataclass(eq=False, repr=False, kw_only=True)
class AugmentedImages(EpochSeeded):
    """The options of a static-image data set's per-sample training augmentation, declared once for
    all of them; its draws come from (seed, epoch, index) (``EpochSeeded``)."""

    randaugment: str | None = option(None, "timm's RandAugment for training images, e.g. "
                                           "'rand-m9-n1-mstd0.4-inc1' (None: off)")
    color_jitter: float | None = option(None, "the strength of the brightness, contrast and saturation jitter "
                                              "of training images (None: off)")
    randaugment_interpolation: str = option("random", "how RandAugment's geometric ops resample: 'random' (a "
                                                      "draw per op, timm's default), 'bilinear', 'bicubic' or 'nearest'")

    def image_augment(self, mean: Sequence[float]) -> ImageAugment:
        """The augmentation these options ask for, filling with the grey of ``mean``; built for both
        parts, so a bad option fails at once, and applied to training images only."""
        return ImageAugment(self.randaugment, self.color_jitter, mean, self.randaugment_interpolation)
