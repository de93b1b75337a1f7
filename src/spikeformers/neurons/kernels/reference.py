"""The reference kernel: the recurrence as a plain Python loop over T, in PyTorch ops.

It is the cross-check for every fused kernel (tests compare them element by
element) and the fallback where none applies. Still a custom autograd Function
rather than autograd's own graph: forward saves only the pre-spike membrane
``h`` (plus ``x`` for PLIF's decay gradient), and backward computes everything
that does not depend on the previous step (surrogate, reset factor) for all
steps at once, leaving only the carry through the membrane in the loop.
"""

from __future__ import annotations

import torch

from ..multistep import NeuronSpec


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


def _reset(spec: NeuronSpec, h: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
    """v[t] from h[t] and the boolean spikes. Equal, value for value, to the textbook
    ``h * (1 - s) + v_reset * s`` and ``h - v_threshold * s`` (up to the sign of a zero),
    in one operation instead of four."""
    if spec.v_reset is None:
        return torch.where(fired, h - spec.v_threshold, h)
    return h.masked_fill(fired, spec.v_reset)


class ReferenceNeuron(torch.autograd.Function):
    """``spikes = ReferenceNeuron.apply(x, w, spec)``; ``w`` is PLIF's parameter or None.

    Only the pre-spike membrane ``h`` is saved: the spikes are ``h >= v_threshold``
    and the reset membrane follows from both, so backward recomputes them.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec):
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        xc = x.to(compute_dtype)
        k = w.to(compute_dtype).sigmoid() if w is not None else None
        h_seq = torch.empty_like(xc)
        v = torch.full_like(xc[0], spec.rest)
        for t in range(x.shape[0]):
            h = _charge(spec, v, xc[t], k)
            h_seq[t] = h
            v = _reset(spec, h, h >= spec.v_threshold)
        ctx.spec = spec
        ctx.input_dtype = x.dtype
        ctx.save_for_backward(h_seq, xc if w is not None else None, w)
        return (h_seq >= spec.v_threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        spec: NeuronSpec = ctx.spec
        h_seq, xc, w = ctx.saved_tensors
        fired = h_seq >= spec.v_threshold
        sg = spec.surrogate(h_seq - spec.v_threshold, spec.alpha)
        k = w.to(h_seq.dtype).sigmoid() if w is not None else None

        # dv[t]/dh[t]: how much of the membrane survives the reset (None: all of it).
        if spec.v_reset is None:  # v = h - theta * s
            dv_dh = None if spec.detach_reset else 1.0 - spec.v_threshold * sg
        else:  # v = h * (1 - s) + v_reset * s
            dv_dh = (~fired).to(h_seq.dtype)
            if not spec.detach_reset:
                dv_dh = dv_dh + (spec.v_reset - h_seq) * sg
        # dh[t+1]/dv[t]: the leak
        decay = 1.0 if spec.kind == "if" else (1.0 - 1.0 / spec.tau if spec.kind == "lif" else 1.0 - k)

        # grad_h[t] = dL/ds[t] * sg[t] + dL/dh[t+1] * dh[t+1]/dv[t] * dv[t]/dh[t], backwards in t;
        # the first term for all t at once, only the carry through the membrane in the loop.
        grad_h = grad_spikes.to(h_seq.dtype) * sg
        if not spec.detach_mem:
            for t in range(h_seq.shape[0] - 2, -1, -1):
                carry = grad_h[t + 1] * decay
                grad_h[t] += carry if dv_dh is None else carry * dv_dh[t]

        if spec.kind == "if" or not spec.decay_input:
            grad_x = grad_h
        elif spec.kind == "lif":
            grad_x = grad_h / spec.tau
        else:
            grad_x = grad_h * k

        grad_w = None
        if w is not None and ctx.needs_input_grad[1]:
            # dh[t]/dk = x[t] - (v[t-1] - rest) (decay_input) or -(v[t-1] - rest); the sum runs
            # over every neuron and step, so it is accumulated in float64.
            v_prev = torch.cat([torch.full_like(h_seq[:1], spec.rest), _reset(spec, h_seq[:-1], fired[:-1])])
            leak = v_prev - spec.rest
            grad_k = (grad_h * ((xc - leak) if spec.decay_input else -leak)).sum(dtype=torch.float64)
            k64 = k.to(torch.float64)
            grad_w = (grad_k * k64 * (1.0 - k64)).to(w.dtype).reshape(w.shape)
        return grad_x.to(ctx.input_dtype), grad_w, None
