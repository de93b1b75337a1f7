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

Constants: the kernels read the spec's kernel constants (``NeuronSpec.
kernel_constants``) from a small tensor, as ``c0 + c1 * k`` with PLIF's learned
leak ``k`` read on the device, so no call waits for the GPU to hand ``k`` over.

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

from ..spec import KernelConstants, NeuronSpec

# Imported on first use (by _import): it takes a good part of a second, which a CPU run never needs.
# Triton is optional: the other backends run everywhere.
triton = tl = None

_NUM = len(KernelConstants._fields)  # c1 follows c0 in the constants tensor


@functools.cache
def _import() -> bool:
    global triton, tl
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return False
    return True


@torch.compiler.assume_constant_result  # torch.compile calls it, and never traces the import
def available() -> bool:
    """True when Triton imports."""
    return _import()


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def keeps_membrane(spec: NeuronSpec) -> bool:
    """Whether forward returns ``h`` for backward: always, backward reads it instead of recomputing."""
    return True


def keeps_input(spec: NeuronSpec, learned: bool) -> bool:
    """Whether backward needs ``x``: only for a learned parameter's gradient that reads it (PLIF's with
    decay_input, KLIF's)."""
    return learned and (spec.input_decays or spec.learned_scale)


# The kernels load each constant as c[i] + c[NUM + i] * k, i in KernelConstants' order:
# 0 mul, 1 div, 2 rest, 3 threshold, 4 keep, 5 sub, 6 decay, 7 reset_grad, 8 v_reset, 9 x_mul, 10 x_div, 11 alpha,
# 12 scale, 13 p0, 14 p1, 15 p2. CHARGE: the spec's codes (0 linear, 1 EIF's exp, 2 QIF's quadratic, 3 KLIF's scaled).
def _forward_kernel(x_ptr, spikes_ptr, h_ptr, c_ptr, k_ptr, N, T,
                    CHARGE: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr, DIVIDE: tl.constexpr,
                    FP64: tl.constexpr, NUM: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(k_ptr)
    mul = tl.load(c_ptr + 0) + tl.load(c_ptr + NUM + 0) * k
    div = tl.load(c_ptr + 1) + tl.load(c_ptr + NUM + 1) * k
    rest = tl.load(c_ptr + 2) + tl.load(c_ptr + NUM + 2) * k
    threshold = tl.load(c_ptr + 3) + tl.load(c_ptr + NUM + 3) * k
    v_reset = tl.load(c_ptr + 8) + tl.load(c_ptr + NUM + 8) * k
    scale = tl.load(c_ptr + 12) + tl.load(c_ptr + NUM + 12) * k
    p0 = tl.load(c_ptr + 13) + tl.load(c_ptr + NUM + 13) * k
    p1 = tl.load(c_ptr + 14) + tl.load(c_ptr + NUM + 14) * k
    p2 = tl.load(c_ptr + 15) + tl.load(c_ptr + NUM + 15) * k
    v = tl.full([BLOCK], 0.0, h_ptr.dtype.element_ty) + rest
    for t in range(T):
        step = offs + t * N.to(tl.int64)
        x = tl.load(x_ptr + step, mask=mask, other=0.0).to(h_ptr.dtype.element_ty)
        # The charge with the kernel constants, operation for operation as the CPU kernel computes it.
        # Correctly rounded division: float32 '/' is approximate on a GPU, float64's is exact.
        if CHARGE == 0 or CHARGE == 3 or CHARGE == 4:
            if DECAY_INPUT:
                a = (x - (v - rest)) * mul
            else:
                a = (v - rest) * mul
            if DIVIDE:
                if FP64:
                    a = a / div
                else:
                    a = tl.math.div_rn(a, tl.full([BLOCK], 0.0, v.dtype) + div)
            if DECAY_INPUT:
                h = v + a
            else:
                h = (v - a) + x
            if CHARGE == 3:
                h = scale * h
                h = tl.where(h > 0.0, h, 0.0).to(v.dtype)
        else:
            if CHARGE == 1:
                if FP64:
                    e = tl.exp((v - p1) / p0)
                else:
                    e = tl.exp(tl.math.div_rn(v - p1, tl.full([BLOCK], 0.0, v.dtype) + p0))
                a = ((x + p2) - v) + p0 * e
            else:
                a = x + (p0 * (v - p1)) * (v - p2)
            if FP64:
                h = v + a / div
            else:
                h = v + tl.math.div_rn(a, tl.full([BLOCK], 0.0, v.dtype) + div)
        tl.store(h_ptr + step, h, mask=mask)
        if CHARGE == 4:
            # ILIF: round(clamp(h / threshold, 0, D) / divisor), ties to even as torch.round (adding and
            # taking away 2^23, or 2^52, rounds a value in [0, 2^22)); the reset subtracts the spikes
            if FP64:
                u = h / threshold
            else:
                u = tl.math.div_rn(h, tl.full([BLOCK], 0.0, v.dtype) + threshold)
            u = tl.where(u < 0.0, 0.0, tl.where(u > p0, p0, u)).to(v.dtype)
            if FP64:
                u = u / p1
                spike = (u + 4503599627370496.0) - 4503599627370496.0
            else:
                u = tl.math.div_rn(u, tl.full([BLOCK], 0.0, v.dtype) + p1)
                spike = (u + 8388608.0) - 8388608.0
            tl.store(spikes_ptr + step, spike.to(spikes_ptr.dtype.element_ty), mask=mask)
            v = h - spike * threshold
        else:
            fired = h >= threshold
            tl.store(spikes_ptr + step, fired.to(spikes_ptr.dtype.element_ty), mask=mask)
            if SOFT:
                v = tl.where(fired, h - threshold, h)
            else:
                v = tl.where(fired, v_reset, h)


def _backward_kernel(grad_ptr, h_ptr, x_ptr, sg_ptr, grad_x_ptr, grad_k_ptr, c_ptr, k_ptr, N, T,
                     CHARGE: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr, X_DIVIDE: tl.constexpr,
                     SURROGATE: tl.constexpr, WANT_GRAD_K: tl.constexpr, FP64: tl.constexpr, NUM: tl.constexpr,
                     BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(k_ptr)
    rest = tl.load(c_ptr + 2) + tl.load(c_ptr + NUM + 2) * k
    threshold = tl.load(c_ptr + 3) + tl.load(c_ptr + NUM + 3) * k
    decay = tl.load(c_ptr + 6) + tl.load(c_ptr + NUM + 6) * k
    reset_grad = tl.load(c_ptr + 7) + tl.load(c_ptr + NUM + 7) * k
    v_reset = tl.load(c_ptr + 8) + tl.load(c_ptr + NUM + 8) * k
    x_mul = tl.load(c_ptr + 9) + tl.load(c_ptr + NUM + 9) * k
    x_div = tl.load(c_ptr + 10) + tl.load(c_ptr + NUM + 10) * k
    alpha = tl.load(c_ptr + 11) + tl.load(c_ptr + NUM + 11) * k
    mul = tl.load(c_ptr + 0) + tl.load(c_ptr + NUM + 0) * k
    div = tl.load(c_ptr + 1) + tl.load(c_ptr + NUM + 1) * k
    scale = tl.load(c_ptr + 12) + tl.load(c_ptr + NUM + 12) * k
    p0 = tl.load(c_ptr + 13) + tl.load(c_ptr + NUM + 13) * k
    p1 = tl.load(c_ptr + 14) + tl.load(c_ptr + NUM + 14) * k
    p2 = tl.load(c_ptr + 15) + tl.load(c_ptr + NUM + 15) * k
    n64 = N.to(tl.int64)
    h = tl.load(h_ptr + offs + (T - 1) * n64, mask=mask, other=0.0)
    carry = tl.full([BLOCK], 0.0, h.dtype)
    grad_k = tl.full([BLOCK], 0.0, tl.float64)
    for i in range(T):
        t = T - 1 - i
        step = offs + t * n64
        g = tl.load(grad_ptr + step, mask=mask, other=0.0).to(h.dtype)
        if CHARGE == 4:
            # ILIF: the straight-through gradient inside 0 <= h / threshold <= D, divided as forward divides
            if FP64:
                ratio = h / threshold
                g_st = (g / p1) / threshold
            else:
                ratio = tl.math.div_rn(h, tl.full([BLOCK], 0.0, h.dtype) + threshold)
                g_st = tl.math.div_rn(tl.math.div_rn(g, tl.full([BLOCK], 0.0, h.dtype) + p1),
                                      tl.full([BLOCK], 0.0, h.dtype) + threshold)
            g = tl.where((ratio >= 0.0) & (ratio <= p0), g_st, 0.0).to(h.dtype)
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
        # dL/dh[t+1] reaches h[t] through the leak and what of h[t] survives the reset.
        if SOFT:
            dv_dh = 1.0 - reset_grad * threshold * sg
        else:
            dv_dh = tl.where(fired, 0.0, 1.0).to(h.dtype) + reset_grad * (v_reset - h) * sg
        if CHARGE == 4:
            gh = g + carry * decay
        elif CHARGE == 1 or CHARGE == 2:
            # dh[t+1]/dv[t] at v[t]; decay is the detach_mem switch
            if SOFT:
                v_t = tl.where(fired, h - threshold, h)
            else:
                v_t = tl.where(fired, v_reset, h)
            if CHARGE == 1:
                if FP64:
                    slope = 1.0 + (tl.exp((v_t - p1) / p0) - 1.0) / div
                else:
                    slope = 1.0 + tl.math.div_rn(tl.exp(tl.math.div_rn(v_t - p1, tl.full([BLOCK], 0.0, h.dtype) + p0))
                                                 - 1.0, tl.full([BLOCK], 0.0, h.dtype) + div)
            else:
                if FP64:
                    slope = 1.0 + (p0 * ((v_t - p1) + (v_t - p2))) / div
                else:
                    slope = 1.0 + tl.math.div_rn(p0 * ((v_t - p1) + (v_t - p2)), tl.full([BLOCK], 0.0, h.dtype) + div)
            gh = g * sg + ((carry * decay) * slope) * dv_dh
        else:
            gh = g * sg + carry * decay * dv_dh
        if CHARGE == 3:  # through KLIF's rectifier and scale
            g_inner = tl.where(h > 0.0, gh * scale, 0.0).to(h.dtype)
        else:
            g_inner = gh
        if X_DIVIDE:
            if FP64:
                grad_x = (g_inner * x_mul) / x_div
            else:
                grad_x = tl.math.div_rn(g_inner * x_mul, tl.full([BLOCK], 0.0, gh.dtype) + x_div)
        else:
            grad_x = g_inner * x_mul
        tl.store(grad_x_ptr + step, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        # h[t-1]: the next step's membrane, and for PLIF the v[t-1] of dh[t]/dk.
        has_prev = mask & ((offs * 0 + t) > 0)
        h_prev = tl.load(h_ptr + step - n64, mask=has_prev, other=0.0)
        if WANT_GRAD_K:
            if CHARGE == 0:
                if SOFT:
                    v_prev = tl.where(h_prev >= threshold, h_prev - threshold, h_prev)
                else:
                    v_prev = tl.where(h_prev >= threshold, v_reset, h_prev)
                leak = tl.where(has_prev, v_prev - rest, 0.0)
                # dh[t]/dk = x[t] - (v[t-1] - rest) (decay_input) or -(v[t-1] - rest)
                if DECAY_INPUT:
                    x = tl.load(x_ptr + step, mask=mask, other=0.0).to(h.dtype)
                    dk = x - leak
                else:
                    dk = -leak
            else:  # KLIF: dh[t]/dk = the linear charge of v[t-1] and x[t], where the rectifier passes
                if SOFT:
                    v_prev = tl.where(h_prev >= threshold, h_prev - threshold, h_prev)
                else:
                    v_prev = tl.where(h_prev >= threshold, v_reset, h_prev)
                v_prev = tl.where(has_prev, v_prev, rest)
                x = tl.load(x_ptr + step, mask=mask, other=0.0).to(h.dtype)
                if DECAY_INPUT:
                    a = (x - (v_prev - rest)) * mul
                else:
                    a = (v_prev - rest) * mul
                if FP64:
                    a = a / div
                else:
                    a = tl.math.div_rn(a, tl.full([BLOCK], 0.0, h.dtype) + div)
                if DECAY_INPUT:
                    inner = v_prev + a
                else:
                    inner = (v_prev - a) + x
                dk = tl.where(h > 0.0, inner, 0.0)
            grad_k += tl.where(mask, (gh * dk).to(tl.float64), 0.0)
        carry = g_inner
        h = h_prev
    if WANT_GRAD_K:
        # One partial sum per neuron, added up by PyTorch in a fixed order: deterministic.
        tl.store(grad_k_ptr + offs, grad_k, mask=mask)


@functools.cache
def _kernels(interpret: bool):
    """The jitted kernels; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    if not _import():
        raise RuntimeError("The 'triton' neuron backend needs Triton, which does not import here.")
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


@functools.lru_cache(maxsize=256)
def _constants(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The spec's kernel constants ``c0, c1`` as one tensor on the device, and a zero ``k`` for a
    spec without a learned leak; made once per spec (no host copy per call)."""
    c0, c1 = spec.kernel_constants_affine()
    return (torch.tensor([*c0, *c1], dtype=dtype, device=device),
            torch.zeros(1, dtype=dtype, device=device))


def _leak(spec: NeuronSpec, w: torch.Tensor | None, dtype: torch.dtype, device: torch.device):
    constants, zero = _constants(spec, dtype, device)
    return constants, (spec.parameter_value(w, dtype).reshape(1) if w is not None else zero)


def _block(n: int) -> int:
    # Under the interpreter every program costs Python time: few, wide ones.
    return 4096 if interpreting() else 512


@functools.lru_cache(maxsize=256)
def _divides(spec: NeuronSpec, field: str) -> bool:
    """False when the constant ``field`` is 1 for every k, so the kernel skips that division."""
    c0, c1 = spec.kernel_constants_affine()
    return not (getattr(c0, field) == 1.0 and getattr(c1, field) == 0.0)


def forward(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    forward_kernel, _ = _kernels(interpreting())
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    x2 = x.reshape(x.shape[0], -1).contiguous()
    T, N = x2.shape
    constants, k = _leak(spec, w, compute_dtype, x.device)
    spikes = torch.empty_like(x2)
    h = torch.empty(x2.shape, dtype=compute_dtype, device=x.device)
    block = _block(N)
    forward_kernel[(triton.cdiv(N, block),)](
        x2, spikes, h, constants, k, N, T,
        CHARGE=spec.charge_code, DECAY_INPUT=spec.input_decays, SOFT=spec.soft_reset,
        DIVIDE=_divides(spec, "div"), FP64=compute_dtype == torch.float64, NUM=_NUM, BLOCK=block,
    )
    return spikes.view(x.shape), h.view(x.shape)


def backward(grad_spikes: torch.Tensor, x: torch.Tensor | None, w: torch.Tensor | None, h: torch.Tensor,
             sg: torch.Tensor | None, spec: NeuronSpec, want_grad_w: bool) -> tuple[torch.Tensor, torch.Tensor]:
    _, backward_kernel = _kernels(interpreting())
    T = h.shape[0]
    h2 = h.reshape(T, -1)
    N = h2.shape[1]
    grad2 = grad_spikes.reshape(T, N).contiguous()
    x2 = x.reshape(T, N).contiguous() if x is not None else h2
    sg2 = sg.reshape(T, N).contiguous() if sg is not None else h2
    grad_x = torch.empty(T, N, dtype=grad_spikes.dtype, device=h.device)
    block = _block(N)
    grad_k = torch.empty(N if want_grad_w else 1, dtype=torch.float64, device=h.device)
    constants, k = _leak(spec, w, h.dtype, h.device)
    backward_kernel[(triton.cdiv(N, block),)](
        grad2, h2, x2, sg2, grad_x, grad_k, constants, k, N, T,
        CHARGE=spec.charge_code, DECAY_INPUT=spec.input_decays, SOFT=spec.soft_reset,
        X_DIVIDE=_divides(spec, "x_div"), SURROGATE=spec.surrogate_code,
        WANT_GRAD_K=want_grad_w, FP64=h.dtype == torch.float64, NUM=_NUM, BLOCK=block,
    )
    grad_w = spec.parameter_grad(grad_k.sum(), k, w) if want_grad_w else grad_spikes.new_empty(0)
    return grad_x.view(grad_spikes.shape), grad_w
