"""STEP's GLIF in fused kernels: its recurrence driven by per-step coefficients.

GLIF's learned parameters and gates enter its recurrence only through six numbers
per step (``GLIF.step_coefficients``: ``A, B, C, c, vth, G``, see ``cpu_multi_state_kernel.cpp``).
PyTorch computes them, from the parameters, with the very operations of STEP's
loop; the kernels run the recurrence over every neuron and return, in backward,
the gradient to the input and to the coefficients (summed over the neurons in
float64), from which autograd reaches the parameters. Two kernels, each a pair
of custom operators: ``cpu`` (C++; backward recomputes the membranes from the
input) and ``triton`` (``triton_multi_state.py``; forward keeps the membranes). Which runs, and when the
neuron's own loop runs instead, is decided as for the two-state neurons
(``two_state.fused_backend``).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..spec import NeuronSpec
from . import cpu
from .triton_multi_state import Glif as Triton
from .two_state import fused_backend


class _CPU:
    @staticmethod
    def kept_shape(shape: torch.Size) -> tuple[int, ...]:
        return (0,)  # backward recomputes the membranes from x

    @staticmethod
    def forward(x: torch.Tensor, coeffs: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = x.reshape(x.shape[0], -1).contiguous()
        spikes = cpu.extension(multi_state=True).glif_forward(x2, coeffs.double().flatten().tolist())
        return spikes.view(x.shape), x.new_empty(0, dtype=coeffs.dtype)

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, coeffs: torch.Tensor, kept: torch.Tensor,
                 spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = x.reshape(x.shape[0], -1).contiguous()
        grad2 = grad_spikes.reshape(x2.shape).to(x.dtype).contiguous()
        kernel = cpu.extension(multi_state=True)
        grad_x, grad_coeffs = kernel.glif_backward(grad2, x2, coeffs.double().flatten().tolist(), spec.surrogate_code,
                                                   spec.alpha, spec.detach_mem)
        return grad_x.view(x.shape), grad_coeffs.to(coeffs.dtype)


def _define(name: str, backend) -> torch.library.CustomOpDef:
    def forward(x, coeffs, spec):
        return backend.forward(x, coeffs, NeuronSpec.decode(spec))

    def backward(grad_spikes, x, coeffs, kept, spec):
        return backend.backward(grad_spikes, x, coeffs, kept, NeuronSpec.decode(spec))

    forward_op = torch.library.custom_op(f"spikeformers::glif_{name}", forward, mutates_args=(),
                                         schema="(Tensor x, Tensor coeffs, str spec) -> (Tensor, Tensor)")
    backward_op = torch.library.custom_op(
        f"spikeformers::glif_{name}_backward", backward, mutates_args=(),
        schema="(Tensor grad_spikes, Tensor x, Tensor coeffs, Tensor kept, str spec) -> (Tensor, Tensor)")

    @forward_op.register_fake
    def _(x, coeffs, spec):
        return x.new_empty(x.shape), x.new_empty(backend.kept_shape(x.shape), dtype=coeffs.dtype)

    @backward_op.register_fake
    def _(grad_spikes, x, coeffs, kept, spec):
        return grad_spikes.new_empty(grad_spikes.shape), coeffs.new_empty(coeffs.shape)

    def setup_context(ctx, inputs, output):
        x, coeffs, ctx.encoded = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, coeffs, output[1])

    def backward_rule(ctx, grad_spikes, _grad_kept):
        x, coeffs, kept = ctx.saved_tensors
        grad_x, grad_coeffs = backward_op(grad_spikes.contiguous(), x, coeffs, kept, ctx.encoded)
        return grad_x, grad_coeffs, None

    forward_op.register_autograd(backward_rule, setup_context=setup_context)
    return forward_op


OPS: dict[str, torch.library.CustomOpDef] = {"cpu": _define("cpu", _CPU), "triton": _define("triton", Triton)}


def spikes(x: torch.Tensor, coeffs: torch.Tensor, spec: NeuronSpec,
           loop: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """GLIF's spikes for ``x`` ``[T, ...]`` (in the compute dtype) and its coefficients ``[6, T]``: by a fused
    kernel where one can run, else by ``loop(x, coeffs)``, the neuron's own PyTorch loop."""
    name = fused_backend(x, spec)
    if name is None:
        return loop(x, coeffs)
    return OPS[name](x, coeffs.contiguous(), spec.encode())[0]
