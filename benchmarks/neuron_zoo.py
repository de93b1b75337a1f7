"""Every neuron's forward + backward, this project against STEP's node.py and SpikingJelly 2.0, one input.

Each reference runs in its own environment (STEP's node.py needs BrainCog 0.2.7.19 and
SpikingJelly 0.0.0.0.12, which cannot share a process with SpikingJelly 2.0), as a worker
subprocess that this script drives over a pipe: round by round every implementation of a
neuron is timed in turn (this process, then each worker; the order rotates between
rounds), on the same input (saved once, loaded by every worker), and the median of the
rounds is reported, so a load change on a shared machine hits all of them alike. All run
float32 on the CPU with the same number of threads.

    python benchmarks/neuron_zoo.py --step-python /work/refenv/step/bin/python \\
        --step-git /work/.mirror/Fancyssc+STEP/repo --sj-python /work/refenv/sj2/bin/python

A reference that has no such neuron, or fails to build or run it, is reported as not
measured, with the reason. The neurons are built with their defaults (the references'),
STEP's in its layer-by-layer layout ``[T*B, C, H, W]``, SpikingJelly's in multi-step mode.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

T, B, C, H, W = 4, 16, 64, 16, 16
NEURONS = ("lif", "plif", "if", "eif", "qif", "izhikevich", "ilif", "nilif", "klif", "clif", "glif", "hdlif",
           "psn", "masked_psn", "sliding_psn")


def time_call(fn, x, grad, reps: int) -> float:
    """Best of ``reps`` forward + backward calls, in seconds (after one untimed call: a first call loads
    kernels and touches fresh memory)."""
    fn(x.detach().requires_grad_(True)).backward(grad)
    best = float("inf")
    for _ in range(reps):
        xg = x.detach().requires_grad_(True)
        start = time.perf_counter()
        fn(xg).backward(grad)
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- this project


def ours(name: str):
    from spikeformers.neurons import get_neuron_class
    from spikeformers.neurons.neuron import neuron_keywords

    cls = get_neuron_class(name)
    keywords = neuron_keywords(cls) or ()
    kwargs = {"T": T} if "T" in keywords else {}
    if "channels" in keywords:
        kwargs.update(channels=C, channel_dim=2)
    neuron = cls(**kwargs)
    return lambda x: neuron(x)


# ---------------------------------------------------------------- the workers


def step_builder(step_git: str):
    tmp = Path(tempfile.mkdtemp())
    (tmp / "step_utils").mkdir()
    for name in ("node.py", "surrogate.py"):
        text = subprocess.run(["git", f"--git-dir={step_git}", "show", f"HEAD:cls/models/utils/{name}"],
                              check=True, capture_output=True, text=True).stdout
        (tmp / "step_utils" / name).write_text(text)
    (tmp / "step_utils" / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp))
    node = importlib.import_module("step_utils.node")
    make = {"lif": lambda: node.LIFNode(step=T), "plif": lambda: node.PLIFNode(step=T),
            "if": lambda: node.IFNode(step=T), "eif": lambda: node.EIFNode(step=T),
            "ilif": lambda: node.ILIFNode(step=T), "nilif": lambda: node.NILIFNode(step=T),
            "klif": lambda: node.KLIFNode(step=T), "clif": lambda: node.ComplementaryLIFNeuron(step=T),
            "glif": lambda: node.GLIFTorch(step=T), "hdlif": lambda: node.HDLIFNode(C, step=T),
            "psn": lambda: node.PSNTorch(step=T)}

    def build(name):
        if name not in make:
            return None
        module = make[name]()

        def run(x):
            for m in module.modules():  # BrainCog's state lives in each node (HD-LIF's experts too)
                if hasattr(m, "n_reset"):
                    m.n_reset()
            return module(x.reshape(T * B, C, H, W)).reshape(T, B, C, H, W)

        return run

    return build


def sj_builder():
    from spikingjelly.activation_based import functional, neuron

    m = "m"
    make = {"lif": lambda: neuron.LIFNode(step_mode=m), "plif": lambda: neuron.ParametricLIFNode(step_mode=m),
            "if": lambda: neuron.IFNode(step_mode=m), "eif": lambda: neuron.EIFNode(step_mode=m),
            "qif": lambda: neuron.QIFNode(step_mode=m), "izhikevich": lambda: neuron.IzhikevichNode(step_mode=m),
            "klif": lambda: neuron.KLIFNode(step_mode=m), "clif": lambda: neuron.ComplementaryLIFNode(step_mode=m),
            "glif": lambda: neuron.GatedLIFNode(T, inplane=C), "psn": lambda: neuron.PSN(T),
            "masked_psn": lambda: neuron.MaskedPSN(k=2, T=T, step_mode=m),
            "sliding_psn": lambda: neuron.SlidingPSN(k=2, step_mode=m)}

    def build(name):
        if name not in make:
            return None
        module = make[name]()

        def run(x):
            functional.reset_net(module)
            return module(x)

        return run

    return build


def worker(kind: str, step_git: str | None, data: str, threads: int, reps: int):
    torch.set_num_threads(threads)
    x, grad = torch.load(data)
    build = step_builder(step_git) if kind == "step" else sj_builder()
    built, failed = {}, {}
    for line in sys.stdin:
        name = line.strip()
        try:
            if name in failed:
                raise failed[name]
            if name not in built:
                built[name] = build(name)
            fn = built[name]
            reply = {"seconds": None, "why": "no such neuron"} if fn is None else {"seconds": time_call(fn, x, grad, reps)}
        except Exception as err:  # reported, not fatal: the table says why
            failed[name] = err
            reply = {"seconds": None, "why": f"{type(err).__name__}: {str(err)[:120]}"}
        print(json.dumps(reply), flush=True)


# ---------------------------------------------------------------- the driver


class Worker:
    def __init__(self, kind: str, python: str, args, data: str):
        command = [python, __file__, "--worker", kind, "--data", data, "--threads", str(args.threads),
                   "--reps", str(args.reps)] + (["--step-git", args.step_git] if kind == "step" else [])
        env = {**os.environ, "PYTHONPATH": ""}  # the reference's own environment only
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def time(self, name: str) -> dict:
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            return {"seconds": None, "why": "the worker stopped"}
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-python", help="python of an environment with BrainCog 0.2.7.19 + SpikingJelly 0.0.0.0.12")
    parser.add_argument("--step-git", help="git directory of a STEP checkout (github Fancyssc/STEP)")
    parser.add_argument("--sj-python", help="python of an environment with SpikingJelly 2.0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3, help="calls per timing (the best is kept)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--neurons", default=",".join(NEURONS))
    parser.add_argument("--worker", choices=("step", "sj"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.step_git, args.data, args.threads, args.reps)

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, C, H, W, generator=g) * 1.5 + 0.5
    grad = torch.randn(T, B, C, H, W, generator=g)
    data = tempfile.NamedTemporaryFile(suffix=".pt", delete=False).name
    torch.save((x, grad), data)
    workers = {}
    if args.step_python and args.step_git:
        workers["STEP"] = Worker("step", args.step_python, args, data)
    if args.sj_python:
        workers["SpikingJelly 2.0"] = Worker("sj", args.sj_python, args, data)
    names = args.neurons.split(",")
    impls = ["ours", *workers]
    times = {(n, i): [] for n in names for i in impls}
    why = {}
    built = {}
    for r in range(args.rounds):
        for name in names:
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in order:
                if impl == "ours":
                    fn = built.setdefault(name, ours(name))
                    times[name, impl].append(time_call(fn, x, grad, args.reps))
                else:
                    reply = workers[impl].time(name)
                    if reply["seconds"] is None:
                        why[name, impl] = reply["why"]
                    else:
                        times[name, impl].append(reply["seconds"])
    for w in workers.values():
        w.close()
    os.unlink(data)

    print(f"# neuron zoo forward + backward, float32, [T, B, C, H, W] = {[T, B, C, H, W]}, {args.threads} thread(s), "
          f"median of {args.rounds} rounds (best of {args.reps} calls each)")
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    print(f"| neuron | ours (ms) | {' | '.join(f'{w} (ms)' for w in workers)} | faster reference / ours |")
    print(f"|---|---|{'---|' * len(workers)}---|")
    for name in names:
        mine = statistics.median(times[name, "ours"]) * 1e3
        cells, refs = [], []
        for w in workers:
            if times[name, w]:
                t = statistics.median(times[name, w]) * 1e3
                refs.append(t)
                cells.append(f"{t:.1f}")
            else:
                cells.append(f"not measured ({why.get((name, w), 'no run')})")
        ratio = f"{min(refs) / mine:.2f}x" if refs else "-"
        print(f"| `{name}` | {mine:.1f} | {' | '.join(cells)} | {ratio} |")


if __name__ == "__main__":
    main()
