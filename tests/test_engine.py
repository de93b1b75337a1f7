"""Engine pieces: the config and its flags, the learning-rate schedule, checkpoints."""

import math
import pickle

import pytest
import torch

from spikeformers.cli import build_parser
from spikeformers.engine.checkpoint import load_checkpoint, save_checkpoint
from spikeformers.engine.config import TrainConfig, load_config
from spikeformers.engine.schedule import learning_rate, schedule_time
from spikeformers.engine.state import RunState
from spikeformers.engine.train import param_groups
from spikeformers.models import create_model
from spikeformers.neurons import PLIF


def test_every_config_field_is_a_flag_and_flags_reach_the_config():
    args = build_parser().parse_args(
        ["train", "--epochs", "3", "--lr", "0.01", "--neuron", "plif", "--tau", "3.0", "--threshold", "0.7",
         "--surrogate", "atan", "--alpha", "2.5", "--attn-threshold", "0.4", "--time-steps", "5", "--overwrite"])
    overrides = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None}
    cfg = load_config(None, **overrides)
    assert (cfg.epochs, cfg.lr, cfg.time_steps, cfg.overwrite) == (3, 0.01, 5, True)
    model = create_model(cfg.model, **cfg.model_overrides())
    neurons = [m for m in model.modules() if isinstance(m, PLIF)]
    assert neurons and all(n.tau == 3.0 and n.surrogate == "atan" and n.alpha == 2.5 for n in neurons)
    assert {n.v_threshold for n in neurons} == {0.7, 0.4}
    assert model.time_steps == 5


def test_recipe_values_are_overridden_by_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 7\nlr: 0.005\n")
    cfg = load_config(recipe, lr=0.1)
    assert (cfg.epochs, cfg.lr) == (7, 0.1)


def test_unknown_recipe_key_names_the_closest(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epoch: 7\n")
    with pytest.raises(ValueError, match="Unknown key 'epoch'.*Did you mean epochs"):
        load_config(recipe)


def test_learning_rate_follows_timm_cosine_with_warmup_from_warmup_lr_and_cooldown_at_min():
    # The Spikformer CIFAR10-DVS recipe: 96 epochs + 10 cool-down, warm-up 10 from 1e-5, lr 1e-3, min 1e-5.
    def lr_at(t):
        return learning_rate(t, epochs=96, warmup_epochs=10, lr=1e-3, min_lr=1e-5, warmup_lr=1e-5)

    assert lr_at(0) == pytest.approx(1e-5)
    assert lr_at(5) == pytest.approx(1e-5 + 5 * (1e-3 - 1e-5) / 10)
    # timm counts the cosine from the start of training (no warm-up prefix), so it resumes below the peak
    assert lr_at(10) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 10 / 96)))
    assert lr_at(10) < 1e-3
    assert lr_at(48) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert all(lr_at(t) == 1e-5 for t in range(96, 106))  # cool-down
    decay = [lr_at(t) for t in range(10, 97)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_schedule_time_counts_epochs_or_fractions_of_them():
    assert schedule_time(epoch=3, batch=5, steps_per_epoch=10, per_step=False) == 2
    assert schedule_time(epoch=3, batch=5, steps_per_epoch=10, per_step=True) == 2.5


def test_weight_decay_skips_biases_norms_and_scalars():
    model = create_model("spikformer_tiny", neuron="plif")
    decay, no_decay = param_groups(model, 0.06)
    assert decay["weight_decay"] == 0.06 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_checkpoint_round_trip(tmp_path):
    model = create_model("spikformer_tiny")
    save_checkpoint(tmp_path / "c.pt", {"model_name": "spikformer_tiny", "model": model.state_dict(), "epoch": 3})
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 3
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("content,match", [
    (lambda p: torch.save({"state_dict": {}}, p), "not a spikeformers checkpoint"),
    (lambda p: p.write_bytes(pickle.dumps(Payload(), protocol=2)), "not a readable checkpoint"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "not a readable checkpoint"),
])
def test_foreign_or_corrupt_checkpoints_are_refused_with_the_path(tmp_path, capsys, content, match):
    path = tmp_path / "other.pt"
    content(path)
    with pytest.raises(ValueError, match=match) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    assert "pickled code ran" not in capsys.readouterr().out


def test_a_run_state_saved_mid_epoch_by_0_1_0_continues_its_epochs_sums():
    # the "run" entry of a 0.1.0 last.pt written at batch 3 of epoch 2: no test_acc1 yet in the record
    saved = {"epoch": 1, "batch": 3, "step": 9, "best_acc1": 0.4, "wall_s": 12.5, "train_samples": 96,
             "train_seconds": 6.0, "loss_sum": 6.9, "correct": 7, "seen": 24, "epoch_s": 1.5}
    run = RunState.from_dict(saved)
    assert (run.epoch, run.batch, run.step, run.best_acc1, run.test_acc1) == (1, 3, 9, 0.4, None)
    run.meter.start()
    run.meter.add(2.0, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1]))
    again = run.to_dict()
    assert set(saved) <= set(again)
    assert (again["loss_sum"], again["correct"], again["seen"]) == (pytest.approx(10.9), 8, 26)
    assert again["epoch_s"] >= 1.5 and again["wall_s"] >= 12.5
    assert run.finish_epoch(2, 0.45, samples=32, seconds=2.0) is True  # better than 0.4
    assert (run.epoch, run.batch, run.best_acc1, run.train_samples, run.meter.seen) == (2, 0, 0.45, 128, 0)
    assert run.finish_epoch(3, 0.3, samples=32, seconds=2.0) is False and run.best_acc1 == 0.45
