"""Is the data path the bottleneck? Samples/s of the data path alone against the model's training step (CPU).

Two settings, each measured side by side in one process:

- ``digits``: the built-in DVS digits (``create_dataset('dvs_digits', train=True,
  time_steps=4)``, 24x24) against ``spikformer_tiny``;
- ``dvs``: CIFAR10-DVS-sized frames (T=16, 2x128x128; ``--dvs-samples``
  recordings of Poisson counts, mean 0.3 events per pixel and step, kept in
  memory as int16 and returned as float32 tensors by ``__getitem__``, as
  DVSDigits returns its frames) against Spikformer-DVS (``spikformer_dvs``).
  No disk is read, so the DataLoader rows are a lower bound on the cost of
  the real CIFAR10-DVS path (which reads a cached frame file per sample).

Data-path rows, each an epoch over the same ``epoch_batches`` index lists and
ending in float32 ``[T, B, C, H, W]`` batches:

- ``loader wN``: ``DataLoader(batch_sampler=..., num_workers=N)``, then
  ``.float()`` and the time-first transpose (the training loop's path; a new
  loader per epoch, as the loop builds one, so worker start-up counts);
- ``device``: ``DeviceFrames.batches(...)`` (``spikeformers.data.device_frames``);
  its one-time load is reported apart;
- ``device + aug``: the same, then ``random_hflip`` and ``SNNAugmentWide`` with
  the step's generator (``spikeformers.data.augment``), batched.

Model row: a training step (forward, cross-entropy, backward, AdamW) on the
device path's batches. Each data-path figure is the fastest of its epochs;
the paths take turns, one epoch each, for at least ``--rounds`` turns and
``--min-seconds`` seconds per path on average (so that a busy spell of the shared
machine hits all paths alike); the
model's is the median of ``--steps`` steps after one warm-up step. The last
column divides each row's samples/s by the model step's: above 1, that data
path keeps up with the model.

    python benchmarks/data_path.py
    python benchmarks/data_path.py --settings digits --rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from spikeformers.data.augment import SNNAugmentWide, random_hflip
from spikeformers.data.device_frames import DeviceFrames
from spikeformers.data.registry import create_dataset
from spikeformers.engine.train import epoch_batches, step_generator
from spikeformers.models import create_model


class InMemoryCounts(Dataset):
    """CIFAR10-DVS-sized Poisson counts held as int16, served as float32 ``[T, C, H, W]``."""

    def __init__(self, samples: int, time_steps: int = 16, side: int = 128, num_classes: int = 10, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        rate = torch.full((samples, time_steps, 2, side, side), 0.3)
        self.frames = torch.poisson(rate, generator).to(torch.int16)
        self.labels = torch.randint(0, num_classes, (samples,), generator=generator).tolist()

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int):
        return self.frames[index].float(), self.labels[index]


def best_epoch_rates(paths: dict, rounds: int, min_seconds: float) -> dict[str, float]:
    """Samples/s of each path's fastest epoch; the paths take turns, one epoch each, for at least
    ``rounds`` turns and ``min_seconds`` per path on average (so that a busy spell of the shared
    machine hits them all alike). Each ``paths`` value runs one epoch and returns its sample count."""
    best = dict.fromkeys(paths, 0.0)
    spent = dict.fromkeys(paths, 0.0)
    turn = 0
    while turn < rounds or sum(spent.values()) < min_seconds * len(paths):
        for name, run_epoch in paths.items():
            start = time.perf_counter()
            samples = run_epoch()
            seconds = time.perf_counter() - start
            best[name], spent[name] = max(best[name], samples / seconds), spent[name] + seconds
        turn += 1
    return best


def loader_epoch(dataset, index_lists, workers: int):
    def run() -> int:
        samples = 0
        for frames, labels in DataLoader(dataset, batch_sampler=index_lists, num_workers=workers):
            frames = frames.float().transpose(0, 1)
            samples += labels.numel()
        return samples
    return run


def device_epoch(on_device: DeviceFrames, index_lists, augment: bool, seed: int = 0):
    wide = SNNAugmentWide()

    def run() -> int:
        samples = 0
        for step, (frames, labels) in enumerate(on_device.batches(index_lists)):
            if augment:
                generator = step_generator(seed, step)
                frames = wide(random_hflip(frames, 0.5, generator=generator), generator)
            samples += labels.numel()
        return samples
    return run


def model_rate(model_name: str, overrides: dict, on_device: DeviceFrames, batch_size: int, steps: int) -> float:
    torch.manual_seed(0)
    model = create_model(model_name, **overrides).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    index_lists = epoch_batches(len(on_device), batch_size, seed=0, epoch=1, drop_last=True)
    times = []
    for step, (frames, labels) in zip(range(steps + 1), on_device.batches(index_lists)):
        start = time.perf_counter()
        loss = F.cross_entropy(model(frames), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up (allocations, kernel caches)
            times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def run_setting(title: str, dataset, model_name: str, overrides: dict, batch_size: int, rounds: int,
                min_seconds: float, steps: int, workers: list[int]) -> None:
    index_lists = epoch_batches(len(dataset), batch_size, seed=0, epoch=1)
    start = time.perf_counter()
    on_device = DeviceFrames.from_dataset(dataset, "cpu")
    load_s = time.perf_counter() - start
    paths = {"device": device_epoch(on_device, index_lists, augment=False),
             "device + aug (hflip, SNNAugmentWide)": device_epoch(on_device, index_lists, augment=True)}
    paths.update({f"loader w{w}": loader_epoch(dataset, index_lists, w) for w in workers})
    rows = list(best_epoch_rates(paths, rounds, min_seconds).items())
    model = model_rate(model_name, overrides, on_device, batch_size, steps)
    print(f"## {title}: {len(dataset)} samples, batch {batch_size}; {on_device!r}, loaded once in {load_s:.2f} s")
    print()
    print("| path | samples/s | x model step |")
    print("|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / model:,.1f} |")
    print(f"| model step: {model_name} (forward, backward, AdamW) | {model:,.1f} | 1.0 |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", choices=["digits", "dvs"], default=["digits", "dvs"])
    parser.add_argument("--rounds", type=int, default=10, help="least epochs per data path (the best counts)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="least seconds per data path, on average")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--dvs-samples", type=int, default=128)
    parser.add_argument("--dvs-batch", type=int, default=4)
    parser.add_argument("--dvs-steps", type=int, default=2)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average before: {os.getloadavg()}")
    print()
    if "digits" in args.settings:
        digits = create_dataset("dvs_digits", train=True, time_steps=4)
        run_setting("dvs_digits (T=4, 2x24x24) vs spikformer_tiny", digits, "spikformer_tiny", {}, 64,
                    args.rounds, args.min_seconds, steps=5, workers=args.workers)
    if "dvs" in args.settings:
        frames = InMemoryCounts(args.dvs_samples)
        run_setting("CIFAR10-DVS-sized counts (T=16, 2x128x128) vs spikformer_dvs", frames, "spikformer_dvs", {},
                    args.dvs_batch, args.rounds, args.min_seconds, steps=args.dvs_steps, workers=args.workers)
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
