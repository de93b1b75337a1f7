"""Benchmark 2: a training step and an inference forward of Spikformer-DVS and QKFormer-DVS,
this project against the authors' models on SpikingJelly's torch backend.

Time: each implementation in its own worker process (so that a process-wide
allocator setting of one, ``return_freed_memory_to_os``, cannot slow the
other), driven in turn by this process, the steps alternating (order rotating
between rounds), the median of the rounds.
A training step is forward, cross-entropy, backward and AdamW; inference is
a forward under ``torch.no_grad``. Same input (T=16, 2x128x128 event-count
frames), same batch, same threads.

Memory: each (model, implementation, mode) runs in a fresh subprocess that
builds the model, runs one warm-up step and one measured step, and reports
its peak resident set size (``VmHWM``) and the resident size just before
the first step (imports, parameters, input); the step's own peak is the
difference.

The authors' models are written here, from /work/shared/specs (spikformer.md
section 3, qkformer.md section 2), as the authors structure them: Conv/BN on
the T*B-folded tensor, and SpikingJelly's stateful ``MultiStepLIFNode(tau=2,
detach_reset=True, backend='torch')`` reset with ``functional.reset_net``
after every batch, as the authors' train loops do. They are references for
timing only; this file is their only home. SpikingJelly 0.0.0.0.14 (the
closest release to the authors' 0.0.0.0.12 with the same ``clock_driven``
node) is imported from ``--sj014`` as ``neuron_kernel.py`` does::

    /tmp/venv-bench/bin/python benchmarks/spikformer_step.py --sj014 /tmp/sj014
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def load_spikingjelly(folder):
    """SpikingJelly 0.0.0.0.14's clock_driven ``neuron`` and ``functional`` modules."""
    from neuron_kernel import import_spikingjelly_014

    neuron, _, functional = import_spikingjelly_014(folder)
    return neuron, functional


# ----------------------------------------------------------------------------- authors' models


def sj014_lif(sj_neuron, backend="torch"):
    """The authors' neuron: SpikingJelly 0.0.0.0.14's MultiStepLIFNode(tau=2, detach_reset=True)."""
    return lambda threshold: sj_neuron.MultiStepLIFNode(tau=2.0, v_threshold=threshold, detach_reset=True,
                                                        backend=backend)


