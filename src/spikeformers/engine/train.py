"""The training loop, readable top to bottom: config, data, model, optimiser, loop, record.

``train(cfg)`` writes into the run folder: ``config.yaml`` (the resolved
config), ``metrics.csv`` (one row per epoch), ``last.pt`` and ``best.pt``
(checkpoints, written atomically) and ``summary.json``.

Nothing is lost: ``last.pt`` holds everything needed to continue (weights,
optimiser, step, position in the epoch, random state), written at each
epoch's end, every ``save_every`` steps, and when SIGTERM or SIGINT asks the
run to stop. ``train(cfg, resume=True)`` continues from it; the data order
and the augmentation are functions of (seed, epoch, step), so on the CPU a
resumed run ends with the same weights, bit for bit, as one never stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.augment import random_translate
from ..data.registry import create_dataset
from ..models import count_parameters, create_model
from .checkpoint import atomic_write, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate, to_time_major


class NonFiniteLossError(RuntimeError):
    pass


class TrainingInterrupted(Exception):
    """Raised after a stop was requested by a signal and the checkpoint is written."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def choose_run_dir(cfg: TrainConfig, resume: bool = False) -> Path:
    """The run folder (not yet created); one that already holds a run is only reused with
    ``overwrite`` (start again) or ``resume`` (continue)."""
    if resume:
        out = Path(cfg.out)
        if not (out / "last.pt").is_file():
            raise FileNotFoundError(f"Nothing to resume in {out}: no last.pt checkpoint there")
        return out
    if cfg.out is not None:
        out = Path(cfg.out)
        if (out / "config.yaml").exists() and not cfg.overwrite:
            raise FileExistsError(f"{out} already holds a run; continue it with --resume {out}, "
                                  "or choose another --out, or pass --overwrite")
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out, suffix = Path("runs") / f"{cfg.model}-{cfg.dataset}-{stamp}", 1
    while out.exists():
        out, suffix = Path("runs") / f"{cfg.model}-{cfg.dataset}-{stamp}-{suffix}", suffix + 1
    return out


