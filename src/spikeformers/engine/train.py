"""The training loop, readable top to bottom: config, data, model, optimiser, loop, record.

``train(cfg)`` writes into the run folder: ``config.yaml`` (the resolved
config), ``run.json`` (command, versions, commit, device, neuron backend,
and every resume), the split's file lists, ``metrics.csv`` (one row per
epoch; TensorBoard logs too when installed), ``last.pt`` and ``best.pt``
(checkpoints, written atomically), and at the end ``curves.png`` (loss,
accuracy, learning rate), ``per_class.csv``, ``confusion.png`` and, last,
``summary.json``.

The recipe's parts each live in their own module: the schedule
(``schedule.py``), the losses (``losses.py``), augmentation
(``augmentation.py``), the weight average (``ema.py``), several processes
under torchrun (``distributed.py``); this file only strings them together.

Nothing is lost: ``last.pt`` holds everything needed to continue (weights,
optimiser, step, position in the epoch, random state), written at each
epoch's end, every ``save_every`` steps, and when SIGTERM or SIGINT asks the
run to stop. ``train(cfg, resume=True)`` continues from it (see
``resume.py``); the data order and the augmentation are functions of (seed,
epoch, step), so on the CPU, with the same neuron backend, a resumed run ends
with the same weights, bit for bit, as one never stopped; a finished run is
left as it is. Nothing poisoned is kept either: after every step the weights
and gradients are checked for NaN and inf, and a run that diverges stops
before any checkpoint holds them.
"""

from __future__ import annotations

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
import yaml
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ..data.device_frames import DeviceFrames, DeviceFramesError
from ..data.registry import create_dataset
from ..memory import enable_activation_checkpointing, return_freed_memory_to_os
from ..models import count_parameters, create_model
from . import distributed
from .augmentation import BatchAugment
from ..atomic import remove_temporary_files
from .checkpoint import first_non_finite, non_finite, save_checkpoint
from .config import TrainConfig
from .ema import ModelEMA
from .evaluate import evaluate, to_time_major
from .losses import class_scores, cross_entropy, tet_loss
from .plots import plot_confusion, plot_curves, write_per_class
from .record import MetricsLog, read_metrics, run_info, write_json, write_text
from .resume import (check_backend, check_position, config_changes, latest_checkpoint, neuron_backend,
                     reconcile_best, record_resume, restore)
from .schedule import learning_rate, schedule_time
from .stopping import NonFiniteTrainingError, PeerLostError, StopRequest, TrainingInterrupted  # noqa: F401


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU) or a device PyTorch names, checked to exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a device: {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: this PyTorch ({torch.__version__}) sees no CUDA GPU "
                             f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU visible'}); use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA GPU(s), numbered 0 to {count - 1}")
    elif device.type not in ("cpu", "meta"):
        available = getattr(torch, device.type, None)
        if available is None or not getattr(available, "is_available", lambda: False)():
            raise ValueError(f"--device {name}: no {device.type} device is available here; use --device cpu")
    return device


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
    out, suffix = Path(cfg.runs_dir) / f"{cfg.model}-{cfg.dataset}-{stamp}", 1
    while out.exists():
        out, suffix = Path(cfg.runs_dir) / f"{cfg.model}-{cfg.dataset}-{stamp}-{suffix}", suffix + 1
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


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int, drop_last: bool = False,
                  min_size: int = 1) -> list[list[int]]:
    """The sample indices of each (global) batch of an epoch: a function of (seed, epoch) alone.

    The last batch is dropped when ``drop_last`` and it is incomplete, or when
    it has fewer than ``min_size`` samples (one per process, under torchrun).
    """
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    batches = [order[i:i + batch_size].tolist() for i in range(0, num_samples, batch_size)]
    if batches and (len(batches[-1]) < min_size or drop_last and len(batches[-1]) < batch_size):
        batches.pop()
    return batches


def step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation's random stream for one step: a function of (seed, step) alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + 999_983 + step)


def import_plugin(name: str | None) -> None:
    """Import the module that registers a user's own models or data sets."""
    if name:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"Cannot import plugin {name!r} (is its folder on PYTHONPATH?): {err}") from None


