"""``profile_model`` and ``spikeformers profile``: every registered model, outputs untouched, JSON, pictures."""

import importlib.util
import inspect
import json
import sys

import pytest
import torch

from spikeformers.analysis import FiringRateMonitor, OpCounter, profile_model, synthetic_input
from spikeformers.analysis.plots import plot_report
from spikeformers.cli import main
from spikeformers.data.registry import create_dataset
from spikeformers.models import create_model, list_models
from spikeformers.models.checkpoints import save_safetensors
from spikeformers.models.registry import model_entry

PNG = b"\x89PNG\r\n\x1a\n"
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="pictures need matplotlib (not a core dependency)")


def small(name: str):
    """``name`` at T=2, 32x32 and one block where its class takes these options (fast on a CPU)."""
    model_class = model_entry(name).model_class
    options = inspect.signature(model_class).parameters if model_class else {}
    overrides = {k: v for k, v in {"time_steps": 2, "img_size": 32, "depth": 1}.items() if k in options}
    try:
        return create_model(name, **overrides)
    except (ValueError, TypeError):  # a size the architecture cannot take: profile it as published
        return create_model(name)


FAST = [n for n in list_models() if "imagenet" not in n]
SLOW = [pytest.param(n, marks=pytest.mark.slow) for n in list_models() if "imagenet" in n]


@pytest.mark.parametrize("name", FAST + SLOW)
def test_every_registered_model_profiles(name):
    torch.manual_seed(0)
    model = small(name)
    report = profile_model(model, batch_norm="batch")
    assert report.layers[0].inputs == "input" and report.layers[0].counted_as == "MAC", "the encoding layer"
    assert report.firing and 0 < report.mean_firing_rate < 1
    assert report.acs_per_step > 0 and report.energy_mj > 0
    assert not report.uncounted, f"products the counter cannot size: {report.uncounted}"
    assert report.params_total == sum(p.numel() for p in model.parameters())
    assert {r.op for r in report.layers} >= {"conv2d"}
    attention_products = {r.op for r in report.layers} & {"matmul", "mul"}
    assert attention_products, "the attention's products are counted"


def test_outputs_are_identical_with_the_monitor_and_counter_attached_and_detached():
    torch.manual_seed(0)
    model = create_model("qkformer_dvs", time_steps=2, img_size=32).eval()
    x = (torch.rand(2, 2, 2, 32, 32) * 3).floor()
    with torch.no_grad():
        plain = model(x)
        with FiringRateMonitor(model), OpCounter(model):
            profiled = model(x)
        again = model(x)
    assert torch.equal(plain, profiled) and torch.equal(plain, again)


def test_profile_restores_training_mode_and_batch_norm_statistics():
    model = create_model("spikformer_tiny").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model, batch_norm="batch")
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_synthetic_input_is_said_so_and_data_batches_are_counted_per_sample():
    model = create_model("spikformer_tiny")
    synthetic = profile_model(model)
    assert "synthetic input, not data" in synthetic.data_source and synthetic.samples == 2
    x = synthetic_input(model, batch_size=3)
    one = profile_model(model, x)
    twice = profile_model(model, [(x, None), (x, None)], batches=2)
    assert twice.samples == 6 and one.samples == 3
    assert twice.flops_per_step == pytest.approx(one.flops_per_step)
    assert twice.acs_per_step == pytest.approx(one.acs_per_step)
    with pytest.raises(ValueError, match="batch_norm"):
        profile_model(model, batch_norm="frozen")


def test_report_json_holds_the_table_and_the_constants(tmp_path):
    report = profile_model(create_model("spikformer_tiny"), batch_norm="batch")
    saved = json.loads(report.save_json(tmp_path / "p.json").read_text())
    assert saved["model"] == "spikformer_tiny" and saved["time_steps"] == 4
    assert saved["e_mac_pj"] == 4.6 and saved["e_ac_pj"] == 0.9 and "E_MAC x MACs" in saved["estimator"]
    assert saved["totals"]["energy_mj_per_sample"] == pytest.approx(report.energy_mj)
    assert [r["layer"] for r in saved["layers"]] == [r.layer for r in report.layers]
    assert [r["name"] for r in saved["firing_rates"]] == [r.name for r in report.firing]
    assert "patch_embed.stages.0.conv" in report.table()


