"""STEP's HD-LIF in fused kernels: four expert membranes, their gated mixture and the spike, in one pass.

``HDLIF`` computes its gate (a 1x1 convolution over the sequence's channels and a
softmax, ``[B, 4, N]``) in PyTorch; the kernels take the input ``[T, B, C, N]``, the
gate and PLIF's leak ``k``, run the four membranes (IF, LIF, PLIF, EIF), mix them
and fire, and in backward return the gradients to the input, to the gate (summed
over steps and channels) and to ``k``, from which autograd reaches the gate's
convolution and PLIF's parameter. ``cpu``: C++ (``cpu_multi_state_kernel.cpp``;
backward recomputes the membranes); ``triton``: ``triton_multi_state.py``. Which runs,
and when the neuron's own loop runs instead: as for the two-state neurons
(``two_state.fused_backend``).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..spec import NeuronSpec
from . import cpu
from .triton_multi_state import HDLIF as Triton
from .two_state import fused_backend


class _CPU:
    @staticmethod
    def forward(x, gate, k, spec):
        spikes = cpu.extension(multi_state=True).hdlif_forward(x, gate, spec.hdlif_constants(float(k)))
        return spikes, x.new_empty(0, dtype=gate.dtype)

    @staticmethod
    def backward(grad_spikes, x, gate, k, kept, spec):
        grad_x, grad_gate, grad_k = cpu.extension(multi_state=True).hdlif_backward(
            grad_spikes.to(x.dtype).contiguous(), x, gate, spec.hdlif_constants(float(k)))
        return grad_x, grad_gate.to(gate.dtype), grad_k.to(k.dtype)

    @staticmethod
    def kept_shape(shape: torch.Size) -> tuple[int, ...]:
        return (0,)


def _define(name: str, backend) -> torch.library.CustomOpDef:
    def forward(x, gate, k, spec):
        return backend.forward(x, gate, k, NeuronSpec.decode(spec))

    def backward(grad_spikes, x, gate, k, kept, spec):
        return backend.backward(grad_spikes, x, gate, k, kept, NeuronSpec.decode(spec))

    forward_op = torch.library.custom_op(f"spikeformers::hdlif_{name}", forward, mutates_args=(),
                                         schema="(Tensor x, Tensor gate, Tensor k, str spec) -> (Tensor, Tensor)")
    backward_op = torch.library.custom_op(
        f"spikeformers::hdlif_{name}_backward", backward, mutates_args=(),
        schema="(Tensor grad_spikes, Tensor x, Tensor gate, Tensor k, Tensor kept, str spec) "
               "-> (Tensor, Tensor, Tensor)")

    @forward_op.register_fake
    def _(x, gate, k, spec):
        return x.new_empty(x.shape), x.new_empty(backend.kept_shape(x.shape), dtype=gate.dtype)

    @backward_op.register_fake
    def _(grad_spikes, x, gate, k, kept, spec):
        return grad_spikes.new_empty(grad_spikes.shape), gate.new_empty(gate.shape), k.new_empty(k.shape)

    def setup_context(ctx, inputs, output):
        x, gate, k, ctx.encoded = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, gate, k, output[1])

    def backward_rule(ctx, grad_spikes, _grad_kept):
        x, gate, k, kept = ctx.saved_tensors
        grad_x, grad_gate, grad_k = backward_op(grad_spikes.contiguous(), x, gate, k, kept, ctx.encoded)
        return grad_x, grad_gate, grad_k, None

    forward_op.register_autograd(backward_rule, setup_context=setup_context)
    return forward_op


OPS: dict[str, torch.library.CustomOpDef] = {"cpu": _define("cpu", _CPU), "triton": _define("triton", Triton)}


def spikes(x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, spec: NeuronSpec,
           loop: Callable[[], torch.Tensor]) -> torch.Tensor:
    """HD-LIF's spikes for ``x`` ``[T, B, C, N]`` (contiguous), ``gate`` ``[B, 4, N]`` and PLIF's leak ``k``
    (0-dim), both in the compute dtype: by a fused kernel where one can run, else by ``loop()``."""
    name = fused_backend(x, spec)
    if name is None:
        return loop()
    return OPS[name](x, gate.contiguous(), k, spec.encode())[0]
