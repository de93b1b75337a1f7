"""Benchmark 1: a LIF layer's forward + backward, this project's kernels against the field's.

One process, one input, every implementation timed in turn within each round
(the order rotates between rounds), the median of the rounds reported, so a
load change on a shared machine hits all of them alike. The same neuron for
all: LIF, tau 2, threshold 1, hard reset to 0, decay_input, detach_reset, the
sigmoid surrogate with alpha 4 (BrainCog's LIFNode fixes its surrogate's alpha
at 2; the cost is the same). The references are not dependencies of the
library; install them apart, for example::

    python -m venv --system-site-packages /tmp/venv-bench
    /tmp/venv-bench/bin/pip install --no-deps spikingjelly loguru braincog einops
    /tmp/venv-bench/bin/pip install --no-deps --target /tmp/sj014 spikingjelly==0.0.0.0.14
    /tmp/venv-bench/bin/python benchmarks/neuron_kernel.py --sj014 /tmp/sj014

Two releases of SpikingJelly cannot share a module name, so 0.0.0.0.14 is
imported from its own folder after the latest release's modules are set
aside (both stay usable: each module keeps its own globals). BrainCog's
package ``__init__`` imports its model zoo and with it torchvision; only
``braincog.base.node`` is needed, so the two package levels above it are
entered without running their ``__init__`` (BrainCog's own code, unchanged).
A reference that does not import is reported as not measured, with the reason.

``--against SRC`` adds another checkout's kernels (its ``src`` folder, for
example ``git archive`` of main unpacked under /tmp), imported in the same
process under the same name after this one's modules are set aside, so a
change to the kernels is measured against the code it replaces, round by round.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import statistics
import sys
import time
import types

import torch

from spikeformers import cpp_build
from spikeformers.neurons import LIF
from spikeformers.neurons.kernels import cpu as cpu_backend
from spikeformers.neurons.kernels import multistep


def ours(backend):
    neuron = LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate="sigmoid", alpha=4.0)
    return lambda x: multistep(x, None, neuron.spec, backend=backend)


def spikingjelly_latest():
    import spikingjelly
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                          surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m")

    def run(x):
        node.reset()
        return node(x)

    return run, getattr(spikingjelly, "__version__", None) or _dist_version("spikingjelly")


def import_spikingjelly_014(folder):
    """SpikingJelly 0.0.0.0.14's clock_driven ``neuron``, ``surrogate`` and ``functional`` modules,
    imported from ``folder`` while the latest release's modules are set aside."""
    aside = {name: mod for name, mod in sys.modules.items() if name == "spikingjelly" or name.startswith("spikingjelly.")}
    for name in aside:
        del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        sj = importlib.import_module("spikingjelly")
        if not sj.__file__.startswith(os.path.abspath(folder)):
            raise ImportError(f"spikingjelly imported from {sj.__file__}, not from {folder}")
        modules = tuple(importlib.import_module(f"spikingjelly.clock_driven.{m}") for m in ("neuron", "surrogate", "functional"))
    finally:
        sys.path.remove(folder)
        for name in [n for n in sys.modules if n == "spikingjelly" or n.startswith("spikingjelly.")]:
            del sys.modules[name]
        sys.modules.update(aside)
    return modules


def spikingjelly_014(folder):
    """SpikingJelly 0.0.0.0.14's MultiStepLIFNode (the authors' Spikformer's), imported from ``folder``."""
    neuron, surrogate, functional = import_spikingjelly_014(folder)
    node = neuron.MultiStepLIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                                   surrogate_function=surrogate.Sigmoid(alpha=4.0), backend="torch")

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run, "0.0.0.0.14"


def other_checkout(src):
    """``(LIF, multistep, cpu_available, call)`` of the spikeformers package under ``src``, imported while
    this one's modules are set aside. ``call(fn, *args)`` runs ``fn`` with that package's modules in
    place, for the imports its functions make when called."""
    ours = {n: m for n, m in sys.modules.items() if n == "spikeformers" or n.startswith("spikeformers.")}
    for name in ours:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        package = importlib.import_module("spikeformers")
        if not package.__file__.startswith(os.path.abspath(src)):
            raise ImportError(f"spikeformers imported from {package.__file__}, not from {src}")
        neurons = importlib.import_module("spikeformers.neurons")
        kernels = importlib.import_module("spikeformers.neurons.kernels")
        cpu = importlib.import_module("spikeformers.neurons.kernels.cpu")
        importlib.import_module("spikeformers.neurons.kernels.reference")
    finally:
        sys.path.remove(src)
        theirs = {n: m for n, m in sys.modules.items() if n == "spikeformers" or n.startswith("spikeformers.")}
        for name in theirs:
            del sys.modules[name]
        sys.modules.update(ours)

    def call(fn, *args):
        sys.modules.update(theirs)
        try:
            return fn(*args)
        finally:
            sys.modules.update(ours)
            for name in set(theirs) - set(ours):
                del sys.modules[name]

    return neurons.LIF, kernels.multistep, cpu.available, call


