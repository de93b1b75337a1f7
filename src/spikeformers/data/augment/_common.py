"""Shared checks and random draws of the augmentation ops."""

from __future__ import annotations

import math

import torch


def check_frames(frames: torch.Tensor, op: str, floating: bool = False) -> tuple[int, int, int, int, int]:
    """The shape ``(T, B, C, H, W)`` of ``frames``, or a ValueError naming ``op``."""
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"{op} expects a torch.Tensor [T, B, C, H, W], got {type(frames).__name__}")
    if frames.dim() != 5:
        raise ValueError(f"{op} expects [T, B, C, H, W], got shape {tuple(frames.shape)}")
    if floating and not frames.is_floating_point():
        raise ValueError(f"{op} expects floating-point frames, got {frames.dtype}")
    return tuple(frames.shape)


def check_batch_param(value: torch.Tensor, batch: int, name: str, op: str) -> torch.Tensor:
    """A per-sample parameter as a tensor of shape ``[B]`` (a scalar is broadcast)."""
    value = torch.as_tensor(value)
    if value.dim() == 0:
        value = value.expand(batch)
    if value.shape != (batch,):
        raise ValueError(f"{op}: {name} must be a scalar or have shape [B] = [{batch}], got {tuple(value.shape)}")
    return value


def check_probability(p: float, name: str) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def check_non_negative(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_range(bounds, name: str, low: float = 0.0, high: float = math.inf) -> tuple[float, float]:
    """``(a, b)`` with ``low <= a <= b <= high``."""
    try:
        a, b = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max), got {bounds!r}") from None
    if not low <= a <= b <= high:
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high}, got {bounds!r}")
    return a, b


def _device(generator: torch.Generator | None) -> torch.device:
    # Draw where the generator lives (CPU unless the caller passed a CUDA one),
    # so a seeded run draws the same parameters whatever device the batch is on.
    return generator.device if generator is not None else torch.device("cpu")


def uniform(shape, low, high, generator: torch.Generator | None = None) -> torch.Tensor:
    """Float64 draws, uniform in ``[low, high)``."""
    u = torch.rand(shape, generator=generator, device=_device(generator), dtype=torch.float64)
    return low + (high - low) * u


def integers(low: int, high, shape, generator: torch.Generator | None = None) -> torch.Tensor:
    """Int64 draws, uniform in ``[low, high)``; ``high`` may be a tensor (one bound per sample)."""
    if isinstance(high, torch.Tensor):
        u = torch.rand(shape, generator=generator, device=_device(generator), dtype=torch.float64)
        span = (high.to(u.device) - low).to(torch.float64)
        return low + torch.minimum((u * span).floor(), span - 1).to(torch.int64)
    return torch.randint(low, high, shape, generator=generator, device=_device(generator))
