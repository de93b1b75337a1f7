"""Triton kernels of the two-state neurons (Izhikevich, CLIF), for CUDA tensors.

Each program owns a block of neurons and walks their sequence in registers, as
the single-membrane kernels do (``triton.py``). Forward writes the spikes and
keeps, for backward, the pre-spike membrane ``h[t]`` and CLIF's memory ``m[t]``
(``[1 or 2, T, N]`` in the compute dtype); backward walks T in reverse with the
two carries (``dL/dv``, and ``dL/dw`` or ``dL/dm``) in registers. The forward's
operations are the neurons' PyTorch loops' in order, divisions correctly
rounded (``div_rn``), so spikes match theirs; the exponential inside CLIF's
sigmoid may differ from PyTorch's by an ulp, which moves a spike only for a
membrane within an ulp of the threshold. Tested on the CPU under Triton's
interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import functools

import torch

from ..spec import TWO_STATE_KINDS, NeuronSpec
from .triton import available, interpreting

__all__ = ["available", "backward", "forward", "interpreting", "kept_shape"]

triton = tl = None  # imported on first use, as in triton.py


@functools.cache
def _import() -> bool:
    global triton, tl
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return False
    return True


# Constants (NeuronSpec.two_state_constants): 0 tau, 1 threshold, 2 v_reset, 3 soft, 4 v_init, 5 alpha,
# 6 reset_grad, 7 carry, then 8.. the kind's own (Izhikevich: a0, v_rest, v_c, w_rest, tau_w, a, b;
# STEP's CLIF: 1 - 1/tau, v_reset / tau, add that term, decay_input). KIND: TWO_STATE_KINDS' codes.
def _forward_kernel(x_ptr, spikes_ptr, kept_ptr, c_ptr, N, T, KIND: tl.constexpr, SOFT: tl.constexpr,
                    ADD_RESET: tl.constexpr, DECAY_INPUT: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    n64 = N.to(tl.int64)
    tau = tl.load(c_ptr + 0)
    threshold = tl.load(c_ptr + 1)
    v_reset = tl.load(c_ptr + 2)
    p0 = tl.load(c_ptr + 8)
    p1 = tl.load(c_ptr + 9)
    p2 = tl.load(c_ptr + 10)
    tau_w = tl.load(c_ptr + 12)
    a = tl.load(c_ptr + 13)
    b = tl.load(c_ptr + 14)
    zero = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    v = zero + tl.load(c_ptr + 4)
    if KIND == 0:
        u = zero + tl.load(c_ptr + 11)  # w_rest
    else:
        u = zero
    for t in range(T):
        step = offs + t * n64
        x = tl.load(x_ptr + step, mask=mask, other=0.0).to(v.dtype)
        if KIND == 0:  # h = v + ((x + (a0 (v - v_rest)) (v - v_c)) - w) / tau
            num = (x + (p0 * (v - p1)) * (v - p2)) - u
            if FP64:
                h = v + num / tau
            else:
                h = v + tl.math.div_rn(num, zero + tau)
        elif KIND == 1:  # STEP: (v (1 - 1/tau) [+ v_reset / tau]) + (x / tau or x)
            if DECAY_INPUT:
                if FP64:
                    x = x / tau
                else:
                    x = tl.math.div_rn(x, zero + tau)
            if ADD_RESET:
                h = (v * p0 + p1) + x
            else:
                h = v * p0 + x
        else:  # SpikingJelly: (v - v / tau) + x
            if FP64:
                h = (v - v / tau) + x
            else:
                h = (v - tl.math.div_rn(v, zero + tau)) + x
        fired = h >= threshold
        tl.store(spikes_ptr + step, fired.to(spikes_ptr.dtype.element_ty), mask=mask)
        tl.store(kept_ptr + step, h, mask=mask)
        if SOFT:
            after = tl.where(fired, h - threshold, h)
        else:
            after = tl.where(fired, v_reset, h)
        if KIND == 0:  # w = (w + ((a (h - v_rest)) - w) / tau_w) + b s
            num = (a * (h - p1)) - u
            if FP64:
                u = (u + num / tau_w) + tl.where(fired, b, 0.0)
            else:
                u = (u + tl.math.div_rn(num, zero + tau_w)) + tl.where(fired, b, 0.0)
            v = after
        else:  # m = m sigmoid(h / tau) + s; the reset deepened by sigmoid(m)
            if FP64:
                gate = 1.0 / (1.0 + tl.exp(-(h / tau)))
            else:
                gate = tl.math.div_rn(zero + 1.0, 1.0 + tl.exp(-tl.math.div_rn(h, zero + tau)))
            u = u * gate + tl.where(fired, 1.0, 0.0)
            if FP64:
                depth = 1.0 / (1.0 + tl.exp(-u))
            else:
                depth = tl.math.div_rn(zero + 1.0, 1.0 + tl.exp(-u))
            if KIND == 1:
                v = tl.where(fired, after - depth, h)
            else:
                v = tl.where(fired, h - (threshold + depth), h)
            tl.store(kept_ptr + T * n64 + step, u, mask=mask)


def _backward_kernel(grad_ptr, kept_ptr, grad_x_ptr, c_ptr, N, T, KIND: tl.constexpr, SOFT: tl.constexpr,
                     DECAY_INPUT: tl.constexpr, SURROGATE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    n64 = N.to(tl.int64)
    tau = tl.load(c_ptr + 0)
    threshold = tl.load(c_ptr + 1)
    v_reset = tl.load(c_ptr + 2)
    v_init = tl.load(c_ptr + 4)
    alpha = tl.load(c_ptr + 5)
    reset_grad = tl.load(c_ptr + 6)
    carry = tl.load(c_ptr + 7)
    p0 = tl.load(c_ptr + 8)
    p1 = tl.load(c_ptr + 9)
    p2 = tl.load(c_ptr + 10)
    tau_w = tl.load(c_ptr + 12)
    a = tl.load(c_ptr + 13)
    b = tl.load(c_ptr + 14)
    zero = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    gv = zero
    gu = zero
    for i in range(T):
        t = T - 1 - i
        step = offs + t * n64
        has_prev = mask & ((offs * 0 + t) > 0)
        h = tl.load(kept_ptr + step, mask=mask, other=0.0)
        g = tl.load(grad_ptr + step, mask=mask, other=0.0).to(h.dtype)
        u_ = h - threshold
        if SURROGATE == 0:
            sig = 1.0 / (1.0 + tl.exp(-alpha * u_))
            sg = alpha * sig * (1.0 - sig)
        elif SURROGATE == 1:
            z = (3.141592653589793 / 2.0) * alpha * u_
            sg = (alpha / 2.0) / (1.0 + z * z)
        elif SURROGATE == 2:
            sg = tl.where(tl.abs(u_) > 1.0 / alpha, 0.0, alpha - alpha * alpha * tl.abs(u_))
        else:
            sg = tl.where(tl.abs(u_) < 1.0 / alpha, 1.0, 0.0).to(h.dtype)
        spike = tl.where(h >= threshold, 1.0, 0.0).to(h.dtype)
        if SOFT:
            keep = zero + 1.0
            dv_ds_reset = zero - threshold
        else:
            keep = 1.0 - spike
            dv_ds_reset = v_reset - h
        if KIND == 0:
            gs = g + gu * b + reset_grad * gv * dv_ds_reset
            gh = gs * sg + gv * keep + gu * (a / tau_w)
            h_prev = tl.load(kept_ptr + step - n64, mask=has_prev, other=0.0)
            if SOFT:
                v_prev = tl.where(h_prev >= threshold, h_prev - threshold, h_prev)
            else:
                v_prev = tl.where(h_prev >= threshold, v_reset, h_prev)
            v_prev = tl.where(has_prev, v_prev, v_init)
            gv_prev = gh * (1.0 + (p0 * ((v_prev - p1) + (v_prev - p2))) / tau)
            gu_prev = -gh / tau + gu * (1.0 - 1.0 / tau_w)
            grad_x = gh / tau
        else:
            m = tl.load(kept_ptr + T * n64 + step, mask=mask, other=0.0)
            m_prev = tl.load(kept_ptr + T * n64 + step - n64, mask=has_prev, other=0.0)
            depth = 1.0 / (1.0 + tl.exp(-m))
            gate = 1.0 / (1.0 + tl.exp(-(h / tau)))
            gm = gu - gv * spike * depth * (1.0 - depth)
            if KIND == 1:
                dv_ds = dv_ds_reset - depth
                dv_dh = keep
                dh_dv = p0
            else:
                dv_ds = -(threshold + depth)
                dv_dh = zero + 1.0
                dh_dv = 1.0 - 1.0 / tau
            gs = g + gm + gv * dv_ds
            gh = gs * sg + gv * dv_dh + gm * m_prev * (gate * (1.0 - gate)) / tau
            gv_prev = gh * dh_dv
            gu_prev = gm * gate
            if KIND == 1 and DECAY_INPUT:
                grad_x = gh / tau
            else:
                grad_x = gh
        tl.store(grad_x_ptr + step, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        gv = gv_prev * carry
        gu = gu_prev * carry


@functools.cache
def _kernels(interpret: bool):
    """The jitted kernels; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    if not _import():
        raise RuntimeError("The 'triton' neuron backend needs Triton, which does not import here.")
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