def build_authors(name, make_lif):
    """The authors' model ``name``, its neurons made by ``make_lif(threshold)`` (a multi-step LIF node)."""
    def lif(threshold=1.0):
        return make_lif(threshold)

    def conv_bn_lif_2d(cin, cout, pool, k=3, stride=1, pool_before_lif=False):
        return nn.ModuleDict(dict(conv=nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), bn=nn.BatchNorm2d(cout),
                                  lif=lif(), pool=nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()))

    def run_2d(layer, x, T, B, pool_before_lif=False):
        """x [T*B, C, H, W] -> spikes [T*B, C', H', W'] as the authors order conv, BN, pool and LIF."""
        y = layer["bn"](layer["conv"](x))
        if pool_before_lif:
            y = layer["pool"](y)
        y = layer["lif"](y.reshape(T, B, *y.shape[1:])).flatten(0, 1)
        return y if pool_before_lif else layer["pool"](y)

    class Conv1dBNLIF(nn.Module):
        def __init__(self, cin, cout, bias, threshold=1.0):
            super().__init__()
            self.conv, self.bn, self.lif = nn.Conv1d(cin, cout, 1, bias=bias), nn.BatchNorm1d(cout), lif(threshold)

        def forward(self, x, T, B):  # x [T*B, C, N] -> spikes [T, B, C', N]
            y = self.bn(self.conv(x))
            return self.lif(y.reshape(T, B, *y.shape[1:]))

    class SSA(nn.Module):
        """Spikformer's (scale 0.25, (QK^T)V) or QKFormer's (scale 0.125, proj_lif over T*B) attention."""

        def __init__(self, dim, heads, scale, proj_over_tb):
            super().__init__()
            self.heads, self.scale, self.proj_over_tb = heads, scale, proj_over_tb  # QKFormer's flavour
            self.q, self.k, self.v = (Conv1dBNLIF(dim, dim, False) for _ in range(3))
            self.attn_lif = lif(0.5)
            self.proj_conv, self.proj_bn, self.proj_lif = nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim), lif()

        def forward(self, x):  # [T, B, C, N]
            T, B, C, N = x.shape
            flat = x.flatten(0, 1)
            q, k, v = (f(flat, T, B).transpose(-1, -2).reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4)
                       for f in (self.q, self.k, self.v))
            if self.proj_over_tb:  # QKFormer: q (k^T v)
                y = q @ (k.transpose(-2, -1) @ v) * self.scale
            else:  # Spikformer: (q k^T) v
                y = (q @ k.transpose(-2, -1)) @ v * self.scale
            y = self.attn_lif(y.transpose(3, 4).reshape(T, B, C, N))
            y = self.proj_bn(self.proj_conv(y.flatten(0, 1)))
            if self.proj_over_tb:  # QKFormer's quirk: the LIF's time axis is the folded T*B axis
                return self.proj_lif(y).reshape(T, B, C, N)
            return self.proj_lif(y.reshape(T, B, C, N))

    class TokenQK(nn.Module):
        """QKFormer's Q-K token attention: a per-(head, token) mask from the row sum of Q, applied to K."""

        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q, self.k = Conv1dBNLIF(dim, dim, False), Conv1dBNLIF(dim, dim, False)
            self.attn_lif = lif(0.5)
            self.proj = Conv1dBNLIF(dim, dim, True)

        def forward(self, x):  # [T, B, C, N]
            T, B, C, N = x.shape
            flat = x.flatten(0, 1)
            q = self.q(flat, T, B).reshape(T, B, self.heads, C // self.heads, N)
            k = self.k(flat, T, B).reshape(T, B, self.heads, C // self.heads, N)
            mask = self.attn_lif(q.sum(dim=3, keepdim=True))
            return self.proj((mask * k).reshape(T, B, C, N).flatten(0, 1), T, B)

    class MLP(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1, self.fc2 = Conv1dBNLIF(dim, hidden, True), Conv1dBNLIF(hidden, dim, True)

        def forward(self, x):
            T, B = x.shape[:2]
            return self.fc2(self.fc1(x.flatten(0, 1), T, B).flatten(0, 1), T, B)

    class Block(nn.Module):
        def __init__(self, attn, mlp):
            super().__init__()
            self.attn, self.mlp = attn, mlp

        def forward(self, x):
            x = x + self.attn(x)
            return x + self.mlp(x)

    class SpikformerDVS(nn.Module):
        def __init__(self, dim=256, heads=16, depth=2, classes=10):
            super().__init__()
            widths = [2, dim // 8, dim // 4, dim // 2, dim]
            self.stem = nn.ModuleList(conv_bn_lif_2d(widths[i], widths[i + 1], pool=True) for i in range(4))
            self.rpe = conv_bn_lif_2d(dim, dim, pool=False)
            self.blocks = nn.ModuleList(Block(SSA(dim, heads, 0.25, False), MLP(dim, 4 * dim)) for _ in range(depth))
            self.head = nn.Linear(dim, classes)

        def forward(self, x):  # [B, T, 2, 128, 128]
            x = x.permute(1, 0, 2, 3, 4)
            T, B = x.shape[:2]
            x = x.flatten(0, 1)
            for layer in self.stem:
                x = run_2d(layer, x, T, B)
            x = x + run_2d(self.rpe, x, T, B)
            x = x.reshape(T, B, x.shape[1], -1)
            for block in self.blocks:
                x = block(x)
            return self.head(x.mean(3).mean(0))

    class QKFormerDVS(nn.Module):
        def __init__(self, dim=256, heads=16, classes=10):
            super().__init__()
            d1 = dim // 2
            self.embed1 = nn.ModuleList([conv_bn_lif_2d(2, d1 // 8, pool=False), conv_bn_lif_2d(d1 // 8, d1 // 4, pool=True),
                                         conv_bn_lif_2d(d1 // 4, d1 // 2, pool=True), conv_bn_lif_2d(d1 // 2, d1, pool=True)])
            self.res1 = conv_bn_lif_2d(d1 // 4, d1, pool=False, k=1, stride=4)
            self.stage1 = Block(TokenQK(d1, heads), MLP(d1, d1))
            self.embed2 = nn.ModuleList([conv_bn_lif_2d(d1, dim, pool=False), conv_bn_lif_2d(dim, dim, pool=True)])
            self.res2 = conv_bn_lif_2d(d1, dim, pool=False, k=1, stride=2)
            self.stage2 = Block(SSA(dim, heads, 0.125, True), MLP(dim, dim))
            self.head = nn.Linear(dim, classes)

        def forward(self, x):  # [B, T, 2, 128, 128]
            x = x.permute(1, 0, 2, 3, 4)
            T, B = x.shape[:2]
            x = run_2d(self.embed1[0], x.flatten(0, 1), T, B)
            x = feat = run_2d(self.embed1[1], x, T, B, pool_before_lif=True)
            x = run_2d(self.embed1[2], x, T, B, pool_before_lif=True)
            x = run_2d(self.embed1[3], x, T, B, pool_before_lif=True) + run_2d(self.res1, feat, T, B)
            H = x.shape[-1]
            x = self.stage1(x.reshape(T, B, x.shape[1], -1))
            feat = x.reshape(T * B, -1, H, H)
            y = run_2d(self.embed2[0], feat, T, B)
            y = run_2d(self.embed2[1], y, T, B, pool_before_lif=True) + run_2d(self.res2, feat, T, B)
            x = self.stage2(y.reshape(T, B, y.shape[1], -1))
            return self.head(x.mean(3).mean(0))

    return {"spikformer_dvs": SpikformerDVS, "qkformer_dvs": QKFormerDVS}[name]()


# ----------------------------------------------------------------------------- measurement


class Runner:
    """One implementation of one model: a training step and an inference forward on a fixed batch."""

    def __init__(self, impl, name, batch, T, sj):
        torch.manual_seed(0)
        if impl.startswith("ours"):
            from spikeformers.memory import enable_activation_checkpointing, return_freed_memory_to_os
            from spikeformers.models import create_model

            self.model, self.reset = create_model(name, time_steps=T), lambda: None
            if impl == "ours-ckpt":  # --checkpoint-activations: recompute blocks and stem stages in backward
                enable_activation_checkpointing(self.model)
            if impl in ("ours-ckpt", "ours-release"):  # as `spikeformers train` does on the CPU
                return_freed_memory_to_os()
        else:
            sj_neuron, sj_functional = sj
            self.model = build_authors(name, sj014_lif(sj_neuron))
            self.reset = lambda: sj_functional.reset_net(self.model)
        gen = torch.Generator().manual_seed(1)
        frames = torch.poisson(torch.full((T, batch, 2, 128, 128), 0.3), generator=gen)  # event counts
        self.x = frames if impl.startswith("ours") else frames.transpose(0, 1).contiguous()
        self.y = torch.randint(0, 10, (batch,), generator=gen)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.reset()

    def infer(self):
        self.model.eval()
        with torch.no_grad():
            self.model(self.x)
        self.reset()


def worker(args):
    """Run steps of one implementation in this process as the parent asks: a line in ("train" or
    "infer"), a line out (its seconds). The first line out gives the parameter count."""
    torch.set_num_threads(args.threads)
    sj = load_spikingjelly(args.sj014) if args.impl == "authors" else None
    runner = Runner(args.impl, args.model, args.batch, args.T, sj)
    print(sum(p.numel() for p in runner.model.parameters()), flush=True)
    for line in sys.stdin:
        step = runner.train_step if line.strip() == "train" else runner.infer
        start = time.perf_counter()
        step()
        print(time.perf_counter() - start, flush=True)


class Worker:
    """The parent's handle on a worker process."""

    def __init__(self, args, impl, name):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", impl, name, "-", "--batch", str(args.batch), "--T", str(args.T),
             "--threads", str(args.threads), "--sj014", args.sj014],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.params = int(self._read())

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args[3:5]} ended with code {self.process.wait()}")
        return line

    def step(self, mode):
        self.process.stdin.write(mode + "\n")
        self.process.stdin.flush()
        return float(self._read())

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def child(args):
    """Peak memory of one (implementation, model, mode) in this fresh process."""
    torch.set_num_threads(args.threads)
    sj = load_spikingjelly(args.sj014) if args.impl == "authors" else None
    runner = Runner(args.impl, args.model, args.batch, args.T, sj)
    step = runner.train_step if args.mode == "train" else runner.infer
    before = _status_mb("VmRSS")
    step()
    step()
    print(json.dumps({"peak_mb": _status_mb("VmHWM"), "before_mb": before}))


def _status_mb(field):
    """A memory figure of this process from /proc/self/status. VmHWM, the resident high-water
    mark, starts afresh at exec; ru_maxrss would not: Linux carries it over from the parent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_dvs", "qkformer_dvs"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--T", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sj014", default="/tmp/sj014")
    parser.add_argument("--checkpoint-activations", action="store_true",
                        help="measure this project's model with activation checkpointing, and freed memory "
                             "returned to the system, as `spikeformers train --checkpoint-activations` runs it")
    parser.add_argument("--release-memory", action="store_true",
                        help="measure this project's model with freed memory returned to the system at once "
                             "(return_freed_memory_to_os), as `spikeformers train --release-memory` runs it")
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "MODEL", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "MODEL", "-"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.worker:
        args.impl, args.model, args.mode = args.child or args.worker
        return child(args) if args.child else worker(args)
    torch.set_num_threads(args.threads)
    from spikeformers.neurons import select_backend

    load_spikingjelly(args.sj014)  # fails here, with its reason, where the reference is missing
    print(f"# Training step (fwd, bwd, AdamW) and inference forward, batch {args.batch}, T={args.T}, 2x128x128, "
          f"{args.threads} threads, median of {args.rounds} rounds after one warm-up")
    print(f"torch {torch.__version__}; this project's neuron backend: {select_backend(torch.zeros(1))}; "
          f"authors' models on SpikingJelly 0.0.0.0.14 MultiStepLIFNode(backend='torch')")
    print(f"load average before: {os.getloadavg()}")
    print("\n| model | mode | authors' s/step | ours s/step | speed-up | authors' peak RSS MB (step's own) "
          "| ours peak RSS MB (step's own) | memory ratio peak (step's own) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    ours = "ours-ckpt" if args.checkpoint_activations else "ours-release" if args.release_memory else "ours"
    modes = ("train",) if ours != "ours" else ("train", "infer")
    for name in args.models:
        workers = {impl: Worker(args, impl, name) for impl in ("authors", ours)}
        params = {impl: w.params for impl, w in workers.items()}
        times = {(impl, mode): [] for impl in workers for mode in modes}
        jobs = [(impl, mode) for mode in modes for impl in workers]
        for r in range(args.rounds + 1):
            for impl, mode in jobs[r % len(jobs):] + jobs[: r % len(jobs)]:
                seconds = workers[impl].step(mode)
                if r > 0:  # round 0 warms up
                    times[impl, mode].append(seconds)
        for w in workers.values():
            w.close()
        for mode in modes:
            mem = {}
            for impl in ("authors", ours):
                out = subprocess.run([sys.executable, __file__, "--child", impl, name, mode, "--batch", str(args.batch),
                                      "--T", str(args.T), "--threads", str(args.threads), "--sj014", args.sj014],
                                     capture_output=True, text=True, check=True)
                mem[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            a, o = (statistics.median(times[impl, mode]) for impl in ("authors", ours))
            own = {impl: m["peak_mb"] - m["before_mb"] for impl, m in mem.items()}
            label = mode + {"ours": "", "ours-release": " (ours releasing memory)",
                            "ours-ckpt": " (ours checkpointed, releasing memory)"}[ours]
            print(f"| {name} ({params[ours]:,} / {params['authors']:,} params) | {label} | {a:.2f} | {o:.2f} | {a / o:.2f}x "
                  f"| {mem['authors']['peak_mb']:.0f} ({own['authors']:.0f}) | {mem[ours]['peak_mb']:.0f} ({own[ours]:.0f}) "
                  f"| {mem[ours]['peak_mb'] / mem['authors']['peak_mb']:.2f} ({own[ours] / own['authors']:.2f}) |",
                  flush=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
