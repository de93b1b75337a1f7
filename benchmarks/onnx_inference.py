"""Spikformer-DVS inference on the CPU: ONNX Runtime running the exported graph against PyTorch running
the model with this project's fused kernels, in one run.

The model (``spikformer_dvs``: T=16, 2x128x128, 2 blocks of width 256) is
exported with ``spikeformers.export.to_onnx`` (unrolled over T, batch norm
folded, dynamic batch). Both run with the same number of threads on the same
input (sparse event counts), alternating forward by forward, after one
warm-up each: latency at batch 1 (median of ``--latency-runs`` forwards) and
throughput at batch 32 (samples/s over the median of ``--rounds`` forwards).
The logits of the two are compared on the batch-32 input (top-1 agreement and
the largest difference), so the speed figures are of the same computation.

    python benchmarks/onnx_inference.py            # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="spikformer_dvs")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--latency-runs", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import onnxruntime as ort

    from spikeformers.export import to_onnx
    from spikeformers.models import create_model
    from spikeformers.neurons.kernels import select_backend

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    T, C, (H, W) = model.time_steps, model.in_channels, model.img_size
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        start = time.perf_counter()
        to_onnx(model, path, model_name=args.model)
        export_s = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 1e6
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def frames(batch: int, seed: int) -> torch.Tensor:  # event counts: mostly 0, some 1-3
        gen = torch.Generator().manual_seed(seed)
        return torch.poisson(torch.full((T, batch, C, H, W), 0.15), generator=gen)

    def run_torch(x):
        with torch.inference_mode():
            return model(x)

    def run_ort(x):
        return session.run(None, {"frames": x.numpy()})[0]

    def timed(fn, x) -> float:
        start = time.perf_counter()
        fn(x)
        return time.perf_counter() - start

    print(f"# {args.model} inference on the CPU: T={T}, {C}x{H}x{W}, {args.threads} threads")
    print(f"torch {torch.__version__} (neuron backend: {select_backend(torch.zeros(1))}); "
          f"onnxruntime {ort.__version__}; load average before: {tuple(round(v, 2) for v in os.getloadavg())}")
    print(f"export: {export_s:.1f} s, {size_mb:.1f} MB")

    x32 = frames(args.batch, 1)
    reference, exported = run_torch(x32).numpy(), run_ort(x32)
    agree = float((reference.argmax(1) == exported.argmax(1)).mean())
    print(f"batch {args.batch}: top-1 agreement {agree:.4f}, max |logit difference| "
          f"{np.abs(reference - exported).max():.2e}")

    x1 = frames(1, 2)
    for fn in (run_torch, run_ort):  # warm-up
        fn(x1)
    latency = {"pytorch": [], "onnxruntime": []}
    for i in range(args.latency_runs):
        order = [("pytorch", run_torch), ("onnxruntime", run_ort)][:: 1 if i % 2 == 0 else -1]
        for name, fn in order:
            latency[name].append(timed(fn, x1))
    throughput = {"pytorch": [], "onnxruntime": []}
    for i in range(args.rounds):
        order = [("pytorch", run_torch), ("onnxruntime", run_ort)][:: 1 if i % 2 == 0 else -1]
        for name, fn in order:
            throughput[name].append(timed(fn, x32))
    print("| | PyTorch (fused kernels) | ONNX Runtime | ONNX Runtime speed-up |")
    print("|---|---|---|---|")
    lat = {k: statistics.median(v) * 1e3 for k, v in latency.items()}
    print(f"| latency, batch 1 (ms, median of {args.latency_runs}) | {lat['pytorch']:.0f} | "
          f"{lat['onnxruntime']:.0f} | {lat['pytorch'] / lat['onnxruntime']:.2f}x |")
    thr = {k: args.batch / statistics.median(v) for k, v in throughput.items()}
    print(f"| throughput, batch {args.batch} (samples/s, median of {args.rounds}) | {thr['pytorch']:.2f} | "
          f"{thr['onnxruntime']:.2f} | {thr['onnxruntime'] / thr['pytorch']:.2f}x |")
    print(f"load average after: {tuple(round(v, 2) for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
