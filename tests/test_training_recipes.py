"""The papers' recipes and what the training loop does with them: YAML recipes, option flags,
the learning-rate scaling, the weight average, augmentation and mixing in the loop, AMP, TET."""

import csv
import importlib.util
import json
import subprocess
import sys

import pytest
import torch
import yaml

from spikeformers.cli import build_parser
from spikeformers.cli.train import config_from_args
from spikeformers.data.registry import dataset_options, list_datasets
from spikeformers.engine.augmentation import BatchAugment
from spikeformers.engine.checkpoint import load_checkpoint
from spikeformers.engine.config import RECIPES_DIR, TrainConfig, list_recipes, load_config, matching_recipe
from spikeformers.engine.ema import ModelEMA
from spikeformers.engine.losses import cross_entropy, tet_loss
from spikeformers.engine.train import peak_learning_rate, train
from spikeformers.models import list_models


# --------------------------------------------------------------------------- recipes

@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_is_valid_names_its_source_and_fits_its_model(name):
    text = (RECIPES_DIR / f"{name}.yaml").read_text()
    assert "Source:" in text and "reported" in text.splitlines()[0], "a recipe names its source and the paper's figure"
    cfg = load_config(name)  # unknown keys would raise here
    assert cfg.model in list_models() and cfg.dataset in list_datasets()
    assert set(cfg.dataset_options) <= set(dataset_options(cfg.dataset)), "options the data set does not take"
    assert cfg.epochs > 0 and cfg.min_lr < cfg.lr and cfg.lr_update == "epoch"
    assert matching_recipe(cfg.model, cfg.dataset) is not None


def test_recipes_cover_every_family_on_cifar10_dvs():
    dvs = {load_config(name).model for name in list_recipes() if name.endswith("/cifar10_dvs")}
    assert {"spikformer_dvs", "spike_driven_dvs_t10", "qkformer_dvs", "tim_dvs", "spikingformer_dvs",
            "sglformer_dvs"} <= dvs


def test_recipe_values_follow_the_authors_scripts():
    qk = load_config("qkformer/cifar10_dvs")
    assert (qk.lr, qk.batch_size, qk.drop_last, qk.epochs, qk.cooldown_epochs, qk.mixup_off_epoch, qk.seed) == \
        (5e-3, 16, True, 96, 10, 75, 2021)
    sdt = load_config("spike_driven/cifar10_dvs")
    assert sdt.tet and sdt.tet_lamb == 0.001 and sdt.model_overrides()["tet"] is True
    tim = load_config("tim/cifar10_dvs")
    assert tim.amp is False and peak_learning_rate(tim) == pytest.approx(5e-3 * 16 / 1024)


def test_flags_override_a_recipe_switch_booleans_off_and_merge_options():
    args = build_parser().parse_args(["train", "--config", "qkformer/cifar10_dvs", "--no-amp", "--lr", "1e-3",
                                      "--dataset-option", "split=random", "--model-option", "img_size=64"])
    cfg = config_from_args(args)
    assert cfg.amp is False and cfg.lr == 1e-3 and cfg.mixup == 0.5
    assert cfg.dataset_options == {"split": "random", "split_by": "number"}
    assert cfg.model_overrides()["img_size"] == 64


def test_unknown_recipe_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="qkformer/cifar10_dvs"):
        load_config("qkformer/cifar10dvs")


def test_model_and_dataset_alone_take_the_matching_recipe(tmp_path):
    result = subprocess.run([sys.executable, "-m", "spikeformers", "train", "--model", "qkformer_dvs",
                             "--dataset", "cifar10_dvs", "--data-root", tmp_path / "absent", "--out", tmp_path / "r"],
                            capture_output=True, text=True, timeout=3600)  # a guard against a hang only
    assert "using the recipe qkformer/cifar10_dvs.yaml" in result.stdout
    assert result.returncode == 2 and "absent" in result.stderr  # then the missing data set is named
    assert not (tmp_path / "r").exists()


def test_bad_option_values_are_refused():
    with pytest.raises(ValueError, match="lr_update must be one of step, epoch"):
        TrainConfig(lr_update="batch")
    with pytest.raises(ValueError, match="Choose mixup/cutmix or event_mix"):
        BatchAugment(TrainConfig(mixup=0.5, event_mix=1.0), 10)


# --------------------------------------------------------------------------- parts of the loop

def test_ema_is_the_decayed_average_of_the_weights_and_copies_counters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked += 3
    ema.update(model)
    assert torch.allclose(ema.module[0].weight, 0.9 * start["0.weight"] + 0.1 * (start["0.weight"] + 1.0))
    assert ema.module[1].num_batches_tracked.item() == 3
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match="ema_decay"):
        ModelEMA(model, 1.0)


