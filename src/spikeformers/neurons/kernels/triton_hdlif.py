"""Triton kernels of STEP's HD-LIF (``hdlif.py``), for CUDA tensors.

Each program owns a block of one row ``(b, c)`` of ``x`` ``[T, B, C, N]``: forward walks
T with the four expert membranes in registers, mixes them with the sample's gate
and writes the spikes, keeping the pre-spike membranes ``[4, T, B, C, N]`` (compute
dtype) for backward; backward walks T in reverse with the four carries and writes
``dL/dx`` and its rows' terms of ``dL/dgate`` and ``dL/dk`` (summed over T), which
PyTorch sums over the channels in float64 (no jitted reduction in the kernels, as
in ``triton_glif.py``). Tested on the CPU under Triton's interpreter.
"""

from __future__ import annotations

import functools

import torch

from ..spec import NeuronSpec
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


# c: v_threshold, tau, (unused: k is read from k_ptr), k_MoE, v_th_MoE, carry (hdlif.constants).
def _forward_kernel(x_ptr, gate_ptr, k_ptr, c_ptr, spikes_ptr, kept_ptr, T, B, C, N,
                    FP64: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    b = row // C
    step = B.to(tl.int64) * C * N
    threshold = tl.load(c_ptr + 0)
    tau = tl.load(c_ptr + 1)
    v_th_moe = tl.load(c_ptr + 4)
    k = tl.load(k_ptr)
    g0 = tl.load(gate_ptr + (b * 4 + 0) * N + offs, mask=mask, other=0.0)
    g1 = tl.load(gate_ptr + (b * 4 + 1) * N + offs, mask=mask, other=0.0)
    g2 = tl.load(gate_ptr + (b * 4 + 2) * N + offs, mask=mask, other=0.0)
    g3 = tl.load(gate_ptr + (b * 4 + 3) * N + offs, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    m0 = zero
    m1 = zero
    m2 = zero
    m3 = zero
    for t in range(T):
        idx = t * step + row * N + offs
        x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(zero.dtype)
        h0 = m0 + x
        h2 = m2 + (x - m2) * k
        e = tl.exp(m3 - 0.8)
        if FP64:
            h1 = m1 + (x - m1) / tau
            h3 = m3 + ((x - m3) + e) / tau
        else:
            h1 = m1 + tl.math.div_rn(x - m1, zero + tau)
            h3 = m3 + tl.math.div_rn((x - m3) + e, zero + tau)
        tl.store(kept_ptr + idx, h0, mask=mask)
        tl.store(kept_ptr + T * step + idx, h1, mask=mask)
        tl.store(kept_ptr + 2 * T * step + idx, h2, mask=mask)
        tl.store(kept_ptr + 3 * T * step + idx, h3, mask=mask)
        m0 = tl.where(h0 >= threshold, 0.0, h0)
        m1 = tl.where(h1 >= threshold, 0.0, h1)
        m2 = tl.where(h2 >= threshold, 0.0, h2)
        m3 = tl.where(h3 >= threshold, -0.1, h3)
        mix = ((g0 * tl.where(m0 == 0.0, threshold, m0) + g1 * tl.where(m1 == 0.0, threshold, m1))
               + g2 * tl.where(m2 == 0.0, threshold, m2)) + g3 * tl.where(m3 == 0.0, threshold, m3)
        tl.store(spikes_ptr + idx, (mix >= v_th_moe).to(spikes_ptr.dtype.element_ty), mask=mask)


def _backward_kernel(grad_ptr, x_ptr, gate_ptr, k_ptr, c_ptr, kept_ptr, grad_x_ptr, gate_terms_ptr, k_terms_ptr,
                     T, B, C, N, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    b = row // C
    step = B.to(tl.int64) * C * N
    threshold = tl.load(c_ptr + 0)
    tau = tl.load(c_ptr + 1)
    k_moe = tl.load(c_ptr + 3)
    v_th_moe = tl.load(c_ptr + 4)
    carry = tl.load(c_ptr + 5)
    k = tl.load(k_ptr)
    g0 = tl.load(gate_ptr + (b * 4 + 0) * N + offs, mask=mask, other=0.0)
    g1 = tl.load(gate_ptr + (b * 4 + 1) * N + offs, mask=mask, other=0.0)
    g2 = tl.load(gate_ptr + (b * 4 + 2) * N + offs, mask=mask, other=0.0)
    g3 = tl.load(gate_ptr + (b * 4 + 3) * N + offs, mask=mask, other=0.0)
    zero = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    c0 = zero
    c1 = zero
    c2 = zero
    c3 = zero
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    k_sum = zero
    for i in range(T):
        t = T - 1 - i
        idx = t * step + row * N + offs
        has_prev = mask & ((offs * 0 + t) > 0)
        h0 = tl.load(kept_ptr + idx, mask=mask, other=0.0)
        h1 = tl.load(kept_ptr + T * step + idx, mask=mask, other=0.0)
        h2 = tl.load(kept_ptr + 2 * T * step + idx, mask=mask, other=0.0)
        h3 = tl.load(kept_ptr + 3 * T * step + idx, mask=mask, other=0.0)
        p2 = tl.load(kept_ptr + 2 * T * step + idx - step, mask=has_prev, other=0.0)
        p3 = tl.load(kept_ptr + 3 * T * step + idx - step, mask=has_prev, other=0.0)
        x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(zero.dtype)
        g = tl.load(grad_ptr + idx, mask=mask, other=0.0).to(zero.dtype)
        a0 = tl.where(h0 >= threshold, 0.0, h0)
        a1 = tl.where(h1 >= threshold, 0.0, h1)
        a2 = tl.where(h2 >= threshold, 0.0, h2)
        a3 = tl.where(h3 >= threshold, -0.1, h3)
        seen0 = tl.where(a0 == 0.0, threshold, a0)
        seen1 = tl.where(a1 == 0.0, threshold, a1)
        seen2 = tl.where(a2 == 0.0, threshold, a2)
        seen3 = tl.where(a3 == 0.0, threshold, a3)
        mix = ((g0 * seen0 + g1 * seen1) + g2 * seen2) + g3 * seen3
        sig = 1.0 / (1.0 + tl.exp(-k_moe * (mix - v_th_moe)))
        dmix = g * (k_moe * sig * (1.0 - sig))
        s0 += dmix * seen0
        s1 += dmix * seen1
        s2 += dmix * seen2
        s3 += dmix * seen3
        # dL/dh: through the mixture where the membrane is not zero, and from step t+1; the reset is detached
        d0 = tl.where(h0 >= threshold, 0.0, tl.where(a0 == 0.0, 0.0, dmix * g0) + c0)
        d1 = tl.where(h1 >= threshold, 0.0, tl.where(a1 == 0.0, 0.0, dmix * g1) + c1)
        d2 = tl.where(h2 >= threshold, 0.0, tl.where(a2 == 0.0, 0.0, dmix * g2) + c2)
        d3 = tl.where(h3 >= threshold, 0.0, tl.where(a3 == 0.0, 0.0, dmix * g3) + c3)
        m2_prev = tl.where(has_prev, tl.where(p2 >= threshold, 0.0, p2), 0.0)
        m3_prev = tl.where(has_prev, tl.where(p3 >= threshold, -0.1, p3), 0.0)
        grad_x = ((d0 + d1 / tau) + d2 * k) + d3 / tau
        tl.store(grad_x_ptr + idx, grad_x.to(grad_x_ptr.dtype.element_ty), mask=mask)
        k_sum += d2 * (x - m2_prev)
        c0 = d0 * carry
        c1 = d1 * (1.0 - 1.0 / tau) * carry
        c2 = d2 * (1.0 - k) * carry
        c3 = d3 * (1.0 + (tl.exp(m3_prev - 0.8) - 1.0) / tau) * carry
    tl.store(gate_terms_ptr + (row * 4 + 0) * N + offs, s0, mask=mask)
    tl.store(gate_terms_ptr + (row * 4 + 1) * N + offs, s1, mask=mask)
    tl.store(gate_terms_ptr + (row * 4 + 2) * N + offs, s2, mask=mask)
    tl.store(gate_terms_ptr + (row * 4 + 3) * N + offs, s3, mask=mask)
    tl.store(k_terms_ptr + row * N + offs, k_sum, mask=mask)


@functools.cache
def _kernels(interpret: bool):
    """The jitted kernels; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    if not _import():
        raise RuntimeError("The 'triton' neuron backend needs Triton, which does not import here.")
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


def _block(n: int) -> int:
    return min(4096 if interpreting() else 256, triton.next_power_of_2(n))


def kept_shape(shape: torch.Size) -> tuple[int, ...]:
    """What forward keeps for backward: the four experts' pre-spike membranes."""
    return (4, *shape)


def _constants(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    from .hdlif import constants

    return torch.tensor(constants(spec), dtype=dtype, device=device)


def forward(x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, spec: NeuronSpec):
    forward_kernel, _ = _kernels(interpreting())
    T, B, C, N = x.shape
    spikes = torch.empty_like(x)
    kept = torch.empty(kept_shape(x.shape), dtype=gate.dtype, device=x.device)
    block = _block(N)
    forward_kernel[(B * C, triton.cdiv(N, block))](
        x, gate, k.reshape(1), _constants(spec, gate.dtype, x.device), spikes, kept, T, B, C, N,
        FP64=gate.dtype == torch.float64, BLOCK=block)
    return spikes, kept


def backward(grad_spikes: torch.Tensor, x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, kept: torch.Tensor,
             spec: NeuronSpec):
    _, backward_kernel = _kernels(interpreting())
    T, B, C, N = x.shape
    grad_x = torch.empty_like(x)
    gate_terms = torch.empty(B, C, 4, N, dtype=gate.dtype, device=x.device)
    k_terms = torch.empty(B, C, N, dtype=gate.dtype, device=x.device)
    block = _block(N)
    backward_kernel[(B * C, triton.cdiv(N, block))](
        grad_spikes.contiguous(), x, gate, k.reshape(1), _constants(spec, gate.dtype, x.device), kept, grad_x,
        gate_terms, k_terms, T, B, C, N, BLOCK=block)
    grad_gate = gate_terms.sum(1, dtype=torch.float64).to(gate.dtype)
    return grad_x, grad_gate, k_terms.sum(dtype=torch.float64).to(k.dtype).reshape(k.shape)
