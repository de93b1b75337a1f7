"""Benchmark 3: everything that needs a GPU, in one run of under 8 minutes.

1. Correctness on the GPU: the Triton kernels against the reference loop for
   every neuron setting, and every zoo model against the authors' own code
   (float64, Triton kernels), i.e. ``pytest -k "gpu"`` over the kernel and
   authors'-reference tests.
2. The LIF kernel, forward + backward on ``[16, 64, 256, 64]`` in float32 and
   bfloat16: this project's Triton kernels against SpikingJelly's latest
   release (its own CUDA kernels) and 0.0.0.0.14 (``cupy`` where it imports,
   else its torch backend), median time, and the bandwidth ours achieves for
   the least traffic a fused kernel needs (read x, write spikes; read the
   gradient and x, write the input gradient: 5 tensors) against a measured
   device-to-device copy and the card's nominal bandwidth.
3. Spikformer-DVS training (T=16, 2x128x128, AdamW, AMP) at batch 16 and 64:
   samples/s and peak GPU memory, this project against the authors' model
   (written in ``spikformer_step.py`` from the specs) on each SpikingJelly.

References are not installed on the device machine (its image has PyTorch,
Triton, cupy, pytest and this project's other needs): carry them. Here, once::

    echo /.whl/ >> .git/info/exclude; echo /.sj014/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .whl spikingjelly==2.0.0 loguru==0.7.3
    python3 -m pip install --no-deps --target .sj014 spikingjelly==0.0.0.0.14

then on the device (``carry`` ``.whl`` and ``.sj014``; about 7 MB)::

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --sj014 .sj014 2>&1 | tee $OUT/gpu.md

``--device cpu --quick`` runs the same code paths on a CPU (small sizes) to
check the script itself before spending device time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from neuron_kernel import import_spikingjelly_014  # noqa: E402
from spikformer_step import build_authors, sj014_lif  # noqa: E402

NOMINAL_GBPS = {"H200": 4800, "H100 PCIe": 2000, "H100": 3350, "A100": 2039}  # vendors' figures, first match


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, rounds):
    """Median seconds of ``fn()`` over ``rounds`` runs after two warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_tests(timeout):
    print("## 1. Correctness on the GPU\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "gpu",
               "tests/test_neuron_kernels.py", "tests/test_authors_reference.py"]
    print(f"`{' '.join(command[1:])}`\n\n```")
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        print("\n".join((result.stdout + result.stderr).strip().splitlines()[-15:]))
    except subprocess.TimeoutExpired:
        print(f"stopped after {timeout} s")
    print("```\n")


def lif_implementations(device, sj014):
    """name -> function x -> spikes, for the same LIF (tau 2, hard reset 0, detach_reset, sigmoid alpha 4)."""
    from spikeformers.neurons import LIF
    from spikeformers.neurons.kernels import multistep, select_backend

    neuron = LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate="sigmoid", alpha=4.0)
    probe = torch.zeros(1, device=device)
    impls = {f"spikeformers ({select_backend(probe)})": lambda x: multistep(x, None, neuron.spec)}
    try:
        from spikingjelly.activation_based import functional, neuron as sj_neuron, surrogate

        node = sj_neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                                 surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m").to(device)
        impls["SpikingJelly latest"] = lambda x: (functional.reset_net(node), node(x))[1]
    except Exception as err:
        print(f"NOT MEASURED SpikingJelly latest: {type(err).__name__}: {err}")
    try:
        neuron014, surrogate014, functional014 = import_spikingjelly_014(sj014)
        backend = sj014_backend(device)
        node014 = neuron014.MultiStepLIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                                             surrogate_function=surrogate014.Sigmoid(alpha=4.0), backend=backend)
        impls[f"SpikingJelly 0.0.0.0.14 ({backend})"] = lambda x: (functional014.reset_net(node014), node014(x))[1]
    except Exception as err:
        print(f"NOT MEASURED SpikingJelly 0.0.0.0.14: {type(err).__name__}: {err}")
    return impls


def sj014_backend(device):
    """SpikingJelly 0.0.0.0.14's fastest backend here: cupy on a GPU where it imports, else torch."""
    return "cupy" if device.type == "cuda" and importlib.util.find_spec("cupy") is not None else "torch"


