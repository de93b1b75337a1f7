"""The profile of a model as data: :class:`ProfileReport`, its table and its JSON.

Operation figures are per sample and per time step (``*_per_step``); energy
is per sample, over all T steps. Each row states what it counted: ``MAC``
rows (the encoding layer, real-valued inputs) and ``AC`` rows (spike-fed
layers, ``SOPs = rate x T x FLOPs``), with the input classes that decided it
(see ``analysis.ops``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_write
from .energy import EnergyModel
from .firing import LayerRate


@dataclass(frozen=True)
class LayerOps:
    """One product of one layer, per sample and time step."""

    layer: str
    op: str  # conv2d, linear, matmul, mul, ...
    module_type: str
    inputs: str  # the input classes seen: input, spike, count, real (joined by '/')
    counted_as: str  # MAC, AC, or MAC+AC when batches disagreed
    params: int
    flops_per_step: float  # dense multiply-accumulates
    macs_per_step: float
    acs_per_step: float
    energy_mj: float  # per sample, all T steps
    shapes: str = ""  # operand shapes of the first call, e.g. "[32, 16, 64, 16] x [32, 16, 16, 16]"

    @property
    def rate(self) -> float:
        """The input rate the ACs were counted at (ACs / FLOPs)."""
        return self.acs_per_step / self.flops_per_step if self.flops_per_step else 0.0


@dataclass
class ProfileReport:
    model: str
    time_steps: int
    input_shape: list[int]  # one sample at one time step: [C, H, W]
    data_source: str
    samples: int
    energy_model: EnergyModel
    nonbinary_as_mac: bool
    batch_norm: str  # 'running' (inference) or 'batch' (each batch's own statistics)
    params_total: int
    layers: list[LayerOps]
    firing: list[LayerRate]
    uncounted: list[str] = field(default_factory=list)  # products seen but not sized (einsum, ...)
    spike_samples: dict = field(default_factory=dict, repr=False, compare=False)  # layer -> [T, ...] bool
    input_sample: object = field(default=None, repr=False, compare=False)  # [T, C, H, W] of that sample
    attention_maps: dict = field(default_factory=dict, repr=False, compare=False)  # layer -> [heads, N, N]

    # -- totals ---------------------------------------------------------------
    @property
    def flops_per_step(self) -> float:
        return sum(r.flops_per_step for r in self.layers)

    @property
    def macs_per_step(self) -> float:
        return sum(r.macs_per_step for r in self.layers)

    @property
    def acs_per_step(self) -> float:
        return sum(r.acs_per_step for r in self.layers)

    @property
    def energy_mj(self) -> float:
        """Estimated energy per sample (all T steps), mJ."""
        return self.energy_model.millijoules(self.macs_per_step * self.time_steps, self.acs_per_step * self.time_steps)

    @property
    def params_counted(self) -> int:
        """Parameters of the convolutions and linears (the rest: batch norms, learned thresholds, ...)."""
        return sum(r.params for r in self.layers)

    @property
    def mean_firing_rate(self) -> float:
        """Spikes over neuron-steps, all neuron layers together."""
        elements = sum(r.elements for r in self.firing)
        return sum(r.spikes for r in self.firing) / elements if elements else 0.0

    def layer(self, name: str) -> LayerOps:
        for row in self.layers:
            if row.layer == name:
                return row
        raise KeyError(f"No counted layer {name!r}; counted: {', '.join(r.layer for r in self.layers)}")

    # -- output -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "time_steps": self.time_steps,
            "input_shape": list(self.input_shape),
            "data_source": self.data_source,
            "samples": self.samples,
            "estimator": self.energy_model.describe(),
            "e_mac_pj": self.energy_model.e_mac_pj,
            "e_ac_pj": self.energy_model.e_ac_pj,
            "nonbinary_as_mac": self.nonbinary_as_mac,
            "batch_norm": self.batch_norm,
            "totals": {
                "params": self.params_total,
                "params_in_counted_layers": self.params_counted,
                "flops_per_step": self.flops_per_step,
                "macs_per_step": self.macs_per_step,
                "acs_per_step": self.acs_per_step,
                "macs_per_sample": self.macs_per_step * self.time_steps,
                "acs_per_sample": self.acs_per_step * self.time_steps,
                "energy_mj_per_sample": self.energy_mj,
                "mean_firing_rate": self.mean_firing_rate,
            },
            "layers": [dict(asdict(r), rate=r.rate) for r in self.layers],
            "firing_rates": [asdict(r) for r in self.firing],
            "uncounted_products": list(self.uncounted),
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        atomic_write(path, lambda f: f.write(text.encode()))
        return path

    def summary(self) -> str:
        """The headline figures, and what they mean."""
        T = self.time_steps
        lines = [
            f"model {self.model}: T={T}, input [T, B, {', '.join(map(str, self.input_shape))}]",
            f"data: {self.data_source}; batch norm: "
            + ("running statistics (inference)" if self.batch_norm == "running"
               else "each batch's own statistics (untrained running statistics left aside)"),
            f"parameters: {self.params_total:,} ({self.params_counted:,} in convolutions and linears)",
            f"per time step: FLOPs {_si(self.flops_per_step)}, MACs {_si(self.macs_per_step)}, "
            f"ACs {_si(self.acs_per_step)}",
            f"per sample (x T={T}): MACs {_si(self.macs_per_step * T)}, ACs (SOPs) {_si(self.acs_per_step * T)}",
            f"mean firing rate {self.mean_firing_rate:.4f} over {len(self.firing)} neuron layers",
            f"energy {self.energy_mj:.4f} mJ per sample; {self.energy_model.describe()}",
            "counted: convolutions, linears, matrix and elementwise products of activations; as MACs: the "
            "encoding layer and real-valued inputs; as ACs: spike inputs (FLOPs x firing rate); "
            + ("spike counts (sums of spikes) as MACs" if self.nonbinary_as_mac
               else "spike counts (sums of spikes) as ACs (FLOPs x spikes per input)")
            + "; not counted: batch norm, pooling, sums, neuron updates",
        ]
        if self.uncounted:
            lines.append("NOT sized (products of an unsupported kind): " + ", ".join(self.uncounted))
        return "\n".join(lines)

    def table(self) -> str:
        """Per-layer operations and energy, then per-layer firing rates, then the summary."""
        head = ("layer", "op", "inputs", "as", "params", "FLOPs/step", "rate", "MACs/step", "ACs/step", "mJ/sample")
        rows = [(r.layer, r.op, r.inputs, r.counted_as, f"{r.params:,}", _si(r.flops_per_step),
                 f"{r.rate:.4f}" if r.counted_as != "MAC" else "-", _si(r.macs_per_step), _si(r.acs_per_step),
                 f"{r.energy_mj:.5f}") for r in self.layers]
        rows.append(("total", "", "", "", f"{self.params_counted:,}", _si(self.flops_per_step), "",
                     _si(self.macs_per_step), _si(self.acs_per_step), f"{self.energy_mj:.5f}"))
        fire_head = ("neuron layer", "neurons/step", "rate", "rate per step")
        fire_rows = [(r.name, f"{r.neurons:,}" if r.neurons else "-", f"{r.rate:.4f}",
                      " ".join(f"{v:.3f}" for v in r.rate_per_step) if r.rate_per_step else "(no time axis)")
                     for r in self.firing]
        return "\n\n".join([_format(head, rows), _format(fire_head, fire_rows), self.summary()])


def _si(x: float) -> str:
    """A count in engineering notation: 9.437M, 1.205G."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.4g}{suffix}"
    return f"{x:.4g}"


def _format(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    left = {0, 1, 2, 3} if len(head) > 4 else {0, 3}

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])
