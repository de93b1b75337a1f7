"""Weights in and out: the authors' Spikformer state_dicts (key names and shapes from the
spec's tables) convert and load; anything that does not fit is refused whole."""

import subprocess
import sys

import pytest
import torch

from spikeformers.engine.checkpoint import save_checkpoint
from spikeformers.models import create_model
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights, read_state_dict

# A guard against a hung process, not a speed check: far beyond what these commands take on a loaded
# 2-core machine, so only a process that never ends can reach it.
HUNG = 3600


def bn(prefix, n):
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def official_dvs_shapes():
    """The 121 entries of the authors' CIFAR10-DVS state_dict (spec section 3.5), in order."""
    shapes = {"pos_embed": (1, 64, 256)}
    for suffix, (c_out, c_in) in zip(["", "1", "2", "3"], [(32, 2), (64, 32), (128, 64), (256, 128)]):
        shapes[f"patch_embed.proj_conv{suffix}.weight"] = (c_out, c_in, 3, 3)
        shapes.update(bn(f"patch_embed.proj_bn{suffix}", c_out))
    shapes["patch_embed.rpe_conv.weight"] = (256, 256, 3, 3)
    shapes.update(bn("patch_embed.rpe_bn", 256))
    for i in range(2):
        b = f"block.{i}"
        shapes.update({f"{b}.norm1.weight": (256,), f"{b}.norm1.bias": (256,)})
        for name in "qkv":
            shapes[f"{b}.attn.{name}_conv.weight"] = (256, 256, 1)
            shapes.update(bn(f"{b}.attn.{name}_bn", 256))
        shapes.update({f"{b}.attn.proj_conv.weight": (256, 256, 1), f"{b}.attn.proj_conv.bias": (256,)})
        shapes.update(bn(f"{b}.attn.proj_bn", 256))
        shapes.update({f"{b}.norm2.weight": (256,), f"{b}.norm2.bias": (256,)})
        shapes.update({f"{b}.mlp.fc1_conv.weight": (1024, 256, 1), f"{b}.mlp.fc1_conv.bias": (1024,)})
        shapes.update(bn(f"{b}.mlp.fc1_bn", 1024))
        shapes.update({f"{b}.mlp.fc2_conv.weight": (256, 1024, 1), f"{b}.mlp.fc2_conv.bias": (256,)})
        shapes.update(bn(f"{b}.mlp.fc2_bn", 256))
    shapes.update({"norm.weight": (256,), "norm.bias": (256,), "head.weight": (10, 256), "head.bias": (10,)})
    return shapes


def official_dvs_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
            for k, s in official_dvs_shapes().items()}


def test_authors_dvs_checkpoint_loads_with_every_tensor_in_its_place(tmp_path):
    official = official_dvs_state()
    assert len(official) == 121
    # as their train.py saves it, and as a DDP-wrapped model would name the keys
    torch.save({"model": {f"module.{k}": v for k, v in official.items()}, "epoch": 95, "max_test_acc1": 80.9},
               tmp_path / "checkpoint_max_test_acc1.pth")
    model = create_model("spikformer_dvs", checkpoint_path=tmp_path / "checkpoint_max_test_acc1.pth")
    ours = model.state_dict()
    assert len(ours) == 121 - 11  # pos_embed and the five LayerNorms' 10 tensors are not built
    pairs = {
        "patch_embed.stages.0.conv.weight": "patch_embed.proj_conv.weight",
        "patch_embed.stages.3.bn.running_var": "patch_embed.proj_bn3.running_var",
        "patch_embed.rpe.conv.weight": "patch_embed.rpe_conv.weight",
        "blocks.1.attn.k.linear.weight": "block.1.attn.k_conv.weight",
        "blocks.0.attn.proj.linear.bias": "block.0.attn.proj_conv.bias",
        "blocks.1.mlp.fc2.linear.weight": "block.1.mlp.fc2_conv.weight",
        "blocks.0.mlp.fc1.bn.num_batches_tracked": "block.0.mlp.fc1_bn.num_batches_tracked",
        "head.fc.weight": "head.weight",
    }
    for own_key, their_key in pairs.items():
        assert torch.equal(ours[own_key], official[their_key].reshape(ours[own_key].shape)), own_key
    # every official tensor that is used landed somewhere, none twice
    used = [v for k, v in official.items() if not (k == "pos_embed" or "norm" in k.split(".")[-2])]
    assert sorted(float(v.float().sum()) for v in used) == sorted(float(v.float().sum()) for v in ours.values())


