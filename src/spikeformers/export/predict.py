"""Classify recordings and images with a trained model: ``Predictor``.

A predictor is made from a run's checkpoint (a ``.pt`` file or its run
folder; the model runs in PyTorch with the fused kernels) or from an ONNX
file written by ``to_onnx`` (it runs in ONNX Runtime). Either way each file
is made into the model's input by the preprocessing the model was trained
with (``Preprocessing``: stored in the checkpoint or the ONNX metadata, or
rebuilt from an older checkpoint's config), so a recording is framed, resized
and normalised exactly as its data set served samples in training.

    predictor = spikeformers.Predictor("runs/spikformer_tiny/best.pt")
    for result in predictor.predict(["a.aedat", "b.npz"]):
        print(result.path, result.error or result.top(5))

A file that cannot be read gives a result with its one-line ``error``; the
other files are still classified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from .preprocessing import Preprocessing, checkpoint_preprocessing


@dataclass
class Prediction:
    """One file's result: its class probabilities (softmax of the class scores), or the error that
    stopped it (then ``probabilities`` is None)."""

    path: str
    probabilities: torch.Tensor | None = None
    classes: Sequence[str] = field(default_factory=tuple)
    error: str | None = None

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes (fewer when there are fewer), most probable first."""
        if self.probabilities is None:
            return []
        values, indices = self.probabilities.topk(min(k, self.probabilities.numel()))
        return [(self.classes[i], v) for i, v in zip(indices.tolist(), values.tolist())]

    def to_dict(self, k: int = 5) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "top": [{"class": name, "probability": p} for name, p in self.top(k)]}


def load_run_model(source: str | Path, ema: bool = False) -> tuple[torch.nn.Module, dict, Path]:
    """``(model, checkpoint state, checkpoint file)`` of a run's checkpoint file or run folder; the
    ValueError of ``spikeformers eval`` when it is not a usable checkpoint or its model is not registered."""
    from ..engine.checkpoint import load_checkpoint, run_checkpoint
    from ..engine.evaluate import model_from_checkpoint
    from ..models import list_models

    path = run_checkpoint(source)
    state = load_checkpoint(path)
    name = state.get("model_name")
    if isinstance(name, str) and name not in list_models():
        raise ValueError(f"{path} holds model {name!r}, which is not registered; pass --plugin MODULE, the "
                         "module that registers it")
    return model_from_checkpoint(state, path, ema=ema).eval(), state, path


class Predictor:
    """Class probabilities for recordings and images, from a run's checkpoint or an ONNX file
    (module docstring). ``preprocessing`` overrides what the model carries; ``ema`` takes a
    checkpoint's weight average; ``device`` runs a checkpoint's model there."""

    def __init__(self, source: str | Path, *, preprocessing: Preprocessing | None = None, ema: bool = False,
                 device: str | torch.device = "cpu", batch_size: int = 16):
        self.source = Path(source)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if self.source.suffix.lower() == ".onnx":
            self._init_onnx(preprocessing)
        else:
            self.model, state, self.checkpoint = load_run_model(self.source, ema)
            self.device = torch.device(device)
            self.model.to(self.device)
            self.model_name = state["model_name"]
            self.preprocessing = preprocessing or checkpoint_preprocessing(state, self.model, self.checkpoint)
            self.session = self.fixed_batch = None
            self.num_classes = int(self.model.num_classes)
        pre = self.preprocessing
        self.classes = tuple(pre.classes) if pre.classes and len(pre.classes) == self.num_classes else tuple(
            str(i) for i in range(self.num_classes))

    def _init_onnx(self, preprocessing: Preprocessing | None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ImportError("predicting with an ONNX file needs onnxruntime (pip install 'spikeformers[onnx]')") from None
        from .onnx import read_metadata

        if not self.source.is_file():
            raise FileNotFoundError(f"No ONNX file at {self.source}")
        try:
            self.session = onnxruntime.InferenceSession(str(self.source), providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT's own exception types: a file that is not a valid model
            raise ValueError(f"{self.source} is not a readable ONNX model ({str(err).strip().splitlines()[0][:200]})") from None
        metadata = read_metadata(self.session)
        self.preprocessing = preprocessing or metadata.get("preprocessing")
        if self.preprocessing is None:
            raise ValueError(f"{self.source} carries no preprocessing metadata (not written by spikeformers "
                             "export): pass preprocessing=Preprocessing(...)")
        self.model = None
        self.checkpoint = self.source
        self.device = torch.device("cpu")
        self.model_name = metadata.get("model", "?")
        self.input_name = self.session.get_inputs()[0].name
        # a graph exported at a fixed batch (a neuron that runs across the batch) takes only that one
        self.fixed_batch = metadata.get("batch") if isinstance(metadata.get("batch"), int) else None
        if self.fixed_batch:
            self.batch_size = self.fixed_batch
        width = self.session.get_outputs()[0].shape[-1]
        classes = self.preprocessing.classes
        self.num_classes = width if isinstance(width, int) else len(classes or ())

    def frames(self, path: str | Path) -> torch.Tensor:
        """The model's input ``[T, C, H, W]`` made from one file."""
        return self.preprocessing.frames(path)

    @torch.no_grad()
    def scores(self, batch: torch.Tensor) -> torch.Tensor:
        """Class scores ``[B, classes]`` of a batch ``[T, B, C, H, W]`` (per-step logits averaged over T)."""
        if self.session is not None:
            count = batch.shape[1]
            if self.fixed_batch and count < self.fixed_batch:  # filled up with empty recordings
                batch = torch.cat([batch, batch.new_zeros(batch.shape[0], self.fixed_batch - count,
                                                          *batch.shape[2:])], dim=1)
            return torch.from_numpy(self.session.run(None, {self.input_name: batch.float().numpy()})[0][:count])
        logits = self.model(batch.to(self.device).float())
        return (logits.mean(0) if logits.dim() == 3 else logits).float().cpu()

    def predict(self, paths: Iterable[str | Path]) -> list[Prediction]:
        """One :class:`Prediction` per path, in order; an unreadable file gets its error, not an exception."""
        results, pending = [], []
        for path in paths:
            result = Prediction(str(path), classes=self.classes)
            results.append(result)
            try:
                pending.append((result, self.frames(path)))
            except (ValueError, OSError) as err:  # EventFileError is a ValueError naming the file
                result.error = one_line(err, path)
            if len(pending) == self.batch_size:
                self._classify(pending)
                pending = []
        if pending:
            self._classify(pending)
        return results

    def _classify(self, pending: list[tuple[Prediction, torch.Tensor]]) -> None:
        batch = torch.stack([frames for _, frames in pending], dim=1)
        for (result, _), scores in zip(pending, self.scores(batch)):
            result.probabilities = scores.softmax(0)

    def describe(self) -> str:
        return f"{self.model_name} from {self.checkpoint}: {self.preprocessing.describe()}"


def one_line(err: Exception, path) -> str:
    """The error's message on one line, naming the file (an OS error's own text may not)."""
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and str(path) not in text:
        text = f"{path}: {err.strerror or text}"
    return text
