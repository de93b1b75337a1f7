"""Peak training memory per sample with and without activation checkpointing (CPU).

For each model (Spikformer-DVS and QKFormer-DVS: T=16, 128x128, 2 channels),
batch size and mode, a fresh child process builds the model and an AdamW
optimiser, makes a batch of CIFAR10-DVS-like frames (small Poisson event
counts) and runs one training step (forward, cross-entropy, backward, AdamW).
Two peaks of that step, over what lived before it:

- tensor peak: the most bytes of tensors alive at once, from the CPU
  allocator's events (``torch.profiler`` with ``profile_memory=True``, summed
  in time order): exact and the same in every run;
- RSS peak: the process's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the
  kernel's high-water mark of resident memory) minus ``VmRSS`` just before
  the step: what the machine must provide, allocator caching and
  fragmentation included, so it moves by some tens of MiB between runs.
  With ``--mmap`` each child first calls ``return_freed_memory_to_os()``
  (a fixed glibc mmap threshold), which brings it close to the tensor peak.

(Python-level tracers such as ``tracemalloc`` do not see torch's
allocations.) ``per sample`` is a peak over the batch size; ``slope`` the
difference between the largest and smallest batch's peaks over the
difference in batch size (what one more sample costs, free of fixed costs).

Modes: ``plain``; ``plain+u8``: the forward under ``compact_saved_tensors()``
(every spike-valued tensor autograd keeps is kept as uint8); ``ckpt``:
``enable_activation_checkpointing(model)`` (blocks and stem stages);
``ckpt+u8``: the same with ``compact=True`` (spike-valued unit inputs kept as
uint8). The step time of the same child is printed too (one profiled step,
no warm-up: indicative only on a shared machine).

    python benchmarks/memory.py                      # both models, batch 2 and 4
    python benchmarks/memory.py --mmap               # the same with return_freed_memory_to_os()
    python benchmarks/memory.py --models spikformer_dvs --batches 2 4 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

MODES = ("plain", "plain+u8", "ckpt", "ckpt+u8")


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status (this script needs Linux)")


def tensor_peak_bytes(profiler) -> int:
    """The most bytes of tensors allocated at once during a profiled region, over what lived before it.

    Sums the allocator's ``[memory]`` events (allocations positive, frees
    negative) in time order: the tensors themselves, without the allocator's
    caching or fragmentation, and the same in every run.
    """
    events = sorted((e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def child(model_name: str, batch: int, mode: str, time_steps: int, side: int, mmap: bool) -> dict:
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from spikeformers.memory import (compact_saved_tensors, enable_activation_checkpointing,
                                                   return_freed_memory_to_os)
    from spikeformers.models import create_model

    if mmap and not return_freed_memory_to_os():
        raise RuntimeError("--mmap needs glibc's mallopt")
    torch.manual_seed(0)
    model = create_model(model_name, time_steps=time_steps, img_size=side).train()
    if mode.startswith("ckpt"):
        enable_activation_checkpointing(model, compact=mode == "ckpt+u8")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    frames = torch.poisson(torch.full((time_steps, batch, 2, side, side), 0.3), generator).clamp_(max=255)
    labels = torch.randint(0, model.num_classes, (batch,), generator=generator)
    before = resident_kib()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        with compact_saved_tensors() if mode == "plain+u8" else contextlib.nullcontext():
            loss = F.cross_entropy(model(frames), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"before_kib": before, "peak_kib": peak, "tensor_peak_bytes": tensor_peak_bytes(profiler),
            "step_s": seconds, "loss": loss.item()}


def measure(model_name: str, batch: int, mode: str, time_steps: int, side: int, mmap: bool) -> dict:
    command = [sys.executable, __file__, "--child", model_name, str(batch), mode,
               "--time-steps", str(time_steps), "--side", str(side)] + (["--mmap"] if mmap else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_dvs", "qkformer_dvs"])
    parser.add_argument("--batches", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--mmap", action="store_true",
                        help="call return_freed_memory_to_os() first in each child (glibc's fixed mmap threshold)")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "BATCH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, batch, mode = args.child
        print(json.dumps(child(name, int(batch), mode, args.time_steps, args.side, args.mmap)))
        return

    from spikeformers.neurons import select_backend

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, neuron backend for float32 CPU: "
          f"{select_backend(torch.zeros(1))}")
    print(f"# load average before: {os.getloadavg()}")
    print(f"# T={args.time_steps}, {args.side}x{args.side}; one child process per row; MiB = 2^20 bytes; "
          f"tensor peak: allocator events (torch.profiler, profile_memory); RSS peak: ru_maxrss - VmRSS before; "
          f"return_freed_memory_to_os(): {'yes' if args.mmap else 'no'}")
    print()
    print("| model | mode | batch | tensor peak MiB | per sample | slope /sample | vs plain "
          "| RSS peak MiB | per sample | slope /sample | vs plain | step s | loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        results = {(mode, batch): measure(name, batch, mode, args.time_steps, args.side, args.mmap)
                   for batch in args.batches for mode in MODES}
        tensor = {key: r["tensor_peak_bytes"] / 2 ** 20 for key, r in results.items()}
        rss = {key: (r["peak_kib"] - r["before_kib"]) / 1024 for key, r in results.items()}
        lo, hi = args.batches[0], args.batches[-1]
        for mode in MODES:
            cells = []
            for batch in args.batches:
                row = [f"| {name} | {mode} | {batch} "]
                for peaks in (tensor, rss):
                    slope = (peaks[mode, hi] - peaks[mode, lo]) / (hi - lo) if hi != lo else float("nan")
                    row.append(f"| {peaks[mode, batch]:.0f} | {peaks[mode, batch] / batch:.1f} | {slope:.1f} "
                               f"| {peaks[mode, batch] / peaks['plain', batch]:.2f} ")
                result = results[mode, batch]
                row.append(f"| {result['step_s']:.1f} | {result['loss']:.6f} |")
                cells.append("".join(row))
            print("\n".join(cells))
    print()
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
