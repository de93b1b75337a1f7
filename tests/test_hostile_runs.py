"""Training runs and checkpoints under faults and hostile files: stops on an epoch's last step, damaged or
forged checkpoints, kills between writes, divergence, a full disk, another neuron backend.

Runs train in this process (a 16-sample DVS-digits subset, T=1, two steps an epoch); a stop is a real
SIGTERM raised during a chosen step, so where it lands is exact.
"""

import errno
import json
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from spikeformers.cli import main as cli
from spikeformers import atomic as atomic_module
from spikeformers.engine import checkpoint as checkpoint_module
from spikeformers.engine import train as train_module
from spikeformers.engine.checkpoint import FORMAT, checksum, load_checkpoint, save_checkpoint
from spikeformers.engine.config import load_config
from spikeformers.engine.evaluate import model_from_checkpoint
from spikeformers.engine.stopping import NonFiniteTrainingError, TrainingInterrupted
from spikeformers.engine.train import train
from spikeformers.models import create_model

SMALL = {"epochs": 2, "time_steps": 1, "limit_samples": 16, "batch_size": 8}  # two steps an epoch


def settings(out, **overrides):
    return load_config(None, **{**SMALL, "out": str(out), **overrides})


def stop_during(monkeypatch, step):
    """SIGTERM arrives during ``step`` (0-based): the loop finishes it, writes last.pt, raises TrainingInterrupted."""
    real = train_module.step_generator

    def generator(seed, at):
        if at == step:
            signal.raise_signal(signal.SIGTERM)
        return real(seed, at)

    monkeypatch.setattr(train_module, "step_generator", generator)
    return lambda: monkeypatch.setattr(train_module, "step_generator", real)


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run trained to its end without interruption: the reference, and the folder damaged copies start from."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(settings(out))
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


# A. A stop on an epoch's last step

def test_a_run_stopped_after_an_epochs_last_step_resumes_to_identical_weights(finished, tmp_path, monkeypatch):
    out = tmp_path / "run"
    resume_normally = stop_during(monkeypatch, 1)  # the last step of epoch 1
    with pytest.raises(TrainingInterrupted):
        train(settings(out))
    stopped = load_checkpoint(out / "last.pt")["run"]
    assert (stopped["epoch"], stopped["batch"]) == (0, 2), "the stop must land after the epoch's last batch"
    resume_normally()
    train(settings(out), resume=True)
    assert same_weights(load_checkpoint(out / "last.pt")["model"], load_checkpoint(finished / "last.pt")["model"])
    ours, reference = ((folder / "metrics.csv").read_text().splitlines() for folder in (out, finished))
    assert [row.split(",")[:2] for row in ours] == [row.split(",")[:2] for row in reference]  # epoch, lr


# B. Checkpoints are not trusted

def tensor_member(path):
    """The offset and size of the largest tensor's bytes inside a torch.save zip archive."""
    with zipfile.ZipFile(path) as archive:
        member = max((m for m in archive.infolist() if "/data/" in m.filename), key=lambda m: m.file_size)
    raw = path.read_bytes()
    name_length, extra_length = (int.from_bytes(raw[member.header_offset + i:member.header_offset + i + 2], "little")
                                 for i in (26, 28))
    return member.header_offset + 30 + name_length + extra_length, member.file_size


