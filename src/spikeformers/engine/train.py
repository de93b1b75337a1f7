"""The training loop, readable top to bottom: where the run stands, model and data, optimiser, loop, results.

``train(cfg)`` writes into the run folder: ``config.yaml`` (the resolved
config), ``run.json`` (command, versions, commit, device, neuron backend,
and every resume), the split's file lists, ``metrics.csv`` (one row per
epoch; TensorBoard logs too when installed), ``last.pt`` and ``best.pt``
(checkpoints, written atomically), and at the end ``curves.png`` (loss,
accuracy, learning rate), ``per_class.csv``, ``confusion.png`` and, last,
``summary.json``.

The recipe's parts each live in their own module: the run state and the
epoch meter (``state.py``), the schedule (``schedule.py``), the losses
(``losses.py``), augmentation (``augmentation.py``), the weight average
(``ema.py``), several processes under torchrun (``distributed.py``); this
file only strings them together. The batches come time first from the data
package (``collate_time_major``), or from frames kept on the device.

Nothing is lost: ``last.pt`` holds everything needed to continue (weights,
optimiser, the run state, random state), written at each epoch's end, every
``save_every`` steps, and when SIGTERM or SIGINT asks the run to stop.
``train(cfg, resume=True)`` continues from it (see ``resume.py``); the data
order and the augmentation are functions of (seed, epoch, step), so on the
CPU, with the same neuron backend, a resumed run ends with the same weights,
bit for bit, as one never stopped; a finished run is left as it is. Nothing
poisoned is kept either: after every step the weights and gradients are
checked for NaN and inf, and a run that diverges stops before any checkpoint
holds them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ..atomic import remove_temporary_files
from ..data import DeviceFrames, DeviceFramesError, collate_time_major, create_dataset
from ..export.preprocessing import describe_input
from ..memory import enable_activation_checkpointing, return_freed_memory_to_os
from ..models import count_parameters, create_model
from . import distributed
from .augmentation import BatchAugment
from .checkpoint import first_non_finite, non_finite, save_checkpoint
from .config import TrainConfig, import_plugin
from .device import autocast_dtype
from .ema import ModelEMA
from .evaluate import EvalResult, check_compatible, evaluate
from .losses import class_scores, cross_entropy, tet_loss
from .plots import plot_confusion, plot_curves, write_per_class
from .record import MetricsLog, read_metrics, run_info, write_json, write_text
from .resume import (check_backend, check_model, check_position, config_changes, latest_checkpoint,
                     model_description, neuron_backend, reconcile_best, record_resume, restore)
from .schedule import learning_rate, peak_learning_rate, schedule_time
from .state import RunState
from .stopping import NonFiniteTrainingError, PeerLostError, StopRequest, TrainingInterrupted


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
    main = world.is_main

    # Where the run stands: a fresh start, or the position saved in last.pt (or best.pt: see resume.py).
    run, state = RunState(), None
    if resume:
        changes = config_changes(out, cfg)
        state, resumed_from, best = latest_checkpoint(out, quiet=not main)
        run = RunState.from_dict(state["run"])
        if run.epoch > cfg.total_epochs:
            raise ValueError(f"The run in {out} has done {run.epoch} epochs; --epochs cannot end it before that")
        if run.epoch == cfg.total_epochs and (out / "summary.json").is_file():  # written last: all is there
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
    model = create_model(cfg.model, **cfg.model_overrides())
    description = model_description(model)
    if resume:
        check_model(out, description)
    if cfg.sync_bn and world.active:
        model = distributed.convert_sync_batchnorm(model, device)
    if cfg.checkpoint_activations:
        enable_activation_checkpointing(model)
    if (cfg.checkpoint_activations or cfg.release_memory) and device.type == "cpu":
        return_freed_memory_to_os()  # glibc would otherwise keep freed activations' memory (the recomputed ones)
    model.to(device)
    train_set, test_set = datasets(cfg, model)
    device_frames = frames_on_device(cfg.frames_on_device, train_set, device, cfg.workers)
    test_loader = DataLoader(Subset(test_set, world.shard(list(range(len(test_set))))), batch_size=cfg.batch_size,
                             num_workers=cfg.workers, collate_fn=collate_time_major)
    steps_per_epoch = len(epoch_batches(len(train_set), cfg.batch_size * world.size, cfg.seed, 1, cfg.drop_last,
                                        world.size))
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_set)} training samples make no batch of {cfg.batch_size * world.size} (drop_last)")

    # Optimiser, mixed precision, weight average, augmentation
    peak_lr = peak_learning_rate(cfg, world.size)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=peak_lr, eps=cfg.opt_eps)
    amp_dtype = autocast_dtype(cfg.amp_dtype, device)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and amp_dtype == torch.float16)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
    augment = BatchAugment(cfg, model.num_classes)
    backend = neuron_backend(device)

    # The run folder: continued, or made now that every setting has been shown to work
    if resume:
        check_position(run, resumed_from, steps_per_epoch)
        restore(state, resumed_from, model, optimizer, scaler, ema)
        if main:
            check_backend(state, resumed_from, backend)
            record_resume(out, cfg, changes, run, resumed_from, backend)
            print(f"resuming {out} after epoch {run.epoch}, batch {run.batch} (step {run.step})")
        del state, best
    elif main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        write_json(out / "run.json", {**run_info(device, world.size), "neuron_backend": backend, "model": description})
        for part in (train_set, test_set):  # the file lists of a split, so the run can be reproduced
            if hasattr(part, "write_split_files"):
                part.write_split_files(out)
    log = MetricsLog(out, resume_after_epoch=run.epoch if resume else None) if main else None
    world.barrier()
    if main:
        print(f"{cfg.model}: {count_parameters(model):,} parameters, T={model.time_steps} | {cfg.dataset}: "
              f"{len(train_set)} train, {len(test_set)} test | {device}"
              f"{f' x {world.size} processes' if world.active else ''} | run folder {out}")
    trainer = Trainer(cfg=cfg, world=world, device=device, out=out, run=run, model=model, optimizer=optimizer,
                      scaler=scaler, ema=ema, augment=augment, amp_dtype=amp_dtype, peak_lr=peak_lr,
                      steps_per_epoch=steps_per_epoch, train_set=train_set, device_frames=device_frames,
                      test_loader=test_loader, backend=backend,
                      preprocessing=input_description(cfg, model, test_set),
                      saved=f"{resumed_from} (epoch {run.epoch}, step {run.step})" if resume else None)
    if resume and resumed_from.name == "best.pt":  # the write of last.pt that a kill cut short
        trainer.save("last.pt", run.epoch)

    # The loop: train an epoch, evaluate, record, checkpoint
    test = ema_test = None
    with StopRequest() as stop:
        for epoch in range(run.epoch + 1, cfg.total_epochs + 1):
            train_loss, train_acc1, samples, seconds = trainer.train_epoch(epoch, stop)
            test, ema_test = trainer.evaluate()
            reported = ema_test or test  # with EMA on, the average is the model a run delivers (as timm)
            row = epoch_row(epoch, trainer.lr_at(epoch, steps_per_epoch - 1), train_loss, train_acc1,
                            samples / seconds, run.meter.elapsed(), test, ema_test)
            if main:
                log.add(row)
                print_epoch(row, cfg.total_epochs)
            if run.finish_epoch(epoch, reported.acc1, samples, seconds):
                trainer.save("best.pt", epoch)  # first: a kill between the two writes leaves it the later one
            trainer.save("last.pt", epoch)

    # The results
    if test is None:  # resumed a run whose last checkpoint was written, but not its results
        test, ema_test = trainer.evaluate()
    reported = ema_test or test
    summary = {
        "model": cfg.model, "dataset": cfg.dataset, "epochs": cfg.total_epochs, "parameters": count_parameters(model),
        "time_steps": model.time_steps, "test_acc1": reported.acc1, "test_acc5": reported.acc5,
        "best_test_acc1": run.best_acc1, "ema": ema is not None,
        "train_samples_per_s": run.train_samples / max(1e-9, run.train_seconds), "wall_s": run.wall_seconds(),
        "device": str(device), "processes": world.size, "run_dir": str(out),
    }
    if main:
        log.close()
        write_results(cfg, out, reported, getattr(test_set, "classes", None), summary)
    return summary


@dataclass
class Trainer:
    """The parts of a run and what it does with them: one step, one epoch, an evaluation, a checkpoint.

    Under torchrun each process holds one; ``model`` is wrapped for data-parallel training, and the
    checkpoints come from rank 0 alone.
    """

    cfg: TrainConfig
    world: distributed.World
    device: torch.device
    out: Path
    run: RunState
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    augment: BatchAugment
    amp_dtype: torch.dtype
    peak_lr: float
    steps_per_epoch: int
    train_set: Any
    device_frames: DeviceFrames | None
    test_loader: DataLoader
    backend: str
    saved: str | None  # the last checkpoint written or resumed from: where a diverged run continues
    preprocessing: dict | None = None  # how a file becomes the model's input (export.preprocessing), for predict
    trained: nn.Module = field(init=False)  # the model, wrapped for data-parallel training under torchrun

    def __post_init__(self):
        self.trained = nn.parallel.DistributedDataParallel(self.model) if self.world.active else self.model

    def lr_at(self, epoch: int, batch: int) -> float:
        cfg = self.cfg
        t = schedule_time(epoch, batch, self.steps_per_epoch, cfg.lr_update == "step")
        return learning_rate(t, cfg.epochs, cfg.warmup_epochs, self.peak_lr, cfg.min_lr, cfg.warmup_lr)

    def train_epoch(self, epoch: int, stop: StopRequest) -> tuple[float, float, int, float]:
        """Train ``epoch`` from where the run stands; its mean loss, accuracy, samples and seconds (all processes)."""
        cfg, run, world = self.cfg, self.run, self.world
        self.trained.train()
        run.meter.start()
        batches = epoch_batches(len(self.train_set), cfg.batch_size * world.size, cfg.seed, epoch, cfg.drop_last,
                                world.size)
        bar = tqdm(self.batches(epoch, batches[run.batch:]), desc=f"epoch {epoch}/{cfg.total_epochs}", leave=False,
                   dynamic_ncols=True, disable=None if world.is_main else True, initial=run.batch, total=len(batches))
        for frames, labels in bar:  # none left when the run stopped after this epoch's last step
            step, lr = run.step, self.lr_at(epoch, run.batch)
            loss, logits = self.step(frames, labels, epoch, lr)
            bad_step = self.poisoned()
            if self.ema is not None:
                self.ema.update(self.model)
            run.step, run.batch = run.step + 1, run.batch + 1
            run.meter.add(loss.item(), class_scores(logits), labels)
            steps_left = cfg.total_epochs * self.steps_per_epoch - run.step
            bar.set_postfix(lr=f"{lr:.2e}", **run.meter.progress(world.size, steps_left))
            stopping, poisoned = world.sum(float(stop.signum is not None), float(bad_step))
            if poisoned:
                what = "the weights" if non_finite(list(self.model.parameters())) else "the gradients"
                raise self.diverged(what, epoch, step)
            if stopping:
                self.save("last.pt", epoch)
                signum = stop.signum or signal.SIGTERM
                raise TrainingInterrupted(signum, (
                    f"Stopped by {signal.Signals(signum).name} at epoch {epoch}, step {run.step}; "
                    f"checkpoint written. Continue with: spikeformers train --resume {self.out}"))
            if cfg.save_every and run.step % cfg.save_every == 0:
                self.save("last.pt", epoch)
        bar.close()
        seconds = run.meter.seconds()
        samples, loss_sum, correct = world.sum(run.meter.seen, run.meter.loss_sum, run.meter.correct)
        return loss_sum / samples, correct / samples, samples, seconds

    def batches(self, epoch: int, batches: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share of ``batches``: float frames ``[T, B, ...]`` and labels, on the device."""
        source = getattr(self.train_set, "dataset", self.train_set)  # under limit_samples, a Subset
        if hasattr(source, "set_epoch"):  # per-sample random transforms drawn from (seed, epoch, index)
            source.set_epoch(epoch, self.cfg.seed)
        mine = [self.world.shard(batch) for batch in batches]
        if self.device_frames is not None:  # already on the device, time first, as floats
            return self.device_frames.batches(mine)
        loader = DataLoader(self.train_set, batch_sampler=mine, num_workers=self.cfg.workers,
                            pin_memory=self.device.type == "cuda", collate_fn=collate_time_major)
        return ((frames.to(self.device, non_blocking=True).float(), labels.to(self.device, non_blocking=True))
                for frames, labels in loader)

    def step(self, frames: torch.Tensor, labels: torch.Tensor, epoch: int, lr: float):
        """One optimiser step at learning rate ``lr``; the loss and the logits."""
        cfg, optimizer, scaler = self.cfg, self.optimizer, self.scaler
        for group in optimizer.param_groups:
            group["lr"] = lr
        frames, targets = self.augment(frames, labels, epoch, step_generator(cfg.seed, self.run.step))
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=cfg.amp):
            logits = self.trained(frames)
        if cfg.tet:
            loss = tet_loss(logits.float(), targets, cfg.tet_lamb, label_smoothing=cfg.label_smoothing)
        else:
            loss = cross_entropy(logits.float(), targets, cfg.label_smoothing)
        (loss_value,) = self.world.sum(loss.item())
        if not math.isfinite(loss_value):
            raise self.diverged("the loss", epoch, self.run.step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.clip_grad is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        return loss, logits

    def poisoned(self) -> bool:
        """Whether a weight or a gradient holds NaN or inf. NaN weights silence the neurons, and the loss may
        then stay finite: so the weights themselves, and the gradients (not those that a float16 loss
        scaler overflows on purpose)."""
        weights = list(self.model.parameters())
        grads = [] if self.scaler.is_enabled() else [p.grad for p in weights if p.grad is not None]
        return non_finite(weights + grads)

    def evaluate(self) -> tuple[EvalResult, EvalResult | None]:
        """The model's test results, and its weight average's (None without one)."""
        classes = self.model.num_classes
        test = evaluate(self.model, self.test_loader, self.device, classes, self.world)
        ema_test = evaluate(self.ema.module, self.test_loader, self.device, classes, self.world) if self.ema else None
        return test, ema_test

    def save(self, name: str, epoch: int) -> None:
        """Checkpoint the run as ``name`` in its folder; a non-finite weight stops the run instead."""
        run, ema = self.run, self.ema
        state = {
            "model_name": self.cfg.model, "model_overrides": self.cfg.model_overrides(),
            "config": dataclasses.asdict(self.cfg), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None, "rng": torch.get_rng_state(),
            "epoch": run.epoch, "run": run.to_dict(), "neuron_backend": self.backend,
            "preprocessing": self.preprocessing,
        }
        poisoned = first_non_finite(state)  # every process decides alike: their weights are the same
        if poisoned is not None:
            raise self.diverged(poisoned, epoch, run.step)
        if self.world.is_main:
            save_checkpoint(self.out / name, state)
        self.saved = f"{self.out / name} (epoch {run.epoch}, step {run.step})"
        self.world.barrier()

    def diverged(self, what: str, epoch: int, step: int) -> NonFiniteTrainingError:
        kept = f"the last checkpoint, {self.saved}, is finite and untouched" if self.saved else "no checkpoint was written"
        return NonFiniteTrainingError(
            f"{what} became NaN or inf at epoch {epoch}, step {step}; {kept}. Try a lower learning rate"
            + (" or --no-amp" if self.cfg.amp else "")
            + (f" (continue with: spikeformers train --resume {self.out} --lr LOWER)" if self.saved else " (--lr)"))


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


def datasets(cfg: TrainConfig, model: nn.Module):
    """The training and test sets, framed for the model's T, checked against its input, limited if asked."""
    splits = [create_dataset(cfg.dataset, train=train, time_steps=model.time_steps, root=cfg.data_root,
                             **cfg.dataset_options) for train in (True, False)]
    check_compatible(model, splits[0], cfg.model, cfg.dataset)
    if cfg.limit_samples is not None:
        splits = [limited(split, cfg.limit_samples, cfg.seed) for split in splits]
    if len(splits[0]) == 0 or len(splits[1]) == 0:
        raise ValueError(f"Data set {cfg.dataset} has {len(splits[0])} training and {len(splits[1])} test samples")
    return splits


def input_description(cfg: TrainConfig, model: nn.Module, test_set) -> dict[str, Any] | None:
    """How a file becomes this model's input (``spikeformers predict`` reads it from the checkpoint), or
    None for a data set whose description does not tell (a plugin's without a sensor size)."""
    try:
        return describe_input(cfg.dataset, cfg.dataset_options, model, getattr(test_set, "classes", None)).to_dict()
    except (ValueError, TypeError, ImportError):  # a description is an extra: never the reason a run fails
        return None


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


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and kernels only, not on biases, norms or scalars (as timm)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def epoch_row(epoch: int, lr: float, train_loss: float, train_acc1: float, samples_per_s: float, epoch_s: float,
              test: EvalResult, ema_test: EvalResult | None) -> dict[str, Any]:
    """An epoch's line of ``metrics.csv``."""
    return {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc1": train_acc1, "test_loss": test.loss,
            "test_acc1": test.acc1, "test_acc5": test.acc5, "ema_test_acc1": ema_test.acc1 if ema_test else "",
            "samples_per_s": samples_per_s, "epoch_s": epoch_s}


def print_epoch(row: dict[str, Any], epochs: int) -> None:
    ema = f" (EMA {row['ema_test_acc1']:.4f})" if row["ema_test_acc1"] != "" else ""
    print(f"epoch {row['epoch']:3d}/{epochs}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
          f"acc {row['train_acc1']:.4f}  test loss {row['test_loss']:.4f} acc1 {row['test_acc1']:.4f}{ema} "
          f"acc5 {row['test_acc5']:.4f}  {row['samples_per_s']:.0f} samples/s  {row['epoch_s']:.1f}s", flush=True)


def write_results(cfg: TrainConfig, out: Path, reported: EvalResult, class_names, summary: dict[str, Any]) -> None:
    """The pictures and tables of a finished run, then ``summary.json``, whose presence says all is written."""
    plot_curves(read_metrics(out / "metrics.csv"), out / "curves.png", f"{cfg.model} on {cfg.dataset}")
    plot_confusion(reported.confusion, out / "confusion.png", class_names, f"{cfg.model} on {cfg.dataset} test")
    write_per_class(reported, out / "per_class.csv", class_names)
    write_json(out / "summary.json", summary)
    print(f"done in {summary['wall_s']:.1f}s: test acc1 {reported.acc1:.4f} (best {summary['best_test_acc1']:.4f}); "
          f"checkpoint {out / 'last.pt'}")
