"""Resize event frames as the published recipes do, after framing.

Three choices (``RESIZE_MODES``), selected on every event data set with
``resize=(H, W)`` and ``resize_mode``:

- no resize (``resize=None``, the default): Spikformer, QKFormer and
  Spikingformer train on the full 128x128 CIFAR10-DVS frames;
- ``'bilinear'``: ``torch.nn.functional.interpolate(mode='bilinear',
  align_corners=True)``, what BrainCog and TIM do (48x48 or 64x64). With
  ``align_corners=True`` output pixel ``i`` samples input position
  ``i * (in - 1) / (out - 1)``, so the corner pixels are kept exactly;
- ``'avg'``: the mean of each ``k x k`` block (``k = in / out``, a whole
  number in both directions). This is what the Spike-driven Transformer's
  ``torchvision.transforms.Resize(64)`` computed for 128 -> 64 with the
  torchvision of its time (bilinear without antialiasing at a factor of
  exactly 2 samples the middle of each 2x2 block, i.e. their mean); newer
  torchvision antialiases by default and gives other values, so the average
  is written out here instead of relying on a library default.

Resized frames are floats (``'avg'`` of counts gives multiples of 1/k^2), so
the frame cache keeps the integer counts at the sensor's size and the resize
runs when a sample is served: the cache stays compact and exact, and one
cache serves every resize setting.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_MODES = ("bilinear", "avg")


def check_resize(resize, mode: str, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """``resize`` as ``(H, W)`` or None (also for a resize to the input size itself), or a clear ValueError.

    An int means a square size. ``'avg'`` needs sizes that divide the input's.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize_mode {mode!r}; valid: {RESIZE_MODES}")
    if resize is None:
        return None
    if isinstance(resize, (int, np.integer)) and not isinstance(resize, bool):
        resize = (resize, resize)
    try:
        height, width = resize
    except (TypeError, ValueError):
        height = width = None
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in (height, width)):
        raise ValueError(f"resize must be (H, W) or an int; got {resize!r}")
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"resize must be positive; got {resize!r}")
    if (height, width) == tuple(input_size):
        return None
    if mode == "avg":
        in_height, in_width = input_size
        if in_height % height or in_width % width:
            raise ValueError(
                f"resize_mode='avg' averages whole k x k blocks, so resize={(height, width)} must divide "
                f"the frame size {tuple(input_size)}; use resize_mode='bilinear' for other sizes")
    return height, width


def resize_frames(frames, size: tuple[int, int] | None, mode: str = "bilinear") -> torch.Tensor:
    """Resize the last two dimensions of ``frames`` (any leading dimensions, e.g. ``[T, 2, H, W]``)
    to ``size`` ``(H, W)``; a float32 tensor. ``size=None`` only converts."""
    if isinstance(frames, torch.Tensor):
        frames = frames.float()
    else:  # numpy counts (uint8 / uint16 / int32 from the cache)
        frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    size = None if size is None else check_resize(size, mode, tuple(frames.shape[-2:]))
    if size is None:
        return frames
    leading, (height, width) = frames.shape[:-2], frames.shape[-2:]
    planes = frames.reshape(-1, 1, height, width)
    if mode == "bilinear":
        resized = F.interpolate(planes, size=size, mode="bilinear", align_corners=True)
    else:
        resized = F.avg_pool2d(planes, kernel_size=(height // size[0], width // size[1]))
    return resized.reshape(*leading, *size)