@needs_matplotlib
def test_pictures_of_a_sample(tmp_path):
    model = create_model("spikformer_tiny")
    data = create_dataset("dvs_digits", train=False, time_steps=model.time_steps)
    batch = torch.stack([data[i][0] for i in range(4)])  # [B, T, C, H, W]
    report = profile_model(model, batch, time_first=False, keep_sample=True, batch_norm="batch")
    assert torch.equal(report.input_sample, data[0][0])
    assert set(report.attention_maps) == {"blocks.0.attn"}
    assert report.attention_maps["blocks.0.attn"].shape == (4, 36, 36)  # heads, tokens, tokens
    paths = plot_report(report, tmp_path)
    assert {p.name for p in paths} == {"firing_rates.png", "energy.png", "input_frames.png", "spike_raster.png",
                                       "attention_blocks_0_attn.png"}
    assert all(p.read_bytes().startswith(PNG) for p in paths)


@needs_matplotlib
def test_cli_profiles_a_model_on_a_data_set(tmp_path, capsys):
    out = tmp_path / "prof"
    assert main(["profile", "--model", "spikformer_tiny", "--dataset", "dvs_digits", "--batches", "1",
                 "--batch-size", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "patch_embed.stages.0.conv" in printed and "E_MAC = 4.6 pJ" in printed
    assert "4 samples of dvs_digits" in printed and "untrained weights" in printed
    saved = json.loads((out / "profile.json").read_text())
    assert saved["samples"] == 4 and saved["batch_norm"] == "batch"
    assert (out / "spike_raster.png").read_bytes().startswith(PNG)


def test_cli_loads_weights_and_overrides_the_energy_constants(tmp_path, capsys):
    weights = tmp_path / "tiny.safetensors"
    save_safetensors(create_model("spikformer_tiny"), weights)
    assert main(["profile", "--model", "spikformer_tiny", "--checkpoint", str(weights), "--e-ac", "0.1",
                 "--nonbinary-as-mac", "--out", str(tmp_path / "p")]) == 0
    printed = capsys.readouterr().out
    assert f"weights from {weights}" in printed and "E_AC = 0.1 pJ" in printed
    assert "synthetic input, not data" in printed and "running statistics" in printed
    assert "spike counts (sums of spikes) as MACs" in printed
    saved = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert saved["nonbinary_as_mac"] and saved["e_ac_pj"] == 0.1


def test_cli_untrained_weights_come_from_the_seed(tmp_path, capsys):
    def energy(seed):
        out = tmp_path / str(seed)
        assert main(["profile", "--model", "spikformer_tiny", "--seed", str(seed), "--out", str(out)]) == 0
        return json.loads((out / "profile.json").read_text())["totals"]["energy_mj_per_sample"]

    assert energy(0) == energy(0) != energy(1)
    assert "initialised with seed 1" in capsys.readouterr().out


def test_cli_without_matplotlib_writes_the_table_and_json_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["profile", "--model", "spikformer_tiny", "--out", str(tmp_path)]) == 0
    assert "pictures skipped" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["profile.json"]


def test_cli_rebuilds_a_run_checkpoint_with_its_overrides(tmp_path, capsys):
    from spikeformers.engine.checkpoint import save_checkpoint

    model = create_model("spikformer_tiny", time_steps=2)
    run = tmp_path / "last.pt"
    save_checkpoint(run, {"model": model.state_dict(), "model_name": "spikformer_tiny",
                          "model_overrides": {"time_steps": 2}, "config": {}})
    assert main(["profile", "--checkpoint", str(run), "--out", str(tmp_path / "p")]) == 0
    assert "model spikformer_tiny: T=2" in capsys.readouterr().out
    assert main(["profile", "--model", "spikformer_dvs", "--checkpoint", str(run)]) == 2
    assert "holds a spikformer_tiny model, not spikformer_dvs" in capsys.readouterr().err


def test_cli_names_a_bad_model_or_checkpoint(tmp_path, capsys):
    assert main(["profile", "--model", "spikformer_tiniest", "--out", str(tmp_path)]) == 2
    assert "spikformer_tiny" in capsys.readouterr().err
    assert main(["profile", "--model", "spikformer_tiny", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "No checkpoint" in capsys.readouterr().err


def test_the_readme_profiling_snippet_runs_as_written():
    """The README's Python profiling example is self-contained and runs: every name it uses is
    defined in it, and the layer it looks up exists."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Profiling: firing rates, operations, energy", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["report"].energy_mj > 0
    assert namespace["rates"] and all(0 <= rate <= 1 for rate in namespace["rates"].values())
