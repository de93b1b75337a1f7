"""Triton kernels of STEP's GLIF (``glif.py``), for CUDA tensors.

Each program owns a block of neurons: forward walks T with the membrane ``u`` and
the previous spike ``o`` in registers, writes the spikes and keeps ``u[t]`` (in the
compute dtype) for backward; backward walks T in reverse with the two carries
(to ``u[t-1]`` and ``o[t-1]``) and writes ``dL/dx`` and the terms of ``dL/dcoeffs``,
which PyTorch sums over the neurons (float64, a fixed order: the kernels call only
Triton's builtins, no jitted reduction, so the interpreter runs them even when
Triton was imported before ``TRITON_INTERPRET`` was set). The
forward's operations are STEP's loop's, so spikes match it. Tested on the CPU
under Triton's interpreter (``TRITON_INTERPRET=1``).
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


# coeffs: [6, T] (A, B, C, c, vth, G), in the compute dtype.
def _forward_kernel(x_ptr, spikes_ptr, kept_ptr, k_ptr, N, T, BLOCK: tl.constexpr):
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


def _backward_kernel(grad_ptr, kept_ptr, k_ptr, grad_x_ptr, grad_u_ptr, grad_d_ptr, N, T, alpha, carry_u,
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


@functools.cache
def _kernels(interpret: bool):
    """The jitted kernels; ``interpret`` is in the key because Triton fixes it at jit time."""
    del interpret
    if not _import():
        raise RuntimeError("The 'triton' neuron backend needs Triton, which does not import here.")
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


def _block() -> int:
    return 4096 if interpreting() else 512  # under the interpreter every program costs Python time


def kept_shape(shape: torch.Size) -> tuple[int, ...]:
    """What forward keeps for backward: the membranes ``u``."""
    return tuple(shape)


def forward(x: torch.Tensor, coeffs: torch.Tensor, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    forward_kernel, _ = _kernels(interpreting())
    x2 = x.reshape(x.shape[0], -1).contiguous()
    T, N = x2.shape
    spikes = torch.empty_like(x2)
    kept = torch.empty(x2.shape, dtype=coeffs.dtype, device=x.device)
    forward_kernel[(triton.cdiv(N, _block()),)](x2, spikes, kept, coeffs.contiguous(), N, T, BLOCK=_block())
    return spikes.view(x.shape), kept.view(x.shape)


def backward(grad_spikes: torch.Tensor, x: torch.Tensor, coeffs: torch.Tensor, kept: torch.Tensor,
             spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    _, backward_kernel = _kernels(interpreting())
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
