"""Precision report: how far float32, bfloat16 and float16 take every registered model from float64.

For each registered configuration, shrunk to tiny sizes (below), one set of
float64 weights and one input batch are cast to each dtype and run in eval
mode on the CPU. Reported per dtype, against float64:

- the largest absolute logit difference (next to the largest float64 logit,
  for scale);
- the fraction of spikes that flip: every neuron's output, compared element
  by element with float64's (a flip early in the network propagates, so this
  counts its consequences too);
- the fraction of samples whose predicted class changes.

A spike threshold turns rounding into a discrete event, which is why
float32 cannot match float64 exactly even for a correct implementation, and
why the equivalence tests compare in float64.

Settings: every model at its configuration's options (erode, pooling,
embedding style, quirks, ...) with embed dim 32, one block per stage,
4 heads (Meta-SpikeFormer: widths 16-32-32-32, one block per stage),
T=4, 2 input channels, 10 classes, on DVSDigits frames 24x24 (32x32 for
the models whose four 2x2 downsamplings must divide the side exactly). The
batch-norm running statistics are calibrated first, in float64, on 64
training recordings (a cumulative average over train-mode passes), so that
eval mode fires as a trained model does rather than from the initial
statistics; the compared input is 32 test recordings.

    python benchmarks/precision.py --out benchmarks/results/precision.md
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import platform
import subprocess
import time
from datetime import datetime, timezone

import torch
from torch import nn

from spikeformers.data import DVSDigits
from spikeformers.models import list_models
from spikeformers.models.registry import create_model, model_entry
from spikeformers.neurons import LIF

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TIME_STEPS = 4
SENSOR_32 = ("qkformer_dvs", "spikformer_v2_*")
TINY = {  # by model class name: the size overrides
    "MetaSpikeFormer": dict(embed_dims=(16, 32, 32, 32), depths=(1, 1, 1, 1, 1), num_heads=4),
    "QKFormer": dict(embed_dim=32, depths=(1, 1), num_heads=4),
}
TINY_DEFAULT = dict(embed_dim=32, depth=1, num_heads=4)


def tiny_model(name: str, side: int) -> nn.Module:
    cls = model_entry(name).model_class.__name__
    return create_model(name, img_size=side, in_channels=2, num_classes=10, time_steps=TIME_STEPS,
                        **TINY.get(cls, TINY_DEFAULT))


def frames(side: int, train: bool, count: int) -> torch.Tensor:
    data = DVSDigits(train=train, time_steps=TIME_STEPS, sensor_size=(side, side))
    return torch.stack([data[i][0] for i in range(count)], dim=1).double()  # [T, B, 2, side, side]


@torch.no_grad()
def calibrate_batch_norms(model: nn.Module, x: torch.Tensor, batch: int = 16) -> None:
    """Running statistics = the average over train-mode passes on ``x`` (then eval mode)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average
    model.train()
    for start in range(0, x.shape[1], batch):
        model(x[:, start:start + batch])
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


@torch.no_grad()
def run_with_spikes(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and every neuron call's spikes, in call order (the same order in every dtype)."""
    spikes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: spikes.append(out.detach().bool()))
             for m in model.modules() if isinstance(m, LIF)]
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return logits.double(), spikes


def compare(name: str) -> dict:
    side = 32 if any(fnmatch.fnmatch(name, p) for p in SENSOR_32) else 24
    torch.manual_seed(0)
    model = tiny_model(name, side).double()
    calibrate_batch_norms(model, frames(side, train=True, count=64))
    x = frames(side, train=False, count=32)
    ref_logits, ref_spikes = run_with_spikes(model, x)
    total = sum(s.numel() for s in ref_spikes)
    row = {"name": name, "side": side, "spikes": total,
           "rate": sum(s.sum().item() for s in ref_spikes) / total, "max_logit": ref_logits.abs().max().item()}
    for dtype in DTYPES:
        start = time.perf_counter()
        logits, spikes = run_with_spikes(copy.deepcopy(model).to(dtype), x.to(dtype))
        if len(spikes) != len(ref_spikes):
            raise RuntimeError(f"{name}: {len(spikes)} neuron calls in {dtype}, {len(ref_spikes)} in float64")
        flipped = sum((s != r).sum().item() for s, r in zip(spikes, ref_spikes))
        row[dtype] = dict(
            dlogit=(logits - ref_logits).abs().max().item(), flips=flipped, flipped=flipped / total,
            argmax=(logits.argmax(1) != ref_logits.argmax(1)).double().mean().item(),
            seconds=time.perf_counter() - start,
        )
    return row


