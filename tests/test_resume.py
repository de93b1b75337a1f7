"""Nothing lost: a training process killed at any moment resumes to the same weights, bit for bit.

Real processes, real signals: SIGKILL mid-epoch (resume from the last periodic
checkpoint), then SIGTERM (finish the step, checkpoint, exit, resume).
"""

import signal
import subprocess
import sys
import time

import pytest
import torch

from spikeformers.engine.checkpoint import load_checkpoint

# A guard against a hung process, not a speed check: far beyond what these small runs take on a loaded
# 2-core machine, so only a run that never ends can reach it.
HUNG = 3600

# The random parts of a recipe are on (augmentation, mixup, the weight average), since they must resume too.
ARGS = ["--epochs", "2", "--time-steps", "1", "--batch-size", "64", "--save-every", "4", "--seed", "5",
        "--hflip", "0.5", "--augment-wide", "--mixup", "0.5", "--ema", "--ema-decay", "0.9"]


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_training_left_behind():
    """A failing test must not leave its training processes running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def start(*args):
    proc = subprocess.Popen([sys.executable, "-m", "spikeformers", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(proc)
    return proc


def wait_for_step(path, step, proc, timeout=HUNG):
    """Poll last.pt until it records at least ``step`` steps (it is replaced atomically)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended early: {proc.communicate()}"
        if path.exists():
            state = load_checkpoint(path)
            if state["run"]["step"] >= step:
                return state
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint with step >= {step} after {timeout}s")


def final_weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")["model"]


def test_killed_and_stopped_runs_resume_to_identical_weights(tmp_path):
    baseline = start(*ARGS, "--out", tmp_path / "baseline")
    interrupted = tmp_path / "interrupted"

    # 1. SIGKILL somewhere after the first periodic checkpoint, mid-epoch 1.
    proc = start(*ARGS, "--out", interrupted)
    wait_for_step(interrupted / "last.pt", 4, proc)
    proc.kill()
    proc.wait()
    saved = load_checkpoint(interrupted / "last.pt")["run"]
    assert saved["epoch"] == 0 and saved["batch"] >= 4, "the kill must land mid-epoch"

    # 2. Resume, then SIGTERM during epoch 2: the step finishes, a checkpoint is written, exit 143.
    proc = start("--resume", interrupted)
    wait_for_step(interrupted / "last.pt", 26, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HUNG)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert f"spikeformers train --resume {interrupted}" in err
    stopped = load_checkpoint(interrupted / "last.pt")["run"]
    assert stopped["epoch"] == 1 and stopped["batch"] > 0

    # 3. Resume to the end.
    proc = start("--resume", interrupted)
    _, err = proc.communicate(timeout=HUNG)
    assert proc.returncode == 0, err
    _, err = baseline.communicate(timeout=HUNG)
    assert baseline.returncode == 0, err

    ours, reference = final_weights(interrupted), final_weights(tmp_path / "baseline")
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in reference), "resumed weights differ"
    ours_ema = load_checkpoint(interrupted / "last.pt")["ema"]
    reference_ema = load_checkpoint(tmp_path / "baseline" / "last.pt")["ema"]
    assert all(torch.equal(ours_ema[k], reference_ema[k]) for k in reference_ema), "resumed weight average differs"
    metrics = (interrupted / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in metrics] == ["epoch", "1", "2"]


def test_resume_refuses_to_change_what_defines_the_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spikeformers", "train", "--resume", tmp_path, "--seed", "1",
                           "--lr", "0.1"], capture_output=True, text=True, timeout=HUNG)
    assert proc.returncode == 2 and "drop --seed" in proc.stderr and "changing only --device" in proc.stderr


def test_the_resume_help_names_every_setting_a_resume_may_change():
    from spikeformers.cli import build_parser
    from spikeformers.engine.resume import RESUMABLE

    resume = next(a for a in build_parser().subcommands["train"]._actions if a.dest == "resume")
    assert all(f"--{key.replace('_', '-')}" in resume.help for key in RESUMABLE)


