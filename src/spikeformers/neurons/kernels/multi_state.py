"""The neurons with more state than one membrane as custom operators, and which kernel runs them.

Izhikevich (its recovery) and CLIF (its memory), STEP's GLIF (the previous spike; its
learned parameters enter as six numbers per step, ``GLIF.step_coefficients``) and
HD-LIF (four expert membranes mixed by a gate ``[B, 4, N]`` that PyTorch computes)
each run in two fused kernels: ``cpu`` (``cpu_multi_state_kernel.cpp``; forward
writes only the spikes, backward recomputes the states from the saved input) and
``triton`` (``triton_multi_state.py``; forward keeps the states backward reads).
Each kernel is a pair of custom operators, ``spikeformers::<neuron>_<kernel>`` and
its ``_backward``, like the single-membrane ones (``ops.py``); backward returns
the gradient to every tensor input: the input, and GLIF's coefficients or HD-LIF's
gate and PLIF leak (summed over the neurons in float64), from which autograd
reaches the parameters.

The neuron's own PyTorch loop (``zoo.py``) is the reference the kernels match, and
runs where none can: inside ``unrolled()`` (exporters), with the ``unrolled`` or
``reference`` backend forced, for a surrogate a user registered (the kernels
compute the built-in ones), or where no kernel builds.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import surrogate as surrogates
from ..spec import TWO_STATE_KINDS, NeuronSpec
from . import cpu, forced_backend, triton_multi_state, unrolling

Loop = Callable[[], torch.Tensor]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


# The C++ kernels behind the operators: each takes its tensors and the spec, as the Triton ones in
# triton_multi_state.py do. Nothing is kept for backward but the inputs: it recomputes the states.


class _CPUPair:
    @staticmethod
    def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
        return (0,)

    @staticmethod
    def forward(x: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = x.reshape(x.shape[0], -1).contiguous()
        spikes = cpu.extension(multi_state=True).pair_forward(x2, TWO_STATE_KINDS[spec.kind],
                                                              spec.two_state_constants())
        return spikes.view(x.shape), x.new_empty(0, dtype=_compute_dtype(x))

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, kept: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
        x2 = x.reshape(x.shape[0], -1).contiguous()
        grad2 = grad_spikes.reshape(x2.shape).to(x.dtype).contiguous()
        grad_x = cpu.extension(multi_state=True).pair_backward(grad2, x2, TWO_STATE_KINDS[spec.kind],
                                                               spec.two_state_constants(), spec.surrogate_code)
        return grad_x.view(x.shape)


class _CPUGlif:
    kept_shape = _CPUPair.kept_shape

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
        grad_x, grad_coeffs = cpu.extension(multi_state=True).glif_backward(
            grad2, x2, coeffs.double().flatten().tolist(), spec.surrogate_code, spec.alpha, spec.detach_mem)
        return grad_x.view(x.shape), grad_coeffs.to(coeffs.dtype)


class _CPUHDLIF:
    kept_shape = _CPUPair.kept_shape

    @staticmethod
    def forward(x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor,
                spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        spikes = cpu.extension(multi_state=True).hdlif_forward(x, gate, spec.hdlif_constants(float(k)))
        return spikes, x.new_empty(0, dtype=gate.dtype)

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, kept: torch.Tensor,
                 spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grad_x, grad_gate, grad_k = cpu.extension(multi_state=True).hdlif_backward(
            grad_spikes.to(x.dtype).contiguous(), x, gate, spec.hdlif_constants(float(k)))
        return grad_x, grad_gate.to(gate.dtype), grad_k.to(k.dtype)


def _define(name: str, backend, input_names: tuple[str, ...]) -> torch.library.CustomOpDef:
    """The forward operator ``spikeformers::<name>`` of ``backend``, taking the tensors ``input_names`` and the
    spec's string and giving (spikes, what backward reads), with its backward operator (the gradient to
    each input) and the autograd rule that joins them."""
    count = len(input_names)
    tensors = ", ".join(f"Tensor {arg}" for arg in input_names)
    grads = "Tensor" if count == 1 else "(" + ", ".join(["Tensor"] * count) + ")"

    def forward(*args):
        return backend.forward(*args[:-1], NeuronSpec.decode(args[-1]))

    def backward(*args):
        return backend.backward(*args[:-1], NeuronSpec.decode(args[-1]))

    forward_op = torch.library.custom_op(f"spikeformers::{name}", forward, mutates_args=(),
                                         schema=f"({tensors}, str spec) -> (Tensor, Tensor)")
    backward_op = torch.library.custom_op(f"spikeformers::{name}_backward", backward, mutates_args=(),
                                          schema=f"(Tensor grad_spikes, {tensors}, Tensor kept, str spec) -> {grads}")

    @forward_op.register_fake
    def _(*args):
        x, spec = args[0], NeuronSpec.decode(args[-1])
        # kept is in the compute dtype: the coefficients' or gate's where given, else x's
        kept_dtype = args[1].dtype if len(args) > 2 else _compute_dtype(x)
        return x.new_empty(x.shape), x.new_empty(backend.kept_shape(spec, x.shape), dtype=kept_dtype)

    @backward_op.register_fake
    def _(grad_spikes, *args):
        shapes = [t.new_empty(t.shape) for t in args[:count]]
        return shapes[0] if count == 1 else tuple(shapes)

    def setup_context(ctx, inputs, output):
        ctx.encoded = inputs[-1]
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(*inputs[:-1], output[1])

    def backward_rule(ctx, grad_spikes, _grad_kept):
        grads = backward_op(grad_spikes.contiguous(), *ctx.saved_tensors, ctx.encoded)
        return (*((grads,) if count == 1 else grads), None)

    forward_op.register_autograd(backward_rule, setup_context=setup_context)
    return forward_op


OPS: dict[str, dict[str, torch.library.CustomOpDef]] = {
    "pair": {"cpu": _define("pair_cpu", _CPUPair, ("x",)),
             "triton": _define("pair_triton", triton_multi_state.Pair, ("x",))},
    "glif": {"cpu": _define("glif_cpu", _CPUGlif, ("x", "coeffs")),
             "triton": _define("glif_triton", triton_multi_state.Glif, ("x", "coeffs"))},
    "hdlif": {"cpu": _define("hdlif_cpu", _CPUHDLIF, ("x", "gate", "k")),
              "triton": _define("hdlif_triton", triton_multi_state.HDLIF, ("x", "gate", "k"))},
}


def fused_backend(x: torch.Tensor, spec: NeuronSpec) -> str | None:
    """The fused kernel (``'cpu'``, ``'triton'``) that runs ``spec`` on ``x``, or None for the neuron's own loop."""
    if unrolling():
        return None
    given = spec.surrogate_code == surrogates.GIVEN
    forced = forced_backend()
    if forced in ("cpu", "triton"):
        if given:
            raise ValueError(f"The {forced!r} neuron kernel of {spec.kind} computes the built-in surrogates only, not "
                             f"{spec.surrogate!r}: unset SPIKEFORMERS_NEURON_BACKEND to run the neuron's own loop.")
        if forced == "cpu" and x.device.type != "cpu":
            raise ValueError(f"The 'cpu' neuron backend runs CPU tensors only, got one on {x.device}.")
        if forced == "triton" and not _triton_usable(x):
            raise ValueError(f"The 'triton' neuron backend needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 "
                             f"for a CPU tensor); got a tensor on {x.device}.")
        return forced
    if forced is not None or given:  # 'reference' or 'unrolled': the loop is the reference
        return None
    if x.is_cuda and _triton_usable(x):
        return "triton"
    if x.device.type == "cpu" and cpu.multi_state_available():
        return "cpu"
    return None


def _triton_usable(x: torch.Tensor) -> bool:
    triton = triton_multi_state
    return triton.available() and (x.is_cuda or (x.device.type == "cpu" and triton.interpreting()))


def spikes(neuron: str, tensors: tuple[torch.Tensor, ...], spec: NeuronSpec, loop: Loop) -> torch.Tensor:
    """The spikes of ``neuron`` (``'pair'``: Izhikevich, CLIF; ``'glif'``; ``'hdlif'``) for its ``tensors``
    (the input ``[T, ...]`` first, in the compute dtype where more follow): by a fused kernel where one can
    run, else by ``loop()``, the neuron's own PyTorch loop."""
    name = fused_backend(tensors[0], spec)
    if name is None:
        return loop()
    return OPS[neuron][name](tensors[0], *(t.contiguous() for t in tensors[1:]), spec.encode())[0]
