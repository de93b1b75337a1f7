"""Cutout and random erasing: zero a box of each sample, the same box in all its frames.

A box is ``(top, left, height, width)`` in pixels; a box of height or width 0
erases nothing, which is how "this sample is not erased" is written.
"""

from __future__ import annotations

import math

import torch

from ._common import check_frames, check_probability, check_range, integers, uniform


def erase(frames: torch.Tensor, boxes: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Set the pixels of box b (int ``[B, 4]``: top, left, height, width) of sample b to ``value``."""
    T, B, C, H, W = check_frames(frames, "erase")
    boxes = torch.as_tensor(boxes)
    if boxes.shape != (B, 4):
        raise ValueError(f"erase: boxes must have shape [B, 4] = [{B}, 4] (top, left, height, width), "
                         f"got {tuple(boxes.shape)}")
    if (boxes[:, 2:] < 0).any():
        raise ValueError("erase: box heights and widths must be >= 0")
    boxes = boxes.to(frames.device, torch.int64)
    top, left, height, width = boxes.unbind(1)
    rows = torch.arange(H, device=frames.device)
    cols = torch.arange(W, device=frames.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # [B, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # [B, W]
    inside = in_rows[:, :, None] & in_cols[:, None, :]
    return frames.masked_fill(inside.view(1, B, 1, H, W), value)


def draw_erasing_boxes(batch: int, height: int, width: int, scale=(0.02, 0.33), ratio=(0.3, 3.3),
                       p: float = 1.0, generator: torch.Generator | None = None, attempts: int = 10) -> torch.Tensor:
    """Random-erasing boxes (torchvision's ``RandomErasing`` draw), int64 ``[B, 4]``.

    With probability ``p`` a sample is erased: a box of area ``H*W*s``
    (``s`` uniform in ``scale``) and aspect ratio ``h/w = r`` (``log r``
    uniform in ``log ratio``), ``h = round(sqrt(area*r))``,
    ``w = round(sqrt(area/r))``; the first of ``attempts`` draws that fits
    strictly inside the frame is placed uniformly; if none fits, nothing is
    erased.
    """
    check_probability(p, "erasing probability p")
    low, high = check_range(scale, "scale", 0.0, 1.0)
    ratio_low, ratio_high = check_range(ratio, "ratio", 0.0)
    if ratio_low <= 0:
        raise ValueError(f"ratio must be positive, got {ratio!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"attempts must be a positive integer, got {attempts!r}")
    chosen = uniform(batch, 0.0, 1.0, generator) < p
    area = height * width * uniform((batch, attempts), low, high, generator)
    aspect = torch.exp(uniform((batch, attempts), math.log(ratio_low), math.log(ratio_high), generator))
    box_h = torch.round(torch.sqrt(area * aspect)).to(torch.int64)
    box_w = torch.round(torch.sqrt(area / aspect)).to(torch.int64)
    fits = (box_h < height) & (box_w < width)
    first = fits.to(torch.int8).argmax(1, keepdim=True)  # index of the first attempt that fits
    box_h, box_w = box_h.gather(1, first)[:, 0], box_w.gather(1, first)[:, 0]
    erased = chosen & fits.any(1)
    # (a box that did not fit is not erased; its corner only needs to be a valid draw)
    top = integers(0, (height - box_h + 1).clamp(min=1), (batch,), generator)
    left = integers(0, (width - box_w + 1).clamp(min=1), (batch,), generator)
    return torch.stack([top * erased, left * erased, box_h * erased, box_w * erased], 1)


def random_erasing(frames: torch.Tensor, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Erase a random box of each sample with probability ``p`` (see ``draw_erasing_boxes``)."""
    T, B, C, H, W = check_frames(frames, "random_erasing")
    return erase(frames, draw_erasing_boxes(B, H, W, scale, ratio, p, generator), value)


def draw_cutout_boxes(batch: int, height: int, width: int, size: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Cutout boxes (DeVries and Taylor 2017), int64 ``[B, 4]``.

    The centre ``(cy, cx)`` is a uniformly drawn pixel; the box spans rows
    ``[cy - size//2, cy + size//2)`` and the same for columns, clipped to the
    frame (so it may hang over the border, and an odd ``size`` loses one).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"cutout size must be a whole number of pixels >= 0, got {size!r}")
    cy = integers(0, height, (batch,), generator)
    cx = integers(0, width, (batch,), generator)
    top, bottom = (cy - size // 2).clamp(0, height), (cy + size // 2).clamp(0, height)
    left, right = (cx - size // 2).clamp(0, width), (cx + size // 2).clamp(0, width)
    return torch.stack([top, left, bottom - top, right - left], 1)


def cutout(frames: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square around a random pixel of each sample (see ``draw_cutout_boxes``)."""
    T, B, C, H, W = check_frames(frames, "cutout")
    return erase(frames, draw_cutout_boxes(B, H, W, size, generator))
