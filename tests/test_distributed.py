"""Multi-process training with torchrun (gloo on CPU): two processes on batch b agree with one
process on batch 2b, a two-process run stopped by SIGTERM resumes to the same weights, no process leaves
before rank 0 has written its results, and a process that loses its peer says so and how to go on."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spikeformers.engine.checkpoint import load_checkpoint
from spikeformers.models import create_model

# A large AdamW epsilon makes the update proportional to the gradient: Adam's g / sqrt(v) would turn
# rounding noise in a near-zero gradient into a full step of either sign and hide what is compared.
COMMON = ["--epochs", "2", "--limit-samples", "32", "--time-steps", "2", "--seed", "4", "--lr-update", "epoch",
          "--warmup-epochs", "0", "--lr", "0.5", "--opt-eps", "1.0"]

# A guard against a hung process, not a speed check: far beyond what these small runs take on a loaded
# 2-core machine, so only a run that never ends can reach it.
HUNG = 3600

# Imported by every process (--plugin): it stamps when rank 0 has written its curves (slowed down by 2 s)
# and its summary, and when other ranks exit; with PROBE_STOP_AT=N, rank 0 gets a SIGTERM during step N; with
# PROBE_KILL_AT=N, rank 1 kills itself (SIGKILL) during step N.
PROBE = textwrap.dedent("""
    import atexit, os, signal, time
    from spikeformers.engine import train as train_module

    rank, stamps = int(os.environ["RANK"]), os.environ["PROBE_STAMPS"]

    def stamp(name):
        with open(os.path.join(stamps, name), "w") as f:
            f.write(repr(time.time()))

    if rank == 0:
        plot_curves, write_json = train_module.plot_curves, train_module.write_json

        def slow_plot_curves(*args, **kwargs):
            time.sleep(2)
            plot_curves(*args, **kwargs)
            stamp("rank0_curves")

        def stamped_write_json(path, data):
            write_json(path, data)
            if path.name == "summary.json":
                stamp("rank0_summary")

        train_module.plot_curves, train_module.write_json = slow_plot_curves, stamped_write_json
    else:
        atexit.register(stamp, f"rank{rank}_exit")
    if rank == 0 and os.environ.get("PROBE_STOP_AT"):
        step_generator = train_module.step_generator

        def stopping_step_generator(seed, step):
            if step == int(os.environ["PROBE_STOP_AT"]):
                signal.raise_signal(signal.SIGTERM)
            return step_generator(seed, step)

        train_module.step_generator = stopping_step_generator
    if rank == 1 and os.environ.get("PROBE_KILL_AT"):
        step_generator = train_module.step_generator

        def dying_step_generator(seed, step):
            if step == int(os.environ["PROBE_KILL_AT"]):
                os.kill(os.getpid(), signal.SIGKILL)
            return step_generator(seed, step)

        train_module.step_generator = dying_step_generator
""")


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


def torchrun(*args, env=None, launcher=()):
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(free_port()), *launcher, "-m", "spikeformers", "train",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    STARTED.append(proc)
    return proc


def single(*args):
    return subprocess.run([sys.executable, "-m", "spikeformers", "train", *map(str, args)], capture_output=True,
                          text=True, timeout=HUNG)


def probe(folder: Path, **extra) -> dict:
    """The environment that lets every process import PROBE as --plugin probe, stamping into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe.py").write_text(PROBE)
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PROBE_STAMPS": str(folder), **extra}


def finish(proc, timeout=HUNG):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")["model"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    out, stamps = folder / "two", folder / "stamps"
    stdout, stderr = finish(torchrun(*COMMON, "--batch-size", 4, "--sync-bn", "--plugin", "probe", "--out", out,
                                     env=probe(stamps)))
    return out, stdout, stderr, stamps


def test_two_processes_agree_with_one_process_on_the_same_global_batch(two_process_run, tmp_path):
    two, stdout, _, _ = two_process_run
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


def test_no_process_leaves_before_rank_0_has_written_its_results(two_process_run):
    out, _, stderr, stamps = two_process_run
    # rank 0's plots are slowed down by 2 s: a rank 1 that did not wait for them would leave long before
    left = float((stamps / "rank1_exit").read_text())
    assert left > float((stamps / "rank0_curves").read_text()) and left > float((stamps / "rank0_summary").read_text())
    assert all((out / name).is_file() for name in ("summary.json", "curves.png", "confusion.png", "per_class.csv"))
    assert "terminate called" not in stderr and "Traceback" not in stderr


def test_a_two_process_run_stopped_after_an_epochs_last_step_resumes_to_identical_weights(two_process_run, tmp_path):
    reference = two_process_run[0]
    out, env = tmp_path / "stopped", probe(tmp_path / "stamps")
    # SIGTERM reaches rank 0 during step 3, the last of epoch 1 (4 steps an epoch): both stop after it
    proc = torchrun(*COMMON, "--batch-size", 4, "--sync-bn", "--plugin", "probe", "--out", out,
                    env={**env, "PROBE_STOP_AT": "3"})
    _, err = proc.communicate(timeout=HUNG)
    assert proc.returncode != 0 and "Continue with: spikeformers train --resume" in err, err[-3000:]
    stopped = load_checkpoint(out / "last.pt")["run"]
    assert (stopped["epoch"], stopped["batch"]) == (0, 4), "stopped after epoch 1's last step"
    finish(torchrun("--resume", out, env=env))
    for name, value in weights(reference).items():
        assert torch.equal(weights(out)[name], value), name


def test_a_process_that_loses_its_peer_names_it_and_the_run_resumes(two_process_run, tmp_path):
    reference = two_process_run[0]
    out, env, logs = tmp_path / "run", probe(tmp_path / "stamps"), tmp_path / "logs"
    proc = torchrun(*COMMON, "--batch-size", 4, "--sync-bn", "--plugin", "probe", "--save-every", 1, "--out", out,
                    env={**env, "PROBE_KILL_AT": "5"}, launcher=("--log-dir", str(logs), "--redirects", "3"))
    proc.communicate(timeout=HUNG)
    assert proc.returncode != 0
    (survivor,) = logs.rglob("0/stderr.log")
    said = survivor.read_text()
    assert "Traceback" not in said, said[-3000:]
    assert "spikeformers train: stopped: rank 0 lost contact with rank 1 of 2" in said
    assert f"the last checkpoint in {out} is intact: continue with" in said and f"--resume {out}" in said
    assert load_checkpoint(out / "last.pt")["run"]["step"] == 5, "the checkpoint of the last completed step"
    finish(torchrun("--resume", out, env=env))
    for name, value in weights(reference).items():
        assert torch.equal(weights(out)[name], value), name