def peak_learning_rate(cfg: TrainConfig, processes: int = 1) -> float:
    """``lr``, or with ``lr_base_batch`` the authors' linear scaling ``lr * global batch / lr_base_batch``."""
    if cfg.lr_base_batch:
        return cfg.lr * cfg.batch_size * processes / cfg.lr_base_batch
    return cfg.lr


def limited(dataset, count: int, seed: int):
    """A fixed random choice of ``count`` samples (all when there are fewer), keeping the data set's attributes."""
    if count < 1:
        raise ValueError(f"limit_samples must be >= 1, got {count}")
    if count >= len(dataset):
        return dataset
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    subset = Subset(dataset, chosen.tolist())
    subset.classes = getattr(dataset, "classes", None)
    return subset


def time_first_on(device: torch.device, frames: torch.Tensor, labels: torch.Tensor):
    """A loader batch ``[B, T, ...]`` as the loop takes it: float ``[T, B, ...]`` and labels, on ``device``."""
    return to_time_major(frames.to(device, non_blocking=True).float()), labels.to(device, non_blocking=True)


def frames_on_device(mode: str, dataset, device: torch.device, workers: int) -> DeviceFrames | None:
    """The training frames kept on the device (``on``, or ``auto`` on a GPU when they fit), else None."""
    if mode == "off" or mode == "auto" and device.type != "cuda":
        return None
    try:
        frames = DeviceFrames.from_dataset(dataset, device, workers=workers)
    except DeviceFramesError as err:
        if mode == "on":
            raise
        print(f"training frames stay on the host: {err}")
        return None
    print(f"training frames on {device}: {frames}")
    return frames


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    if cfg.amp_dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return getattr(torch, cfg.amp_dtype)


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train as ``cfg`` says (continuing the run in ``cfg.out`` when ``resume``); return the summary."""
    import_plugin(cfg.plugin)
    world, device = distributed.setup(cfg.device)
    out = None
    try:
        out = choose_run_dir(cfg, resume)
        if world.active:  # one run folder for all processes: rank 0's (a new one is named by the clock)
            shared = [str(out)]
            torch.distributed.broadcast_object_list(shared, src=0)
            out = Path(shared[0])
        summary = _train(cfg, resume, world, device, out)
    except BaseException as err:
        distributed.teardown(world)
        if distributed.is_peer_loss(world, err):
            then = (f"the last checkpoint in {out} is intact: continue with "
                    f"`torchrun ... spikeformers train --resume {out}`") if out is not None else "nothing was written"
            raise PeerLostError(f"{distributed.lost_peer_message(world, err)}; this process stops too, and {then}") from None
        raise
    distributed.finish(world)  # only now, with rank 0's results written: every process leaves together
    return summary


def _train(cfg: TrainConfig, resume: bool, world: distributed.World, device: torch.device, out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    main = world.is_main

    # Where the run stands: a fresh start, or the position saved in last.pt (or best.pt: see resume.py).
    run = {"epoch": 0, "batch": 0, "step": 0, "best_acc1": -1.0, "wall_s": 0.0, "train_samples": 0,
           "train_seconds": 0.0, "loss_sum": 0.0, "correct": 0, "seen": 0, "epoch_s": 0.0}
    if resume:
        changes = config_changes(out, cfg)
        state, resumed_from, best = latest_checkpoint(out, quiet=not main)
        run.update(state["run"])
        if run["epoch"] > cfg.total_epochs:
            raise ValueError(f"The run in {out} has done {run['epoch']} epochs; --epochs cannot end it before that")
        if run["epoch"] == cfg.total_epochs and (out / "summary.json").is_file():  # written last: all is there
            if main:
                print(f"{out} has already finished its {cfg.total_epochs} epochs: nothing to do, and its results "
                      "are left as they are (a larger --epochs continues it)")
            return json.loads((out / "summary.json").read_text())
        reconcile_best(run, best, out, quiet=not main)
    if main and out.is_dir():
        for leftover in remove_temporary_files(out):
            print(f"removed {leftover.name}, left by a write that was cut short")
    torch.manual_seed(cfg.seed)

    # Model and data
    model_overrides = cfg.model_overrides()
    model = create_model(cfg.model, **model_overrides)
    if cfg.sync_bn and world.active:
        model = distributed.convert_sync_batchnorm(model, device)
    if cfg.checkpoint_activations:
        enable_activation_checkpointing(model)
    if (cfg.checkpoint_activations or cfg.release_memory) and device.type == "cpu":
        return_freed_memory_to_os()  # glibc would otherwise keep freed activations' memory (the recomputed ones)
    model.to(device)
    T = model.time_steps
    train_set = create_dataset(cfg.dataset, train=True, time_steps=T, root=cfg.data_root, **cfg.dataset_options)
    test_set = create_dataset(cfg.dataset, train=False, time_steps=T, root=cfg.data_root, **cfg.dataset_options)
    check_compatible(model, train_set, cfg.model, cfg.dataset)
    if cfg.limit_samples is not None:
        train_set, test_set = (limited(part, cfg.limit_samples, cfg.seed) for part in (train_set, test_set))
    if len(train_set) == 0 or len(test_set) == 0:
        raise ValueError(f"Data set {cfg.dataset} has {len(train_set)} training and {len(test_set)} test samples")
    device_frames = frames_on_device(cfg.frames_on_device, train_set, device, cfg.workers)
    test_share = Subset(test_set, world.shard(list(range(len(test_set)))))
    test_loader = DataLoader(test_share, batch_size=cfg.batch_size, num_workers=cfg.workers)
    global_batch = cfg.batch_size * world.size
    steps_per_epoch = len(epoch_batches(len(train_set), global_batch, cfg.seed, 1, cfg.drop_last, world.size))
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_set)} training samples make no batch of {global_batch} (drop_last)")

    # Optimiser, mixed precision, weight average, augmentation, loss
    peak_lr = peak_learning_rate(cfg, world.size)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=peak_lr, eps=cfg.opt_eps)
    amp_dtype = autocast_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and amp_dtype == torch.float16)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
    augment = BatchAugment(cfg, model.num_classes)
    backend = neuron_backend(device)

    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if cfg.tet:
            return tet_loss(logits, targets, cfg.tet_lamb, label_smoothing=cfg.label_smoothing)
        return cross_entropy(logits, targets, cfg.label_smoothing)

    def lr_at(epoch: int, batch: int) -> float:
        t = schedule_time(epoch, batch, steps_per_epoch, cfg.lr_update == "step")
        return learning_rate(t, cfg.epochs, cfg.warmup_epochs, peak_lr, cfg.min_lr, cfg.warmup_lr)

    if resume:
        check_position(run, resumed_from, steps_per_epoch)
        restore(state, resumed_from, model, optimizer, scaler, ema)
        if main:
            check_backend(state, resumed_from, backend)
            record_resume(out, cfg, changes, run, resumed_from, backend)
            print(f"resuming {out} after epoch {run['epoch']}, batch {run['batch']} (step {run['step']})")
        del state, best
    elif main:  # only now, with every setting known to work, does the run folder appear
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        write_json(out / "run.json", {**run_info(device, world.size), "neuron_backend": backend})
        for part in (train_set, test_set):  # the file lists of a split, so the run can be reproduced
            if hasattr(part, "write_split_files"):
                part.write_split_files(out)
    log = MetricsLog(out, resume_after_epoch=run["epoch"] if resume else None) if main else None
    world.barrier()
    n_params = count_parameters(model)
    if main:
        print(f"{cfg.model}: {n_params:,} parameters, T={T} | {cfg.dataset}: {len(train_set)} train, "
              f"{len(test_set)} test | {device}{f' x {world.size} processes' if world.active else ''} | "
              f"run folder {out}")
    trained = nn.parallel.DistributedDataParallel(model) if world.active else model
    saved = f"{resumed_from} (epoch {run['epoch']}, step {run['step']})" if resume else None

    def diverged(what: str, epoch: int, step: int) -> NonFiniteTrainingError:
        kept = f"the last checkpoint, {saved}, is finite and untouched" if saved else "no checkpoint was written"
        return NonFiniteTrainingError(
            f"{what} became NaN or inf at epoch {epoch}, step {step}; {kept}. Try a lower learning rate"
            + (" or --no-amp" if cfg.amp else "")
            + (f" (continue with: spikeformers train --resume {out} --lr LOWER)" if saved else " (--lr)"))

    def checkpoint(path: Path, epoch: int) -> None:
        nonlocal saved
        run["wall_s"] = run_wall_s()
        if run["batch"]:  # mid-epoch: keep the epoch's training time so far
            run["epoch_s"] = epoch_time_before + time.perf_counter() - epoch_start
        state = {
            "model_name": cfg.model, "model_overrides": model_overrides, "config": dataclasses.asdict(cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "rng": torch.get_rng_state(),
            "epoch": run["epoch"], "run": dict(run), "neuron_backend": backend,
        }
        poisoned = first_non_finite(state)  # every process decides alike: their weights are the same
        if poisoned is not None:
            raise diverged(poisoned, epoch, run["step"])
        if main:
            save_checkpoint(path, state)
        saved = f"{path} (epoch {run['epoch']}, step {run['step']})"
        world.barrier()

    wall_before = run["wall_s"]

    def run_wall_s() -> float:
        return wall_before + time.perf_counter() - start

    if resume and resumed_from.name == "best.pt":  # the write of last.pt that a kill cut short
        checkpoint(out / "last.pt", run["epoch"])

    test = ema_test = None
    with StopRequest() as stop:
        for epoch in range(run["epoch"] + 1, cfg.total_epochs + 1):
            trained.train()
            epoch_start, epoch_time_before, seen_before = time.perf_counter(), run["epoch_s"], run["seen"]
            first_batch = run["batch"]
            source = getattr(train_set, "dataset", train_set)  # under limit_samples, a Subset
            if hasattr(source, "set_epoch"):  # per-sample random transforms drawn from (seed, epoch, index)
                source.set_epoch(epoch, cfg.seed)
            batches = epoch_batches(len(train_set), global_batch, cfg.seed, epoch, cfg.drop_last, world.size)
            my_batches = [world.shard(batch) for batch in batches[run["batch"]:]]
            if device_frames is not None:  # frames already on the device, time first, as floats
                loader = device_frames.batches(my_batches)
            else:
                loader = (time_first_on(device, frames, labels) for frames, labels in DataLoader(
                    train_set, batch_sampler=my_batches, num_workers=cfg.workers, pin_memory=device.type == "cuda"))
            bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.total_epochs}", leave=False, dynamic_ncols=True,
                       disable=None if main else True, initial=run["batch"], total=len(batches))
            for frames, labels in bar:  # none left when the run stopped after this epoch's last step
                step = run["step"]
                lr = lr_at(epoch, run["batch"])
                for group in optimizer.param_groups:
                    group["lr"] = lr
                frames, targets = augment(frames, labels, epoch, step_generator(cfg.seed, step))

                with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                    logits = trained(frames)
                loss = loss_fn(logits.float(), targets)
                (loss_value,) = world.sum(loss.item())
                if not math.isfinite(loss_value):
                    raise diverged("the loss", epoch, step)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.clip_grad is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                # NaN weights silence the neurons, and the loss may then stay finite: look at the weights
                # themselves, and at the gradients (which a float16 loss scaler overflows on purpose).
                weights = list(model.parameters())
                grads = [] if scaler.is_enabled() else [p.grad for p in weights if p.grad is not None]
                bad_step = non_finite(weights + grads)
                if ema is not None:
                    ema.update(model)

                run["step"] += 1
                run["batch"] += 1
                run["seen"] += labels.numel()
                run["loss_sum"] += loss.item() * labels.numel()
                run["correct"] += (class_scores(logits).argmax(1) == labels).sum().item()
                elapsed = time.perf_counter() - epoch_start
                steps_left = cfg.total_epochs * steps_per_epoch - run["step"]
                bar.set_postfix(loss=f"{run['loss_sum'] / run['seen']:.3f}", acc=f"{run['correct'] / run['seen']:.3f}",
                                lr=f"{lr:.2e}", samples_s=f"{world.size * (run['seen'] - seen_before) / elapsed:.0f}",
                                left=format_seconds(steps_left * elapsed / max(1, run["batch"] - first_batch)))
                stopping, poisoned = world.sum(float(stop.signum is not None), float(bad_step))
                if poisoned:
                    raise diverged("the weights" if non_finite(weights) else "the gradients", epoch, step)
                if stopping:
                    signum = stop.signum or signal.SIGTERM
                    checkpoint(out / "last.pt", epoch)
                    raise TrainingInterrupted(signum, (
                        f"Stopped by {signal.Signals(signum).name} at epoch {epoch}, step {run['step']}; "
                        f"checkpoint written. Continue with: spikeformers train --resume {out}"))
                if cfg.save_every and run["step"] % cfg.save_every == 0:
                    checkpoint(out / "last.pt", epoch)
            bar.close()
            train_time = epoch_time_before + time.perf_counter() - epoch_start
            seen, loss_sum, correct = world.sum(run["seen"], run["loss_sum"], run["correct"])
            run["train_samples"] += seen
            run["train_seconds"] += train_time

            test = evaluate(model, test_loader, device, model.num_classes, world)
            ema_test = evaluate(ema.module, test_loader, device, model.num_classes, world) if ema else None
            reported = ema_test or test  # with EMA on, the average is the model a run delivers (as timm)
            is_best = reported.acc1 > run["best_acc1"]
            run["best_acc1"] = max(run["best_acc1"], reported.acc1)
            row = {"epoch": epoch, "lr": lr_at(epoch, len(batches) - 1), "train_loss": loss_sum / seen,
                   "train_acc1": correct / seen, "test_loss": test.loss, "test_acc1": test.acc1,
                   "test_acc5": test.acc5, "ema_test_acc1": ema_test.acc1 if ema_test else "",
                   "samples_per_s": seen / train_time, "epoch_s": time.perf_counter() - epoch_start}
            if main:
                log.add(row, run["step"])
                ema_text = f" (EMA {ema_test.acc1:.4f})" if ema_test else ""
                print(f"epoch {epoch:3d}/{cfg.total_epochs}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
                      f"acc {row['train_acc1']:.4f}  test loss {test.loss:.4f} acc1 {test.acc1:.4f}{ema_text} "
                      f"acc5 {test.acc5:.4f}  {row['samples_per_s']:.0f} samples/s  {row['epoch_s']:.1f}s", flush=True)

            run.update(epoch=epoch, batch=0, loss_sum=0.0, correct=0, seen=0, epoch_s=0.0, test_acc1=reported.acc1)
            if is_best:  # best.pt first: a kill between the two writes leaves it the later one (see resume.py)
                checkpoint(out / "best.pt", epoch)
            checkpoint(out / "last.pt", epoch)

    if test is None:  # resumed a run whose last checkpoint was written, but not its results
        test = evaluate(model, test_loader, device, model.num_classes, world)
        ema_test = evaluate(ema.module, test_loader, device, model.num_classes, world) if ema else None
    reported = ema_test or test
    summary = {
        "model": cfg.model, "dataset": cfg.dataset, "epochs": cfg.total_epochs, "parameters": n_params,
        "time_steps": T, "test_acc1": reported.acc1, "test_acc5": reported.acc5, "best_test_acc1": run["best_acc1"],
        "ema": ema is not None, "train_samples_per_s": run["train_samples"] / max(1e-9, run["train_seconds"]),
        "wall_s": run_wall_s(), "device": str(device), "processes": world.size, "run_dir": str(out),
    }
    if main:
        log.close()
        names = getattr(test_set, "classes", None)
        plot_curves(read_metrics(out / "metrics.csv"), out / "curves.png", f"{cfg.model} on {cfg.dataset}")
        plot_confusion(reported.confusion, out / "confusion.png", names, f"{cfg.model} on {cfg.dataset} test")
        write_per_class(reported, out / "per_class.csv", names)
        write_json(out / "summary.json", summary)  # last: its presence says the run finished and wrote all
        print(f"done in {summary['wall_s']:.1f}s: test acc1 {reported.acc1:.4f} (best {run['best_acc1']:.4f}); "
              f"checkpoint {out / 'last.pt'}")
    return summary