def copy_bandwidth(device, nbytes):
    """Achieved GB/s of a device-to-device copy (bytes read + written)."""
    src = torch.empty(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    return 2 * nbytes / timed(lambda: dst.copy_(src), device, 10) / 1e9


def kernel_benchmark(device, shape, sj014, rounds):
    print(f"## 2. LIF forward + backward, x {list(shape)}\n")
    impls = lif_implementations(device, sj014)
    copy = copy_bandwidth(device, 1 << 30 if device.type == "cuda" else 1 << 26)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    nominal = next((gbps for key, gbps in NOMINAL_GBPS.items() if key in name), None)
    print(f"device: {name}; measured copy bandwidth {copy:.0f} GB/s; nominal {nominal or '?'} GB/s\n")
    gen = torch.Generator().manual_seed(0)
    base = (torch.randn(shape, generator=gen) * 1.2 + 0.9).to(device)
    grad = torch.randn(shape, generator=gen).to(device)
    for dtype in (torch.float32, torch.bfloat16):
        x, g = base.to(dtype), grad.to(dtype)
        traffic = 5 * x.numel() * x.element_size()

        def step(fn):
            xg = x.detach().requires_grad_()
            fn(xg).backward(g)

        print(f"### {str(dtype).replace('torch.', '')}\n")
        print("| implementation | median ms | GB/s at 5 tensors | of copy | of nominal |")
        print("|---|---:|---:|---:|---:|")
        for label, fn in impls.items():
            try:
                seconds = timed(lambda: step(fn), device, rounds)
            except Exception as err:  # one reference failing must not cost the rest of the run
                print(f"| {label} | failed: {type(err).__name__}: {str(err)[:200]} | | | |")
                continue
            gbps = traffic / seconds / 1e9
            of_nominal = f"{gbps / nominal:.0%}" if nominal else "n/a"
            print(f"| {label} | {seconds * 1e3:.3f} | {gbps:.0f} | {gbps / copy:.0%} | {of_nominal} |")
        print()


def training_benchmark(device, batches, steps, sj014, amp_dtype):
    from spikeformers.models import create_model

    print(f"## 3. Spikformer-DVS training, T=16, 2x128x128, AdamW, AMP {amp_dtype}\n")
    dtype = getattr(torch, amp_dtype)
    makers = {"spikeformers": lambda: (create_model("spikformer_dvs"), None, False)}
    try:
        from spikingjelly.activation_based import functional, neuron as sj_neuron

        def latest_lif(threshold):
            return sj_neuron.LIFNode(tau=2.0, v_threshold=threshold, detach_reset=True, step_mode="m")

        makers["authors' model, SpikingJelly latest"] = lambda: (build_authors("spikformer_dvs", latest_lif),
                                                                 functional.reset_net, True)
    except Exception as err:
        print(f"NOT MEASURED authors' model on SpikingJelly latest: {type(err).__name__}: {err}")
    try:
        neuron014, _, functional014 = import_spikingjelly_014(sj014)
        backend = sj014_backend(device)
        makers[f"authors' model, SpikingJelly 0.0.0.0.14 ({backend})"] = lambda: (
            build_authors("spikformer_dvs", sj014_lif(neuron014, backend)), functional014.reset_net, True)
    except Exception as err:
        print(f"NOT MEASURED authors' model on SpikingJelly 0.0.0.0.14: {type(err).__name__}: {err}")
    print("| implementation | batch | samples/s | ms/step | peak GPU memory MiB | vs authors' fastest |")
    print("|---|---:|---:|---:|---:|---:|")
    for batch in batches:
        rows = {}
        for label, make in makers.items():
            try:
                rows[label] = measure_training(make, batch, device, dtype, steps)
            except Exception as err:  # out of memory, or a reference's kernel failing to build
                print(f"| {label} | {batch} | failed: {type(err).__name__}: {str(err)[:200]} | | | |")
        authors = [v[0] for k, v in rows.items() if k.startswith("authors")]
        for label, (rate, seconds, peak) in rows.items():
            ratio = f"{rate / max(authors):.2f}x" if authors else "n/a"
            print(f"| {label} | {batch} | {rate:.0f} | {seconds * 1e3:.1f} | {peak:.0f} | {ratio} |")
    print()


def measure_training(make, batch, device, dtype, steps):
    """(samples/s, seconds per step, peak GPU MiB over what the model, optimiser and batch hold)."""
    torch.manual_seed(0)
    model, reset, batch_first = make()
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    frames = torch.poisson(torch.full((16, batch, 2, 128, 128), 0.3)).to(device)
    x = frames.transpose(0, 1).contiguous() if batch_first else frames
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if reset is not None:
            reset(model)

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, device, steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return batch / seconds, seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sj014", default=".sj014", help="folder holding SpikingJelly 0.0.0.0.14")
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script, not the GPU")
    parser.add_argument("--amp-dtype", default="float16", choices=["float16", "bfloat16"])
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--test-timeout", type=int, default=180)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --device cpu --quick to check the script")
    began = time.perf_counter()
    print(f"# Benchmark 3 on {torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}\n")
    print(f"torch {torch.__version__}, python {sys.version.split()[0]}, command: {' '.join(sys.argv)}\n")
    if not args.skip_tests:
        run_tests(args.test_timeout)
    shape = (4, 8, 16, 16) if args.quick else (16, 64, 256, 64)
    kernel_benchmark(device, shape, args.sj014, rounds=3 if args.quick else 20)
    training_benchmark(device, [2] if args.quick else [16, 64], steps=2 if args.quick else 10, sj014=args.sj014,
                       amp_dtype=args.amp_dtype if device.type == "cuda" else "bfloat16")
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
