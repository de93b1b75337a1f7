"""The neuron kernels as PyTorch custom operators, so ``torch.compile`` and ``torch.export`` trace them.

Each backend (``reference``, ``cpu``, ``triton``) is a pair of operators,
``spikeformers::neuron_<backend>`` (forward) and ``..._backward``, with fake
implementations that give the output shapes without running a kernel, and one
autograd rule for all of them: the hand-written backward, on what forward kept.
The neuron's settings reach the operators as one string argument, the spec's
repr (``NeuronSpec.encode``); the surrogate goes by its registered name. A
built-in surrogate is computed inside the kernels; a user's is a Python
function, so the autograd rule evaluates it, in PyTorch ops that autograd and
``torch.compile`` trace, and hands its values to the kernel.

A backend module provides ``forward(x, w, spec) -> (spikes, h)``, ``backward(
grad_spikes, x, w, h, sg, spec, want_grad_w) -> (grad_x, grad_w)``, and says
what its backward needs kept: ``keeps_membrane(spec)`` (``h``, else an empty
tensor is returned) and ``keeps_input(spec, learned)`` (``x``).
"""

from __future__ import annotations

from types import ModuleType

import torch

from .. import surrogate as surrogates
from ..spec import NeuronSpec
from . import cpu, reference, triton

_FORWARD_SCHEMA = "(Tensor x, Tensor? w, str spec) -> (Tensor, Tensor)"
_BACKWARD_SCHEMA = ("(Tensor grad_spikes, Tensor? x, Tensor? w, Tensor? h, Tensor? sg, bool want_grad_w, str spec) "
                    "-> (Tensor, Tensor)")


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _define(name: str, backend: ModuleType):
    """Register backend ``name``'s forward and backward operators; returns the forward one."""

    def forward(x, w, spec):
        return backend.forward(x, w, NeuronSpec.decode(spec))

    def backward(grad_spikes, x, w, h, sg, want_grad_w, spec):
        return backend.backward(grad_spikes, x, w, h, sg, NeuronSpec.decode(spec), want_grad_w)

    forward_op = torch.library.custom_op(f"spikeformers::neuron_{name}", forward, mutates_args=(),
                                         schema=_FORWARD_SCHEMA)
    backward_op = torch.library.custom_op(f"spikeformers::neuron_{name}_backward", backward, mutates_args=(),
                                          schema=_BACKWARD_SCHEMA)

    @forward_op.register_fake
    def _(x, w, spec):
        membrane = x.shape if backend.keeps_membrane(NeuronSpec.decode(spec)) else (0,)
        return x.new_empty(x.shape), x.new_empty(membrane, dtype=_compute_dtype(x))

    @backward_op.register_fake
    def _(grad_spikes, x, w, h, sg, want_grad_w, spec):
        grad_w = w.new_empty(w.shape) if want_grad_w else grad_spikes.new_empty(0)
        return grad_spikes.new_empty(grad_spikes.shape), grad_w

    def setup_context(ctx, inputs, output):
        x, w, ctx.encoded = inputs
        spec = NeuronSpec.decode(ctx.encoded)
        _, h = output
        ctx.mark_non_differentiable(h)
        ctx.save_for_backward(x if backend.keeps_input(spec, w is not None) else None, w,
                              h if backend.keeps_membrane(spec) else None)

    def backward_rule(ctx, grad_spikes, _grad_h):
        x, w, h = ctx.saved_tensors
        spec = NeuronSpec.decode(ctx.encoded)
        sg = None
        if spec.surrogate_code == surrogates.GIVEN:  # the user's function, in traceable PyTorch ops
            sg = spec.surrogate_fn(h - spec.v_threshold, spec.alpha).contiguous()
        want_grad_w = w is not None and ctx.needs_input_grad[1]
        grad_x, grad_w = backward_op(grad_spikes.contiguous(), x, w, h, sg, want_grad_w, ctx.encoded)
        return grad_x, grad_w if want_grad_w else None, None

    forward_op.register_autograd(backward_rule, setup_context=setup_context)
    return forward_op


OPS = {name: _define(name, module) for name, module in (("reference", reference), ("cpu", cpu), ("triton", triton))}