def test_non_finite_loss_stops_the_run_naming_epoch_and_step(tmp_path):
    out = tmp_path / "nan"
    proc = subprocess.run([sys.executable, "-m", "spikeformers", "train", *ARGS[:6], "--lr", "1e30",
                           "--warmup-epochs", "0", "--out", out], capture_output=True, text=True, timeout=HUNG)
    assert proc.returncode == 1
    assert "became NaN or inf at epoch 1, step" in proc.stderr and "Traceback" not in proc.stderr


def test_a_static_image_run_with_per_sample_random_transforms_resumes_to_identical_weights(tmp_path, monkeypatch):
    # CIFAR-10 in its official layout, RandAugment per image (drawn from seed, epoch, index), a small
    # Spikformer; stopped by SIGTERM in the middle of epoch 2, in this process (see test_hostile_runs).
    from test_datasets_static import write_cifar10
    from test_hostile_runs import stop_during

    from spikeformers.engine.config import load_config
    from spikeformers.engine.stopping import TrainingInterrupted
    from spikeformers.engine.train import train

    write_cifar10(tmp_path / "data", per_batch=8)  # 40 training images: 5 steps an epoch

    def settings(out):
        return load_config(None, model="spikformer_cifar10", dataset="cifar10", data_root=str(tmp_path / "data"),
                           dataset_options={"randaugment": "rand-m9-n1-mstd0.4-inc1"},
                           model_options={"embed_dim": 16, "depth": 1, "num_heads": 1}, time_steps=1, epochs=2,
                           batch_size=8, seed=3, hflip=0.5, crop_padding=4, out=str(out))

    train(settings(tmp_path / "baseline"))
    interrupted = tmp_path / "interrupted"
    resume_normally = stop_during(monkeypatch, 7)
    with pytest.raises(TrainingInterrupted):
        train(settings(interrupted))
    stopped = load_checkpoint(interrupted / "last.pt")["run"]
    assert stopped["epoch"] == 1 and stopped["batch"] == 3, "stopped mid-epoch 2"
    resume_normally()
    train(settings(interrupted), resume=True)
    ours, reference = final_weights(interrupted), final_weights(tmp_path / "baseline")
    assert all(torch.equal(ours[k], reference[k]) for k in reference), "resumed weights differ"


def test_a_resume_refuses_a_model_whose_defaults_changed_since_the_run_started(tmp_path):
    # run.json records the model as built; a version whose defaults build another model (here: an older
    # record with another threshold in one neuron) must not continue the run with it, and must leave the
    # run as it was.
    import json

    from test_datasets_static import write_cifar10

    from spikeformers.engine.config import load_config
    from spikeformers.engine.train import train

    write_cifar10(tmp_path / "data", per_batch=8)
    out = tmp_path / "run"

    def settings(epochs):
        return load_config(None, model="spikformer_cifar10", dataset="cifar10", data_root=str(tmp_path / "data"),
                           model_options={"embed_dim": 16, "depth": 1, "num_heads": 1}, time_steps=1,
                           epochs=epochs, batch_size=8, seed=3, out=str(out))

    train(settings(1))
    info = json.loads((out / "run.json").read_text())
    neuron = next(name for name, text in info["model"].items() if text.startswith("LIF("))
    assert "v_threshold=1.0" in info["model"][neuron]
    info["model"][neuron] = info["model"][neuron].replace("v_threshold=1.0", "v_threshold=0.5")
    (out / "run.json").write_text(json.dumps(info))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=f"not the one the run in .* trained \\({neuron}: LIF\\(.*v_threshold=0.5"):
        train(settings(2), resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # the record as written: the same version resumes
    info["model"][neuron] = info["model"][neuron].replace("v_threshold=0.5", "v_threshold=1.0")
    (out / "run.json").write_text(json.dumps(info))
    train(settings(2), resume=True)
    assert load_checkpoint(out / "last.pt")["run"]["epoch"] == 2
