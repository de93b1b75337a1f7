"""Geometric ops: flip, crop with padding, translation, rotation, shear.

All of them move whole pixels with one nearest-neighbour sampler: an output
pixel takes the value of the source pixel its inverse-mapped centre rounds to
(half to even, as ``grid_sample``'s nearest mode does), and 0 where that
source lies outside the frame. Nearest sampling keeps event counts integers
and fill 0 means "no events", the recipes' choice (``SNNAugmentWide`` uses
nearest interpolation, fill 0).

Coordinates: ``x`` is the column (to the right), ``y`` the row (downwards).
Rotation and shear act about the frame centre ``((W-1)/2, (H-1)/2)``, as
torchvision's ``F.affine`` / ``F.rotate`` do on tensors.
"""

from __future__ import annotations

import torch

from ..frames import check_size
from ._common import check_batch_param, check_frames, check_non_negative, check_probability, integers, uniform


def _sample_nearest(frames: torch.Tensor, src_y: torch.Tensor, src_x: torch.Tensor) -> torch.Tensor:
    """``out[t, b, c, i, j] = frames[t, b, c, src_y[b, i, j], src_x[b, i, j]]``, 0 where outside.

    ``src_y`` and ``src_x`` are integer tensors that broadcast to ``[B, Ho, Wo]``.
    """
    T, B, C, H, W = frames.shape
    src_y, src_x = torch.broadcast_tensors(src_y.to(frames.device), src_x.to(frames.device))
    out_h, out_w = src_y.shape[-2:]
    inside = (src_y >= 0) & (src_y < H) & (src_x >= 0) & (src_x < W)
    flat = (src_y.clamp(0, H - 1) * W + src_x.clamp(0, W - 1)).reshape(1, B, 1, out_h * out_w)
    out = frames.reshape(T, B, C, H * W).gather(3, flat.expand(T, B, C, -1)).view(T, B, C, out_h, out_w)
    return out.masked_fill(~inside.view(1, B, 1, out_h, out_w), 0)


# --------------------------------------------------------------------------- horizontal flip

