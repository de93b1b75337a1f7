"""The Triton backend: fused forward and backward kernels for CUDA tensors.

Each program owns a block of neurons and walks their whole sequence in
registers: forward reads ``x[t]`` once and writes the spike ``s[t]`` and the
pre-spike membrane ``h[t]`` (in the compute dtype: float32 for float32,
bfloat16 and float16 inputs, float64 for float64); backward walks T in reverse,
reading ``h[t]`` and ``dL/ds[t]`` once and writing ``dL/dx[t]``, with the carry
through the membrane in registers. So forward moves 3 tensors and backward 3
(plus ``x`` for PLIF with ``decay_input``, the only case whose decay gradient
needs it), and only ``h`` is kept in between.

Surrogates: the built-in ones are computed in the kernel; for one registered by
a user, backward evaluates the user's Python function on the saved membrane
and the kernel reads those values, so every surrogate runs here.

Rounding: divisions are correctly rounded (``div_rn``), as PyTorch's are; on a
GPU the compiler may still fuse PLIF's multiply-add, so a membrane within an ulp
of the threshold can round to the other side of it (the tests count those).
The tests run these kernels on the CPU under Triton's interpreter
(``TRITON_INTERPRET=1``); the kernels are compiled lazily, per interpreter
setting, so that setting may change after import, and they call only Triton's
builtins (``tl.full``, not the jitted ``tl.zeros`` or ``tl.sum``), which the
interpreter can run even when Triton was imported before the setting was made.
"""

from __future__ import annotations

import functools
import os

import torch

from .. import surrogate as surrogates
from ..multistep import NeuronSpec

try:
    import triton
    import triton.language as tl
except ImportError:  # Triton is optional: the other backends run everywhere
    triton = None

_SURROGATE_CODES = {surrogates.sigmoid: 0, surrogates.atan: 1, surrogates.qgate: 2, surrogates.gate: 3}
_GIVEN = 4
_KINDS = {"lif": 0, "plif": 1, "if": 2}
# Index of each constant in the params tensor (kept in the compute dtype, so float64 stays exact).
_TAU, _THRESHOLD, _V_RESET, _REST, _ALPHA, _DECAY = range(6)


