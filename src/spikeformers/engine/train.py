"""The training loop, readable top to bottom: config, data, model, optimiser, loop, record.

``train(cfg)`` writes into the run folder: ``config.yaml`` (the resolved
config), ``metrics.csv`` (one row per epoch), ``last.pt`` and ``best.pt``
(checkpoints, written atomically) and ``summary.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
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
from .checkpoint import atomic_write, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate, to_time_major


class NonFiniteLossError(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def choose_run_dir(cfg: TrainConfig) -> Path:
    """The run folder (not yet created); one that already holds a run is only reused with ``overwrite``."""
    if cfg.out is not None:
        out = Path(cfg.out)
        if (out / "config.yaml").exists() and not cfg.overwrite:
            raise FileExistsError(f"{out} already holds a run; choose another --out or pass --overwrite")
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


def train(cfg: TrainConfig) -> dict[str, Any]:
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = choose_run_dir(cfg)

    model_overrides = cfg.model_overrides()
    model = create_model(cfg.model, **model_overrides).to(device)
    T = model.time_steps
    train_set = create_dataset(cfg.dataset, train=True, time_steps=T, root=cfg.data_root)
    test_set = create_dataset(cfg.dataset, train=False, time_steps=T, root=cfg.data_root)
    check_compatible(model, train_set, cfg.model, cfg.dataset)
    if len(train_set) == 0 or len(test_set) == 0:
        raise ValueError(f"Data set {cfg.dataset} has {len(train_set)} training and {len(test_set)} test samples")
    # Only now, with every setting known to work, does the run folder appear.
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    generator = torch.Generator().manual_seed(cfg.seed)  # data order
    augment_generator = torch.Generator().manual_seed(cfg.seed + 1)
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=generator,
                              num_workers=cfg.workers, pin_memory=device.type == "cuda")
    test_loader = DataLoader(test_set, batch_size=cfg.batch_size, num_workers=cfg.workers)
    n_params = count_parameters(model)
    print(f"{cfg.model}: {n_params:,} parameters, T={T} | {cfg.dataset}: {len(train_set)} train, "
          f"{len(test_set)} test | {device} | run folder {out}")

    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = len(train_loader)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)

    metrics_path = out / "metrics.csv"
    columns = ["epoch", "lr", "train_loss", "train_acc1", "test_loss", "test_acc1", "test_acc5", "samples_per_s", "epoch_s"]
    with metrics_path.open("w", newline="") as f:
        csv.writer(f).writerow(columns)

    step, best_acc1, train_samples, train_seconds = 0, -1.0, 0, 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=None, dynamic_ncols=True)
        for frames, labels in bar:
            lr = learning_rate(step, total_steps, warmup_steps, cfg.lr, cfg.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            frames = to_time_major(frames.to(device, non_blocking=True).float())
            frames = random_translate(frames, cfg.translate, augment_generator)
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

            step += 1
            seen += labels.numel()
            loss_sum += loss.item() * labels.numel()
            correct += (logits.argmax(1) == labels).sum().item()
            rate = seen / (time.perf_counter() - epoch_start)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", samples_s=f"{rate:.0f}")
        train_time = time.perf_counter() - epoch_start
        train_samples += seen
        train_seconds += train_time

        test = evaluate(model, test_loader, device)
        is_best = test.acc1 > best_acc1
        best_acc1 = max(best_acc1, test.acc1)
        row = [epoch, lr, loss_sum / seen, correct / seen, test.loss, test.acc1, test.acc5,
               seen / train_time, time.perf_counter() - epoch_start]
        with metrics_path.open("a", newline="") as f:
            csv.writer(f).writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
        print(f"epoch {epoch:3d}/{cfg.epochs}  lr {lr:.2e}  train loss {row[2]:.4f} acc {row[3]:.4f}  "
              f"test loss {test.loss:.4f} acc1 {test.acc1:.4f} acc5 {test.acc5:.4f}  "
              f"{seen / train_time:.0f} samples/s  {row[-1]:.1f}s", flush=True)

        state = {"model_name": cfg.model, "model_overrides": model_overrides, "model": model.state_dict(),
                 "config": dataclasses.asdict(cfg), "epoch": epoch, "test_acc1": test.acc1}
        save_checkpoint(out / "last.pt", state)
        if is_best:
            save_checkpoint(out / "best.pt", state)

    summary = {
        "model": cfg.model, "dataset": cfg.dataset, "epochs": cfg.epochs, "parameters": n_params,
        "time_steps": T, "test_acc1": test.acc1, "test_acc5": test.acc5, "best_test_acc1": best_acc1,
        "train_samples_per_s": train_samples / train_seconds, "wall_s": time.perf_counter() - start,
        "device": str(device), "run_dir": str(out),
    }
    atomic_write(out / "summary.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
    print(f"done in {summary['wall_s']:.1f}s: test acc1 {test.acc1:.4f} (best {best_acc1:.4f}); "
          f"checkpoint {out / 'last.pt'}")
    return summary
