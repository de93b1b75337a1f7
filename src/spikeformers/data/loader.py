"""Batches in the library's layout: ``[T, B, ...]`` frames and ``[B]`` labels, built once, here.

A data set yields ``(frames [T, C, H, W], label)``; PyTorch's default collate
stacks samples first, ``[B, T, ...]``, which a model cannot tell from
``[T, B, ...]`` when ``B == T``. :func:`collate_time_major` stacks along the
second dimension instead, so the batch arrives time first and contiguous, and
:func:`time_major_loader` is a ``DataLoader`` that uses it. A batch already
stacked sample first (by a plain ``DataLoader``, or gathered from
``DeviceFrames``) is turned time first by :func:`time_major`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.utils.data import DataLoader, Dataset


def collate_time_major(samples: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(frames [T, ...], label), ...]`` to ``(frames [T, B, ...], labels [B])``."""
    if not samples:
        raise ValueError("collate_time_major got an empty batch")
    frames = [torch.as_tensor(sample[0]) for sample in samples]
    if frames[0].dim() < 1:
        raise ValueError(f"a sample's frames must be [T, ...], got shape {tuple(frames[0].shape)}")
    return torch.stack(frames, dim=1), torch.as_tensor([int(sample[1]) for sample in samples])


def time_major(frames: torch.Tensor) -> torch.Tensor:
    """A batch stacked sample first, ``[B, T, ...]``, as ``[T, B, ...]`` (a view, not a copy)."""
    if frames.dim() < 2:
        raise ValueError(f"a batch of frames must be [B, T, ...], got shape {tuple(frames.shape)}")
    return frames.transpose(0, 1)


def time_major_loader(dataset: Dataset, batch_size: int = 1, **loader_options: Any) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` whose batches are ``(frames [T, B, ...], labels [B])``, ready
    for any model of the zoo; ``loader_options`` (``shuffle``, ``num_workers``, ...) pass through."""
    if "collate_fn" in loader_options:
        raise TypeError("time_major_loader sets collate_fn itself (collate_time_major)")
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_time_major, **loader_options)
