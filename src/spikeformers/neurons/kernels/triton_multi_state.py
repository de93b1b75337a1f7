"""Triton kernels of the neurons with more state than one membrane, for CUDA tensors: Izhikevich and CLIF
(their operators: ``multi_state.py``), STEP's GLIF and HD-LIF; the CPU's are
``cpu_multi_state_kernel.cpp``.

Each program owns a block of neurons and walks their sequence in registers, as the
single-membrane kernels do (``triton.py``). Forward writes the spikes and keeps, in the
compute dtype, what backward reads: the pre-spike membranes (``h[t]``; GLIF's ``u[t]``;
HD-LIF's four experts') and CLIF's memory ``m[t]``. Backward walks T in reverse with the
carries in registers and writes ``dL/dx``, and for GLIF and HD-LIF the per-neuron terms of
the gradients to their coefficients, gate and PLIF leak, which PyTorch sums over the
neurons in float64 in a fixed order: the kernels call only Triton's builtins, no jitted
reduction, so the interpreter runs them even when Triton was imported before
``TRITON_INTERPRET`` was set. The forward's operations are the neurons' PyTorch loops', in
order, with correctly rounded divisions (``div_rn``), so spikes match theirs; the
exponentials may differ from PyTorch's by an ulp, which moves a spike only for a membrane
within an ulp of its threshold. Tested on the CPU under Triton's interpreter
(``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import functools

import torch

from ..spec import TWO_STATE_KINDS, NeuronSpec
from . import triton as single_membrane
from .triton import available, interpreting

__all__ = ["HDLIF", "Glif", "Pair", "available", "interpreting"]

triton = tl = None  # imported on first use, by triton.py: the kernels below read these names


def _import() -> bool:
    global triton, tl
    if not single_membrane._import():
        return False
    triton, tl = single_membrane.triton, single_membrane.tl
    return True


# ---------------------------------------------------------------- Izhikevich and CLIF

# Constants (NeuronSpec.two_state_constants): 0 tau, 1 threshold, 2 v_reset, 3 soft, 4 v_init, 5 alpha,
# 6 reset_grad, 7 carry, then 8.. the kind's own (Izhikevich: a0, v_rest, v_c, w_rest, tau_w, a, b;
# STEP's CLIF: 1 - 1/tau, v_reset / tau, add that term, decay_input). KIND: TWO_STATE_KINDS' codes.
def _pair_forward_kernel(x_ptr, spikes_ptr, kept_ptr, c_ptr, N, T, KIND: tl.constexpr, SOFT: tl.constexpr,
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


def _pair_backward_kernel(grad_ptr, kept_ptr, grad_x_ptr, c_ptr, N, T, KIND: tl.constexpr, SOFT: tl.constexpr,
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


# ---------------------------------------------------------------- STEP's GLIF

# coeffs: [6, T] (A, B, C, c, vth, G), in the compute dtype.
def _glif_forward_kernel(x_ptr, spikes_ptr, kept_ptr, k_ptr, N, T, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    n64 = N.to(tl.int64)
    u = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    o = u
    for t in range(T):
        A = tl.load(k_ptr + t)
        B = tl.load(k_ptr + T + t)
        C = tl.load(k_ptr + 2 * T + t)
        c = tl.load(k_ptr + 3 * T + t)
        vth = tl.load(k_ptr + 4 * T + t)
        G = tl.load(k_ptr + 5 * T + t)
        step = offs + t * n64
        x = tl.load(x_ptr + step, mask=mask, other=0.0).to(u.dtype)
        u = (((A * u) * (1.0 - G * o)) - B) + (x * c) - C * o
        o = tl.where(u - vth > 0.0, 1.0, 0.0).to(u.dtype)
        tl.store(spikes_ptr + step, o.to(spikes_ptr.dtype.element_ty), mask=mask)
        tl.store(kept_ptr + step, u, mask=mask)


def _glif_backward_kernel(grad_ptr, kept_ptr, k_ptr, grad_x_ptr, grad_u_ptr, grad_d_ptr, N, T, alpha, carry_u,
                          SURROGATE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    n64 = N.to(tl.int64)
    zero = tl.full([BLOCK], 0.0, kept_ptr.dtype.element_ty)
    gu_next = zero
    go_next = zero
    for i in range(T):
        t = T - 1 - i
        A = tl.load(k_ptr + t)
        C = tl.load(k_ptr + 2 * T + t)
        c = tl.load(k_ptr + 3 * T + t)
        vth = tl.load(k_ptr + 4 * T + t)
        G = tl.load(k_ptr + 5 * T + t)
        has_prev = mask & ((offs * 0 + t) > 0)
        vth_prev = tl.load(k_ptr + 4 * T + t - 1, mask=t > 0, other=0.0)
        step = offs + t * n64
        u = tl.load(kept_ptr + step, mask=mask, other=0.0)
        g = tl.load(grad_ptr + step, mask=mask, other=0.0).to(u.dtype)
        d = u - vth
        if SURROGATE == 0:
            sig = 1.0 / (1.0 + tl.exp(-alpha * d))
            sg = alpha * sig * (1.0 - sig)
        elif SURROGATE == 1:
            z = (3.141592653589793 / 2.0) * alpha * d
            sg = (alpha / 2.0) / (1.0 + z * z)
        elif SURROGATE == 2:
            sg = tl.where(tl.abs(d) > 1.0 / alpha, 0.0, alpha - alpha * alpha * tl.abs(d))
        else:
            sg = tl.where(tl.abs(d) < 1.0 / alpha, 1.0, 0.0).to(u.dtype)
        go = g + go_next  # dL/do[t]
        gu = go * sg + gu_next  # dL/du[t]
        u_prev = tl.load(kept_ptr + step - n64, mask=has_prev, other=0.0)
        o_prev = tl.where(has_prev & (u_prev - vth_prev > 0.0), 1.0, 0.0).to(u.dtype)
        kept = 1.0 - G * o_prev
        tl.store(grad_x_ptr + step, (gu * c).to(grad_x_ptr.dtype.element_ty), mask=mask)
        tl.store(grad_u_ptr + step, gu, mask=mask)
        tl.store(grad_d_ptr + step, go * sg, mask=mask)
        gu_next = gu * (A * kept) * carry_u  # to u[t-1]
        go_next = gu * (-(A * u_prev) * G - C)  # to o[t-1]


# ---------------------------------------------------------------- HD-LIF

# c: v_threshold, tau, (unused: k is read from k_ptr), k_MoE, v_th_MoE, carry (NeuronSpec.hdlif_constants).
def _hdlif_forward_kernel(x_ptr, gate_ptr, k_ptr, c_ptr, spikes_ptr, kept_ptr, T, B, C, N,
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


def _hdlif_backward_kernel(grad_ptr, x_ptr, gate_ptr, k_ptr, c_ptr, kept_ptr, grad_x_ptr, gate_terms_ptr,
                           k_terms_ptr, T, B, C, N, BLOCK: tl.constexpr):
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
def _kernels(interpret: bool) -> dict:
    """The jitted kernels by name; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    if not _import():
        raise RuntimeError("The 'triton' neuron backend needs Triton, which does not import here.")
    kernels = {"pair_forward": _pair_forward_kernel, "pair_backward": _pair_backward_kernel,
               "glif_forward": _glif_forward_kernel, "glif_backward": _glif_backward_kernel,
               "hdlif_forward": _hdlif_forward_kernel, "hdlif_backward": _hdlif_backward_kernel}
    return {name: triton.jit(kernel) for name, kernel in kernels.items()}