@functools.lru_cache(maxsize=256)
def _constants(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(spec.two_state_constants(), dtype=dtype, device=device)


def _block() -> int:
    return 4096 if interpreting() else 512  # under the interpreter every program costs Python time


def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
    """What forward keeps for backward: ``h``, and CLIF's memory ``m``."""
    return (1 if spec.kind == "izhikevich" else 2, *shape)


def forward(x: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    forward_kernel, _ = _kernels(interpreting())
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    x2 = x.reshape(x.shape[0], -1).contiguous()
    T, N = x2.shape
    spikes = torch.empty_like(x2)
    kept = torch.empty(kept_shape(spec, x2.shape), dtype=compute_dtype, device=x.device)
    constants = spec.two_state_constants()
    forward_kernel[(triton.cdiv(N, _block()),)](
        x2, spikes, kept, _constants(spec, compute_dtype, x.device), N, T,
        KIND=TWO_STATE_KINDS[spec.kind], SOFT=spec.soft_reset, ADD_RESET=spec.kind == "clif" and constants[10] != 0,
        DECAY_INPUT=spec.kind == "clif" and constants[11] != 0, FP64=compute_dtype == torch.float64, BLOCK=_block(),
    )
    return spikes.view(x.shape), kept.view(kept_shape(spec, x.shape))


def backward(grad_spikes: torch.Tensor, x: torch.Tensor, kept: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    _, backward_kernel = _kernels(interpreting())
    T = x.shape[0]
    N = x.numel() // T
    grad2 = grad_spikes.reshape(T, N).contiguous()
    grad_x = torch.empty(T, N, dtype=grad_spikes.dtype, device=x.device)
    backward_kernel[(triton.cdiv(N, _block()),)](
        grad2, kept, grad_x, _constants(spec, kept.dtype, x.device), N, T,
        KIND=TWO_STATE_KINDS[spec.kind], SOFT=spec.soft_reset,
        DECAY_INPUT=spec.kind == "clif" and spec.two_state_constants()[11] != 0,
        SURROGATE=spec.surrogate_code, BLOCK=_block(),
    )
    return grad_x.view(grad_spikes.shape)
