"""The reference kernel: the recurrence as a plain Python loop over T, in PyTorch ops.

It is the cross-check for every fused kernel (tests compare them element by
element) and the fallback where none applies. Like them it has a hand-derived
backward (``ops.py`` makes it a custom operator): forward keeps only the
pre-spike membrane ``h`` (plus ``x`` for a learned parameter's gradient), and backward
computes everything that does not depend on the previous step (surrogate,
reset factor) for all steps at once, leaving only the carry through the
membrane in the loop. The charge and reset are the spec's PyTorch
definitions; the backward reads the spec's kernel constants, as the fused
kernels do.
"""

from __future__ import annotations

import torch

from ..spec import EXP, QUAD, SCALED, NeuronSpec


def _charge(spec: NeuronSpec, v: torch.Tensor, x: torch.Tensor, k: torch.Tensor | None) -> torch.Tensor:
    return spec.charge(v, x, k)


def _reset(spec: NeuronSpec, h: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
    return spec.reset(h, fired)


def keeps_membrane(spec: NeuronSpec) -> bool:
    """Whether forward returns ``h`` for backward (always, here)."""
    return True


def keeps_input(spec: NeuronSpec, learned: bool) -> bool:
    """Whether backward needs the input ``x``: only for a learned leak's gradient."""
    return learned


def _neutral(value) -> bool:
    return isinstance(value, float) and value == 1.0


def forward(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes in x's dtype, the membrane h in the compute dtype), both of x's shape."""
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    xc = x.to(compute_dtype)
    k = spec.parameter_value(w, compute_dtype) if w is not None else None
    h_seq = torch.empty(x.shape, dtype=compute_dtype, device=x.device)
    v = torch.full(x.shape[1:], spec.rest, dtype=compute_dtype, device=x.device)
    if spec.integer_spikes:  # ILIF: integer spikes, subtracted from the membrane
        spikes = torch.empty_like(h_seq)
        for t in range(x.shape[0]):
            h = _charge(spec, v, xc[t], k)
            h_seq[t] = h
            spikes[t] = spec.integer_spike_values(h)
            v = h - spikes[t] * spec.v_threshold
        return spikes.to(x.dtype), h_seq
    for t in range(x.shape[0]):
        h = _charge(spec, v, xc[t], k)
        h_seq[t] = h
        v = _reset(spec, h, h >= spec.v_threshold)
    return (h_seq >= spec.v_threshold).to(x.dtype), h_seq


def backward(grad_spikes: torch.Tensor, x: torch.Tensor | None, w: torch.Tensor | None, h_seq: torch.Tensor,
             sg: torch.Tensor | None, spec: NeuronSpec, want_grad_w: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dx, dL/dw, or an empty tensor when not wanted); ``sg``: a user surrogate's values, else None."""
    if spec.integer_spikes:
        return _integer_backward(grad_spikes, h_seq, spec)
    fired = h_seq >= spec.v_threshold
    if sg is None:
        sg = spec.surrogate_fn(h_seq - spec.v_threshold, spec.alpha)
    k = spec.parameter_value(w, h_seq.dtype) if w is not None else None
    c = spec.kernel_constants(k if k is not None else 0.0)
    code = spec.charge_code

    # dv[t]/dh[t]: how much of the membrane survives the reset (None: all of it).
    if spec.soft_reset:  # v = h - theta * s
        dv_dh = None if c.reset_grad == 0.0 else 1.0 - c.threshold * sg
    else:  # v = h * (1 - s) + v_reset * s
        dv_dh = (~fired).to(h_seq.dtype)
        if c.reset_grad != 0.0:
            dv_dh = dv_dh + (c.v_reset - h_seq) * sg

    # A nonlinear charge's dh[t+1]/dv[t], at v[t] (the decay constant is then a detach_mem switch);
    # SCALED's dh[t]/d(inner charge[t]): k where the rectifier passes, else 0.
    slope = inner_slope = None
    if code in (EXP, QUAD):
        v = _reset(spec, h_seq, fired)
        if code == EXP:
            slope = 1.0 + (torch.exp((v - c.p1) / c.p0) - 1.0) / c.div
        else:
            slope = 1.0 + c.p0 * ((v - c.p1) + (v - c.p2)) / c.div
    elif code == SCALED:
        inner_slope = torch.where(h_seq > 0, k, torch.zeros_like(h_seq))

    # grad_h[t] = dL/ds[t] * sg[t] + dL/dh[t+1] * dh[t+1]/dv[t] * dv[t]/dh[t], backwards in t;
    # the first term for all t at once, only the carry through the membrane in the loop.
    grad_h = grad_spikes.to(h_seq.dtype) * sg
    if not (isinstance(c.decay, float) and c.decay == 0.0):  # 0: detach_mem
        for t in range(h_seq.shape[0] - 2, -1, -1):
            after = grad_h[t + 1] if inner_slope is None else grad_h[t + 1] * inner_slope[t + 1]
            carry = after * c.decay
            if slope is not None:
                carry = carry * slope[t]
            grad_h[t] += carry if dv_dh is None else carry * dv_dh[t]

    grad_inner = grad_h if inner_slope is None else grad_h * inner_slope
    grad_x = grad_inner if _neutral(c.x_mul) else grad_inner * c.x_mul
    if c.x_div != 1.0:
        grad_x = grad_x / c.x_div

    grad_w = grad_spikes.new_empty(0)
    if want_grad_w:
        # The sum runs over every neuron and step, so it is accumulated in float64.
        v_prev = torch.cat([torch.full_like(h_seq[:1], spec.rest), _reset(spec, h_seq[:-1], fired[:-1])])
        xc = x.to(h_seq.dtype)
        if code == SCALED:  # dh/dk = the inner (LIF) charge where the rectifier passes
            inner = (v_prev + (xc - (v_prev - spec.rest)) / spec.tau if spec.input_decays
                     else v_prev - (v_prev - spec.rest) / spec.tau + xc)
            grad_k = (grad_h * torch.where(h_seq > 0, inner, torch.zeros_like(inner))).sum(dtype=torch.float64)
        else:
            grad_k = (grad_h * spec.charge_grad_k(xc, v_prev)).sum(dtype=torch.float64)
        grad_w = spec.parameter_grad(grad_k, k, w)
    return grad_x.to(grad_spikes.dtype), grad_w


def _integer_backward(grad_spikes: torch.Tensor, h_seq: torch.Tensor, spec: NeuronSpec):
    """ILIF: the spikes' straight-through gradient passes where ``0 <= h / v_threshold <= D`` (torch.clamp's
    rule), divided as the forward divides; the reset subtracts the spikes, which carry no gradient there."""
    c = spec.kernel_constants()
    u = h_seq / spec.v_threshold
    inside = (u >= 0) & (u <= c.p0)
    grad_h = torch.where(inside, grad_spikes.to(h_seq.dtype) / c.p1 / spec.v_threshold, torch.zeros_like(h_seq))
    if c.decay != 0.0:
        for t in range(h_seq.shape[0] - 2, -1, -1):
            grad_h[t] += grad_h[t + 1] * c.decay
    grad_x = grad_h * c.x_mul / c.x_div
    return grad_x.to(grad_spikes.dtype), grad_spikes.new_empty(0)
