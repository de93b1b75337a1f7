"""Continuing a run: the checkpoint to continue from, restored whole or refused, and what the resume changed.

A run continues from the later of ``last.pt`` and ``best.pt``: at an epoch's
end ``best.pt`` is written first, so a kill between the two writes leaves it
the later one, and continuing from it keeps the best model and the recorded
best accuracy the same epoch's. Every part of the checkpoint must fit the
model, the optimiser and the data before anything is restored.

A resume may change the settings in :data:`RESUMABLE` (the machine's, and the
schedule's: a run that diverged continues with a lower ``lr``). The new values
go to ``config.yaml``, and ``run.json`` lists every resume with its step, what
it changed and the neuron backend it runs: results are bit-exact across a
resume only with the same backend, so a change of backend is warned about.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..models.checkpoints import check_state_dict
from .checkpoint import load_checkpoint, require
from .config import TrainConfig, load_config
from .record import write_json, write_text
from .state import RunState

# What a resume may change: where it runs, and the schedule from here on (length, rates, clipping, how
# often it checkpoints). Everything else (model, data, seed, augmentation, batch) defines the run.
RESUMABLE = ("device", "workers", "epochs", "cooldown_epochs", "lr", "min_lr", "warmup_epochs", "warmup_lr",
             "clip_grad", "save_every")
# Entries of config.yaml that name the folder rather than the run.
_NOT_COMPARED = ("out", "overwrite")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def neuron_backend(device: torch.device) -> str:
    """The neuron kernel that runs on ``device`` here (``reference``, ``cpu``, ``triton``)."""
    from ..neurons.kernels import select_backend

    return select_backend(torch.zeros(1, device=device))


def _position(state: dict[str, Any]) -> tuple[int, int]:
    run = state["run"]
    return run["epoch"], run["batch"]


def check_run_state(state: dict[str, Any], source: Path) -> None:
    """The entries a training checkpoint needs, with the types the loop relies on."""
    require(state, source, "model", "optimizer", "rng", "run")
    run = state["run"]
    for key in ("epoch", "batch", "step"):
        if not isinstance(run.get(key), int) or isinstance(run[key], bool) or run[key] < 0:
            raise ValueError(f"{source}: its run position {key!r} is {run.get(key)!r}, not a count")


def latest_checkpoint(out: Path, quiet: bool = False) -> tuple[dict[str, Any], Path, dict[str, Any] | None]:
    """The checkpoint to continue from (``last.pt``, or ``best.pt`` when a kill left it later), its path,
    and ``best.pt``'s contents (None when there is none, or it cannot be read: a warning says why,
    unless ``quiet``)."""
    last = out / "last.pt"
    state = load_checkpoint(last)
    check_run_state(state, last)
    best = None
    if (out / "best.pt").is_file():
        try:
            best = load_checkpoint(out / "best.pt")
            check_run_state(best, out / "best.pt")
        except ValueError as err:
            if not quiet:
                warn(f"{err}; the run continues, and its next best epoch replaces best.pt")
            best = None
    if best is not None and _position(best) > _position(state):  # killed between best.pt's write and last.pt's
        return best, out / "best.pt", best
    return state, last, best


def reconcile_best(run: RunState, best: dict[str, Any] | None, out: Path, quiet: bool = False) -> None:
    """Make the recorded best accuracy the one ``best.pt`` holds. A kill in an older version could leave
    best.pt behind the record, and the run would then never write it again."""
    held = best["run"].get("test_acc1") if best is not None else None
    if not isinstance(held, (int, float)):
        held = -1.0
    if run.best_acc1 > held and not quiet:
        what = f"holds test top-1 {held:.4f}" if best is not None else "is missing or unreadable"
        warn(f"{out / 'best.pt'} {what}, below the recorded best {run.best_acc1:.4f} (a write cut short); "
             "the next epoch that beats it replaces it")
    run.best_acc1 = min(run.best_acc1, held)


def check_position(run: RunState, source: Path, steps_per_epoch: int) -> None:
    if run.batch > steps_per_epoch:
        raise ValueError(f"{source} stopped at batch {run.batch} of an epoch, but this data makes "
                         f"{steps_per_epoch} batches an epoch: the data set or the batch size changed")


def config_changes(out: Path, cfg: TrainConfig) -> dict[str, list[Any]]:
    """``{key: [old, new]}`` for the settings ``cfg`` changes against the run's ``config.yaml``; a
    ValueError naming the others, which a resume may not change."""
    path = out / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"Nothing to resume in {out}: no config.yaml there")
    # Read as the run's config is read, so that both sides are normalised alike (and a setting that a
    # newer version added compares as its default, which the run used).
    recorded = dataclasses.asdict(load_config(path))
    changes = {key: [recorded[key], value] for key, value in dataclasses.asdict(cfg).items()
               if key not in _NOT_COMPARED and recorded[key] != value}
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        detail = "; ".join(f"{key}: {changes[key][0]!r} in the run, {changes[key][1]!r} now" for key in fixed)
        raise ValueError(f"A resume continues the run in {out} with its own config ({detail}); it may change "
                         f"only {', '.join(RESUMABLE)}")
    return changes


def record_resume(out: Path, cfg: TrainConfig, changes: dict[str, list[Any]], run: RunState,
                  source: Path, backend: str) -> None:
    """The new settings into ``config.yaml``; this resume into ``run.json``'s ``resumes`` list."""
    if changes:
        recorded = yaml.safe_load((out / "config.yaml").read_text())
        settings = {**dataclasses.asdict(cfg), **{key: recorded.get(key) for key in _NOT_COMPARED}}
        write_text(out / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
        print("resuming with " + ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items()))
    path = out / "run.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        info = {}
    info = info if isinstance(info, dict) else {}
    info.setdefault("resumes", []).append({
        "time": datetime.now().astimezone().isoformat(timespec="seconds"), "command": list(sys.orig_argv),
        "from": source.name, "epoch": run.epoch, "batch": run.batch, "step": run.step,
        "changed": changes, "neuron_backend": backend,
    })
    write_json(path, info)


