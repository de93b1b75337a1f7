"""Evaluation: top-1 / top-5 accuracy and mean loss of a model over a data loader."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EvalResult:
    acc1: float
    acc5: float
    loss: float
    samples: int


def to_time_major(frames: torch.Tensor) -> torch.Tensor:
    """Loader batches are ``[B, T, C, H, W]``; the library's layout is ``[T, B, C, H, W]``."""
    return frames.transpose(0, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device) -> EvalResult:
    model.eval()
    correct1 = correct5 = 0
    loss_sum = 0.0
    count = 0
    for frames, labels in loader:
        frames = to_time_major(frames.to(device, non_blocking=True).float())
        labels = labels.to(device)
        logits = model(frames)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == labels).sum().item()
        correct5 += (top == labels[:, None]).any(dim=1).sum().item()
        count += labels.numel()
    if count == 0:
        raise ValueError("The evaluation data set is empty")
    return EvalResult(correct1 / count, correct5 / count, loss_sum / count, count)
