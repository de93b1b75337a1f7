"""Firing-rate monitor: the mean spike rate of every neuron layer, overall and per time step.

Forward hooks on the model's neuron modules (every instance of a class in
the neuron registry, ``neurons.list_neurons``) read the spikes each one
emits; nothing in the model changes. The hooks exist only between
:meth:`FiringRateMonitor.attach` and :meth:`~FiringRateMonitor.remove` (or
inside ``with``), so a model without a monitor runs exactly as before, at no
cost. Tallies accumulate over every forward while attached: over a batch, or
over a whole data set. The forwards that activation checkpointing runs again
during backward are not counted.

Per time step needs to know which axis is time. A neuron normally emits
``[T, B, ...]`` (or ``[T, windows, ...]``); one run over a folded ``[T*B,
...]`` sequence (QKFormer's batch-leak quirk) is read t-major; any other
shape (TIM's neurons run on growing prefixes ``[t, ...]``) counts in the
overall rate only, and its per-step rates are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..memory import recomputing
from ..neurons import get_neuron_class, list_neurons


def neuron_classes() -> tuple[type[nn.Module], ...]:
    """The registered neuron classes (LIF, PLIF, IF and any added with ``register_neuron``)."""
    return tuple({get_neuron_class(name) for name in list_neurons()})


def neuron_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's neuron modules by qualified name, in forward-definition order."""
    kinds = neuron_classes()
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def sequence_shape(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(T, B)`` of a model input ``[T, B, ...]``; a zoo model's static ``[B, C, H, W]`` is repeated over its T."""
    time_steps = getattr(model, "time_steps", None)
    if x.dim() == 4 and time_steps is not None and hasattr(model, "in_channels"):
        return int(time_steps), int(x.shape[0])
    if x.dim() >= 2:
        return int(x.shape[0]), int(x.shape[1])
    raise ValueError(f"Cannot tell time steps and batch from input shape {tuple(x.shape)}: expected [T, B, ...]")


@dataclass
class _Tally:
    spikes: float = 0.0
    elements: int = 0
    step_spikes: torch.Tensor | None = None  # [T] float64 spikes per time step
    step_elements: torch.Tensor | None = None
    per_step_known: bool = True
    neurons_per_step: int = 0  # neurons of one sample at one time step
    sample: torch.Tensor | None = None  # [T, ...] bool spikes of sample 0 of the first batch


@dataclass(frozen=True)
class LayerRate:
    """The firing of one neuron layer: spikes per neuron per time step."""

    name: str
    rate: float
    rate_per_step: list[float] | None
    neurons: int  # per sample and time step
    spikes: float  # counted over all forwards
    elements: int


class FiringRateMonitor:
    """Counts the spikes of every neuron layer of ``model``.

    ``keep_sample=True`` also keeps the spikes of the first sample of the
    first batch (for rasters). Use as ``with FiringRateMonitor(model) as m:``
    or ``m = FiringRateMonitor(model).attach()`` ... ``m.remove()``.
    """

    def __init__(self, model: nn.Module, keep_sample: bool = False):
        self.model = model
        self.keep_sample = keep_sample
        self.layers = neuron_layers(model)
        self.tallies: dict[str, _Tally] = {name: _Tally() for name in self.layers}
        self.samples_seen = 0
        self._handles: list = []
        self._shape: tuple[int, int] | None = None
        self._batches = 0

    # -- attach / detach ---------------------------------------------------
    def attach(self) -> "FiringRateMonitor":
        if self._handles:
            raise RuntimeError("FiringRateMonitor is already attached")
        self._handles.append(self.model.register_forward_pre_hook(self._on_model_input))
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._spike_hook(name)))
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> "FiringRateMonitor":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.remove()

    def reset(self) -> None:
        self.tallies = {name: _Tally() for name in self.layers}
        self.samples_seen = 0
        self._batches = 0

    # -- hooks -------------------------------------------------------------
    def _on_model_input(self, module, args) -> None:
        self._shape = sequence_shape(self.model, args[0])
        self.samples_seen += self._shape[1]
        self._batches += 1

    def _spike_hook(self, name: str):
        def hook(module, args, output):
            if not recomputing():  # a checkpointed unit re-running its forward in backward: counted once
                self._count(name, output.detach())

        return hook

    def _count(self, name: str, spikes: torch.Tensor) -> None:
        tally = self.tallies[name]
        tally.spikes += float(spikes.sum(dtype=torch.float64))
        tally.elements += spikes.numel()
        T, B = self._shape or (0, 0)
        # [T, ...] (a batch, or windows of it), or a folded [T*B, ...] run t-major: either way rows of t
        if spikes.dim() < 2 or spikes.shape[0] not in (T, T * B):
            tally.per_step_known = False
            return
        per_step = spikes.reshape(T, -1).sum(1, dtype=torch.float64).cpu()
        counts = torch.full((T,), spikes.numel() / T, dtype=torch.float64)
        if tally.step_spikes is None:
            tally.step_spikes, tally.step_elements = per_step, counts
            tally.neurons_per_step = spikes.numel() // (T * B)
        elif tally.step_spikes.shape == per_step.shape:
            tally.step_spikes += per_step
            tally.step_elements += counts
        else:  # batches of different T: no common steps
            tally.per_step_known = False
        if self.keep_sample and self._batches == 1 and tally.sample is None:
            batch_first = spikes.reshape(T, B, *spikes.shape[1:]) if spikes.shape[0] == T * B != T else spikes
            if batch_first.shape[1] == B:
                tally.sample = batch_first[:, 0].bool().cpu()

    # -- results -----------------------------------------------------------
    def results(self) -> list[LayerRate]:
        """One :class:`LayerRate` per neuron layer that ran at least once."""
        rates = []
        for name, t in self.tallies.items():
            if t.elements == 0:
                continue
            per_step = None
            if t.per_step_known and t.step_spikes is not None:
                per_step = (t.step_spikes / t.step_elements).tolist()
            rates.append(LayerRate(name, t.spikes / t.elements, per_step, t.neurons_per_step, t.spikes, t.elements))
        return rates

    def rates(self) -> dict[str, float]:
        """Mean firing rate per neuron layer (spikes per neuron per time step)."""
        return {r.name: r.rate for r in self.results()}

    def samples(self) -> dict[str, torch.Tensor]:
        """The kept spikes ``[T, ...]`` of the first sample, per layer (``keep_sample=True``)."""
        return {name: t.sample for name, t in self.tallies.items() if t.sample is not None}