def model_description(model: nn.Module) -> dict[str, str]:
    """``{module name: 'Type(setting=value, ...)'}``: every module's type and its plain settings (numbers,
    strings, flags and tuples of them; no tensors), as just built. Two builds of one architecture agree;
    a library default that changed since a run started (a neuron added, a threshold moved) shows."""
    def plain(value) -> bool:
        if isinstance(value, (tuple, list)):
            return all(plain(item) for item in value)
        return value is None or isinstance(value, (bool, int, float, str))

    described = {}
    for name, module in model.named_modules():
        settings = sorted((key, value) for key, value in vars(module).items()
                          if not key.startswith("_") and key != "training" and plain(value))
        described[name or "(model)"] = f"{type(module).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in settings) + ")"
    return described


def check_model(out: Path, description: dict[str, str]) -> None:
    """A ValueError when the model built for a resume is not the one the run in ``out`` started with, as
    ``run.json`` recorded it (runs started before it did are not checked)."""
    try:
        recorded = json.loads((out / "run.json").read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(recorded, dict) or recorded == description:
        return
    differences = [f"{name}: {recorded.get(name, 'absent')} in the run, {description.get(name, 'absent')} now"
                   for name in list(recorded) + [n for n in description if n not in recorded]
                   if recorded.get(name) != description.get(name)]
    shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
    raise ValueError(f"The model built now is not the one the run in {out} trained ({shown}): this version's "
                     "defaults differ from those the run started with. Resume it with that version, or start a "
                     "new run.")


def check_backend(state: dict[str, Any], source: Path, backend: str) -> None:
    trained = state.get("neuron_backend")
    if isinstance(trained, str) and trained != backend:
        warn(f"{source} was trained with the {trained!r} neuron backend, and this process runs {backend!r}: "
             "the resumed run will not match an uninterrupted one bit for bit (SPIKEFORMERS_NEURON_BACKEND="
             f"{trained} selects the same one, where it can run)")


def restore(state: dict[str, Any], source: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler, ema) -> None:
    """Every part of a training checkpoint into the run's objects; a ValueError naming ``source`` for a part
    that does not fit (nothing is half restored: the model's keys and shapes are checked before a copy)."""
    check_state_dict(model, state["model"], source)
    if ema is not None:
        if not isinstance(state.get("ema"), dict):
            raise ValueError(f"{source} holds no weight average, but this run keeps one (ema: true)")
        check_state_dict(ema.module, state["ema"], source)
    model.load_state_dict(state["model"])
    try:
        optimizer.load_state_dict(state["optimizer"])
        _check_optimizer_shapes(optimizer)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise ValueError(f"{source}: its optimiser state does not fit the model ({err})") from None
    try:
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{source}: its random or loss-scaler state is not usable ({err})") from None
    if ema is not None:
        ema.load_state_dict(state["ema"])


def _check_optimizer_shapes(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ValueError(f"{key} of shape {tuple(value.shape)} for a parameter of shape {tuple(param.shape)}")
