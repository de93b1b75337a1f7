"""Activation checkpointing (``spikeformers.memory``) changes no result: the same
logits, gradients (parameters and input) and batch-norm running statistics as the plain model,
bit for bit in float64, for one tiny configuration of every model family; it keeps fewer
tensors for backward; spike-valued unit inputs are kept as uint8 exactly; it can be undone;
the glibc setting that gives freed activations back to the system applies.
"""

import copy
import platform

import pytest
import torch
from torch import nn

from spikeformers.memory import (_pack_compact, _unpack_compact, checkpoint_module, checkpoint_units,
                                               compact_saved_tensors,
                                               disable_activation_checkpointing, enable_activation_checkpointing,
                                               is_checkpointed, recomputing, return_freed_memory_to_os)
from spikeformers.models import create_model

# One configuration per family, shrunk (as in test_zoo_training), with the input side it needs.
FAMILIES = {
    "spikformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "tim_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "spikformer_v2_dvs": (32, dict(embed_dim=16, depth=1, num_heads=2)),
    "spikingformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "spike_driven_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "qkformer_dvs": (32, dict(embed_dim=16, depths=(1, 1), num_heads=2)),
    "sglformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "meta_spikformer_dvs": (24, dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2)),
    "cml_spikingformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "e_spikeformer_hardvs": (24, dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2)),
}
T, B = 2, 3


def tiny(name: str) -> tuple[nn.Module, torch.Tensor]:
    side, sizes = FAMILIES[name]
    torch.manual_seed(0)
    model = create_model(name, img_size=side, in_channels=2, num_classes=10, time_steps=T, **sizes)
    frames = torch.randint(0, 4, (T, B, 2, side, side), generator=torch.Generator().manual_seed(1))
    return model.double().train(), frames.double()


