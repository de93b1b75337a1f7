"""The CPU backend: a fused C++/OpenMP kernel (``cpu_kernel.cpp``), built on first use.

Forward is one pass over T that writes only the spikes; backward recomputes the
membrane from the saved input, a cache-sized chunk of neurons at a time, and
runs the adjoint recurrence over that chunk while it is still in cache. So the
only tensor kept between the passes is the input ``x`` (in its own dtype, half
the bytes of a float32 membrane under bfloat16), and each pass touches each
element once. Every surrogate is supported: the built-in ones are computed in
the kernel; for one registered by a user, forward also keeps the membrane and
backward evaluates the user's Python function on it, then hands the values to
the kernel.

The extension is built once and cached by :mod:`spikeformers.cpp_build` (for
this CPU's vector instructions, under ``~/.cache/spikeformers/kernels``). Where
it cannot be built (no compiler, no ninja) :func:`available` is False, the
automatic choice falls back to the reference loop, and forcing this backend
raises the build error.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import cpp_build
from .. import surrogate as surrogates
from ..multistep import NeuronSpec

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")

# The kernel's codes for the built-in surrogates, by function identity: a user who
# registers a new function under an old name gets their function, not ours.
_SURROGATE_CODES = {surrogates.sigmoid: 0, surrogates.atan: 1, surrogates.qgate: 2, surrogates.gate: 3}
_GIVEN = 4


def _build_key() -> str:
    return cpp_build.build_key(SOURCE)


def _load():
    """The compiled extension module, or the exception that stopped its build."""
    return cpp_build.load_extension(SOURCE, "cpu")


def available() -> bool:
    """True when the extension is built (building it now if needed)."""
    return not isinstance(_load(), Exception)


def extension():
    """The compiled module; raises, with the build's error, where it cannot be built."""
    ext = _load()
    if isinstance(ext, Exception):
        raise RuntimeError(
            f"The CPU neuron kernel could not be built ({type(ext).__name__}: {str(ext).strip()[-2000:]}). "
            "It needs a C++ compiler and ninja; use SPIKEFORMERS_NEURON_BACKEND=reference meanwhile."
        ) from ext
    return ext


def _charge_constants(spec: NeuronSpec, k: float) -> tuple:
    """``decay_input, mul, div, rest, threshold, keep, sub`` for the kernel's single charge/reset
    expression (see cpu_kernel.cpp: neutral constants that round exactly like each kind's own formula)."""
    if spec.kind == "if":
        decay_input, mul, div = False, 0.0, 1.0
    elif spec.kind == "lif":
        decay_input, mul, div = spec.decay_input, 1.0, spec.tau
    else:
        decay_input, mul, div = spec.decay_input, k, 1.0
    keep, sub = (1.0, spec.v_threshold) if spec.v_reset is None else (0.0, -spec.v_reset)
    return decay_input, mul, div, spec.rest, spec.v_threshold, keep, sub


class CpuNeuron(torch.autograd.Function):
    """``spikes = CpuNeuron.apply(x, w, spec)``, the same contract as the reference's Function."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec):
        ext = extension()
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        # k in the compute dtype, as the reference rounds it; a float carries it exactly.
        k = float(w.detach().to(compute_dtype).sigmoid()) if w is not None else 0.0
        given = spec.surrogate not in _SURROGATE_CODES
        x2 = x.reshape(x.shape[0], -1).contiguous()
        spikes, h = ext.forward(x2, *_charge_constants(spec, k), given)
        ctx.spec, ctx.k, ctx.shape = spec, k, x.shape
        ctx.save_for_backward(x2, h if given else None, w)
        return spikes.view(x.shape)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        spec: NeuronSpec = ctx.spec
        x2, h, w = ctx.saved_tensors
        k = ctx.k
        code = _SURROGATE_CODES.get(spec.surrogate, _GIVEN)
        sg = spec.surrogate(h - spec.v_threshold, spec.alpha).contiguous() if code == _GIVEN else None
        decay = 1.0 if spec.kind == "if" else (1.0 - 1.0 / spec.tau if spec.kind == "lif" else 1.0 - k)
        if spec.detach_mem:
            decay = 0.0
        if spec.kind == "lif" and spec.decay_input:
            x_mul, x_div = 1.0, spec.tau
        elif spec.kind == "plif" and spec.decay_input:
            x_mul, x_div = k, 1.0
        else:
            x_mul, x_div = 1.0, 1.0
        want_grad_k = w is not None and ctx.needs_input_grad[1]
        grad2 = grad_spikes.reshape(x2.shape).to(x2.dtype).contiguous()
        grad_x, grad_k = extension().backward(
            grad2, x2, h, sg, *_charge_constants(spec, k), decay, 0.0 if spec.detach_reset else 1.0,
            spec.rest, x_mul, x_div, code, spec.alpha, want_grad_k,
        )
        grad_w = None
        if want_grad_k:
            grad_w = (grad_k * k * (1.0 - k)).to(w.dtype).reshape(w.shape)
        return grad_x.view(ctx.shape), grad_w, None
