"""ONNX export: a model unrolled over its T time steps, standard operators only, any batch size.

:func:`to_onnx` writes one graph ``frames [T, B, C, H, W] -> logits [B, classes]``
(per-step logits averaged over T, as evaluation does) that ONNX Runtime and
other runtimes run without this library. Inside ``neurons.unrolled()`` every
neuron and the max-pool trace to standard operators, in float32 and the
reference's operation order, so a neuron fed the same input gives the same
spikes bit for bit; batch norm is folded into the conv or linear layer before
it (``fold``). The batch dimension is dynamic. The file's metadata names the
input layout, T, C, H, W, the model, and how a recording becomes that input
(``Preprocessing``, as JSON), with the class names when known; :func:`read_metadata`
reads them back.

The TorchScript exporter (``torch.onnx.export(dynamo=False)``) is used: it
handles the unrolled graph and needs only the ``onnx`` package, where the
dynamo exporter needs ``onnxscript`` and takes several times longer.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_write
from .fold import fold_batchnorm
from .preprocessing import Preprocessing

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "frames", "logits"
METADATA_PREFIX = "spikeformers."


class ClassScores(nn.Module):
    """``[B, classes]`` from a model whose output may be per-step ``[T, B, classes]`` (averaged over T)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        logits = self.model(frames)
        return logits.mean(0) if logits.dim() == 3 else logits


def inference_copy(model: nn.Module, fold: bool = True) -> nn.Module:
    """A float32 eval-mode copy on the CPU, batch norm folded when ``fold``: what is exported."""
    model = copy.deepcopy(model).cpu().float().eval()
    if fold:
        fold_batchnorm(model)
    return model


def to_onnx(model: nn.Module, path: str | Path, *, preprocessing: Preprocessing | None = None,
            model_name: str | None = None, fold: bool = True, opset: int = OPSET, batch: int | None = None) -> Path:
    """Write ``model`` (any zoo model, or one with ``time_steps``, ``in_channels``, ``img_size``) as
    an ONNX file at ``path`` (atomically); returns the path. ``preprocessing`` goes into the metadata
    (its classes name the outputs). ``batch``: None for a dynamic batch, or the one batch size the
    graph takes (needed by a model whose neuron runs across the batch). The model is left untouched."""
    import onnx

    from .. import neurons

    for attribute in ("time_steps", "in_channels", "img_size"):
        if not hasattr(model, attribute):
            raise ValueError(f"to_onnx needs a model with {attribute!r} (the input it was built for); "
                             f"{type(model).__name__} has none")
    if batch is None:
        check_batch_independent(model)
    elif isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be None (dynamic) or an integer >= 1; got {batch!r}")
    path = Path(path)
    wrapped = ClassScores(inference_copy(model, fold))
    T, C, (H, W) = int(model.time_steps), int(model.in_channels), tuple(int(s) for s in model.img_size)
    example = torch.zeros(T, batch or 2, C, H, W)  # 2: a batch of 1 could be taken for a broadcast dimension
    buffer = io.BytesIO()
    with neurons.unrolled(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        torch.onnx.export(wrapped, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes=None if batch else {INPUT_NAME: {1: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load_model_from_string(buffer.getvalue())
    metadata = {"input_layout": "[T, B, C, H, W]", "batch": batch or "dynamic", "time_steps": T, "channels": C, "height": H, "width": W,
                "model": model_name or type(model).__name__, "output": "class scores [B, classes] (logits "
                "averaged over T)", "batchnorm_folded": fold}
    if preprocessing is not None:
        metadata["preprocessing"] = json.dumps(preprocessing.to_dict())
        if preprocessing.classes is not None:
            metadata["class_names"] = json.dumps(list(preprocessing.classes))
    from .. import __version__

    metadata["version"] = __version__
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value if isinstance(value, str) else json.dumps(value)
    proto.producer_name, proto.producer_version = "spikeformers", __version__
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return path


def check_batch_independent(model: nn.Module) -> None:
    """Refuse a dynamic batch for a model whose neuron runs across the batch (QKFormer's
    ``ssa_batch_leak``): unrolled, it has T*B steps, so its graph holds for one batch size only."""
    from ..layers.attention import BatchLeakNeuron

    for path, module in model.named_modules():
        if isinstance(module, BatchLeakNeuron):
            raise ValueError(f"{path} ({type(module).__name__}) runs its neuron across the batch (QKFormer's "
                             "ssa_batch_leak quirk): unrolled over T*B steps, the graph cannot take any batch "
                             "size; export a fixed one (batch=N, --batch N) or build the model with "
                             "ssa_batch_leak=False")


def read_metadata(path_or_session: Any) -> dict[str, Any]:
    """The ``spikeformers.*`` metadata of an ONNX file (a path) or of an ONNX Runtime session, JSON
    values decoded; ``preprocessing`` as a :class:`Preprocessing` when present."""
    if isinstance(path_or_session, (str, Path)):
        import onnx

        proto = onnx.load(str(path_or_session), load_external_data=False)
        raw = {entry.key: entry.value for entry in proto.metadata_props}
        source = path_or_session
    else:
        raw = path_or_session.get_modelmeta().custom_metadata_map
        source = "the ONNX model"
    metadata = {}
    for key, value in raw.items():
        if not key.startswith(METADATA_PREFIX):
            continue
        key = key[len(METADATA_PREFIX):]
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    if isinstance(metadata.get("preprocessing"), dict):
        metadata["preprocessing"] = Preprocessing.from_dict(metadata["preprocessing"], source)
    return metadata
