"""Multi-process training with torchrun (gloo on CPU): two processes on batch b agree with one
process on batch 2b, and a two-process run stopped by SIGTERM resumes to the same weights."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from spikeformers.engine.checkpoint import load_checkpoint
from spikeformers.models import create_model

# A large AdamW epsilon makes the update proportional to the gradient: Adam's g / sqrt(v) would turn
# rounding noise in a near-zero gradient into a full step of either sign and hide what is compared.
COMMON = ["--epochs", "2", "--limit-samples", "32", "--time-steps", "2", "--seed", "4", "--lr-update", "epoch",
          "--warmup-epochs", "0", "--lr", "0.5", "--opt-eps", "1.0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_training_left_behind():
    """A failing test must not leave its processes running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:  # torchrun and its workers share a session: stop them all
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def torchrun(*args):
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(free_port()), "-m", "spikeformers", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    STARTED.append(proc)
    return proc


def single(*args):
    return subprocess.run([sys.executable, "-m", "spikeformers", "train", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")["model"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "two"
    stdout = finish(torchrun(*COMMON, "--batch-size", 4, "--sync-bn", "--out", out))
    return out, stdout


def test_two_processes_agree_with_one_process_on_the_same_global_batch(two_process_run, tmp_path):
    two, stdout = two_process_run
    assert "x 2 processes" in stdout and stdout.count("epoch   1/2") == 1, "rank 0 alone logs"
    one = tmp_path / "one"
    result = single(*COMMON, "--batch-size", 8, "--out", one)
    assert result.returncode == 0, result.stderr
    torch.manual_seed(4)
    start = create_model("spikformer_tiny", time_steps=2).state_dict()  # what both runs started from
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    floats = [name for name in a if a[name].is_floating_point()]
    largest_change = max((a[name] - start[name]).abs().max().item() for name in floats)
    # same data, same batch-norm statistics, averaged gradients: the same training, to rounding (a bias
    # before a batch norm has a zero gradient in exact arithmetic, so only rounding moves it)
    gap = {name: (b[name] - a[name]).abs().max().item() for name in floats}
    worst = max(gap, key=gap.get)
    print(f"largest change {largest_change:.3g}, largest gap {gap[worst]:.3g} in {worst}")
    assert largest_change > 1e-2
    assert gap[worst] < 1e-4 * largest_change, worst
    assert (two / "metrics.csv").read_text().splitlines()[0] == (one / "metrics.csv").read_text().splitlines()[0]


def test_a_stopped_two_process_run_resumes_to_identical_weights(two_process_run, tmp_path):
    reference, _ = two_process_run
    out = tmp_path / "stopped"
    proc = torchrun(*COMMON, "--batch-size", 4, "--sync-bn", "--save-every", 1, "--out", out)
    deadline = time.monotonic() + 600
    while not ((out / "last.pt").exists() and load_checkpoint(out / "last.pt")["run"]["step"] >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both processes
    proc.communicate(timeout=300)
    stopped = load_checkpoint(out / "last.pt")["run"]
    assert stopped["step"] < 8, "stopped before the end (4 steps per epoch, 2 epochs)"
    finish(torchrun("--resume", out))
    for name, value in weights(reference).items():
        assert torch.equal(weights(out)[name], value), name
