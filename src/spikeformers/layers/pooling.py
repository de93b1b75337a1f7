"""``MaxPool2d``: PyTorch's max-pooling, leaner in training on the CPU.

The stems of Spikformer, QKFormer, Spikingformer and the Spike-driven
Transformer max-pool full-resolution maps ``[T*B, C, H, W]``. For backward,
PyTorch keeps the input and an int64 index per output (for a 3x3, stride-2
pool, 1.5 times the input's size) and its NCHW kernel is a scalar loop. On CPU
tensors this module runs ``max_pool_kernel.cpp`` instead: it keeps one byte per
output (the winner's place in its window) and nothing of the input, and is
vectorised. Outputs and gradients are PyTorch's, bit for bit (same scan order,
same tie and NaN rule, gradients summed in the same order), which the tests
check in every floating dtype.

The kernel is a pair of custom operators (``spikeformers::max_pool2d`` and its
backward) with fake implementations, so ``torch.compile`` and ``torch.export``
trace it. Elsewhere (GPU tensors, dilation, ``ceil_mode``, ``return_indices``, a
window over 256 places, inside ``neurons.unrolled()`` where an exporter wants
standard operators only, or where the kernel cannot be built) it is
``nn.MaxPool2d``. It has no parameters or buffers, so checkpoints are unaffected.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from .. import cpp_build
from ..neurons.kernels import unrolling

SOURCE = Path(__file__).with_name("max_pool_kernel.cpp")


class _Kernel:
    """The library's two entry points, taking and returning tensors ([N, C, H, W], contiguous, on the CPU)."""

    def __init__(self, library: ctypes.CDLL):
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        self._forward, self._backward = library.max_pool_forward, library.max_pool_backward
        for entry in (self._forward, self._backward):
            entry.argtypes = [i32, ptr, ptr, ptr, i64, i64, i64] + [i64] * 6 + [i32]
            entry.restype = ctypes.c_char_p

    def forward(self, x: torch.Tensor, *geometry: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, each output's winner's place in its window, uint8)."""
        if not (x.dim() == 4 and x.is_contiguous() and x.device.type == "cpu"):
            raise ValueError("the max-pool kernel takes a contiguous CPU tensor [N, C, H, W]")
        (window_h, window_w, stride_h, stride_w, padding_h, padding_w) = geometry
        shape = (x.shape[0], x.shape[1], _output_size(x.shape[2], window_h, stride_h, padding_h),
                 _output_size(x.shape[3], window_w, stride_w, padding_w))
        out, place = x.new_empty(shape), x.new_empty(shape, dtype=torch.uint8)
        cpp_build.check(self._forward(cpp_build.dtype_code(x, "max-pool kernel"), x.data_ptr(), out.data_ptr(),
                                      place.data_ptr(), x.shape[0] * x.shape[1], x.shape[2], x.shape[3], *geometry,
                                      torch.get_num_threads()), "max-pool kernel")
        return out, place

    def backward(self, grad_out: torch.Tensor, place: torch.Tensor, height: int, width: int,
                 *geometry: int) -> torch.Tensor:
        """The input's gradient: each output's gradient added into its winner's place."""
        if not (grad_out.dim() == 4 and grad_out.is_contiguous() and place.is_contiguous()
                and place.dtype == torch.uint8 and place.shape == grad_out.shape):
            raise ValueError("grad_out and place must be contiguous [N, C, OH, OW] tensors")
        (window_h, window_w, stride_h, stride_w, padding_h, padding_w) = geometry
        if (_output_size(height, window_h, stride_h, padding_h), _output_size(width, window_w, stride_w, padding_w)) \
                != tuple(grad_out.shape[2:]):
            raise ValueError("grad_out does not match the input size")
        grad_in = grad_out.new_zeros((grad_out.shape[0], grad_out.shape[1], height, width))
        cpp_build.check(self._backward(cpp_build.dtype_code(grad_out, "max-pool kernel"), grad_out.data_ptr(),
                                       place.data_ptr(), grad_in.data_ptr(), grad_out.shape[0] * grad_out.shape[1],
                                       height, width, *geometry, torch.get_num_threads()), "max-pool kernel")
        return grad_in


@functools.cache
def _kernel(library: ctypes.CDLL) -> _Kernel:
    return _Kernel(library)


def _extension():
    library = cpp_build.load_library(SOURCE, "maxpool")
    return None if isinstance(library, Exception) else _kernel(library)


@torch.compiler.assume_constant_result  # torch.compile calls it, and never traces the build
def kernel_available() -> bool:
    """True when the C++ max-pool is built (building it now if needed)."""
    return _extension() is not None


def _output_size(size: int, window: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - window) // stride + 1


@torch.library.custom_op("spikeformers::max_pool2d", mutates_args=())
def _max_pool2d(x: torch.Tensor, window_h: int, window_w: int, stride_h: int, stride_w: int, padding_h: int,
                padding_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, each output's winner's place in its window, uint8)."""
    out, place = _extension().forward(x.contiguous(), window_h, window_w, stride_h, stride_w, padding_h, padding_w)
    return out, place


@_max_pool2d.register_fake
def _(x, window_h, window_w, stride_h, stride_w, padding_h, padding_w):
    shape = (x.shape[0], x.shape[1], _output_size(x.shape[2], window_h, stride_h, padding_h),
             _output_size(x.shape[3], window_w, stride_w, padding_w))
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.uint8)


@torch.library.custom_op("spikeformers::max_pool2d_backward", mutates_args=())
def _max_pool2d_backward(grad_out: torch.Tensor, place: torch.Tensor, height: int, width: int, window_h: int,
                         window_w: int, stride_h: int, stride_w: int, padding_h: int, padding_w: int) -> torch.Tensor:
    return _extension().backward(grad_out.contiguous(), place, height, width, window_h, window_w, stride_h, stride_w,
                                 padding_h, padding_w)


@_max_pool2d_backward.register_fake
def _(grad_out, place, height, width, *geometry):
    return grad_out.new_empty((grad_out.shape[0], grad_out.shape[1], height, width))


def _setup_context(ctx, inputs, output):
    x, *geometry = inputs
    _, place = output
    ctx.mark_non_differentiable(place)
    ctx.save_for_backward(place)
    ctx.geometry = (x.shape[2], x.shape[3], *geometry)


def _backward(ctx, grad_out, _grad_place):
    (place,) = ctx.saved_tensors
    return _max_pool2d_backward(grad_out, place, *ctx.geometry), None, None, None, None, None, None


_max_pool2d.register_autograd(_backward, setup_context=_setup_context)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` with the same results; on CPU tensors, a kernel that keeps one byte per output."""

    def _kernel_geometry(self, x: torch.Tensor) -> tuple | None:
        """(window, stride, padding) when the C++ kernel computes this pool of ``x``, else None."""
        window = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride is not None else self.kernel_size)
        padding = _pair(self.padding)
        applies = (x.device.type == "cpu" and x.dim() == 4 and x.is_floating_point() and x.numel() > 0
                   and _pair(self.dilation) == (1, 1) and not self.ceil_mode and not self.return_indices
                   and window[0] * window[1] <= 256 and all(2 * p <= k for p, k in zip(padding, window))
                   and not unrolling() and kernel_available())
        return (window, stride, padding) if applies else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        geometry = self._kernel_geometry(x)
        if geometry is None:  # PyTorch's pool, with its own errors (a padding over half the window)
            return super().forward(x)
        window, stride, padding = geometry
        return _max_pool2d(x, *window, *stride, *padding)[0]
