"""The CPU backend: a fused C++/OpenMP kernel (``cpu_kernel.cpp``), built on first use; the neurons with more
state than one membrane (Izhikevich, CLIF, GLIF) have their own (``cpu_multi_state_kernel.cpp``), built on their
first use.

Forward is one pass over T that writes only the spikes; backward recomputes the
membrane from the saved input, a cache-sized chunk of neurons at a time, and
runs the adjoint recurrence over that chunk while it is still in cache. So the
only tensor kept between the passes is the input ``x`` (in its own dtype, half
the bytes of a float32 membrane under bfloat16), and each pass touches each
element once. Every surrogate is supported: the built-in ones are computed in
the kernel; for one registered by a user, forward also keeps the membrane and
backward evaluates the user's Python function on it, then hands the values to
the kernel. The kernel takes the spec's charge code and kernel constants as
they are (``NeuronSpec.kernel_constants``), in their order.

The library is built once (a few seconds) and cached by :mod:`spikeformers.cpp_build`
(for this CPU's vector instructions, under ``~/.cache/spikeformers/kernels``).
Where it cannot be built (no compiler) :func:`available` is False, the automatic
choice falls back to the reference loop, and forcing this backend raises the
build error.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from ... import cpp_build
from .. import surrogate as surrogates
from ..spec import NeuronSpec

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
MULTI_STATE_SOURCE = Path(__file__).with_name("cpu_multi_state_kernel.cpp")  # built on first use of those neurons


def _build_key() -> str:
    return cpp_build.build_key(SOURCE)


class _Kernel:
    """The library's two entry points, taking and returning tensors ([T, N], contiguous, on the CPU)."""

    def __init__(self, library: ctypes.CDLL):
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        doubles = ctypes.POINTER(ctypes.c_double)
        self._forward = library.neuron_forward
        self._forward.argtypes = [i32, ptr, ptr, ptr, i64, i64, i64, i32, doubles, i64, i32]
        self._backward = library.neuron_backward
        self._backward.argtypes = [i32, ptr, ptr, ptr, ptr, ptr, doubles, i64, i64, i64, i32, doubles, i64, i64, i32,
                                   i32]
        for entry in (self._forward, self._backward):
            entry.restype = ctypes.c_char_p

    @staticmethod
    def _check(*tensors: torch.Tensor | None) -> None:
        x = tensors[0]
        for t in tensors:
            if t is not None and not (t.dim() == 2 and t.is_contiguous() and t.device.type == "cpu"
                                      and t.shape == x.shape):
                raise ValueError("the CPU neuron kernel takes contiguous CPU tensors [T, N] of one shape")

    def forward(self, x: torch.Tensor, charge_kind: int, decay_input: bool, constants: list[float],
                save_h: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Spikes and, when ``save_h``, the membrane in the compute dtype."""
        self._check(x)
        spikes = torch.empty_like(x)
        h = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, torch.float32)) if save_h else None
        c = (ctypes.c_double * len(constants))(*constants)
        cpp_build.check(self._forward(cpp_build.dtype_code(x, "neuron kernel"), x.data_ptr(), spikes.data_ptr(),
                                      cpp_build.pointer(h), x.shape[0], x.shape[1], charge_kind, int(decay_input), c,
                                      len(constants), torch.get_num_threads()), "neuron kernel")
        return spikes, h

    def backward(self, grad_spikes: torch.Tensor, x: torch.Tensor, h: torch.Tensor | None, sg: torch.Tensor | None,
                 charge_kind: int, decay_input: bool, constants: list[float], surrogate_kind: int,
                 want_grad_k: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """grad_x, and dL/dk summed in float64 (a 0-dim float64 tensor)."""
        self._check(x, grad_spikes, h, sg)
        if grad_spikes.dtype != x.dtype:
            raise ValueError("grad_spikes and x must have one dtype")
        grad_x = torch.empty_like(x)
        grad_k = ctypes.c_double(0.0)
        c = (ctypes.c_double * len(constants))(*constants)
        cpp_build.check(self._backward(cpp_build.dtype_code(x, "neuron kernel"), grad_spikes.data_ptr(), x.data_ptr(),
                                       cpp_build.pointer(h), cpp_build.pointer(sg), grad_x.data_ptr(),
                                       ctypes.byref(grad_k), x.shape[0], x.shape[1], charge_kind, int(decay_input), c,
                                       len(constants), surrogate_kind, int(want_grad_k), torch.get_num_threads()),
                        "neuron kernel")
        return grad_x, torch.tensor(grad_k.value, dtype=torch.float64)


class _MultiStateKernel:
    """The entry points of ``cpu_multi_state_kernel.cpp`` (Izhikevich, CLIF, STEP's GLIF), on tensors."""

    def __init__(self, library: ctypes.CDLL):
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        doubles = ctypes.POINTER(ctypes.c_double)
        self._pair_forward = library.pair_forward
        self._pair_forward.argtypes = [i32, ptr, ptr, i64, i64, i64, doubles, i64, i32]
        self._pair_backward = library.pair_backward
        self._pair_backward.argtypes = [i32, ptr, ptr, ptr, i64, i64, i64, doubles, i64, i64, i32]
        self._glif_forward = library.glif_forward
        self._glif_forward.argtypes = [i32, ptr, ptr, i64, i64, doubles, i32]
        self._glif_backward = library.glif_backward
        self._glif_backward.argtypes = [i32, ptr, ptr, ptr, doubles, i64, i64, doubles, i64, ctypes.c_double, i32, i32]
        self._hdlif_forward = library.hdlif_forward
        self._hdlif_forward.argtypes = [i32, ptr, ptr, ptr, i64, i64, i64, i64, doubles, i32]
        self._hdlif_backward = library.hdlif_backward
        self._hdlif_backward.argtypes = [i32, ptr, ptr, ptr, ptr, doubles, doubles, i64, i64, i64, i64, doubles, i32]
        for entry in (self._pair_forward, self._pair_backward, self._glif_forward, self._glif_backward,
                      self._hdlif_forward, self._hdlif_backward):
            entry.restype = ctypes.c_char_p

    _check = staticmethod(_Kernel._check)

    def pair_forward(self, x: torch.Tensor, kind: int, constants: list[float]) -> torch.Tensor:
        """Spikes of a two-state neuron (Izhikevich, CLIF)."""
        self._check(x)
        spikes = torch.empty_like(x)
        c = (ctypes.c_double * len(constants))(*constants)
        cpp_build.check(self._pair_forward(cpp_build.dtype_code(x, "neuron kernel"), x.data_ptr(), spikes.data_ptr(),
                                           x.shape[0], x.shape[1], kind, c, len(constants), torch.get_num_threads()),
                        "neuron kernel")
        return spikes

    def pair_backward(self, grad_spikes: torch.Tensor, x: torch.Tensor, kind: int, constants: list[float],
                      surrogate_kind: int) -> torch.Tensor:
        """grad_x of a two-state neuron; the states are recomputed from ``x``."""
        self._check(x, grad_spikes)
        if grad_spikes.dtype != x.dtype:
            raise ValueError("grad_spikes and x must have one dtype")
        grad_x = torch.empty_like(x)
        c = (ctypes.c_double * len(constants))(*constants)
        cpp_build.check(self._pair_backward(cpp_build.dtype_code(x, "neuron kernel"), grad_spikes.data_ptr(),
                                            x.data_ptr(), grad_x.data_ptr(), x.shape[0], x.shape[1], kind, c,
                                            len(constants), surrogate_kind, torch.get_num_threads()),
                        "neuron kernel")
        return grad_x

    def glif_forward(self, x: torch.Tensor, coeffs: list[float]) -> torch.Tensor:
        """Spikes of STEP's GLIF from its per-step coefficients ([6, T] flattened: A, B, C, c, vth, G)."""
        self._check(x)
        spikes = torch.empty_like(x)
        c = (ctypes.c_double * len(coeffs))(*coeffs)
        cpp_build.check(self._glif_forward(cpp_build.dtype_code(x, "neuron kernel"), x.data_ptr(), spikes.data_ptr(),
                                           x.shape[0], x.shape[1], c, torch.get_num_threads()), "neuron kernel")
        return spikes

    def glif_backward(self, grad_spikes: torch.Tensor, x: torch.Tensor, coeffs: list[float], surrogate_kind: int,
                      alpha: float, detach_mem: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """grad_x, and dL/dcoeffs [6, T] in float64."""
        self._check(x, grad_spikes)
        grad_x = torch.empty_like(x)
        grad_coeffs = torch.zeros(6, x.shape[0], dtype=torch.float64)
        c = (ctypes.c_double * len(coeffs))(*coeffs)
        out = ctypes.cast(grad_coeffs.data_ptr(), ctypes.POINTER(ctypes.c_double))
        cpp_build.check(self._glif_backward(cpp_build.dtype_code(x, "neuron kernel"), grad_spikes.data_ptr(),
                                            x.data_ptr(), grad_x.data_ptr(), out, x.shape[0], x.shape[1], c,
                                            surrogate_kind, alpha, int(detach_mem), torch.get_num_threads()),
                        "neuron kernel")
        return grad_x, grad_coeffs

    def hdlif_forward(self, x: torch.Tensor, gate: torch.Tensor, constants: list[float]) -> torch.Tensor:
        """HD-LIF's spikes for ``x`` [T, B, C, N] and its gate [B, 4, N] (compute dtype), both contiguous."""
        T, B, C, N = x.shape
        if not (x.is_contiguous() and gate.is_contiguous() and gate.shape == (B, 4, N)
                and gate.dtype == torch.promote_types(x.dtype, torch.float32)):
            raise ValueError("the HD-LIF kernel takes contiguous x [T, B, C, N] and gate [B, 4, N] in the compute "
                             "dtype")
        spikes = torch.empty_like(x)
        c = (ctypes.c_double * len(constants))(*constants)
        cpp_build.check(self._hdlif_forward(cpp_build.dtype_code(x, "neuron kernel"), x.data_ptr(), gate.data_ptr(),
                                            spikes.data_ptr(), T, B, C, N, c, torch.get_num_threads()),
                        "neuron kernel")
        return spikes

    def hdlif_backward(self, grad_spikes: torch.Tensor, x: torch.Tensor, gate: torch.Tensor,
                       constants: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """grad_x, and dL/dgate [B, 4, N] and dL/dk (PLIF's leak) in float64."""
        T, B, C, N = x.shape
        self._check(x.view(T, -1), grad_spikes.view(T, -1))
        grad_x = torch.empty_like(x)
        grad_gate = torch.empty(B, 4, N, dtype=torch.float64)
        grad_k = torch.zeros((), dtype=torch.float64)
        c = (ctypes.c_double * len(constants))(*constants)
        as_doubles = lambda t: ctypes.cast(t.data_ptr(), ctypes.POINTER(ctypes.c_double))  # noqa: E731
        cpp_build.check(self._hdlif_backward(cpp_build.dtype_code(x, "neuron kernel"), grad_spikes.data_ptr(),
                                             x.data_ptr(), gate.data_ptr(), grad_x.data_ptr(), as_doubles(grad_gate),
                                             as_doubles(grad_k), T, B, C, N, c, torch.get_num_threads()),
                        "neuron kernel")
        return grad_x, grad_gate, grad_k


def _load(multi_state: bool = False):
    """The compiled kernel (that of the neurons with more state: ``multi_state``), or the exception that
    stopped its build."""
    source, prefix, wrapper = ((MULTI_STATE_SOURCE, "cpu-multi-state", _MultiStateKernel) if multi_state
                               else (SOURCE, "cpu", _Kernel))
    library = cpp_build.load_library(source, prefix)
    return library if isinstance(library, Exception) else _kernel(library, wrapper)


@functools.cache
def _kernel(library: ctypes.CDLL, wrapper: type):
    return wrapper(library)


@torch.compiler.assume_constant_result  # torch.compile calls it, and never traces the build
def available() -> bool:
    """True when the kernel is built (building it now if needed)."""
    return not isinstance(_load(), Exception)


@torch.compiler.assume_constant_result
def multi_state_available() -> bool:
    """True when the kernel of Izhikevich, CLIF and GLIF is built (building it now if needed)."""
    return not isinstance(_load(True), Exception)


def extension(multi_state: bool = False):
    """The compiled kernel (``multi_state``: Izhikevich's, CLIF's, GLIF's); raises, with the build's error,
    where it cannot be built."""
    ext = _load(multi_state)
    if isinstance(ext, Exception):
        raise RuntimeError(
            f"The CPU neuron kernel could not be built ({type(ext).__name__}: {str(ext).strip()[-2000:]}). "
            "It needs a C++ compiler; use SPIKEFORMERS_NEURON_BACKEND=reference meanwhile."
        ) from ext
    return ext


def keeps_membrane(spec: NeuronSpec) -> bool:
    """Whether forward returns ``h`` for backward: only for a user's surrogate, evaluated in Python."""
    return spec.surrogate_code == surrogates.GIVEN


def keeps_input(spec: NeuronSpec, learned: bool) -> bool:
    """Whether backward needs the input ``x``: always, it recomputes the membrane from it."""
    return True


def _leak(spec: NeuronSpec, w: torch.Tensor | None, dtype: torch.dtype) -> float:
    # k in the compute dtype, as the reference rounds it; a float carries it exactly.
    return float(spec.parameter_value(w, dtype)) if w is not None else 0.0


def forward(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec) -> tuple[torch.Tensor, torch.Tensor]:
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    keep_h = keeps_membrane(spec)
    x2 = x.reshape(x.shape[0], -1).contiguous()
    spikes, h = extension().forward(x2, spec.charge_code, spec.input_decays,
                                    list(spec.kernel_constants(_leak(spec, w, compute_dtype))), keep_h)
    return spikes.view(x.shape), h.view(x.shape) if keep_h else x.new_empty(0, dtype=compute_dtype)


def backward(grad_spikes: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None, h: torch.Tensor | None,
             sg: torch.Tensor | None, spec: NeuronSpec, want_grad_w: bool) -> tuple[torch.Tensor, torch.Tensor]:
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    k = _leak(spec, w, compute_dtype)
    x2 = x.reshape(x.shape[0], -1).contiguous()
    grad2 = grad_spikes.reshape(x2.shape).to(x2.dtype).contiguous()
    h2 = h.reshape(x2.shape).contiguous() if sg is not None else None
    sg2 = sg.reshape(x2.shape).contiguous() if sg is not None else None
    grad_x, grad_k = extension().backward(grad2, x2, h2, sg2, spec.charge_code, spec.input_decays,
                                          list(spec.kernel_constants(k)), spec.surrogate_code, want_grad_w)
    grad_w = spec.parameter_grad(grad_k, k, w) if want_grad_w else grad_spikes.new_empty(0)
    return grad_x.view(x.shape), grad_w
