"""``profile_model``: run a model on data with the firing-rate monitor and the operation counter, and report.

The model runs in eval mode (batch norm on its running statistics, as at
inference, where the papers measure) without gradients; its training flag
is restored afterwards. ``batch_norm='batch'`` normalises with each batch's
own statistics instead, for untrained weights: their running statistics are
still the identity (mean 0, variance 1), which leaves most neurons silent;
the running statistics are put back afterwards. Without data, the input is synthetic
(:func:`synthetic_input`) and the report says so: firing rates, hence ACs
and energy, depend on the data and on the weights.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..data.loader import time_major
from .attention_maps import AttentionRecorder
from .energy import EnergyModel
from .firing import FiringRateMonitor
from .ops import INPUT_CLASSES, OpCounter
from .report import LayerOps, ProfileReport


BATCH_NORM_MODES = ("running", "batch")


def synthetic_input(model: nn.Module, batch_size: int = 1, seed: int = 0) -> torch.Tensor:
    """``[T, B, C, H, W]`` of independent U[0, 1) values (seed ``seed``): a stand-in when no data are given."""
    for attr in ("time_steps", "in_channels", "img_size"):
        if not hasattr(model, attr):
            raise ValueError(f"{type(model).__name__} has no {attr!r}: give profile_model an input, "
                             "the synthetic one needs time_steps, in_channels and img_size")
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(model.time_steps, batch_size, model.in_channels, *model.img_size, generator=generator)


def describe_synthetic(x: torch.Tensor, seed: int = 0) -> str:
    return (f"synthetic input, not data: {x.shape[1]} sample(s) of independent U[0, 1) values, shape "
            f"[T, B, C, H, W] = {list(x.shape)}, seed {seed}")


def _batches(data, limit: int | None) -> Iterable[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        yield data
        return
    for i, item in enumerate(data):
        if limit is not None and i >= limit:
            return
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"profile_model: batch {i} is a {type(x).__name__}, expected a tensor or (tensor, label)")
        yield x


def _check_time_axis(model: nn.Module, x: torch.Tensor) -> None:
    """A zoo model runs on any T, so [B, T, ...] read as [T, B, ...] would run, and count nonsense."""
    T = getattr(model, "time_steps", None)
    if T is not None and x.dim() == 5 and x.shape[0] != T:
        hint = (" Data sets yield [T, C, H, W] samples, so batches are [B, T, C, H, W]: pass time_first=False."
                if x.shape[1] == T else "")
        raise ValueError(f"profile_model: {type(model).__name__} runs T={T} time steps but the input "
                         f"{list(x.shape)} has {x.shape[0]} on its time axis (axis 0).{hint}")


def profile_model(
    model: nn.Module,
    data: torch.Tensor | Iterable | None = None,
    *,
    batches: int | None = None,
    energy: EnergyModel | None = None,
    nonbinary_as_mac: bool = False,
    data_source: str | None = None,
    time_first: bool = True,
    keep_sample: bool = False,
    batch_norm: str = "running",
    device: str | torch.device | None = None,
) -> ProfileReport:
    """Firing rates, operation counts, parameters and energy of ``model`` on ``data``.

    ``data``: one input tensor, or an iterable of tensors or ``(tensor,
    label)`` batches (a ``spikeformers.data.time_major_loader``; at most
    ``batches`` of them), or None for :func:`synthetic_input`.
    ``time_first=False`` takes batches stacked sample first, ``[B, T, C, H,
    W]`` (a plain ``DataLoader``'s), and moves time first.
    ``nonbinary_as_mac`` counts layers fed by sums of spikes as MACs (see
    ``analysis.ops``). ``keep_sample`` keeps the first sample's input, spikes
    and attention maps on the report, for pictures. ``batch_norm``:
    'running' (inference) or 'batch' (see the module docstring).
    """
    energy = energy or EnergyModel()
    if batch_norm not in BATCH_NORM_MODES:
        raise ValueError(f"profile_model: batch_norm must be one of {BATCH_NORM_MODES}, got {batch_norm!r}")
    if batches is not None and batches < 1:
        raise ValueError(f"profile_model: batches must be >= 1, got {batches}")
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if data is None:
        data = synthetic_input(model, batch_size=2)  # two: a batch norm on [B, C] needs more than one value
        data_source = data_source or describe_synthetic(data)
        time_first = True

    monitor = FiringRateMonitor(model, keep_sample=keep_sample)
    counter = OpCounter(model, nonbinary_as_mac=nonbinary_as_mac)
    recorder = AttentionRecorder(model)
    was_training = model.training
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    model.eval()
    for m in norms:
        m.train(batch_norm == "batch")
    input_sample, input_shape = None, None
    try:
        with torch.no_grad(), monitor, recorder, counter:
            for x in _batches(data, batches):
                if not time_first:
                    x = time_major(x)
                x = x.to(device)
                _check_time_axis(model, x)
                if input_sample is None:
                    input_shape = list(x.shape[-3:])
                    input_sample = x[:, 0].cpu() if keep_sample and x.dim() == 5 else None
                model(x)
    finally:
        model.train(was_training)
        for m, state in zip(norms, saved):
            m.load_state_dict(state)
    if not counter.samples:
        raise ValueError("profile_model: the data yielded no batch")

    time_steps = counter.sample_steps // counter.samples
    rows = []
    for t in counter.per_sample_step():
        counted_as = "AC" if t.macs == 0 else ("MAC" if t.acs == 0 else "MAC+AC")
        rows.append(LayerOps(
            layer=t.layer, op=t.op, module_type=t.module_type,
            inputs="/".join(c for c in INPUT_CLASSES if c in t.classes),
            counted_as=counted_as, params=t.params, flops_per_step=t.flops, macs_per_step=t.macs,
            acs_per_step=t.acs, energy_mj=energy.millijoules(t.macs * time_steps, t.acs * time_steps),
            shapes=t.shapes,
        ))
    with_matmul = {r.layer.split(":")[0] for r in rows if r.op == "matmul"}
    return ProfileReport(
        model=getattr(model, "model_name", type(model).__name__),
        time_steps=time_steps,
        input_shape=input_shape,
        data_source=data_source or f"{counter.samples} sample(s) of the given data",
        batch_norm=batch_norm,
        samples=counter.samples,
        energy_model=energy,
        nonbinary_as_mac=nonbinary_as_mac,
        params_total=sum(p.numel() for p in model.parameters()),
        layers=rows,
        firing=monitor.results(),
        uncounted=sorted(counter.uncounted),
        spike_samples=monitor.samples() if keep_sample else {},
        input_sample=input_sample,
        attention_maps=recorder.maps(only=with_matmul) if keep_sample else {},
    )
