"""The multi-step neuron recurrence: one pass over T forward, one backward.

Every neuron in the library (LIF, PLIF, IF, soft or hard reset) is this one
recurrence with different settings. Forward, per element, starting from
``v[-1] = v_reset`` (0 for soft reset)::

    h[t] = charge(v[t-1], x[t])            # LIF / PLIF / IF, below
    s[t] = 1 if h[t] >= v_threshold else 0
    v[t] = h[t] * (1 - s[t]) + v_reset * s[t]   # hard reset
    v[t] = h[t] - v_threshold * s[t]            # soft reset (v_reset=None)

Backward is the hand-derived adjoint of the same loop, so only the pre-spike
membrane ``h`` and the spikes are kept for it (plus ``x`` for PLIF's decay
gradient), never the whole autograd graph of T steps. Half-precision inputs
are integrated in float32: a bf16 membrane rounds away small inputs and flips
spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .surrogate import SurrogateFn


@dataclass(frozen=True)
class NeuronSpec:
    """The static settings of one neuron; hashable so kernels can cache by it."""

    kind: str  # 'lif' (leak 1/tau), 'plif' (leak sigmoid(w), learnable), 'if' (no leak)
    tau: float
    v_threshold: float
    v_reset: float | None  # None: soft reset (subtract the threshold)
    decay_input: bool
    detach_reset: bool
    detach_mem: bool
    surrogate: SurrogateFn
    alpha: float

    @property
    def rest(self) -> float:
        """Membrane potential at rest and the level the leak decays towards."""
        return 0.0 if self.v_reset is None else self.v_reset


def _charge(spec: NeuronSpec, v: torch.Tensor, x: torch.Tensor, k: torch.Tensor | None):
    """h[t] from v[t-1] and x[t]; written as SpikingJelly writes it, so values agree bit for bit."""
    if spec.kind == "if":
        return v + x
    if spec.kind == "lif":
        if spec.decay_input:
            return v + (x - (v - spec.rest)) / spec.tau
        return v - (v - spec.rest) / spec.tau + x
    if spec.decay_input:  # plif, k = sigmoid(w) = 1 / tau
        return v + (x - (v - spec.rest)) * k
    return v - (v - spec.rest) * k + x


def _reset(spec: NeuronSpec, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    if spec.v_reset is None:
        return h - spec.v_threshold * s
    return h * (1.0 - s) + spec.v_reset * s


class MultiStepNeuron(torch.autograd.Function):
    """``spikes = MultiStepNeuron.apply(x, w, spec)``; ``w`` is PLIF's parameter or None."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec):
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        xc = x.to(compute_dtype)
        k = w.to(compute_dtype).sigmoid() if w is not None else None
        h_seq = torch.empty_like(xc)
        spikes = torch.empty_like(xc)
        v = torch.full_like(xc[0], spec.rest)
        for t in range(x.shape[0]):
            h = _charge(spec, v, xc[t], k)
            s = (h >= spec.v_threshold).to(compute_dtype)
            h_seq[t] = h
            spikes[t] = s
            v = _reset(spec, h, s)
        ctx.spec = spec
        ctx.input_dtype = x.dtype
        ctx.save_for_backward(h_seq, spikes, xc if w is not None else None, w)
        return spikes.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        spec: NeuronSpec = ctx.spec
        h_seq, spikes, xc, w = ctx.saved_tensors
        grad_spikes = grad_spikes.to(h_seq.dtype)
        k = w.to(h_seq.dtype).sigmoid() if w is not None else None
        grad_x = torch.empty_like(h_seq)
        grad_v = torch.zeros_like(h_seq[0])  # dL/dv[t], arriving from step t+1
        # PLIF's decay gradient sums over every neuron and step: accumulate it in
        # float64 so that it does not lose digits to the length of the sum.
        grad_k = torch.zeros((), dtype=torch.float64, device=h_seq.device)
        for t in range(h_seq.shape[0] - 1, -1, -1):
            h, s = h_seq[t], spikes[t]
            sg = spec.surrogate(h - spec.v_threshold, spec.alpha)
            if spec.v_reset is None:  # v = h - theta * s
                dv_dh = 1.0 if spec.detach_reset else 1.0 - spec.v_threshold * sg
            else:  # v = h * (1 - s) + v_reset * s
                dv_dh = 1.0 - s
                if not spec.detach_reset:
                    dv_dh = dv_dh + (spec.v_reset - h) * sg
            grad_h = grad_spikes[t] * sg + grad_v * dv_dh

            if spec.kind == "if" or not spec.decay_input:
                grad_x[t] = grad_h
            elif spec.kind == "lif":
                grad_x[t] = grad_h / spec.tau
            else:
                grad_x[t] = grad_h * k

            if k is not None:  # PLIF: dh/dk = (x - (v_prev - rest)) or -(v_prev - rest)
                v_prev = _reset(spec, h_seq[t - 1], spikes[t - 1]) if t > 0 else torch.full_like(h, spec.rest)
                leak = v_prev - spec.rest
                grad_k += (grad_h * ((xc[t] - leak) if spec.decay_input else -leak)).sum(dtype=torch.float64)

            if spec.detach_mem:
                grad_v = torch.zeros_like(grad_h)
            elif spec.kind == "if":
                grad_v = grad_h
            elif spec.kind == "lif":
                grad_v = grad_h - grad_h / spec.tau
            else:
                grad_v = grad_h - grad_h * k

        grad_w = None
        if w is not None and ctx.needs_input_grad[1]:
            k = k.to(torch.float64)
            grad_w = (grad_k * k * (1.0 - k)).to(w.dtype).reshape(w.shape)
        return grad_x.to(ctx.input_dtype), grad_w, None
