"""The recurrence unrolled over T in differentiable PyTorch ops: what exporters trace, and what runs a
neuron whose charge no fused kernel knows.

No custom operator, no autograd Function, no Python branch on a tensor's values: under
``torch.export`` every step becomes standard aten operations (an ONNX export unrolls the
model over T from them), and autograd derives the backward. The spike is the exact step
``h >= v_threshold``; while a gradient is wanted, a term that is zero in value,
``(u - u.detach()) * surrogate(u)``, gives it the surrogate's derivative. It keeps every
step's intermediates for backward, so it is slower and larger in training than the
fused kernels, with which it agrees spike for spike.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..spec import NeuronSpec

Charge = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fire(h: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    """The spikes ``h >= v_threshold`` (0 or 1), with the surrogate's derivative for backward; ILIF's
    integers with their straight-through gradient."""
    if spec.integer_spikes:
        D, divisor = spec.constants
        u = torch.clamp(h / spec.v_threshold, min=0, max=D)
        u = u / divisor if divisor != 1.0 else u
        return torch.round(u.detach()) + (u - u.detach())
    spikes = (h >= spec.v_threshold).to(h.dtype)
    if h.requires_grad:
        u = h - spec.v_threshold
        spikes = spikes + (u - u.detach()) * spec.surrogate_fn(u.detach(), spec.alpha)
    return spikes


def reset(h: torch.Tensor, spikes: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    """v[t] by the textbook formulas, so the gradient through the spikes is autograd's own."""
    s = spikes.detach() if spec.detach_reset or spec.integer_spikes else spikes
    if spec.soft_reset:
        return h - spec.v_threshold * s
    return h * (1.0 - s) + spec.v_reset * s


def multistep(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec, charge: Charge | None = None) -> torch.Tensor:
    """Spikes of ``x`` ``[T, ...]``; ``charge(v, x_t)`` is the neuron's own, else the spec's (with ``w``)."""
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    xc = x.to(compute_dtype)
    if charge is None:
        k = spec.parameter_value(w, compute_dtype) if w is not None else None  # differentiable: PLIF's, KLIF's gradient
        charge = lambda v, x_t: spec.charge(v, x_t, k)  # noqa: E731
    v = torch.full(x.shape[1:], spec.rest, dtype=compute_dtype, device=x.device)
    spikes = []
    for t in range(x.shape[0]):
        if spec.detach_mem:
            v = v.detach()
        h = charge(v, xc[t])
        s = fire(h, spec)
        v = reset(h, s, spec)
        spikes.append(s)
    return torch.stack(spikes).to(x.dtype)
