"""Checkpoints written by spikeformers 0.1.0 (``tests/data/v0_1_0``: one small model per family, some
with PLIF neurons) load into today's models, through ``create_model(checkpoint_path=...)`` and through
``load_state_dict``, and give the logits 0.1.0 computed from them."""

from pathlib import Path

import pytest
import torch

from spikeformers.models import create_model
from spikeformers.models.checkpoints import check_state_dict, upgrade_state_dict

DATA = Path(__file__).parent / "data" / "v0_1_0"
EXPECTED = torch.load(DATA / "logits.pt", weights_only=True)


def read(name: str) -> dict:
    return torch.load(DATA / f"{name}.pt", weights_only=True)


# Options whose default has changed since 0.1.0, as a model built for such a checkpoint must set them:
# Spikformer V2's stem stages end in a neuron since the published energy showed they must (docs/models.md).
CHANGED_DEFAULTS = {"spikformer_v2_dvs": dict(scs_out_neuron="none")}


def overrides(name: str, checkpoint: dict) -> dict:
    return {**checkpoint["model_overrides"], **CHANGED_DEFAULTS.get(name, {})}


def logits(model, frames):
    """Eval then train logits in float64, as ``make.py`` computed them."""
    model = model.double()
    with torch.no_grad():
        return model.eval()(frames.double()), model.train()(frames.double())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_checkpoint_of_0_1_0_loads_by_name_and_gives_its_logits(name):
    checkpoint = read(name)
    assert checkpoint["version"] == 1 and checkpoint["model_name"] == name
    model = create_model(name, checkpoint_path=DATA / f"{name}.pt", **overrides(name, checkpoint))
    evaluated, trained = logits(model, EXPECTED[name]["frames"])
    torch.testing.assert_close(evaluated, EXPECTED[name]["eval"], rtol=0, atol=1e-9)
    torch.testing.assert_close(trained, EXPECTED[name]["train"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_checkpoint_of_0_1_0_loads_through_load_state_dict(name):
    """The engine's path (resume, eval): check_state_dict, then the model's own load_state_dict."""
    checkpoint = read(name)
    model = create_model(name, **overrides(name, checkpoint))
    check_state_dict(model, checkpoint["model"])
    model.load_state_dict(checkpoint["model"])
    upgraded = upgrade_state_dict(model, checkpoint["model"])
    assert all(torch.equal(tensor, upgraded[key]) for key, tensor in model.state_dict().items())
    evaluated, _ = logits(model, EXPECTED[name]["frames"])
    torch.testing.assert_close(evaluated, EXPECTED[name]["eval"], rtol=0, atol=1e-9)


def test_the_files_hold_the_layouts_the_upgrade_exists_for():
    """Guards the tests above: these keys were renamed since 0.1.0, so the files exercise the upgrade."""
    keys = {name: set(read(name)["model"]) for name in EXPECTED}
    assert "patch_embed.stages.0.conv_bn.conv.weight" in keys["spikformer_dvs"]
    assert "patch_embed.rpe.1.w" in keys["spikformer_dvs"]  # a PLIF of the RPE's Sequential
    assert "patch_embed.rpe_neuron.w" in keys["spike_driven_dvs"]
    assert "patch_embed.stages.0.conv_bn.conv.weight" in keys["spikingformer_dvs"]
    assert "blocks.0.attn.tim.interactor.weight" in keys["tim_dvs"]


def test_a_checkpoint_with_both_layouts_of_a_key_is_refused_naming_the_old_one():
    checkpoint = read("spikformer_dvs")
    model = create_model("spikformer_dvs", **checkpoint["model_overrides"])
    state = dict(checkpoint["model"], **{"patch_embed.stages.0.conv.weight": model.patch_embed.stages[0].conv.weight})
    with pytest.raises(ValueError, match=r"1 unexpected: patch_embed.stages.0.conv_bn.conv.weight"):
        check_state_dict(model, state)
