"""The C++ max-pool (``layers.pooling.MaxPool2d``) against PyTorch's, bit for bit, and what it keeps."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.layers.pooling import MaxPool2d, kernel_available

needs_kernel = pytest.mark.skipif(not kernel_available(), reason="the C++ max-pool cannot be built here")

GEOMETRIES = [(3, 2, 1), (3, 1, 1), (2, 2, 0), (3, 3, 0), (5, 2, 2), ((3, 2), (2, 1), (1, 0)), (4, 3, 2), (1, 1, 0)]


def inputs(kind, shape, dtype, gen):
    if kind == "spikes":  # ties everywhere: the winner must be PyTorch's (first in scan order)
        return (torch.rand(shape, generator=gen) < 0.3).to(dtype)
    if kind == "real":
        return torch.randn(shape, generator=gen).to(dtype)
    x = torch.randn(shape, generator=gen).round().to(dtype)  # NaN wins; an all -inf window keeps its first place
    x[0, 0, 0, :3] = float("nan")
    x[0, 1] = float("-inf")
    x[1, 2, 2:4, 1:3] = float("inf")
    return x


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_outputs_and_gradients_equal_pytorch_bit_for_bit(dtype):
    gen = torch.Generator().manual_seed(0)
    for window, stride, padding in GEOMETRIES:
        for height, width in [(17, 13), (8, 8), (5, 30)]:
            for kind in ("spikes", "real", "special"):
                x = inputs(kind, (3, 4, height, width), dtype, gen)
                ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
                out = MaxPool2d(window, stride, padding)(ours)
                expected = F.max_pool2d(theirs, window, stride, padding)
                assert type(out.grad_fn).__name__ == "GeneratedBackwardFor_spikeformers_max_pool2d_defaultBackward"
                grad = torch.randn(out.shape, generator=gen).to(dtype)
                out.backward(grad)
                expected.backward(grad)
                where = f"{dtype} window {window} stride {stride} padding {padding} input {height}x{width} {kind}"
                assert torch.equal(out.nan_to_num(7.0), expected.nan_to_num(7.0)), f"outputs differ: {where}"
                assert torch.equal(ours.grad, theirs.grad), f"gradients differ: {where}"


@needs_kernel
def test_backward_keeps_one_byte_per_output_and_nothing_of_the_input():
    x = (torch.rand(2, 8, 64, 64) < 0.2).float().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = MaxPool2d(3, 2, 1)(x)
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.uint8, tuple(out.shape))]
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        F.max_pool2d(x, 3, 2, 1)
    assert sum(t.nbytes for t in saved) > 10 * out.numel()  # PyTorch: the input and int64 indices


def test_settings_the_kernel_does_not_cover_run_pytorch_s_pool():
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    for pool in (MaxPool2d(3, 2, 1, dilation=2), MaxPool2d(3, 2, 1, ceil_mode=True)):
        assert type(pool(x).grad_fn).__name__ != "GeneratedBackwardFor_spikeformers_max_pool2d_defaultBackward"
        assert torch.equal(pool(x), F.max_pool2d(x, 3, 2, 1, dilation=pool.dilation, ceil_mode=pool.ceil_mode))
    out, indices = MaxPool2d(3, 2, 1, return_indices=True)(x)
    assert indices.dtype == torch.int64
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        MaxPool2d(3, 2, 2)(x)


def test_the_pool_has_no_state_so_checkpoints_are_unaffected():
    assert MaxPool2d(3, 2, 1).state_dict() == {} and isinstance(MaxPool2d(3, 2, 1), torch.nn.MaxPool2d)