def test_flipped_bits_in_tensor_data_are_refused_naming_the_file(run_copy):
    path = run_copy / "last.pt"
    start, size = tensor_member(path)
    raw = bytearray(path.read_bytes())
    raw[start + size // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="is damaged: its contents do not match the checksum") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="is damaged"):
        create_model("spikformer_tiny", time_steps=1, checkpoint_path=path)


def test_resuming_a_finished_run_from_a_damaged_checkpoint_leaves_its_results_untouched(run_copy, capsys):
    path = run_copy / "last.pt"
    start, size = tensor_member(path)
    raw = bytearray(path.read_bytes())
    raw[start + 5] ^= 0x01
    path.write_bytes(bytes(raw))
    before = files(run_copy)
    assert cli(["train", "--resume", str(run_copy)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and "damaged" in error
    assert files(run_copy) == before


def test_resuming_a_finished_run_says_so_and_changes_nothing(run_copy, capsys):
    before = files(run_copy)
    summary = train(settings(run_copy), resume=True)
    assert "already finished its 2 epochs: nothing to do" in capsys.readouterr().out
    assert files(run_copy) == before
    assert summary == json.loads((run_copy / "summary.json").read_text())


def forged(path, state):
    """What someone who knows the format writes: any contents, with a checksum that matches them."""
    state = {"format": FORMAT, "version": 2, **state}
    torch.save({**state, "checksum": checksum(state)}, path)


def test_non_finite_weights_are_refused_even_with_a_matching_checksum(run_copy):
    state = load_checkpoint(run_copy / "last.pt")
    state["model"] = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in state["model"].items()}
    forged(run_copy / "last.pt", state)
    with pytest.raises(ValueError, match=r"holds NaN or inf in model/") as err:
        load_checkpoint(run_copy / "last.pt")
    assert str(run_copy / "last.pt") in str(err.value)


def test_a_checkpoint_of_spikeformers_0_1_0_without_a_checksum_still_loads_and_evaluates(finished, tmp_path, capsys):
    # exactly what 0.1.0's save_checkpoint wrote: torch.save({"format": ..., "version": 1, **state})
    state = {k: v for k, v in load_checkpoint(finished / "last.pt").items()
             if k not in ("format", "version", "checksum", "neuron_backend")}
    torch.save({"format": FORMAT, "version": 1, **state}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert same_weights(loaded["model"], state["model"])
    assert cli(["eval", "--checkpoint", str(tmp_path / "old.pt"), "--out", str(tmp_path / "eval")]) == 0
    assert "acc1" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["model", "model_name"])
def test_a_checkpoint_lacking_an_entry_gets_one_line_naming_the_file(finished, tmp_path, capsys, missing):
    state = {k: v for k, v in load_checkpoint(finished / "last.pt").items()
             if k not in ("format", "version", "checksum", missing)}
    path = tmp_path / "cut.pt"
    save_checkpoint(path, state)
    assert cli(["eval", "--checkpoint", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and repr(missing) in error
    if missing == "model":
        with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*lacks 'model'"):
            create_model("spikformer_tiny", time_steps=1, checkpoint_path=path)
        assert cli(["convert", "--model", "spikformer_tiny", "--official", str(path),
                    "--out", str(tmp_path / "w.safetensors")]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and str(path) in error and "lacks 'model'" in error


def test_resume_from_a_checkpoint_lacking_the_optimiser_names_the_file(run_copy, monkeypatch, capsys):
    state = load_checkpoint(run_copy / "last.pt")
    del state["optimizer"]
    state["run"]["epoch"] = 1  # mid-run, so the resume needs it
    (run_copy / "best.pt").unlink()
    save_checkpoint(run_copy / "last.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    assert cli(["train", "--resume", str(run_copy)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "last.pt lacks 'optimizer'" in error


def test_resume_from_a_checkpoint_with_a_misshaped_tensor_names_the_file(run_copy):
    state = load_checkpoint(run_copy / "last.pt")
    state["run"]["epoch"] = 1  # mid-run, so the resume restores it
    (run_copy / "best.pt").unlink()
    name = "head.fc.weight"
    state["model"][name] = torch.zeros(11, state["model"][name].shape[1])
    save_checkpoint(run_copy / "last.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    with pytest.raises(ValueError, match=r"last.pt does not fit .*nothing was loaded") as err:
        train(settings(run_copy), resume=True)
    assert f"{name}: checkpoint (11, " in str(err.value)


def test_a_checkpoint_declaring_far_more_than_it_holds_is_refused_before_unpacking(tmp_path, monkeypatch):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("bomb/data/0", bytes(64 << 20))  # 64 MiB of zeros, deflated to about 64 KiB

    def unpack(*args, **kwargs):
        raise AssertionError("torch.load ran on a zip bomb")

    monkeypatch.setattr(checkpoint_module.torch, "load", unpack)
    with pytest.raises(ValueError, match=r"declares 67,108,8\d\d bytes of contents in a [\d,]+-byte file") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="declares"):
        create_model("spikformer_tiny", checkpoint_path=path)


def test_model_overrides_asking_for_a_far_larger_model_are_refused_unbuilt(finished, monkeypatch):
    state = load_checkpoint(finished / "last.pt")
    state["model_overrides"] = {**state["model_overrides"], "embed_dim": 4096, "depth": 48}
    built = []
    real = create_model

    def counting(name, **overrides):
        model = real(name, **overrides)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr("spikeformers.engine.evaluate.create_model", counting)
    with pytest.raises(ValueError, match=r"describes spikformer_tiny .* a model of [\d,]+ parameters, but it "
                                         r"holds only [\d,]+ values; refusing to build it") as err:
        model_from_checkpoint(state, "forged.pt")
    assert "forged.pt" in str(err.value) and built == ["meta"], "only the allocation-free sketch was built"


def test_eval_never_imports_the_plugin_a_checkpoint_names(finished, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "plugin_ran"
    (tmp_path / "planted_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = load_checkpoint(finished / "last.pt")
    state["config"]["plugin"] = "planted_plugin"
    forged(tmp_path / "planted.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    assert cli(["eval", "--checkpoint", str(tmp_path / "planted.pt"), "--out", str(tmp_path / "eval")]) == 0
    assert not marker.exists(), "the checkpoint chose code to run"
    sys.modules.pop("planted_plugin", None)

    state["model_name"] = "model_of_the_plugin"
    forged(tmp_path / "unknown.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    capsys.readouterr()
    assert cli(["eval", "--checkpoint", str(tmp_path / "unknown.pt")]) == 2
    assert "pass --plugin planted_plugin if you trust that module" in capsys.readouterr().err
    assert not marker.exists()



def test_profile_never_imports_the_plugin_a_checkpoint_names(finished, tmp_path, monkeypatch):
    marker = tmp_path / "plugin_ran"
    (tmp_path / "planted_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = load_checkpoint(finished / "last.pt")
    state["config"]["plugin"] = "planted_plugin"
    forged(tmp_path / "planted.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    assert cli(["profile", "--checkpoint", str(tmp_path / "planted.pt"), "--out", str(tmp_path / "profile")]) == 0
    assert not marker.exists(), "the checkpoint chose code to run"
    sys.modules.pop("planted_plugin", None)


def test_a_device_this_machine_lacks_is_one_clear_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    for device in ("cuda", "cuda:99"):
        assert cli(["train", "--device", device, "--epochs", "1", "--limit-samples", "8"]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and f"--device {device}: this PyTorch" in error and "--device cpu" in error, error

# C. best.pt and last.pt agree whenever a run is killed

class Killed(BaseException):
    """A SIGKILL, as far as the run can tell: nothing after it runs."""


def test_a_kill_between_the_epoch_end_writes_leaves_best_pt_matching_the_recorded_best(finished, tmp_path, monkeypatch):
    metrics = [line.split(",") for line in (finished / "metrics.csv").read_text().splitlines()[1:]]
    assert float(metrics[1][5]) > float(metrics[0][5]), "the test needs epoch 2 to be the best"
    out = tmp_path / "run"
    real, writes = train_module.save_checkpoint, []

    def killed_at_the_fourth_write(path, state):  # epoch 1 writes two; epoch 2's second is cut
        writes.append(Path(path).name)
        if len(writes) == 4:
            raise Killed
        real(path, state)

    monkeypatch.setattr(train_module, "save_checkpoint", killed_at_the_fourth_write)
    with pytest.raises(Killed):
        train(settings(out))
    assert writes == ["best.pt", "last.pt", "best.pt", "last.pt"]
    monkeypatch.setattr(train_module, "save_checkpoint", real)
    summary = train(settings(out), resume=True)
    best = load_checkpoint(out / "best.pt")
    assert best["run"]["test_acc1"] == summary["best_test_acc1"] == float(metrics[1][5])
    assert same_weights(best["model"], load_checkpoint(finished / "best.pt")["model"])
    assert same_weights(load_checkpoint(out / "last.pt")["model"], load_checkpoint(finished / "last.pt")["model"])


def test_a_best_pt_behind_the_recorded_best_is_reconciled_on_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    resume_normally = stop_during(monkeypatch, 4)  # the first step of epoch 3
    with pytest.raises(TrainingInterrupted):
        train(settings(out, epochs=3))
    # what the old order of writes left after a kill: a recorded best that best.pt never received
    state = load_checkpoint(out / "last.pt")
    state["run"]["best_acc1"] = 0.99
    save_checkpoint(out / "last.pt", {k: v for k, v in state.items() if k not in ("format", "version", "checksum")})
    resume_normally()
    summary = train(settings(out, epochs=3), resume=True)
    assert "below the recorded best 0.9900" in capsys.readouterr().err
    assert summary["best_test_acc1"] == load_checkpoint(out / "best.pt")["run"]["test_acc1"] < 0.99


def test_temporary_files_left_by_killed_writes_are_removed_on_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    resume_normally = stop_during(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        train(settings(out))
    leftovers = [out / ".last.pt.k1ll3d.tmp", out / ".summary.json.x7.tmp"]
    leftovers[0].write_bytes(b"")
    leftovers[1].write_bytes(b'{"half')
    resume_normally()
    train(settings(out), resume=True)
    assert not any(p.exists() for p in leftovers)
    assert "removed .last.pt.k1ll3d.tmp" in capsys.readouterr().out
    assert not list(out.glob(".*.tmp"))


# D. Divergence never reaches a checkpoint; a resume may lower the learning rate

def test_weights_turning_non_finite_stop_the_run_and_keep_the_last_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    # One step an epoch; epoch 1 at the warm-up's small rate, epoch 2 at a rate whose weight decay overflows
    # float32 (AdamW multiplies by 1 - lr * weight_decay), while the loss of the step that did it was finite.
    diverging = dict(limit_samples=8, epochs=3, warmup_epochs=1, warmup_lr=1e-5, lr=1e37, weight_decay=1e3,
                     lr_update="epoch")
    with pytest.raises(NonFiniteTrainingError, match=r"the weights became NaN or inf at epoch 2, step 1; the last "
                                                     r"checkpoint, .*last.pt \(epoch 1, step 1\), is finite"):
        train(settings(out, **diverging))
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(out / name)["run"]["epoch"] == 1  # loads: finite, intact

    summary = train(settings(out, **{**diverging, "lr": 1e-3}), resume=True)
    assert summary["epochs"] == 3 and torch.isfinite(torch.cat([v.flatten().float() for v in
                                                                load_checkpoint(out / "last.pt")["model"].values()])).all()
    assert "lr: 0.001\n" in (out / "config.yaml").read_text()
    resumes = json.loads((out / "run.json").read_text())["resumes"]
    assert [(r["step"], r["changed"]) for r in resumes] == [(1, {"lr": [1e37, 1e-3]})]
    assert "resuming with lr 1e+37 -> 0.001" in capsys.readouterr().out


def test_a_resume_may_not_change_what_defines_the_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    stop_during(monkeypatch, 0)
    with pytest.raises(TrainingInterrupted):
        train(settings(out))
    before = files(out)
    with pytest.raises(ValueError, match=r"seed: 0 in the run, 7 now.*may change only device, workers, epochs"):
        train(settings(out, seed=7), resume=True)
    assert files(out) == before


# E. A full disk

class FullDisk(atomic_module._RecordingFile):
    """A file on a device with ``room`` bytes left."""

    room = 4096

    def write(self, data):
        size = memoryview(data).nbytes
        if size > self.room:
            self.error = OSError(errno.ENOSPC, "No space left on device")
            raise self.error
        type(self).room -= size
        return super().write(data)


def test_a_full_disk_is_named_with_the_file_and_the_previous_checkpoint_stays_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    first = {"model": create_model("spikformer_tiny", time_steps=1).state_dict(), "epoch": 1}
    save_checkpoint(path, first)
    before = path.read_bytes()
    monkeypatch.setattr(atomic_module, "_RecordingFile", FullDisk)
    with pytest.raises(OSError, match=f"^no space left on device while writing {re.escape(str(path))} ") as err:
        save_checkpoint(path, {**first, "epoch": 2})
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"], "no temporary file left behind"


def test_a_full_disk_while_writing_metrics_leaves_the_earlier_rows_whole(tmp_path, monkeypatch):
    from spikeformers.engine.record import MetricsLog

    log = MetricsLog(tmp_path, tensorboard=False)
    row = {"epoch": 1, "lr": 1e-3, "train_loss": 2.25, "test_acc1": 0.5}
    log.add(row)
    before = (tmp_path / "metrics.csv").read_text()
    monkeypatch.setattr(FullDisk, "room", 10)  # part of a row fits, not all of it
    monkeypatch.setattr(atomic_module, "_RecordingFile", FullDisk)
    with pytest.raises(OSError, match=f"^no space left on device while writing {re.escape(str(tmp_path / 'metrics.csv'))}"):
        log.add({**row, "epoch": 2})
    assert (tmp_path / "metrics.csv").read_text() == before and before.splitlines()[1].startswith("1,0.001,2.25,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"], "no temporary file left behind"


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazy: a failed run may hold a file open


def test_a_run_on_a_full_tmpfs_says_which_file_could_not_be_written(small_tmpfs, capsys):
    out = small_tmpfs / "run"  # its checkpoints (1.4 MB) do not fit in 1 MiB
    code = cli(["train", "--epochs", "1", "--time-steps", "1", "--limit-samples", "8", "--batch-size", "8",
                "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1, error
    assert f"no space left on device while writing {out}/" in error and ".pt" in error


# G. The neuron backend is recorded, and a resume on another warns

def test_a_resume_on_another_neuron_backend_warns_and_is_recorded(tmp_path, monkeypatch, capsys):
    from spikeformers.neurons.kernels import select_backend

    if select_backend(torch.zeros(1)) == "reference":
        pytest.skip("the C++ neuron kernel cannot be built here: a single backend")
    out = tmp_path / "run"
    monkeypatch.setenv("SPIKEFORMERS_NEURON_BACKEND", "reference")
    resume_normally = stop_during(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        train(settings(out))
    assert json.loads((out / "run.json").read_text())["neuron_backend"] == "reference"
    assert load_checkpoint(out / "last.pt")["neuron_backend"] == "reference"
    monkeypatch.delenv("SPIKEFORMERS_NEURON_BACKEND")
    resume_normally()
    capsys.readouterr()
    train(settings(out), resume=True)
    assert "trained with the 'reference' neuron backend, and this process runs 'cpu'" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["resumes"][0]["neuron_backend"] == "cpu"
