"""Training, evaluation, configuration and checkpoints.

Names are imported on first use, so ``spikeformers.engine.config`` or
``.losses`` can be read without loading the whole training loop.
"""

import importlib

_EXPORTS = {
    "TrainConfig": "config", "load_config": "config", "train": "train", "evaluate": "evaluate",
    "EvalResult": "evaluate", "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