def test_soft_target_cross_entropy_equals_the_hard_one_on_smoothed_one_hot_rows():
    logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    smoothed = torch.full((6, 5), 0.1 / 5).scatter_(1, labels[:, None], 0.9 + 0.1 / 5)
    torch.testing.assert_close(cross_entropy(logits, smoothed), cross_entropy(logits, labels, 0.1))
    per_step = torch.randn(3, 6, 5)
    torch.testing.assert_close(tet_loss(per_step, smoothed, lamb=0.0), tet_loss(per_step, labels, lamb=0.0))


def test_augmentation_is_a_function_of_the_step_generator_and_mixing_stops_after_its_epoch():
    cfg = TrainConfig(hflip=0.5, augment_wide=True, erasing=0.5, crop_padding=2, mixup=0.5, mixup_prob=1.0,
                      mixup_off_epoch=3, label_smoothing=0.1)
    augment = BatchAugment(cfg, num_classes=4)
    frames, labels = torch.rand(2, 6, 2, 12, 12), torch.tensor([0, 1, 2, 3, 0, 1])
    a = augment(frames, labels, 1, torch.Generator().manual_seed(7))
    b = augment(frames, labels, 1, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    mixed_frames, targets = a
    assert targets.shape == (6, 4) and torch.allclose(targets.sum(1), torch.ones(6))
    assert targets.max() < 0.9 + 0.1 / 4 - 1e-6, "epoch 1 mixes"
    # epoch 4 = timm's 0-based epoch 3 = mixup_off_epoch: smoothed one-hot rows, no mixing
    _, late = augment(frames, labels, 4, torch.Generator().manual_seed(7))
    expected = torch.full((6, 4), 0.1 / 4).scatter_(1, labels[:, None], 0.9 + 0.1 / 4)
    torch.testing.assert_close(late, expected)


# --------------------------------------------------------------------------- whole runs

def test_amp_ema_mixup_and_tet_train_together_and_are_checkpointed(tmp_path):
    # a small Spike-driven Transformer with per-step logits, on the built-in data
    cfg = TrainConfig(model="spike_driven_dvs_t10", dataset="dvs_digits", epochs=1, batch_size=8, limit_samples=32,
                      time_steps=2, tet=True, amp=True, ema=True, ema_decay=0.5, mixup=0.5, hflip=0.5,
                      augment_wide=True, lr_update="epoch", warmup_epochs=0, out=str(tmp_path / "run"),
                      model_options={"img_size": 24, "input_pool": 1, "embed_dim": 32, "depth": 1, "num_heads": 2})
    summary = train(cfg)
    assert summary["ema"] is True and 0.0 <= summary["test_acc1"] <= 1.0
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["ema"] is not None and set(state["ema"]) == set(state["model"])
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"]
               if state["model"][k].is_floating_point())
    assert "scaler" in state
    row = next(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(row["ema_test_acc1"]) == pytest.approx(summary["test_acc1"], abs=1e-6), "EMA is the reported model"
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["tet"] is True and saved["model_options"]["embed_dim"] == 32
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["ema"] is True
    if importlib.util.find_spec("tensorboard") is not None:  # the optional extra: its logs appear too
        assert any((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_a_tet_run_needs_a_model_that_returns_per_step_logits(tmp_path):
    with pytest.raises(TypeError, match="tet"):
        train(TrainConfig(model="spikformer_tiny", tet=True, epochs=1, out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_frames_on_device_and_activation_checkpointing_change_no_result(tmp_path):
    def final_weights(name, **options):
        cfg = TrainConfig(epochs=1, limit_samples=48, batch_size=16, seed=2, hflip=0.5, out=str(tmp_path / name),
                          **options)
        train(cfg)
        return load_checkpoint(tmp_path / name / "last.pt")["model"]

    plain = final_weights("plain", frames_on_device="off")
    for name, options in (("device", {"frames_on_device": "on"}), ("ckpt", {"checkpoint_activations": True})):
        other = final_weights(name, **options)
        assert all(torch.equal(plain[k], other[k]) for k in plain), name


def test_release_memory_and_checkpointing_return_freed_memory_to_the_system_on_cpu(tmp_path, monkeypatch):
    """--release-memory (and --checkpoint-activations) set glibc's fixed mmap threshold once per run."""
    import spikeformers.engine.train as engine_train

    calls = []
    real = engine_train.return_freed_memory_to_os
    monkeypatch.setattr(engine_train, "return_freed_memory_to_os", lambda: calls.append(real()))
    for name, options in (("plain", {}), ("release", {"release_memory": True})):
        train(TrainConfig(epochs=1, limit_samples=16, batch_size=16, out=str(tmp_path / name), **options))
        assert len(calls) == (name == "release"), name
    assert calls == [True]  # glibc here: applied