@pytest.mark.parametrize("edit,message", [
    (lambda sd: sd.pop("block.1.mlp.fc2_bn.bias"), "1 missing: blocks.1.mlp.fc2.bn.bias"),
    (lambda sd: sd.__setitem__("head.weight", torch.zeros(11, 256)), "head.fc.weight: checkpoint (11, 256) vs model (10, 256)"),
    (lambda sd: sd.__setitem__("block.0.attn.extra_conv.weight", torch.zeros(1)), "1 unexpected: block.0.attn.extra_conv.weight"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_whole(tmp_path, edit, message):
    official = official_dvs_state()
    edit(official)
    torch.save(official, tmp_path / "bad.pth")
    model = create_model("spikformer_dvs")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="nothing was loaded") as err:
        load_weights(model, tmp_path / "bad.pth")
    assert message in str(err.value) and "bad.pth" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_authors_cifar_checkpoint_with_linear_layers_converts(tmp_path):
    # Their CIFAR file (spec section 4.4): nn.Linear projections with bias, named q_linear / fc1_linear.
    shapes = {}
    for suffix, (c_out, c_in) in zip(["", "1", "2", "3"], [(48, 3), (96, 48), (192, 96), (384, 192)]):
        shapes[f"patch_embed.proj_conv{suffix}.weight"] = (c_out, c_in, 3, 3)
        shapes.update(bn(f"patch_embed.proj_bn{suffix}", c_out))
    shapes["patch_embed.rpe_conv.weight"] = (384, 384, 3, 3)
    shapes.update(bn("patch_embed.rpe_bn", 384))
    shapes.update({"block.0.norm1.weight": (384,), "block.0.norm1.bias": (384,)})
    for name in ("q", "k", "v", "proj"):
        shapes.update({f"block.0.attn.{name}_linear.weight": (384, 384), f"block.0.attn.{name}_linear.bias": (384,)})
        shapes.update(bn(f"block.0.attn.{name}_bn", 384))
    shapes.update({"block.0.norm2.weight": (384,), "block.0.norm2.bias": (384,)})
    for name, (c_out, c_in) in (("fc1", (1536, 384)), ("fc2", (384, 1536))):
        shapes.update({f"block.0.mlp.{name}_linear.weight": (c_out, c_in), f"block.0.mlp.{name}_linear.bias": (c_out,)})
        shapes.update(bn(f"block.0.mlp.{name}_bn", c_out))
    shapes.update({"head.weight": (10, 384), "head.bias": (10,)})
    official = {k: torch.randn(s) if s else torch.tensor(7) for k, s in shapes.items()}
    torch.save({"state_dict": official}, tmp_path / "cifar.pth")
    loaded = create_model("spikformer_cifar10", depth=1, checkpoint_path=tmp_path / "cifar.pth")
    assert torch.equal(loaded.blocks[0].attn.q.linear.weight, official["block.0.attn.q_linear.weight"])
    assert torch.equal(loaded.blocks[0].mlp.fc2.linear.bias, official["block.0.mlp.fc2_linear.bias"])
    assert torch.equal(loaded.patch_embed.stages[2].bn.bias, official["patch_embed.proj_bn2.bias"])


def test_own_checkpoints_load_through_create_model(tmp_path):
    model = create_model("spikformer_tiny")
    save_checkpoint(tmp_path / "last.pt", {"model_name": "spikformer_tiny", "model": model.state_dict()})
    loaded = create_model("spikformer_tiny", checkpoint_path=tmp_path / "last.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_convert_writes_safetensors_that_load_back_and_never_overwrites(tmp_path):
    torch.save(official_dvs_state(), tmp_path / "official.pth")
    out = tmp_path / "spikformer_dvs.safetensors"
    cmd = [sys.executable, "-m", "spikeformers", "convert", "--model", "spikformer_dvs",
           "--official", str(tmp_path / "official.pth"), "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=HUNG)
    assert result.returncode == 0, result.stderr
    reference = create_model("spikformer_dvs", checkpoint_path=tmp_path / "official.pth").state_dict()
    loaded = read_state_dict(out)
    assert loaded.keys() == reference.keys() and all(torch.equal(loaded[k], reference[k]) for k in reference)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=HUNG)
    assert again.returncode == 2 and "exists" in again.stderr
