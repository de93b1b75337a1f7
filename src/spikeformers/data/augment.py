"""Batched augmentation of frame sequences, on whatever device the batch is on.

Each op draws one transform per sample and applies it to all T frames of
that sample, as the published event-data recipes do, without a Python loop
over samples.
"""

from __future__ import annotations

import torch


def random_translate(frames: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample of ``[T, B, C, H, W]`` by whole pixels, up to ``max_shift`` in x and y.

    Pixels shifted in from outside are zero (no events there); the shift of
    a sample is the same in all its frames.
    """
    if frames.dim() != 5:
        raise ValueError(f"random_translate expects [T, B, C, H, W], got shape {tuple(frames.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return frames
    T, B, C, H, W = frames.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (2, B), generator=generator).to(frames.device)
    padded = torch.nn.functional.pad(frames, (max_shift,) * 4)  # [T, B, C, H+2s, W+2s]
    rows = torch.arange(H, device=frames.device) + max_shift - shifts[0, :, None]  # [B, H]
    cols = torch.arange(W, device=frames.device) + max_shift - shifts[1, :, None]  # [B, W]
    batch = torch.arange(B, device=frames.device)[:, None, None]
    # Advanced indices on dims 1, 3, 4 go first: [B, H, W, T, C]
    out = padded.permute(1, 3, 4, 0, 2)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(3, 0, 4, 1, 2)