def markdown(rows: list[dict], command: str, load_before: str, load_after: str, wall: float) -> str:
    short = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    lines = [
        "# Precision: float32, bfloat16 and float16 against float64 (CPU, eval mode)",
        "",
        f"Command: `{command}`",
        "",
        f"Date (UTC): {datetime.now(timezone.utc):%Y-%m-%d %H:%M}; torch {torch.__version__}; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
        f"load average before: {load_before}; after: {load_after}; wall {wall:.0f} s.",
        "",
        "Settings (see the script's docstring): tiny sizes (embed dim 32, one block per stage, 4 heads; "
        "Meta-SpikeFormer 16-32-32-32), T=4, DVSDigits 24x24 frames (32x32 where marked), batch-norm "
        "statistics calibrated in float64 on 64 training recordings, 32 test recordings compared. "
        "The same float64 weights and input are cast to each dtype.",
        "",
        "Columns: Δlogit = max |logit − logit(float64)| (max |logit(float64)| for scale); flips = "
        "number (and fraction) of all neuron outputs that differ from float64's; class = fraction of the 32 samples "
        "whose predicted class changes.",
        "",
        "| model | side | spikes compared | firing rate | max \\|logit\\| | "
        + " | ".join(f"{short[d]} Δlogit | {short[d]} flips | {short[d]} class" for d in DTYPES) + " |",
        "|---|---|---|---|---|" + "---|---|---|" * len(DTYPES),
    ]
    for r in rows:
        cells = [f"`{r['name']}`", str(r["side"]), f"{r['spikes']:,}", f"{r['rate']:.3f}", f"{r['max_logit']:.3g}"]
        for d in DTYPES:
            m = r[d]
            cells += [f"{m['dlogit']:.2e}", f"{m['flips']:,} ({100 * m['flipped']:.3f}%)", f"{100 * m['argmax']:.1f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Reading the table: the models are untrained, so their logits are small and nearly tied "
        "(max |logit| column); a changed class there says more about those near-ties than about the dtype, "
        "while the flips and Δlogit columns measure the dtype. Configurations that differ only in sizes "
        "(widths, depth, classes, T) coincide under these tiny settings and give the same figures. Only "
        "the forward pass in eval mode is measured here; `tests/test_precision.py` runs forward and "
        "backward in train mode in every dtype.",
        "", "Worst over the zoo:", ""]
    for d in DTYPES:
        worst = max(rows, key=lambda r: r[d]["flipped"])
        lines.append(f"- {short[d]}: largest Δlogit {max(r[d]['dlogit'] for r in rows):.2e}; most flips "
                     f"{100 * worst[d]['flipped']:.3f}% (`{worst['name']}`); models with a changed class: "
                     f"{sum(r[d]['argmax'] > 0 for r in rows)} of {len(rows)}.")
    return "\n".join(lines) + "\n"


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="*", help="shell pattern of registered names (default: all)")
    parser.add_argument("--out", help="write the Markdown report here (default: print it)")
    args = parser.parse_args()
    command = "python benchmarks/precision.py" + (f" --models '{args.models}'" if args.models != "*" else "") + (
        f" --out {args.out}" if args.out else "")
    load_before, start = load_average(), time.perf_counter()
    rows = []
    for name in list_models(args.models):
        rows.append(compare(name))
        r = rows[-1]
        print(f"{name:32s} " + "  ".join(f"{str(d)[6:]}: dlogit {r[d]['dlogit']:.1e} flips {100 * r[d]['flipped']:.3f}%"
                                          for d in DTYPES), flush=True)
    report = markdown(rows, command, load_before, load_average(), time.perf_counter() - start)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    else:
        print(report)


if __name__ == "__main__":
    main()
