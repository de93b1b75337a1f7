"""Evaluation: top-1 / top-5 accuracy, mean loss, and the confusion matrix of a model over a data loader.

The loader yields the library's batches, ``(frames [T, B, ...], labels [B])``
(``spikeformers.data.time_major_loader``). Per-step logits ``[T, B, classes]`` (a TET model) are averaged over T
first, as the authors evaluate. Under ``torchrun`` each process evaluates
its share of the test set and the counts are summed. A run's checkpoint
becomes a model through :func:`model_from_checkpoint`, which trusts none of
the checkpoint's claims about the model it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import count_parameters, create_model
from ..models.checkpoints import check_state_dict
from .checkpoint import require
from .distributed import World
from .losses import class_scores

# A model described by a checkpoint may be this much larger than the tensors it holds before it is
# refused unbuilt (the exact comparison follows, key by key, once it is built).
MODEL_SIZE_SLACK = 1.01


@dataclass
class EvalResult:
    acc1: float
    acc5: float
    loss: float
    samples: int
    confusion: torch.Tensor | None = None  # [classes, classes]: rows are true classes, columns predictions

    @property
    def per_class_accuracy(self) -> torch.Tensor:
        """Recall of each class (NaN for a class with no test sample)."""
        counts = self.confusion.sum(1).double()
        return self.confusion.diagonal().double() / counts.where(counts > 0, torch.nan)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, num_classes: int | None = None,
             world: World = World()) -> EvalResult:
    """``num_classes`` sizes the confusion matrix (default: the width of the logits); under torchrun
    pass it, since a process may have no test batch to learn it from."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64)  # correct1, correct5, loss_sum, count
    confusion = None
    for frames, labels in loader:
        frames = frames.to(device, non_blocking=True).float()
        labels = labels.to(device)
        logits = class_scores(model(frames)).float()
        if confusion is None:
            num_classes = num_classes or logits.shape[1]
            confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        top = logits.topk(min(5, num_classes), dim=1).indices
        totals += torch.tensor([(top[:, 0] == labels).sum().item(), (top == labels[:, None]).any(dim=1).sum().item(),
                                F.cross_entropy(logits, labels, reduction="sum").item(), labels.numel()],
                               dtype=torch.float64)
        confusion += torch.bincount((labels.cpu() * num_classes + top[:, 0].cpu()),
                                    minlength=num_classes * num_classes).view(num_classes, num_classes)
    if world.active:  # every process takes part in the sums, even one that had no test batch
        if confusion is None:
            confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        world.sum_tensor(totals)
        world.sum_tensor(confusion)
    count = int(totals[3].item())
    if count == 0:
        raise ValueError("The evaluation data set is empty")
    return EvalResult(totals[0].item() / count, totals[1].item() / count, totals[2].item() / count, count, confusion)


def check_compatible(model: nn.Module, dataset, model_name: str, dataset_name: str) -> None:
    """Name the mismatch between a model's input and a data set's samples before any is run."""
    wanted = (model.in_channels, tuple(model.img_size), model.num_classes)
    given = (dataset.in_channels, tuple(dataset.sensor_size), dataset.num_classes)
    if wanted != given:
        raise ValueError(
            f"Model {model_name} expects (channels, (H, W), classes) = {wanted} but data set "
            f"{dataset_name} yields {given}; pick a matching model or override in_channels/img_size/num_classes"
        )


def model_from_checkpoint(state: dict, source, ema: bool = False) -> nn.Module:
    """The model a run's checkpoint names (``model_name``, ``model_overrides``) with its weights, or
    its weight average with ``ema``; a ValueError naming ``source`` when the checkpoint lacks them, when
    its overrides describe a model far larger than the tensors it holds, or when the weights do not fit.

    The model is first built on the ``meta`` device, which allocates nothing, so overrides asking for a
    huge model are refused before any memory is spent on it.
    """
    part = "ema" if ema else "model"
    require(state, source, "model_name")
    if state.get(part) is None and ema:
        raise ValueError(f"{source} holds no weight average: its run did not use --ema")
    require(state, source, part)
    name, overrides = state["model_name"], state.get("model_overrides") or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"{source}: its 'model_overrides' entry is a {type(overrides).__name__}, not a mapping")
    weights = state[part]
    held = sum(t.numel() for t in weights.values() if isinstance(t, torch.Tensor))
    try:
        with torch.device("meta"):
            sketch = create_model(name, **overrides)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source} names model {name!r} with overrides {overrides}: {err}") from None
    except Exception:  # a plugin's model that cannot be built without memory: the key check below holds
        sketch = None
    if sketch is not None:
        needed = sum(t.numel() for t in sketch.state_dict().values())
        if needed > held * MODEL_SIZE_SLACK:
            raise ValueError(f"{source} describes {name} with overrides {overrides}: a model of "
                             f"{count_parameters(sketch):,} parameters, but it holds only {held:,} values; "
                             "refusing to build it")
    model = create_model(name, **overrides)
    check_state_dict(model, weights, source)
    model.load_state_dict(weights)
    return model