def train_step(model: nn.Module, frames: torch.Tensor):
    """Logits, input gradient, parameter gradients and buffers after one forward and backward."""
    frames = frames.clone().requires_grad_()
    logits = model(frames)
    if isinstance(logits, tuple):  # a distillation head returns (logits, distilled logits)
        logits = logits[0]
    weights = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).reshape(logits.shape)
    (logits * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return logits.detach(), frames.grad, grads, buffers


def assert_same(plain, checkpointed):
    for what, a, b in zip(("logits", "input gradient"), plain[:2], checkpointed[:2]):
        assert torch.equal(a, b), f"{what} differs by {(a - b).abs().max().item()}"
    for what, a, b in zip(("parameter gradients", "buffers"), plain[2:], checkpointed[2:]):
        assert a.keys() == b.keys(), what
        for key in a:
            assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_checkpointing_changes_no_output_gradient_or_running_statistic(name):
    model, frames = tiny(name)
    twin = copy.deepcopy(model)
    wrapped = enable_activation_checkpointing(twin)
    assert wrapped and all(is_checkpointed(twin.get_submodule(unit)) for unit in wrapped)
    plain, checkpointed = train_step(model, frames), train_step(twin, frames)
    assert_same(plain, checkpointed)
    tracked = {n: b for n, b in checkpointed[3].items() if n.endswith("num_batches_tracked")}
    assert tracked and all(b.item() == 1 for b in tracked.values()), "batch norm counted a recomputation"


def test_compacted_inputs_and_partial_checkpointing_also_change_nothing():
    model, frames = tiny("spikformer_dvs")
    plain = train_step(copy.deepcopy(model), frames)
    for options in (dict(compact=True), dict(stem=False), dict(blocks=False, compact=True)):
        twin = copy.deepcopy(model)
        enable_activation_checkpointing(twin, **options)
        assert_same(plain, train_step(twin, frames))


def test_compact_saved_tensors_without_checkpointing_changes_nothing():
    model, frames = tiny("spike_driven_dvs")  # membranes and spikes both kept for backward
    plain = train_step(copy.deepcopy(model), frames)
    with compact_saved_tensors():
        assert_same(plain, train_step(model, frames))


def test_batch_norm_really_runs_again_in_backward():
    """Guards the tests above: the recomputation happens (so its batch norm update had to be undone)."""
    model, frames = tiny("spikformer_dvs")
    enable_activation_checkpointing(model)
    calls = []
    model.patch_embed.stages[0].bn.register_forward_hook(lambda *_: calls.append(recomputing()))
    model(frames).sum().backward()
    assert calls == [False, True]
    assert not recomputing()


def test_evaluation_without_grad_runs_the_plain_forward_and_matches():
    model, frames = tiny("qkformer_dvs")
    model.eval()
    twin = copy.deepcopy(model)
    enable_activation_checkpointing(twin)
    with torch.no_grad():
        assert torch.equal(model(frames), twin(frames))


def saved_bytes(model: nn.Module, frames: torch.Tensor) -> int:
    """Bytes the autograd graph keeps for backward (as seen by an outermost saved-tensor hook)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(frames)
    return total


def test_checkpointed_model_keeps_a_fraction_of_the_activations():
    model, frames = tiny("spikformer_dvs")
    plain = saved_bytes(model, frames)
    enable_activation_checkpointing(model)
    kept = saved_bytes(model, frames)
    assert kept < plain / 4, (kept, plain)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_spike_valued_inputs_are_kept_as_uint8_and_restored_exactly(dtype):
    counts = torch.randint(0, 3, (4, 2, 64, 64), generator=torch.Generator().manual_seed(0)).to(dtype)
    counts[0, 0, 0, 0] = 255
    packed = _pack_compact(counts)
    assert isinstance(packed, tuple) and packed[0].dtype == torch.uint8
    restored = _unpack_compact(packed)
    assert restored.dtype == dtype and torch.equal(restored, counts)


@pytest.mark.parametrize("value", [0.5, -1.0, 256.0, float("nan"), float("inf")])
def test_inputs_that_are_not_small_counts_are_kept_as_they_are(value):
    tensor = torch.ones(4, 2, 64, 64)
    tensor[1, 1, 3, 3] = value
    assert _pack_compact(tensor) is tensor


def test_units_follow_the_stem_stages_and_blocks():
    model = create_model("spikformer_tiny")
    assert [name for name, _ in checkpoint_units(model)] == [
        "patch_embed.stages.0", "patch_embed.stages.1", "patch_embed.stages.2", "patch_embed.stages.3",
        "patch_embed.rpe", "blocks.0"]
    assert [name for name, _ in checkpoint_units(create_model("qkformer_dvs"), stem=False)] == ["stages.0.0",
                                                                                                "stages.1.0"]


def test_disable_restores_the_plain_model_and_keeps_the_state_dict():
    model = create_model("spikformer_tiny")
    keys = list(model.state_dict())
    wrapped = enable_activation_checkpointing(model)
    assert list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="already checkpointed"):
        enable_activation_checkpointing(model)
    assert sorted(disable_activation_checkpointing(model)) == sorted(wrapped)
    assert not any(is_checkpointed(m) for m in model.modules())
    assert "forward" not in model.blocks[0].__dict__


def test_a_copy_checkpoints_its_own_modules():
    model = create_model("spikformer_tiny")
    enable_activation_checkpointing(model)
    twin = copy.deepcopy(model)
    assert twin.blocks[0].forward.module is twin.blocks[0]


def test_model_without_known_parts_is_refused_by_name():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)

    with pytest.raises(ValueError, match="Plain has no attribute blocks / stages"):
        enable_activation_checkpointing(Plain())
    with pytest.raises(ValueError, match="blocks, stem or both"):
        enable_activation_checkpointing(Plain(), blocks=False, stem=False)
    body = checkpoint_module(Plain().body)  # a custom part, by hand
    x = torch.randn(2, 4, requires_grad=True)
    body(x).sum().backward()
    assert x.grad is not None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_return_freed_memory_to_os_sets_glibc_threshold():
    # 32 MiB, the ceiling glibc's own threshold climbs to, so that this process allocates as before
    assert return_freed_memory_to_os(32 * 2 ** 20)
    with pytest.raises(ValueError, match="threshold must be"):
        return_freed_memory_to_os(0)
