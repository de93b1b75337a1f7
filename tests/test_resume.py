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


def wait_for_step(path, step, proc, timeout=300):
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
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert f"spikeformers train --resume {interrupted}" in err
    stopped = load_checkpoint(interrupted / "last.pt")["run"]
    assert stopped["epoch"] == 1 and stopped["batch"] > 0

    # 3. Resume to the end.
    proc = start("--resume", interrupted)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _, err = baseline.communicate(timeout=300)
    assert baseline.returncode == 0, err

    ours, reference = final_weights(interrupted), final_weights(tmp_path / "baseline")
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in reference), "resumed weights differ"
    ours_ema = load_checkpoint(interrupted / "last.pt")["ema"]
    reference_ema = load_checkpoint(tmp_path / "baseline" / "last.pt")["ema"]
    assert all(torch.equal(ours_ema[k], reference_ema[k]) for k in reference_ema), "resumed weight average differs"
    metrics = (interrupted / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in metrics] == ["epoch", "1", "2"]


def test_resume_refuses_to_change_the_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spikeformers", "train", "--resume", tmp_path, "--lr", "0.1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "drop --lr" in proc.stderr


def test_non_finite_loss_stops_the_run_naming_epoch_and_step(tmp_path):
    out = tmp_path / "nan"
    proc = subprocess.run([sys.executable, "-m", "spikeformers", "train", *ARGS[:6], "--lr", "1e30",
                           "--warmup-epochs", "0", "--out", out], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Loss became" in proc.stderr and "at epoch 1, step" in proc.stderr


def test_a_static_image_run_with_per_sample_random_transforms_resumes_to_identical_weights(tmp_path):
    # CIFAR-10 in its official layout, RandAugment per image (drawn from seed, epoch, index), a small Spikformer
    from test_datasets_static import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=40)  # 200 training images
    args = ["--model", "spikformer_cifar10", "--dataset", "cifar10", "--data-root", tmp_path / "data",
            "--dataset-option", "randaugment=rand-m9-n1-mstd0.4-inc1", "--model-option", "embed_dim=32",
            "--model-option", "depth=1", "--model-option", "num_heads=2", "--time-steps", "1", "--epochs", "2",
            "--batch-size", "8", "--save-every", "2", "--seed", "3", "--hflip", "0.5", "--crop-padding", "4"]
    baseline = start(*args, "--out", tmp_path / "baseline")
    interrupted = tmp_path / "interrupted"
    proc = start(*args, "--out", interrupted)
    wait_for_step(interrupted / "last.pt", 30, proc)  # in epoch 2 (25 steps an epoch)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    stopped = load_checkpoint(interrupted / "last.pt")["run"]
    assert stopped["epoch"] == 1 and 0 < stopped["batch"] < 25, "stopped mid-epoch 2"
    proc = start("--resume", interrupted)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _, err = baseline.communicate(timeout=300)
    assert baseline.returncode == 0, err
    ours, reference = final_weights(interrupted), final_weights(tmp_path / "baseline")
    assert all(torch.equal(ours[k], reference[k]) for k in reference), "resumed weights differ"