def available() -> bool:
    """True when Triton imports."""
    return triton is not None


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _forward_kernel(x_ptr, spikes_ptr, h_ptr, params_ptr, k_ptr, N, T,
                    KIND: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr, FP64: tl.constexpr,
                    BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    tau = tl.load(params_ptr + 0)
    threshold = tl.load(params_ptr + 1)
    v_reset = tl.load(params_ptr + 2)
    rest = tl.load(params_ptr + 3)
    k = tl.load(k_ptr)
    v = tl.full([BLOCK], 0.0, h_ptr.dtype.element_ty) + rest
    for t in range(T):
        step = offs + t * N.to(tl.int64)
        x = tl.load(x_ptr + step, mask=mask, other=0.0).to(h_ptr.dtype.element_ty)
        # The charge as the reference writes it, operation for operation.
        if KIND == 2:
            h = v + x
        elif KIND == 0:
            # Correctly rounded division: float32 '/' is approximate on a GPU, float64's is exact.
            if DECAY_INPUT:
                if FP64:
                    h = v + (x - (v - rest)) / tau
                else:
                    h = v + tl.math.div_rn(x - (v - rest), tl.full([BLOCK], 0.0, v.dtype) + tau)
            else:
                if FP64:
                    h = v - (v - rest) / tau + x
                else:
                    h = v - tl.math.div_rn(v - rest, tl.full([BLOCK], 0.0, v.dtype) + tau) + x
        else:
            if DECAY_INPUT:
                h = v + (x - (v - rest)) * k
            else:
                h = v - (v - rest) * k + x
        fired = h >= threshold
        tl.store(spikes_ptr + step, fired.to(spikes_ptr.dtype.element_ty), mask=mask)
        tl.store(h_ptr + step, h, mask=mask)
        if SOFT:
            v = tl.where(fired, h - threshold, h)
        else:
            v = tl.where(fired, v_reset, h)


def _backward_kernel(grad_ptr, h_ptr, x_ptr, sg_ptr, grad_x_ptr, grad_k_ptr, params_ptr, k_ptr, N, T,
                     KIND: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr,
                     DETACH_RESET: tl.constexpr, DETACH_MEM: tl.constexpr, SURROGATE: tl.constexpr,
                     WANT_GRAD_K: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    tau = tl.load(params_ptr + 0)
    threshold = tl.load(params_ptr + 1)
    v_reset = tl.load(params_ptr + 2)
    rest = tl.load(params_ptr + 3)
    alpha = tl.load(params_ptr + 4)
    decay = tl.load(params_ptr + 5)
    k = tl.load(k_ptr)
    if KIND == 1:
        decay = 1.0 - k
    n64 = N.to(tl.int64)
    h = tl.load(h_ptr + offs + (T - 1) * n64, mask=mask, other=0.0)
    carry = tl.full([BLOCK], 0.0, h.dtype)
    grad_k = tl.full([BLOCK], 0.0, tl.float64)
    for i in range(T):
        t = T - 1 - i
        step = offs + t * n64
        g = tl.load(grad_ptr + step, mask=mask, other=0.0).to(h.dtype)
        u = h - threshold
        if SURROGATE == 0:
            sig = 1.0 / (1.0 + tl.exp(-alpha * u))
            sg = alpha * sig * (1.0 - sig)
        elif SURROGATE == 1:
            z = (3.141592653589793 / 2.0) * alpha * u
            sg = (alpha / 2.0) / (1.0 + z * z)
        elif SURROGATE == 2:
            sg = tl.where(tl.abs(u) > 1.0 / alpha, 0.0, alpha - alpha * alpha * tl.abs(u))
        elif SURROGATE == 3:
            sg = tl.where(tl.abs(u) < 1.0 / alpha, 1.0, 0.0).to(u.dtype)
        else:
            sg = tl.load(sg_ptr + step, mask=mask, other=0.0)
        fired = h >= threshold
        gh = g * sg
        if not DETACH_MEM:
            # dL/dh[t+1] reaches h[t] through the leak and what of h[t] survives the reset.
            if SOFT:
                if DETACH_RESET:
                    gh = gh + carry * decay
                else:
                    gh = gh + carry * decay * (1.0 - threshold * sg)
            else:
                dv_dh = tl.where(fired, 0.0, 1.0).to(h.dtype)
                if not DETACH_RESET:
                    dv_dh = dv_dh + (v_reset - h) * sg
                gh = gh + carry * decay * dv_dh
        if KIND == 0 and DECAY_INPUT:
            if FP64:
                grad_x = gh / tau
            else:
                grad_x = tl.math.div_rn(gh, tl.full([BLOCK], 0.0, gh.dtype) + tau)
        elif KIND == 1 and DECAY_INPUT:
            grad_x = gh * k
        else:
            grad_x = gh
        tl.store(grad_x_ptr + step, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        # h[t-1]: the next step's membrane, and for PLIF the v[t-1] of dh[t]/dk.
        has_prev = mask & ((offs * 0 + t) > 0)
        h_prev = tl.load(h_ptr + step - n64, mask=has_prev, other=0.0)
        if WANT_GRAD_K:
            v_prev = h_prev
            if SOFT:
                v_prev = tl.where(h_prev >= threshold, h_prev - threshold, h_prev)
            else:
                v_prev = tl.where(h_prev >= threshold, v_reset, h_prev)
            leak = tl.where(has_prev, v_prev - rest, 0.0)
            if DECAY_INPUT:
                x = tl.load(x_ptr + step, mask=mask, other=0.0).to(h.dtype)
                dk = x - leak
            else:
                dk = -leak
            grad_k += tl.where(mask, (gh * dk).to(tl.float64), 0.0)
        carry = gh
        h = h_prev
    if WANT_GRAD_K:
        # One partial sum per neuron, added up by PyTorch in a fixed order: deterministic.
        tl.store(grad_k_ptr + offs, grad_k, mask=mask)


@functools.cache
def _kernels(interpret: bool):
    """The jitted kernels; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


@functools.lru_cache(maxsize=256)
def _params(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The spec's constants as a tensor on the device, made once per spec (no host copy per call)."""
    decay = 1.0 if spec.kind == "if" else 1.0 - 1.0 / spec.tau  # PLIF's comes from k in the kernel
    values = [0.0] * 6
    values[_TAU] = spec.tau if spec.kind == "lif" else 1.0
    values[_THRESHOLD] = spec.v_threshold
    values[_V_RESET] = spec.rest
    values[_REST] = spec.rest
    values[_ALPHA] = spec.alpha
    values[_DECAY] = decay
    return torch.tensor(values, dtype=dtype, device=device)


def _block(n: int) -> int:
    # Under the interpreter every program costs Python time: few, wide ones.
    return 4096 if interpreting() else 512


class TritonNeuron(torch.autograd.Function):
    """``spikes = TritonNeuron.apply(x, w, spec)``, the same contract as the reference's Function."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec):
        forward_kernel, _ = _kernels(interpreting())
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        x2 = x.reshape(x.shape[0], -1).contiguous()
        T, N = x2.shape
        params = _params(spec, compute_dtype, x.device)
        k = w.detach().to(compute_dtype).sigmoid().reshape(1) if w is not None else params
        spikes = torch.empty_like(x2)
        h = torch.empty(x2.shape, dtype=compute_dtype, device=x.device)
        block = _block(N)
        forward_kernel[(triton.cdiv(N, block),)](
            x2, spikes, h, params, k, N, T,
            KIND=_KINDS[spec.kind], DECAY_INPUT=spec.decay_input and spec.kind != "if", SOFT=spec.v_reset is None,
            FP64=compute_dtype == torch.float64, BLOCK=block,
        )
        ctx.spec, ctx.shape, ctx.input_dtype = spec, x.shape, x.dtype
        needs_x = w is not None and spec.decay_input
        ctx.save_for_backward(h, x2 if needs_x else None, w, k)
        return spikes.view(x.shape)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        _, backward_kernel = _kernels(interpreting())
        spec: NeuronSpec = ctx.spec
        h, x2, w, k = ctx.saved_tensors
        T, N = h.shape
        code = _SURROGATE_CODES.get(spec.surrogate, _GIVEN)
        sg = spec.surrogate(h - spec.v_threshold, spec.alpha).contiguous() if code == _GIVEN else h
        grad2 = grad_spikes.reshape(T, N).to(ctx.input_dtype).contiguous()
        grad_x = torch.empty(T, N, dtype=ctx.input_dtype, device=h.device)
        block = _block(N)
        blocks = triton.cdiv(N, block)
        want_grad_k = w is not None and ctx.needs_input_grad[1]
        grad_k = torch.empty(N if want_grad_k else 1, dtype=torch.float64, device=h.device)
        params = _params(spec, h.dtype, h.device)
        backward_kernel[(blocks,)](
            grad2, h, x2 if x2 is not None else h, sg, grad_x, grad_k, params, k, N, T,
            KIND=_KINDS[spec.kind], DECAY_INPUT=spec.decay_input and spec.kind != "if", SOFT=spec.v_reset is None,
            DETACH_RESET=spec.detach_reset, DETACH_MEM=spec.detach_mem, SURROGATE=code,
            WANT_GRAD_K=want_grad_k, FP64=h.dtype == torch.float64, BLOCK=block,
        )
        grad_w = None
        if want_grad_k:
            k64 = k.to(torch.float64)
            grad_w = (grad_k.sum() * k64 * (1.0 - k64)).to(w.dtype).reshape(w.shape)
        return grad_x.view(ctx.shape), grad_w, None
