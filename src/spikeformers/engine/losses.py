"""Training losses: cross-entropy on hard or mixed (soft) targets, and the TET loss.

Targets are class indices ``[B]`` or, after mixup / cutmix, probability rows
``[B, classes]`` that already carry the label smoothing (timm's
``SoftTargetCrossEntropy``). Logits are ``[B, classes]``, or per time step
``[T, B, classes]`` for TET.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy against class indices (smoothed) or against soft target rows (used as they are)."""
    if targets.dim() == 2:
        return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def tet_loss(logits: torch.Tensor, targets: torch.Tensor, lamb: float = 0.001, means: float = 1.0,
             label_smoothing: float = 0.1) -> torch.Tensor:
    """The TET loss of the Spike-driven Transformer's authors on per-step logits ``[T, B, classes]``:
    ``(1 - lamb) * mean_t CE(logits[t], targets) + lamb * MSE(logits, means)``."""
    if logits.dim() != 3:
        raise ValueError(f"tet_loss expects per-step logits [T, B, classes] (a model built with tet=True), "
                         f"got {tuple(logits.shape)}")
    ce = torch.stack([cross_entropy(z, targets, label_smoothing) for z in logits]).mean()
    if lamb == 0:
        return ce
    return (1 - lamb) * ce + lamb * F.mse_loss(logits, torch.full_like(logits, means))


def class_scores(logits: torch.Tensor) -> torch.Tensor:
    """``[B, classes]`` scores for accuracy: per-step logits are averaged over T (as at evaluation)."""
    return logits.mean(0) if logits.dim() == 3 else logits
