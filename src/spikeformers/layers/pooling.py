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

Elsewhere (GPU tensors, dilation, ``ceil_mode``, ``return_indices``, a window
over 256 places, or where the kernel cannot be built) it is ``nn.MaxPool2d``.
It has no parameters or buffers, so checkpoints are unaffected.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from .. import cpp_build

SOURCE = Path(__file__).with_name("max_pool_kernel.cpp")


def _extension():
    ext = cpp_build.load_extension(SOURCE, "maxpool")
    return None if isinstance(ext, Exception) else ext


def kernel_available() -> bool:
    """True when the C++ max-pool is built (building it now if needed)."""
    return _extension() is not None


class _MaxPool2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, window: tuple, stride: tuple, padding: tuple):
        out, place = _extension().forward(x.contiguous(), *window, *stride, *padding)
        ctx.save_for_backward(place)
        ctx.geometry = (x.shape[2], x.shape[3], *window, *stride, *padding)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (place,) = ctx.saved_tensors
        return _extension().backward(grad_out.contiguous(), place, *ctx.geometry), None, None, None


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
                   and kernel_available())
        return (window, stride, padding) if applies else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        geometry = self._kernel_geometry(x)
        if geometry is None:  # PyTorch's pool, with its own errors (a padding over half the window)
            return super().forward(x)
        return _MaxPool2dFunction.apply(x, *geometry)