def draw_hflip(batch: int, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Which samples to flip: a bool tensor ``[B]``, each True with probability ``p``."""
    check_probability(p, "flip probability p")
    return uniform(batch, 0.0, 1.0, generator) < p


def hflip(frames: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the samples where ``flip`` (bool ``[B]``) is True left to right: column x goes to W-1-x."""
    T, B, C, H, W = check_frames(frames, "hflip")
    flip = check_batch_param(flip, B, "flip", "hflip").to(device=frames.device, dtype=torch.bool)
    return torch.where(flip.view(1, B, 1, 1, 1), frames.flip(-1), frames)


def random_hflip(frames: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each sample left to right with probability ``p``."""
    check_frames(frames, "random_hflip")
    return hflip(frames, draw_hflip(frames.shape[1], p, generator))


# --------------------------------------------------------------------------- translation

def _check_whole_pixels(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of pixels >= 0, got {value!r}")
    return value


def draw_translation(batch: int, max_shift: int, generator: torch.Generator | None = None):
    """Whole-pixel shifts ``(dy, dx)``, each int64 ``[B]`` uniform in ``[-max_shift, max_shift]``."""
    _check_whole_pixels(max_shift, "max_shift")
    shifts = integers(-max_shift, max_shift + 1, (2, batch), generator)
    return shifts[0], shifts[1]


def translate(frames: torch.Tensor, dy, dx) -> torch.Tensor:
    """Shift sample b down by ``dy[b]`` and right by ``dx[b]`` whole pixels; pixels shifted in are 0."""
    T, B, C, H, W = check_frames(frames, "translate")
    dy = check_batch_param(dy, B, "dy", "translate").to(frames.device, torch.int64)
    dx = check_batch_param(dx, B, "dx", "translate").to(frames.device, torch.int64)
    rows = torch.arange(H, device=frames.device) - dy[:, None]
    cols = torch.arange(W, device=frames.device) - dx[:, None]
    return _sample_nearest(frames, rows[:, :, None], cols[:, None, :])


def random_translate(frames: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample of ``[T, B, C, H, W]`` by whole pixels, up to ``max_shift`` in x and y.

    Pixels shifted in from outside are zero (no events there); the shift of
    a sample is the same in all its frames.
    """
    check_frames(frames, "random_translate")
    _check_whole_pixels(max_shift, "max_shift")
    if max_shift == 0:
        return frames
    dy, dx = draw_translation(frames.shape[1], max_shift, generator)
    return translate(frames, dy, dx)


# --------------------------------------------------------------------------- crop with padding

def _output_size(size, height: int, width: int) -> tuple[int, int]:
    return (height, width) if size is None else check_size(size, "crop size", square=True)


def draw_crop_offsets(batch: int, height: int, width: int, padding: int, size=None,
                      generator: torch.Generator | None = None):
    """Top-left corners ``(top, left)`` of the crops in the padded frame, each int64 ``[B]``.

    The frame is padded by ``padding`` on every side; a crop of ``size``
    (default: the frame's own size) starts at ``top`` in ``[0, H + 2*padding - h]``,
    ``left`` likewise (torchvision's ``RandomCrop``).
    """
    _check_whole_pixels(padding, "padding")
    out_h, out_w = _output_size(size, height, width)
    room_h, room_w = height + 2 * padding - out_h, width + 2 * padding - out_w
    if room_h < 0 or room_w < 0:
        raise ValueError(f"crop size {(out_h, out_w)} is larger than the padded frame "
                         f"{(height + 2 * padding, width + 2 * padding)}")
    return integers(0, room_h + 1, (batch,), generator), integers(0, room_w + 1, (batch,), generator)


def crop(frames: torch.Tensor, top, left, padding: int, size=None) -> torch.Tensor:
    """Crop sample b of the zero-padded frame at ``(top[b], left[b])``: ``[T, B, C, h, w]``.

    Output pixel ``(i, j)`` is input pixel ``(top - padding + i, left - padding + j)``.
    """
    T, B, C, H, W = check_frames(frames, "crop")
    _check_whole_pixels(padding, "padding")
    out_h, out_w = _output_size(size, H, W)
    top = check_batch_param(top, B, "top", "crop").to(frames.device, torch.int64)
    left = check_batch_param(left, B, "left", "crop").to(frames.device, torch.int64)
    rows = top[:, None] - padding + torch.arange(out_h, device=frames.device)
    cols = left[:, None] - padding + torch.arange(out_w, device=frames.device)
    return _sample_nearest(frames, rows[:, :, None], cols[:, None, :])


def random_crop(frames: torch.Tensor, padding: int, size=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad each sample by ``padding`` zeros and crop ``size`` (default: the input size) at a random place."""
    T, B, C, H, W = check_frames(frames, "random_crop")
    top, left = draw_crop_offsets(B, H, W, padding, size, generator)
    return crop(frames, top, left, padding, size)


# --------------------------------------------------------------------------- rotation and shear

def affine(frames: torch.Tensor, angle=0.0, shear_x=0.0, shear_y=0.0, translate_x=0.0, translate_y=0.0) -> torch.Tensor:
    """Rotate, shear and translate each sample about the frame centre, nearest pixel, fill 0.

    Per-sample parameters (scalars or ``[B]`` tensors): ``angle`` in degrees,
    counter-clockwise as seen on the image (torchvision's ``F.rotate``);
    ``shear_x`` / ``shear_y`` in degrees (torchvision's ``F.affine`` shear:
    a point at centred ``(x, y)`` goes to ``x - tan(shear_x) * y``, then
    ``y - tan(shear_y) * x``); ``translate_x`` / ``translate_y`` in pixels.
    Order: shear x, shear y, rotation, translation, which is
    ``F.affine(angle=-angle, translate, shear=(shear_x, shear_y))``.
    """
    T, B, C, H, W = check_frames(frames, "affine")
    params = {name: check_batch_param(value, B, name, "affine").to(torch.float64)
              for name, value in dict(angle=angle, shear_x=shear_x, shear_y=shear_y,
                                      translate_x=translate_x, translate_y=translate_y).items()}
    for name, value in params.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"affine: {name} must be finite, got {value.tolist()}")
    if (params["shear_x"].abs() >= 90).any() or (params["shear_y"].abs() >= 90).any():
        raise ValueError("affine: shear angles must lie strictly between -90 and 90 degrees")
    rot = torch.deg2rad(params["angle"])
    cos, sin = torch.cos(rot), torch.sin(rot)
    tan_x, tan_y = torch.tan(torch.deg2rad(params["shear_x"])), torch.tan(torch.deg2rad(params["shear_y"]))
    # Inverse of R(angle) . ShearY . ShearX: ShearX^-1 . ShearY^-1 . R(-angle).
    # R(-angle) = [[cos, -sin], [sin, cos]] in y-down coordinates.
    r00, r01, r10, r11 = cos, -sin, sin, cos
    y0, y1 = r10 + tan_y * r00, r11 + tan_y * r01          # after ShearY^-1: row 1 gains tan_y * row 0
    x0, x1 = r00 + tan_x * y0, r01 + tan_x * y1            # after ShearX^-1: row 0 gains tan_x * row 1
    inverse = torch.stack([torch.stack([x0, x1], -1), torch.stack([y0, y1], -1)], -2)  # [B, 2, 2]
    inverse = inverse.to(frames.device)
    shift = torch.stack([params["translate_x"], params["translate_y"]], -1).to(frames.device)  # [B, 2]

    centre_x, centre_y = (W - 1) / 2, (H - 1) / 2
    ys = torch.arange(H, device=frames.device, dtype=torch.float64) - centre_y
    xs = torch.arange(W, device=frames.device, dtype=torch.float64) - centre_x
    qx = xs.view(1, 1, W) - shift[:, 0, None, None]  # [B, 1, W]
    qy = ys.view(1, H, 1) - shift[:, 1, None, None]  # [B, H, 1]
    src_x = inverse[:, 0, 0, None, None] * qx + inverse[:, 0, 1, None, None] * qy + centre_x
    src_y = inverse[:, 1, 0, None, None] * qx + inverse[:, 1, 1, None, None] * qy + centre_y
    return _sample_nearest(frames, torch.round(src_y).to(torch.int64), torch.round(src_x).to(torch.int64))


def draw_rotation(batch: int, degrees: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Angles in degrees, float64 ``[B]`` uniform in ``[-degrees, degrees]``."""
    check_non_negative(degrees, "degrees")
    return uniform(batch, -degrees, degrees, generator)


def random_rotate(frames: torch.Tensor, degrees: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each sample by an angle uniform in ``[-degrees, degrees]`` about the centre."""
    check_frames(frames, "random_rotate")
    return affine(frames, angle=draw_rotation(frames.shape[1], degrees, generator))


def draw_shear(batch: int, x_degrees: float, y_degrees: float = 0.0, generator: torch.Generator | None = None):
    """Shear angles ``(shear_x, shear_y)`` in degrees, each float64 ``[B]`` uniform in ``[-max, max]``."""
    for name, value in (("x_degrees", x_degrees), ("y_degrees", y_degrees)):
        check_non_negative(value, name)
        if value >= 90:
            raise ValueError(f"{name} must be below 90 degrees, got {value!r}")
    return uniform(batch, -x_degrees, x_degrees, generator), uniform(batch, -y_degrees, y_degrees, generator)


def random_shear(frames: torch.Tensor, x_degrees: float, y_degrees: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Shear each sample along x and y by angles uniform in ``[-x_degrees, x_degrees]``, ``[-y_degrees, y_degrees]``."""
    check_frames(frames, "random_shear")
    shear_x, shear_y = draw_shear(frames.shape[1], x_degrees, y_degrees, generator)
    return affine(frames, shear_x=shear_x, shear_y=shear_y)


__all__ = [
    "affine", "crop", "draw_crop_offsets", "draw_hflip", "draw_rotation", "draw_shear", "draw_translation",
    "hflip", "random_crop", "random_hflip", "random_rotate", "random_shear", "random_translate", "translate",
]
