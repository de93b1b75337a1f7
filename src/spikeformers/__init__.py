"""spikeformers: spiking transformers for event and image data.

The entry points, as ``timm.create_model`` is timm's::

    import spikeformers

    model = spikeformers.create_model("spikformer_dvs", time_steps=10)
    test_set = spikeformers.create_dataset("cifar10_dvs", train=False, time_steps=10, root="data/cifar10_dvs")
    loader = spikeformers.time_major_loader(test_set, batch_size=32)  # batches [T, B, C, H, W]

``Predictor(checkpoint_or_onnx).predict(files)`` classifies recordings as the
model's data set framed them. ``list_models("spikformer*")`` and ``list_datasets()`` name what is
registered; ``register_model`` adds a model of your own. Each name is loaded
on first use, so ``import spikeformers`` alone loads neither PyTorch nor the
zoo.
"""

import importlib

__version__ = "0.1.0"

# name -> the subpackage that defines it
_API = {
    "create_model": "models", "list_models": "models", "register_model": "models",
    "create_dataset": "data", "list_datasets": "data", "time_major_loader": "data",
    "Predictor": "export",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
