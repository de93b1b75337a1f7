"""Using a trained model outside training: ONNX export, NIR export, and prediction on files.

``to_onnx(model, path)`` writes an ONNX graph unrolled over T (``onnx``);
``to_nir(model)`` a NIR graph for models built of what NIR expresses
(``nir``); ``Predictor`` classifies recordings and images with a run's
checkpoint or an exported ONNX file, preprocessing them as the model's data
set did (``predict``, ``preprocessing``). Each name is imported on first use,
so the optional packages (onnx, onnxruntime, nir) load only when needed.
"""

import importlib

_API = {
    "to_onnx": "onnx", "read_metadata": "onnx", "fold_batchnorm": "fold",
    "to_nir": "nir", "write_nir": "nir", "NIRExportError": "nir",
    "Predictor": "predict", "Prediction": "predict",
    "Preprocessing": "preprocessing", "describe_input": "preprocessing",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
