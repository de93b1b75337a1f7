"""Models run forward and backward in float64, float32, bfloat16 and float16 on the CPU, and stay in
the dtype they were given (no silent up- or down-cast of the logits or the gradients). The
size of the differences between dtypes is measured, not asserted: `benchmarks/precision.py`."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.models import create_model

DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
# One model per attention style, tiny: Spikformer's SSA, spike-driven attention with the authors' erode,
# TIM's recurrent interaction, Meta-SpikeFormer's RepConv attention and conv blocks.
MODELS = {
    "spikformer_tiny": dict(embed_dim=32, depth=1),
    "spike_driven_dvs": dict(img_size=24, embed_dim=16, depth=1, num_heads=2),
    "tim_dvs": dict(img_size=24, embed_dim=16, depth=1, num_heads=2),
    "meta_spikformer_dvs": dict(img_size=24, embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2),
}


# Pure float16 training of Meta-SpikeFormer overflows where an attention neuron is silent (as in this
# untrained tiny model): RepConv's BN and the BN after it then see a constant map, and in train mode
# each scales the gradient by weight / sqrt(0 + eps) ~ 316, about 1e5 together, beyond float16's 65504.
# bfloat16 and float32 have the range; mixed precision (autocast) keeps batch norm in float32.
FP16_OVERFLOW = pytest.mark.xfail(strict=True, raises=AssertionError,
                                  reason="float16 gradient overflow through two train-mode BNs on a silent map")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: a second intra-op thread adds only synchronisation, and on a busy machine its
    barrier waits cost more than the work (measured here: 20x the CPU time of one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CASES = [pytest.param(name, dtype, id=f"{name}-{str(dtype)[6:]}",
                      marks=FP16_OVERFLOW if (name, dtype) == ("meta_spikformer_dvs", torch.float16) else ())
         for name in MODELS for dtype in DTYPES]


@pytest.mark.parametrize("name,dtype", CASES)
def test_model_runs_forward_and_backward_in_dtype(name, dtype):
    torch.manual_seed(0)
    model = create_model(name, time_steps=2, **MODELS[name]).to(dtype).train()
    x = (torch.rand(2, 4, 2, 24, 24) * 4).floor().to(dtype).requires_grad_()  # event counts: exact in every dtype
    logits = model(x)
    assert logits.dtype == dtype and logits.shape == (4, 10) and torch.isfinite(logits).all()
    F.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 3])).backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == dtype and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
