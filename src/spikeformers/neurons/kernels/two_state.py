"""Neurons with a second state beside the membrane (Izhikevich's recovery, CLIF's memory), fused.

Their recurrences are written in ``spec.py``'s terms (:data:`~..spec.TWO_STATE_KINDS`,
:meth:`~..spec.NeuronSpec.two_state_constants`) and run in two fused kernels,
each a pair of custom operators like the single-membrane ones (``ops.py``):

- ``cpu``: C++ (``cpu_multi_state_kernel.cpp``, ``pair_forward``/``pair_backward``); forward
  writes only the spikes and backward recomputes both states from the saved
  input, a cache-sized chunk of neurons at a time;
- ``triton``: forward keeps the pre-spike membrane and the second state for
  backward (``triton_multi_state.py``).

The neuron's own PyTorch loop (``zoo.py``) is the reference both match, and runs
where neither can: inside ``unrolled()`` (exporters), with the ``unrolled`` or
``reference`` backend forced, for a surrogate a user registered (the kernels
compute the built-in ones), or where no kernel builds.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import surrogate as surrogates
from ..spec import TWO_STATE_KINDS, NeuronSpec
from . import cpu, forced_backend, unrolling
from . import triton_multi_state

Loop = Callable[[torch.Tensor], torch.Tensor]


def _cpu_forward(x: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    x2 = x.reshape(x.shape[0], -1).contiguous()
    kernel = cpu.extension(multi_state=True)
    spikes = kernel.pair_forward(x2, TWO_STATE_KINDS[spec.kind], spec.two_state_constants())
    return spikes.view(x.shape), x.new_empty(0, dtype=torch.promote_types(x.dtype, torch.float32))


def _cpu_backward(grad_spikes: torch.Tensor, x: torch.Tensor, kept: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    x2 = x.reshape(x.shape[0], -1).contiguous()
    grad2 = grad_spikes.reshape(x2.shape).to(x.dtype).contiguous()
    kernel = cpu.extension(multi_state=True)
    grad_x = kernel.pair_backward(grad2, x2, TWO_STATE_KINDS[spec.kind], spec.two_state_constants(),
                                  spec.surrogate_code)
    return grad_x.view(x.shape)


class _CPU:
    forward, backward = staticmethod(_cpu_forward), staticmethod(_cpu_backward)

    @staticmethod
    def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
        return (0,)  # backward recomputes the states from x


def _define(name: str, backend) -> torch.library.CustomOpDef:
    """The forward operator ``spikeformers::pair_<name>`` (spikes, and what backward reads) with its
    backward operator and autograd rule."""

    def forward(x, spec):
        return backend.forward(x, NeuronSpec.decode(spec))

    def backward(grad_spikes, x, kept, spec):
        return backend.backward(grad_spikes, x, kept, NeuronSpec.decode(spec))

    forward_op = torch.library.custom_op(f"spikeformers::pair_{name}", forward, mutates_args=(),
                                         schema="(Tensor x, str spec) -> (Tensor, Tensor)")
    backward_op = torch.library.custom_op(f"spikeformers::pair_{name}_backward", backward, mutates_args=(),
                                          schema="(Tensor grad_spikes, Tensor x, Tensor kept, str spec) -> Tensor")

    @forward_op.register_fake
    def _(x, spec):
        kept = backend.kept_shape(NeuronSpec.decode(spec), x.shape)
        return x.new_empty(x.shape), x.new_empty(kept, dtype=torch.promote_types(x.dtype, torch.float32))

    @backward_op.register_fake
    def _(grad_spikes, x, kept, spec):
        return grad_spikes.new_empty(grad_spikes.shape)

    def setup_context(ctx, inputs, output):
        x, ctx.encoded = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, output[1])

    def backward_rule(ctx, grad_spikes, _grad_kept):
        x, kept = ctx.saved_tensors
        return backward_op(grad_spikes.contiguous(), x, kept, ctx.encoded), None

    forward_op.register_autograd(backward_rule, setup_context=setup_context)
    return forward_op


OPS: dict[str, torch.library.CustomOpDef] = {"cpu": _define("cpu", _CPU),
                                             "triton": _define("triton", triton_multi_state.Pair)}


def fused_backend(x: torch.Tensor, spec: NeuronSpec) -> str | None:
    """The fused kernel (``'cpu'``, ``'triton'``) that runs ``spec`` on ``x``, or None for the neuron's own loop
    (GLIF's and HD-LIF's kernels choose by it too)."""
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


def spikes(x: torch.Tensor, spec: NeuronSpec, loop: Loop) -> torch.Tensor:
    """Spikes of the two-state neurons ``spec`` driven by ``x`` ``[T, ...]``: by a fused kernel where one
    can run, else by ``loop``, the neuron's own PyTorch loop (the reference the kernels match)."""
    name = fused_backend(x, spec)
    if name is None:
        return loop(x)
    return OPS[name](x, spec.encode())[0]

