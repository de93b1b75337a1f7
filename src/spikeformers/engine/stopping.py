"""How a run stops early: on a signal, after a checkpoint; on divergence or a lost peer, leaving the last one intact.

SIGTERM (a cluster's pre-emption, ``kill``) and SIGINT (Ctrl-C) set a flag
that the loop checks after each step, so the step in flight finishes and a
checkpoint is written before the run exits with :class:`TrainingInterrupted`;
a second signal stops at once. A loss, weight or gradient that becomes NaN
or infinite stops the run with :class:`NonFiniteTrainingError` before any
checkpoint holds it; under torchrun, a process that loses another stops with
:class:`PeerLostError`.
"""

from __future__ import annotations

import signal
from typing import Any


class NonFiniteTrainingError(RuntimeError):
    """The loss, the weights or the gradients became NaN or infinite; the message names the epoch and step."""


class PeerLostError(RuntimeError):
    """Another process of a torchrun run died or became unreachable; the message says which, and how to go on."""


class TrainingInterrupted(Exception):
    """Raised after a stop was requested by a signal and the checkpoint is written."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after each step (a second signal stops at once)."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self):
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self.previous[signum] = signal.signal(signum, self.handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: finishing this step, then writing a checkpoint", flush=True)

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