def _block() -> int:
    return 4096 if interpreting() else 512  # under the interpreter every program costs Python time


def _row_block(n: int) -> int:
    return min(4096 if interpreting() else 256, triton.next_power_of_2(n))


class Pair:
    """Izhikevich and CLIF: the operators' forward and backward (``multi_state.py``)."""

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def constants(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return torch.tensor(spec.two_state_constants(), dtype=dtype, device=device)

    @staticmethod
    def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
        """What forward keeps for backward: ``h``, and CLIF's memory ``m``."""
        return (1 if spec.kind == "izhikevich" else 2, *shape)

    @staticmethod
    def forward(x: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        forward_kernel = _kernels(interpreting())["pair_forward"]
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        x2 = x.reshape(x.shape[0], -1).contiguous()
        T, N = x2.shape
        spikes = torch.empty_like(x2)
        kept = torch.empty(Pair.kept_shape(spec, x2.shape), dtype=compute_dtype, device=x.device)
        constants = spec.two_state_constants()
        forward_kernel[(triton.cdiv(N, _block()),)](
            x2, spikes, kept, Pair.constants(spec, compute_dtype, x.device), N, T,
            KIND=TWO_STATE_KINDS[spec.kind], SOFT=spec.soft_reset, ADD_RESET=spec.kind == "clif" and constants[10] != 0,
            DECAY_INPUT=spec.kind == "clif" and constants[11] != 0, FP64=compute_dtype == torch.float64, BLOCK=_block(),
        )
        return spikes.view(x.shape), kept.view(Pair.kept_shape(spec, x.shape))

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, kept: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
        backward_kernel = _kernels(interpreting())["pair_backward"]
        T = x.shape[0]
        N = x.numel() // T
        grad2 = grad_spikes.reshape(T, N).contiguous()
        grad_x = torch.empty(T, N, dtype=grad_spikes.dtype, device=x.device)
        backward_kernel[(triton.cdiv(N, _block()),)](
            grad2, kept, grad_x, Pair.constants(spec, kept.dtype, x.device), N, T,
            KIND=TWO_STATE_KINDS[spec.kind], SOFT=spec.soft_reset,
            DECAY_INPUT=spec.kind == "clif" and spec.two_state_constants()[11] != 0,
            SURROGATE=spec.surrogate_code, BLOCK=_block(),
        )
        return grad_x.view(grad_spikes.shape)


class Glif:
    """STEP's GLIF: the operators' forward and backward (``multi_state.py``)."""

    @staticmethod
    def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
        """What forward keeps for backward: the membranes ``u``."""
        return tuple(shape)

    @staticmethod
    def forward(x: torch.Tensor, coeffs: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        forward_kernel = _kernels(interpreting())["glif_forward"]
        x2 = x.reshape(x.shape[0], -1).contiguous()
        T, N = x2.shape
        spikes = torch.empty_like(x2)
        kept = torch.empty(x2.shape, dtype=coeffs.dtype, device=x.device)
        forward_kernel[(triton.cdiv(N, _block()),)](x2, spikes, kept, coeffs.contiguous(), N, T, BLOCK=_block())
        return spikes.view(x.shape), kept.view(x.shape)

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, coeffs: torch.Tensor, kept: torch.Tensor,
                 spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
        backward_kernel = _kernels(interpreting())["glif_backward"]
        T = x.shape[0]
        N = x.numel() // T
        u = kept.reshape(T, N)
        grad_x = torch.empty(T, N, dtype=grad_spikes.dtype, device=x.device)
        grad_u, grad_d = torch.empty_like(u), torch.empty_like(u)  # dL/du[t], dL/d(u[t] - vth[t])
        backward_kernel[(triton.cdiv(N, _block()),)](
            grad_spikes.reshape(T, N).contiguous(), u, coeffs.contiguous(), grad_x, grad_u, grad_d, N, T, spec.alpha,
            0.0 if spec.detach_mem else 1.0, SURROGATE=spec.surrogate_code, BLOCK=_block(),
        )
        # dL/dcoeffs: each step's terms summed over the neurons by PyTorch, in float64 and a fixed order
        A, _, _, _, vth, G = coeffs.unsqueeze(-1)
        u_prev = torch.cat([torch.zeros_like(u[:1]), u[:-1]])
        o_prev = torch.cat([torch.zeros_like(u[:1]), (u[:-1] - vth[:-1] > 0).to(u.dtype)])
        x2 = x.reshape(T, N).to(u.dtype)
        terms = torch.stack([grad_u * (u_prev * (1 - G * o_prev)), -grad_u, -grad_u * o_prev, grad_u * x2, -grad_d,
                             -grad_u * ((A * u_prev) * o_prev)])
        return grad_x.view(grad_spikes.shape), terms.sum(-1, dtype=torch.float64).to(coeffs.dtype)


class HDLIF:
    """HD-LIF: the operators' forward and backward (``multi_state.py``)."""

    @staticmethod
    def kept_shape(spec: NeuronSpec, shape: torch.Size) -> tuple[int, ...]:
        """What forward keeps for backward: the four experts' pre-spike membranes."""
        return (4, *shape)

    @staticmethod
    def constants(spec: NeuronSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return torch.tensor(spec.hdlif_constants(), dtype=dtype, device=device)  # k is read from its own tensor

    @staticmethod
    def forward(x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, spec: NeuronSpec):
        forward_kernel = _kernels(interpreting())["hdlif_forward"]
        T, B, C, N = x.shape
        spikes = torch.empty_like(x)
        kept = torch.empty(HDLIF.kept_shape(spec, x.shape), dtype=gate.dtype, device=x.device)
        block = _row_block(N)
        forward_kernel[(B * C, triton.cdiv(N, block))](
            x, gate, k.reshape(1), HDLIF.constants(spec, gate.dtype, x.device), spikes, kept, T, B, C, N,
            FP64=gate.dtype == torch.float64, BLOCK=block)
        return spikes, kept

    @staticmethod
    def backward(grad_spikes: torch.Tensor, x: torch.Tensor, gate: torch.Tensor, k: torch.Tensor, kept: torch.Tensor,
                 spec: NeuronSpec):
        backward_kernel = _kernels(interpreting())["hdlif_backward"]
        T, B, C, N = x.shape
        grad_x = torch.empty_like(x)
        gate_terms = torch.empty(B, C, 4, N, dtype=gate.dtype, device=x.device)
        k_terms = torch.empty(B, C, N, dtype=gate.dtype, device=x.device)
        block = _row_block(N)
        backward_kernel[(B * C, triton.cdiv(N, block))](
            grad_spikes.contiguous(), x, gate, k.reshape(1), HDLIF.constants(spec, gate.dtype, x.device), kept, grad_x,
            gate_terms, k_terms, T, B, C, N, BLOCK=block)
        grad_gate = gate_terms.sum(1, dtype=torch.float64).to(gate.dtype)
        return grad_x, grad_gate, k_terms.sum(dtype=torch.float64).to(k.dtype).reshape(k.shape)