def braincog_lif(T):
    spec = importlib.util.find_spec("braincog")
    if spec is None:
        raise ImportError("braincog is not installed")
    root = list(spec.submodule_search_locations)[0]
    for name, path in [("braincog", root), ("braincog.base", os.path.join(root, "base"))]:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
    node_module = importlib.import_module("braincog.base.node.node")
    surrogate = importlib.import_module("braincog.base.strategy.surrogate")
    node = node_module.LIFNode(threshold=1.0, tau=2.0, act_fun=surrogate.SigmoidGrad, step=T, layer_by_layer=True)

    def run(x):
        node.n_reset()
        # layer_by_layer takes [(T*B), C, W, H]
        return node(x.reshape(T * x.shape[1], x.shape[2], x.shape[3], 1)).reshape(x.shape)

    return run, _dist_version("braincog")


def _dist_version(name):
    from importlib.metadata import version

    try:
        return version(name)
    except Exception:
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def time_fwd_bwd(fn, x, grad):
    xg = x.detach().clone().requires_grad_()
    start = time.perf_counter()
    out = fn(xg)
    out.backward(grad)
    return time.perf_counter() - start, out.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[16, 64, 256, 64], help="[T, ...]")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sj014", default="/tmp/sj014", help="folder holding SpikingJelly 0.0.0.0.14")
    parser.add_argument("--against", metavar="SRC", help="also time the kernels of the spikeformers package in SRC")
    parser.add_argument("--no-reference", action="store_true", help="leave out the slow reference loops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    impls, missing = {}, {}
    if not args.no_reference:
        impls["spikeformers reference"] = ours("reference")
    if cpu_backend.available():
        impls["spikeformers cpu"] = ours("cpu")
    else:
        missing["spikeformers cpu"] = str(cpu_backend._load()).splitlines()[0]
    versions = {}
    if args.against:
        other_lif, other_multistep, other_cpu_available, call = other_checkout(args.against)
        neuron = other_lif(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate="sigmoid", alpha=4.0)
        backends = () if args.no_reference else ("reference",)
        for backend in backends + (("cpu",) if call(other_cpu_available) else ()):
            impls[f"{args.against} {backend}"] = (
                lambda b: lambda x: call(other_multistep, x, None, neuron.spec, b))(backend)
    for label, loader in [("SpikingJelly latest", spikingjelly_latest),
                          ("SpikingJelly 0.0.0.0.14", lambda: spikingjelly_014(args.sj014)),
                          ("BrainCog LIFNode", lambda: braincog_lif(args.shape[0]))]:
        try:
            impls[label], versions[label] = loader()
        except Exception as err:  # a reference that does not import is reported, not faked
            missing[label] = f"{type(err).__name__}: {err}"

    print(f"# LIF forward + backward, x {args.shape}, {args.threads} threads, median of {args.rounds} rounds")
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"CPU: {cpu_model()}, PyTorch capability {torch.backends.cpu.get_cpu_capability()}, "
          f"cpu kernel flags {' '.join(cpp_build.build_flags())}")
    print(f"load average before: {os.getloadavg()}")
    for label, why in missing.items():
        print(f"NOT MEASURED {label}: {why}")

    gen = torch.Generator().manual_seed(0)
    base = torch.randn(args.shape, generator=gen) * 1.2 + 0.9
    grad = torch.randn(args.shape, generator=gen)
    names = list(impls)
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        x, g = base.to(dtype), grad.to(dtype)
        # The spikes of a float32 membrane driven by the same (rounded) input.
        reference_spikes = multistep(x.float(), None, LIF(tau=2.0).spec, backend="reference")
        times = {name: [] for name in names}
        differ = {}
        for name in names:  # warm-up round (and the spikes, for the last column)
            _, out = time_fwd_bwd(impls[name], x, g)
            differ[name] = (out.float() != reference_spikes).float().mean().item()
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                seconds, _ = time_fwd_bwd(impls[name], x, g)
                times[name].append(seconds)
        baseline = statistics.median(times["SpikingJelly latest"]) if "SpikingJelly latest" in times else None
        print(f"\n## {dtype_name}\n")
        print("| implementation | median ms | min ms | speed-up vs SpikingJelly latest | spikes differing from a float32-membrane reference |")
        print("|---|---:|---:|---:|---:|")
        for name in names:
            med = statistics.median(times[name])
            ratio = f"{baseline / med:.2f}x" if baseline else "n/a"
            print(f"| {name} | {med * 1e3:.1f} | {min(times[name]) * 1e3:.1f} | {ratio} | {differ[name]:.2e} |")
        theirs = f"{args.against} cpu"
        if theirs in times and "spikeformers cpu" in times:
            # Per round, both timed back to back: a load change between rounds cancels out.
            paired = statistics.median(a / b for a, b in zip(times[theirs], times["spikeformers cpu"]))
            print(f"\n{theirs} / spikeformers cpu, median of the rounds' ratios: {paired:.3f}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
