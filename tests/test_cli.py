"""The command line end to end, as a user runs it: real processes, real files."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikeformers.cli import build_parser, main
from spikeformers.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# A guard against a hung process, not a speed check: far beyond what these commands take on a loaded
# 2-core machine, so only a process that never ends can reach it.
HUNG = 3600


def spikeformers(*args, cwd=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "spikeformers.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=HUNG)


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo"
    result = spikeformers("train", "--epochs", 1, "--out", out, "--seed", 3)
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_writes_config_metrics_checkpoint_and_summary(one_epoch_run):
    out, result = one_epoch_run
    written = sorted(p.name for p in out.iterdir() if p.name != "tensorboard")  # that one: with the extra only
    assert written == ["best.pt", "config.yaml", "confusion.png", "curves.png", "last.pt", "metrics.csv",
                       "per_class.csv", "run.json", "summary.json"]
    info = json.loads((out / "run.json").read_text())
    assert info["command"][-7:] == ["train", "--epochs", "1", "--out", str(out), "--seed", "3"]
    assert info["torch"] == torch.__version__ and info["device"] == "cpu" and info["spikeformers"]
    for picture in ("curves.png", "confusion.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_class = list(csv.DictReader((out / "per_class.csv").open()))
    assert len(per_class) == 10 and sum(int(r["samples"]) for r in per_class) == 450
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "spikformer_tiny" and summary["dataset"] == "dvs_digits" and summary["epochs"] == 1
    assert 0.0 <= summary["test_acc1"] <= 1.0 and summary["wall_s"] > 0
    assert summary["test_acc1"] > 0.15, "one epoch must already beat chance (0.10)"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 1 and float(rows[0]["test_acc1"]) == pytest.approx(summary["test_acc1"], abs=1e-6)
    assert "seed: 3" in (out / "config.yaml").read_text()
    assert re.search(r"epoch +1/1 .*test loss .* acc1 .* samples/s", result.stdout)


def test_eval_recomputes_the_test_accuracy_of_the_checkpoint(one_epoch_run, tmp_path):
    out, _ = one_epoch_run
    result = spikeformers("eval", "--checkpoint", out / "last.pt", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    acc1 = float(re.search(r"acc1 ([0-9.]+)", result.stdout).group(1))
    assert acc1 == pytest.approx(json.loads((out / "summary.json").read_text())["test_acc1"], abs=5e-5)
    # per-class accuracy: printed, written, and consistent with the overall figure
    per_class = list(csv.DictReader((tmp_path / "per_class.csv").open()))
    correct = sum(int(r["correct"]) for r in per_class)
    assert correct / sum(int(r["samples"]) for r in per_class) == pytest.approx(acc1, abs=5e-5)
    assert re.search(r"^0 +45 +[0-9.]+$", result.stdout, re.M)
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_holds_only_tensors_and_plain_values(one_epoch_run):
    out, _ = one_epoch_run
    state = load_checkpoint(out / "last.pt")  # torch.load(weights_only=True) inside
    assert state["model_name"] == "spikformer_tiny" and state["epoch"] == 1
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())


def test_the_checkpoint_stores_how_a_recording_becomes_the_models_input(one_epoch_run):
    out, _ = one_epoch_run
    stored = load_checkpoint(out / "last.pt")["preprocessing"]
    assert stored == {"kind": "events", "time_steps": 4, "channels": 2, "input_size": [24, 24],
                      "sensor_size": [24, 24], "split_by": "number", "resize_mode": "bilinear", "orientation": None,
                      "mean": None, "std": None, "crop_pct": 1.0, "classes": [str(d) for d in range(10)],
                      "dataset": "dvs_digits"}


def test_predict_classifies_a_recording_with_the_runs_checkpoint(one_epoch_run, tmp_path):
    import numpy as np

    from spikeformers.data import create_dataset

    out, _ = one_epoch_run
    test_set = create_dataset("dvs_digits", train=False, time_steps=4)
    events = test_set.events(0)
    np.savez(tmp_path / "digit.npz", t=events["t"], x=events["x"], y=events["y"], p=events["p"])
    result = spikeformers("predict", "--checkpoint", out, tmp_path / "digit.npz")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("spikformer_tiny from ") and "T=4 by 'number'" in lines[0]
    assert lines[1] == f"{tmp_path / 'digit.npz'}:" and len(lines) == 7
    probabilities = [float(line.split()[1]) for line in lines[2:]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-4


def test_existing_run_folder_is_never_overwritten(one_epoch_run):
    out, _ = one_epoch_run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = spikeformers("train", "--epochs", 1, "--out", out)
    assert result.returncode == 2
    assert "already holds a run" in result.stderr and "--overwrite" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_unknown_flag_gets_the_closest_valid_one():
    result = spikeformers("train", "--epoch", 3)
    assert result.returncode == 2
    assert "unrecognized argument '--epoch'" in result.stderr and "--epochs" in result.stderr


def test_model_and_dataset_mismatch_is_named_before_training(tmp_path):
    result = spikeformers("train", "--model", "spikformer_dvs", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert "expects (channels, (H, W), classes) = (2, (128, 128), 10)" in result.stderr
    assert "(2, (24, 24), 10)" in result.stderr
    assert not (tmp_path / "x").exists(), "a run that could not start leaves no run folder behind"


def test_models_lists_the_registry_with_parameter_counts():
    result = spikeformers("models")
    assert result.returncode == 0
    assert re.search(r"spikformer_dvs +2,566,666", result.stdout)
    assert "spikformer_tiny" in result.stdout


def test_eval_refuses_a_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    result = spikeformers("eval", "--checkpoint", tmp_path / "foreign.pt")
    assert result.returncode == 2 and "not a spikeformers checkpoint" in result.stderr


@pytest.mark.slow
def test_default_demo_reaches_95_percent(tmp_path):
    """The README's main job, unchanged (a minute or two on 2 cores; run with -m slow): seeds 0 to 3
    end between 96 and 98% (README), so 95% is a floor that only a real change in it breaks."""
    result = spikeformers("train", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["test_acc1"] >= 0.95


def test_a_flag_typo_is_one_line_with_the_closest_flag_then_where_the_help_is(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--epoch", "3"])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.splitlines() == ["spikeformers train: error: unrecognized argument '--epoch'. Did you mean --epochs, "
                                  "--warmup-epochs?", "see `spikeformers train --help`"]


def test_a_typo_under_a_nested_command_names_that_commands_flags(capsys):
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--dataset", "dvs_digits", "--rooot", "x"])
    error = capsys.readouterr().err
    assert "Did you mean --root" in error and "see `spikeformers data prepare --help`" in error
    assert "usage:" not in error and error.count("\n") == 2


def test_version_prints_the_package_version(capsys):
    from spikeformers import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"spikeformers {__version__}\n"


class Planted:
    """Not a tensor: torch.load(weights_only=True) refuses to rebuild it."""


@pytest.mark.parametrize("write", [
    lambda path: path.write_text((ROOT / "README.md").read_text()),
    lambda path: torch.save({"model": Planted()}, path),
], ids=["a text file", "a pickle of more than tensors"])
def test_eval_of_a_file_that_is_no_checkpoint_never_suggests_weights_only_false(tmp_path, capsys, write):
    path = tmp_path / "not_a_checkpoint.pt"
    write(path)
    assert main(["eval", "--checkpoint", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and "not a readable checkpoint" in error, error
    assert "weights_only" not in error


def test_eval_takes_a_run_folder_and_says_which_checkpoint_it_read(one_epoch_run, tmp_path, capsys):
    out, _ = one_epoch_run
    assert main(["eval", "--checkpoint", str(out), "--out", str(tmp_path / "best")]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"evaluating {out / 'best.pt'} (its best epoch's weights")
    acc1 = float(re.search(r"acc1 ([0-9.]+)", said).group(1))
    assert acc1 == pytest.approx(json.loads((out / "summary.json").read_text())["best_test_acc1"], abs=5e-5)

    stopped = tmp_path / "stopped"  # a run stopped inside its first epoch has no best.pt yet
    stopped.mkdir()
    (stopped / "last.pt").write_bytes((out / "last.pt").read_bytes())
    assert main(["eval", "--checkpoint", str(stopped)]) == 0
    assert capsys.readouterr().out.startswith(f"evaluating {stopped / 'last.pt'} (the run has no best.pt yet)")
    assert (stopped / "eval-dvs_digits" / "per_class.csv").is_file()

    assert main(["eval", "--checkpoint", str(tmp_path / "best")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "without best.pt or last.pt: not a run folder" in error


def test_eval_help_says_what_a_run_folder_gives():
    evaluate = build_parser().subcommands["eval"]
    checkpoint = next(a for a in evaluate._actions if a.dest == "checkpoint")
    assert "run folder" in checkpoint.help and "best.pt" in checkpoint.help and "last.pt" in checkpoint.help