def check_compatible(model: nn.Module, dataset, model_name: str, dataset_name: str) -> None:
    """Name the mismatch between a model's input and a data set's samples before training starts."""
    wanted = (model.in_channels, tuple(model.img_size), model.num_classes)
    given = (dataset.in_channels, tuple(dataset.sensor_size), dataset.num_classes)
    if wanted != given:
        raise ValueError(
            f"Model {model_name} expects (channels, (H, W), classes) = {wanted} but data set "
            f"{dataset_name} yields {given}; pick a matching model or override in_channels/img_size/num_classes"
        )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and kernels only, not on biases, norms or scalars (as timm)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def learning_rate(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``min_lr``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The sample indices of each batch of an epoch: a function of (seed, epoch) alone."""
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return [order[i:i + batch_size].tolist() for i in range(0, num_samples, batch_size)]


def step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation's random stream for one step: a function of (seed, step) alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + 999_983 + step)


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


def import_plugin(name: str | None) -> None:
    """Import the module that registers a user's own models or data sets."""
    if name:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"Cannot import plugin {name!r} (is its folder on PYTHONPATH?): {err}") from None


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    start = time.perf_counter()
    import_plugin(cfg.plugin)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = choose_run_dir(cfg, resume)

    model_overrides = cfg.model_overrides()
    model = create_model(cfg.model, **model_overrides).to(device)
    T = model.time_steps
    train_set = create_dataset(cfg.dataset, train=True, time_steps=T, root=cfg.data_root)
    test_set = create_dataset(cfg.dataset, train=False, time_steps=T, root=cfg.data_root)
    check_compatible(model, train_set, cfg.model, cfg.dataset)
    if len(train_set) == 0 or len(test_set) == 0:
        raise ValueError(f"Data set {cfg.dataset} has {len(train_set)} training and {len(test_set)} test samples")
    test_loader = DataLoader(test_set, batch_size=cfg.batch_size, num_workers=cfg.workers)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    n_params = count_parameters(model)
    metrics_path = out / "metrics.csv"
    columns = ["epoch", "lr", "train_loss", "train_acc1", "test_loss", "test_acc1", "test_acc5",
               "samples_per_s", "epoch_s"]

    # Where the run stands: a fresh start, or the position saved in last.pt.
    run = {"epoch": 0, "batch": 0, "step": 0, "best_acc1": -1.0, "wall_s": 0.0, "train_samples": 0,
           "train_seconds": 0.0, "loss_sum": 0.0, "correct": 0, "seen": 0, "epoch_s": 0.0}
    if resume:
        state = load_checkpoint(out / "last.pt", map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        run.update(state["run"])
        kept = [row for row in csv.reader(metrics_path.open()) if row and row[0] != "epoch" and int(row[0]) <= run["epoch"]]
        rows = "\n".join(",".join(row) for row in [columns] + kept) + "\n"
        atomic_write(metrics_path, lambda f: f.write(rows.encode()))
        print(f"resuming {out} after epoch {run['epoch']}, batch {run['batch']} (step {run['step']})")
    else:
        # Only now, with every setting known to work, does the run folder appear.
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        for part in (train_set, test_set):  # the file lists of a split, so the run can be reproduced
            if hasattr(part, "write_split_files"):
                part.write_split_files(out)
        with metrics_path.open("w", newline="") as f:
            csv.writer(f).writerow(columns)
    print(f"{cfg.model}: {n_params:,} parameters, T={T} | {cfg.dataset}: {len(train_set)} train, "
          f"{len(test_set)} test | {device} | run folder {out}")

    def checkpoint(path: Path) -> None:
        run["wall_s"] = run_wall_s()
        if run["batch"]:  # mid-epoch: keep the epoch's training time so far
            run["epoch_s"] = epoch_time_before + time.perf_counter() - epoch_start
        save_checkpoint(path, {
            "model_name": cfg.model, "model_overrides": model_overrides, "config": dataclasses.asdict(cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
            "epoch": run["epoch"], "run": dict(run),
        })

    wall_before = run["wall_s"]

    def run_wall_s() -> float:
        return wall_before + time.perf_counter() - start

    test = None
    with StopRequest() as stop:
        for epoch in range(run["epoch"] + 1, cfg.epochs + 1):
            model.train()
            epoch_start, epoch_time_before, seen_before = time.perf_counter(), run["epoch_s"], run["seen"]
            batches = epoch_batches(len(train_set), cfg.batch_size, cfg.seed, epoch)
            loader = DataLoader(train_set, batch_sampler=batches[run["batch"]:], num_workers=cfg.workers,
                                pin_memory=device.type == "cuda")
            bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=None, dynamic_ncols=True,
                       initial=run["batch"], total=len(batches))
            for frames, labels in bar:
                step = run["step"]
                lr = learning_rate(step, total_steps, warmup_steps, cfg.lr, cfg.min_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                frames = to_time_major(frames.to(device, non_blocking=True).float())
                frames = random_translate(frames, cfg.translate, step_generator(cfg.seed, step))
                labels = labels.to(device, non_blocking=True)

                logits = model(frames)
                loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"Loss became {loss.item()} at epoch {epoch}, step {step}; the last good checkpoint "
                        f"in {out} is untouched. Try a lower --lr."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

                run["step"] += 1
                run["batch"] += 1
                run["seen"] += labels.numel()
                run["loss_sum"] += loss.item() * labels.numel()
                run["correct"] += (logits.argmax(1) == labels).sum().item()
                rate = (run["seen"] - seen_before) / max(1e-9, time.perf_counter() - epoch_start)
                bar.set_postfix(loss=f"{run['loss_sum'] / run['seen']:.3f}",
                                acc=f"{run['correct'] / run['seen']:.3f}", samples_s=f"{rate:.0f}")
                if stop.signum is not None:
                    checkpoint(out / "last.pt")
                    raise TrainingInterrupted(stop.signum, (
                        f"Stopped by {signal.Signals(stop.signum).name} at epoch {epoch}, step {run['step']}; "
                        f"checkpoint written. Continue with: spikeformers train --resume {out}"))
                if cfg.save_every and run["step"] % cfg.save_every == 0:
                    checkpoint(out / "last.pt")
            bar.close()
            train_time = epoch_time_before + time.perf_counter() - epoch_start
            seen = run["seen"]
            run["train_samples"] += seen
            run["train_seconds"] += train_time

            test = evaluate(model, test_loader, device)
            is_best = test.acc1 > run["best_acc1"]
            run["best_acc1"] = max(run["best_acc1"], test.acc1)
            row = [epoch, lr, run["loss_sum"] / seen, run["correct"] / seen, test.loss, test.acc1, test.acc5,
                   seen / train_time, time.perf_counter() - epoch_start]
            with metrics_path.open("a", newline="") as f:
                csv.writer(f).writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
            print(f"epoch {epoch:3d}/{cfg.epochs}  lr {lr:.2e}  train loss {row[2]:.4f} acc {row[3]:.4f}  "
                  f"test loss {test.loss:.4f} acc1 {test.acc1:.4f} acc5 {test.acc5:.4f}  "
                  f"{seen / train_time:.0f} samples/s  {row[-1]:.1f}s", flush=True)

            run.update(epoch=epoch, batch=0, loss_sum=0.0, correct=0, seen=0, epoch_s=0.0, test_acc1=test.acc1)
            checkpoint(out / "last.pt")
            if is_best:
                checkpoint(out / "best.pt")

    if test is None:  # resumed a run that had already finished
        test = evaluate(model, test_loader, device)
    summary = {
        "model": cfg.model, "dataset": cfg.dataset, "epochs": cfg.epochs, "parameters": n_params,
        "time_steps": T, "test_acc1": test.acc1, "test_acc5": test.acc5, "best_test_acc1": run["best_acc1"],
        "train_samples_per_s": run["train_samples"] / max(1e-9, run["train_seconds"]), "wall_s": run_wall_s(),
        "device": str(device), "run_dir": str(out),
    }
    atomic_write(out / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    print(f"done in {summary['wall_s']:.1f}s: test acc1 {test.acc1:.4f} (best {run['best_acc1']:.4f}); "
          f"checkpoint {out / 'last.pt'}")
    return summary
