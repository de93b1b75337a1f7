"""Where a run stands, and what it has measured: the run state that ``last.pt`` carries, and the epoch meter.

:class:`RunState` is everything a resumed run needs besides the weights and
the optimiser: the position (epochs finished, batches of the next one done,
steps in all), the best test accuracy so far, the wall time and the training
throughput's sums. :class:`EpochMeter` sums the loss, the correct
predictions and the time of one epoch's steps; it belongs to the run state
while its epoch is unfinished, so a checkpoint taken mid-epoch keeps its sums
and the epoch that a resume finishes reports every step of it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch


class EpochMeter:
    """Loss, accuracy and speed of this process's training steps over one epoch."""

    def __init__(self, loss_sum: float = 0.0, correct: int = 0, seen: int = 0, seconds: float = 0.0):
        self.loss_sum, self.correct, self.seen = loss_sum, correct, seen
        self.seconds_before = seconds  # the epoch's training time in the processes a resume continues
        self.started: float | None = None
        self.steps = 0  # steps since start(): the pace that the time left is estimated from
        self.seen_at_start = seen

    def start(self) -> None:
        self.started, self.steps, self.seen_at_start = time.perf_counter(), 0, self.seen

    def add(self, loss: float, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """One step: its mean loss, and its logits ``[B, classes]`` against the labels."""
        self.steps += 1
        self.seen += labels.numel()
        self.loss_sum += loss * labels.numel()
        self.correct += (logits.argmax(1) == labels).sum().item()

    def elapsed(self) -> float:
        """Seconds since :meth:`start`, in this process."""
        return time.perf_counter() - self.started if self.started is not None else 0.0

    def seconds(self) -> float:
        """The epoch's training time so far, the processes before a resume included."""
        return self.seconds_before + self.elapsed()

    def progress(self, processes: int, steps_left: int) -> dict[str, str]:
        """The running figures a progress bar shows: loss, accuracy, samples/s, time left."""
        elapsed = max(self.elapsed(), 1e-9)
        left = int(steps_left * elapsed / max(1, self.steps))
        return {"loss": f"{self.loss_sum / max(1, self.seen):.3f}", "acc": f"{self.correct / max(1, self.seen):.3f}",
                "samples_s": f"{processes * (self.seen - self.seen_at_start) / elapsed:.0f}",
                "left": f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"}


@dataclass
class RunState:
    """A run's position and sums; ``to_dict()`` is the ``run`` entry of every checkpoint."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the next epoch done (a stop mid-epoch)
    step: int = 0  # optimiser steps in all
    best_acc1: float = -1.0  # the best epoch's reported test top-1 (the one best.pt holds)
    test_acc1: float | None = None  # the last finished epoch's reported test top-1
    wall_s: float = 0.0  # wall time of the processes before this one
    train_samples: int = 0  # samples and seconds of training over the finished epochs, all processes
    train_seconds: float = 0.0
    meter: EpochMeter = field(default_factory=EpochMeter)  # the unfinished epoch's
    started: float = field(default_factory=time.perf_counter, init=False, repr=False, compare=False)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunState:
        """The state a checkpoint's ``run`` entry holds (entries it lacks keep their defaults)."""
        meter = EpochMeter(saved.get("loss_sum", 0.0), saved.get("correct", 0), saved.get("seen", 0),
                           saved.get("epoch_s", 0.0))
        return cls(**{key: saved[key] for key in _SAVED if key in saved}, meter=meter)

    def to_dict(self) -> dict[str, Any]:
        """The ``run`` entry of a checkpoint written now, with the wall time and the epoch's time up to now;
        the meter's sums stand flat beside the position, as spikeformers 0.1.0 wrote them."""
        return {**{key: getattr(self, key) for key in _SAVED}, "wall_s": self.wall_seconds(),
                "loss_sum": self.meter.loss_sum, "correct": self.meter.correct, "seen": self.meter.seen,
                "epoch_s": self.meter.seconds()}

    def wall_seconds(self) -> float:
        return self.wall_s + time.perf_counter() - self.started

    def finish_epoch(self, epoch: int, test_acc1: float, samples: int, seconds: float) -> bool:
        """Record a finished epoch (its reported accuracy, its training samples and seconds, all processes)
        and start the next one's meter; whether the epoch is the best so far."""
        is_best = test_acc1 > self.best_acc1
        self.epoch, self.batch, self.test_acc1 = epoch, 0, test_acc1
        self.best_acc1 = max(self.best_acc1, test_acc1)
        self.train_samples += samples
        self.train_seconds += seconds
        self.meter = EpochMeter()
        return is_best


_SAVED = [f.name for f in dataclasses.fields(RunState) if f.name not in ("meter", "started")]
