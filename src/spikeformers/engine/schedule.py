"""The learning-rate schedule of timm's ``CosineLRScheduler``, as the papers' recipes use it.

With ``t`` the training time in epochs: a linear warm-up from ``warmup_lr``
to ``lr`` over ``warmup_epochs``; then cosine decay
``min_lr + (lr - min_lr) (1 + cos(pi t / epochs)) / 2``, counted from the
start of training as timm counts it (so the warm-up's end meets the cosine
a little below ``lr``); then ``min_lr`` through the cool-down epochs. The
recipes update it once per epoch (``t`` = epoch index) as timm does;
``lr_update='step'`` updates it every step with ``t`` fractional. The peak
``lr`` may scale with the global batch, as BrainCog's and Meta-SpikeFormer's
recipes do (``lr_base_batch``).
"""

from __future__ import annotations

import math


def learning_rate(t: float, epochs: int, warmup_epochs: float, lr: float, min_lr: float,
                  warmup_lr: float = 0.0) -> float:
    """The learning rate at ``t`` epochs into training."""
    if t < warmup_epochs:
        return warmup_lr + t * (lr - warmup_lr) / warmup_epochs
    if t >= epochs:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t / epochs))


def schedule_time(epoch: int, batch: int, steps_per_epoch: int, per_step: bool) -> float:
    """``t`` for 1-based ``epoch`` and 0-based ``batch``: epochs completed, with the epoch's fraction per step."""
    return (epoch - 1) + (batch / steps_per_epoch if per_step else 0.0)


def peak_learning_rate(cfg, processes: int = 1) -> float:
    """``lr``, or with ``lr_base_batch`` the authors' linear scaling ``lr * global batch / lr_base_batch``."""
    if cfg.lr_base_batch:
        return cfg.lr * cfg.batch_size * processes / cfg.lr_base_batch
    return cfg.lr
