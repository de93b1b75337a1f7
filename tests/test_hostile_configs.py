"""Hostile recipes, flags and data-set options (issue 16, item 8): each is refused with one
clear line naming the file, the field or the option, before any work starts; plain values
are read as YAML 1.2 reads them."""

import math
import time
import typing

import pytest

from spikeformers.cli import build_parser, main
from spikeformers.cli.data import parse_options
from spikeformers.cli.train import config_from_args
from spikeformers.data.registry import create_dataset
from spikeformers.engine.config import (ConfigError, TrainConfig, config_fields, load_config, load_yaml,
                                        read_recipe)


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Run where a run folder made by mistake (a bad value accepted) lands in tmp_path."""
    monkeypatch.chdir(tmp_path)


def recipe(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def train_error(capsys, *argv):
    """``spikeformers train ARGV``'s exit code and its stderr, which must be one line."""
    code = main(["train", *map(str, argv)])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return code, err


# --------------------------------------------------------------------------- YAML that is not plain values

@pytest.mark.parametrize("text", [
    "epochs: !!python/object/apply:os.system ['echo owned']\n",
    "model: !!python/name:os.system\n",
    "dataset_options: {split: !!python/object/new:str [x]}\n",
])
def test_python_tags_are_one_line_naming_the_file_and_the_tag(tmp_path, capsys, text):
    path = recipe(tmp_path, text)
    code, err = train_error(capsys, "--config", path)
    assert code == 2 and f"{path}, line 1: the tag '!!python/" in err and "not allowed" in err
    assert "owned" not in err


def test_an_alias_bomb_is_refused_at_the_first_alias_without_expanding(tmp_path, capsys):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(3)]
    path = recipe(tmp_path, "\n".join(levels) + "\nepochs: *d\n")  # 9**4 leaves behind 'epochs'
    started = time.perf_counter()
    code, err = train_error(capsys, "--config", path)
    assert code == 2 and f"{path}, line 1: aliases (*name) and anchors (&name) are not allowed" in err
    assert len(err) < 300 and time.perf_counter() - started < 60  # bounded: no expansion, no huge message


@pytest.mark.parametrize("text, problem", [
    ("epochs: 3\nepochs: 5\n", "line 2: the key 'epochs' appears twice"),
    ("model_options: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 32 levels"),
    ("lr: [1\n", "line 2: expected ',' or ']'"),
    ("- epochs\n- 3\n", "a recipe must be a mapping of keys to values"),
    ("seed: !!timestamp 2001-12-14\n", "the tag '!!timestamp' is not allowed"),
    ("seed: !!int 12abc\n", "line 1: '12abc' is not an integer"),
    ("3: epochs\n", "a key must be a name, got 3"),
    ("model: \x07\n", "not a valid YAML value"),
])
def test_malformed_recipes_are_one_line_naming_the_file(tmp_path, capsys, text, problem):
    path = recipe(tmp_path, text)
    code, err = train_error(capsys, "--config", path)
    assert code == 2 and str(path) in err and problem in err


def test_a_recipe_that_is_not_text_or_far_too_long_is_refused(tmp_path, capsys):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"epochs: 3\n\xff\xfe\n")
    assert train_error(capsys, "--config", binary) == (2, f"spikeformers train: error: {binary}: not UTF-8 "
                                                         f"text (byte 10); a recipe is a YAML file\n")
    huge = recipe(tmp_path, "# padding\n" * 200_000 + "epochs: 3\n", "huge.yaml")
    code, err = train_error(capsys, "--config", huge)
    assert code == 2 and "over 1024 KiB" in err


# --------------------------------------------------------------------------- YAML 1.2 values

def test_numbers_are_read_as_yaml_1_2_numbers_in_recipes_and_options(tmp_path):
    path = recipe(tmp_path, "lr: 1e-3\nmin_lr: 5E-6\nwarmup_lr: .5e-7\nweight_decay: 0\nseed: 0x10\n"
                            "dataset_options: {sensor_size: [2e1, 020], seed: 0o7}\n")
    values = read_recipe(path)
    assert values["lr"] == 1e-3 and values["min_lr"] == 5e-6 and values["warmup_lr"] == 0.5e-7
    assert values["seed"] == 16 and values["dataset_options"] == {"sensor_size": [20.0, 20], "seed": 7}
    cfg = load_config(path, dataset_options={})
    assert isinstance(cfg.lr, float) and isinstance(cfg.weight_decay, float) and cfg.weight_decay == 0.0
    args = build_parser().parse_args(["train", "--dataset-option", "x=1e-3", "--model-option", "drop=2.5E-1"])
    assert args.dataset_options == [("x", 1e-3)] and args.model_options == [("drop", 0.25)]
    assert parse_options(["x=1e-3", "resize=[64, 64]", "name=on"]) == {"x": 1e-3, "resize": [64, 64], "name": "on"}


def test_yaml_1_1_booleans_and_dates_stay_strings():
    values = load_yaml("a: on\nb: off\nc: yes\nd: No\ne: 2001-12-14\nf: 1_000\ng: 1:20\nh: true\ni: ~\n", "x")
    assert values == {"a": "on", "b": "off", "c": "yes", "d": "No", "e": "2001-12-14", "f": "1_000", "g": "1:20",
                      "h": True, "i": None}
    assert load_yaml("[.inf, -.Inf, .NaN]", "x")[:2] == [math.inf, -math.inf] and math.isnan(load_yaml(".nan", "x"))
    assert TrainConfig(**load_yaml("frames_on_device: off", "x")).frames_on_device == "off"


def test_a_bad_option_value_on_the_command_line_names_the_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset-option", "x=!!python/name:os.system"])
    error_line, hint = capsys.readouterr().err.splitlines()[-2:]
    assert hint == "see `spikeformers train --help`"
    assert error_line == (
        "spikeformers train: error: argument --dataset-option: the option x, line 1: the tag "
        "'!!python/name:os.system' is not allowed: only plain values (numbers, strings, true/false, null, lists, "
        "mappings)")
    with pytest.raises(ConfigError, match="--dataset-option sensor_size, line 1: aliases"):
        parse_options(["sensor_size=[&a 1, *a]"])


# --------------------------------------------------------------------------- field values

def test_the_issue_s_bad_values_are_refused_with_one_line_naming_the_field(tmp_path, capsys):
    for text, expected in [
        ("epochs: -3\n", "epochs must be an integer >= 1, got -3"),
        ("label_smoothing: 5\n", "label_smoothing must be a number in [0, 1], got 5.0"),
        ('amp: "false"\n', "amp must be true or false, got 'false' (a string: write false without quotes)"),
        ("lr: '1e-3'\n", "lr must be a number, got '1e-3' (a string: write 1e-3 without quotes)"),
    ]:
        path = recipe(tmp_path, text)
        code, err = train_error(capsys, "--config", path)
        assert code == 2 and f"{expected} (in {path})" in err, err


def test_every_bad_field_is_named_in_one_message_with_where_it_came_from(tmp_path):
    path = recipe(tmp_path, "epochs: 0\nbatch_size: 2.5\nlr: .nan\nlr_update: batch\nmodel_options: {1: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ema_decay=1.0, amp="yes")
    error = info.value
    assert set(error.problems) == {"epochs", "batch_size", "lr", "lr_update", "model_options", "ema_decay", "amp"}
    message = str(error)
    assert "\n" not in message
    for part in (f"epochs must be an integer >= 1, got 0 (in {path})", f"batch_size must be an integer, got 2.5 "
                 f"(in {path})", f"lr must be a finite number, got nan (in {path})",
                 f"lr_update must be one of step, epoch, got 'batch' (in {path})",
                 "model_options must map option names to values, got the key 1",
                 "ema_decay must be a number in [0, 1), got 1.0 (--ema-decay)",
                 "amp must be true or false, got 'yes' (--amp)"):
        assert part in message


def wrong_type(kind):
    return 5 if kind is str else [1] if kind is dict else "x"


@pytest.mark.parametrize("name", list(config_fields()))
def test_every_field_refuses_a_value_of_the_wrong_type(name):
    hint = typing.get_type_hints(TrainConfig)[name]
    kind = next(a for a in typing.get_args(hint) or (hint,) if a is not type(None))
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{name: wrong_type(kind)})
    assert list(info.value.problems) == [name] and str(info.value).startswith(f"bad config: {name} must be")
    if type(None) in typing.get_args(hint):
        assert getattr(TrainConfig(**{name: None}), name) is None
    else:
        with pytest.raises(ConfigError, match=f"{name} must be .*, got null"):
            TrainConfig(**{name: None})


RANGED = [(name, spec.metadata["range"]) for name, spec in config_fields().items() if "range" in spec.metadata]


@pytest.mark.parametrize("name, interval", RANGED)
def test_every_range_in_the_field_table_is_enforced_at_both_ends(name, interval):
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    integer = typing.get_type_hints(TrainConfig)[name] in (int, int | None)
    step = 1 if integer else 1e-9
    cast = int if integer else float
    inside_low = cast(low if interval[0] == "[" else low + step)
    assert getattr(TrainConfig(**{name: inside_low}), name) == inside_low
    with pytest.raises(ConfigError, match=f"^bad config: {name} must be "):
        TrainConfig(**{name: cast(inside_low - step)})
    if math.isfinite(high):
        inside_high = cast(high if interval[-1] == "]" else high - step)
        assert getattr(TrainConfig(**{name: inside_high}), name) == inside_high
        with pytest.raises(ConfigError, match=f"^bad config: {name} must be "):
            TrainConfig(**{name: cast(inside_high + step)})


def test_whole_numbers_for_float_fields_become_floats_and_flags_still_follow_the_fields():
    cfg = TrainConfig(lr=1, label_smoothing=0)
    assert type(cfg.lr) is float and type(cfg.label_smoothing) is float
    cfg = config_from_args(build_parser().parse_args(["train", "--epochs", "2", "--lr", "1e-3", "--no-amp"]))
    assert (cfg.epochs, cfg.lr, cfg.amp) == (2, 1e-3, False)


def test_bad_flag_values_exit_2_naming_the_flag(capsys):
    code, err = train_error(capsys, "--epochs", "-3", "--label-smoothing", "5")
    assert code == 2 and "epochs must be an integer >= 1, got -3 (--epochs)" in err
    assert "label_smoothing must be a number in [0, 1], got 5.0 (--label-smoothing)" in err


# --------------------------------------------------------------------------- data-set options

def test_an_implausible_sensor_is_refused_before_anything_is_allocated(capsys):
    with pytest.raises(ValueError, match=r"dvs_digits: sensor_size must be between 4x4 and 128x128 .* got "
                                         r"100000x100000"):
        create_dataset("dvs_digits", train=True, time_steps=4, sensor_size=[100000, 100000])
    for bad, shown in ((5, "5"), ("24x24", "'24x24'"), ([24, 24.5], r"\[24, 24.5\]"), ([True, 24], r"\[True, 24\]")):
        with pytest.raises(ValueError, match=rf"sensor_size must be \(H, W\), two integers; got {shown}"):
            create_dataset("dvs_digits", train=True, time_steps=4, sensor_size=bad)
    with pytest.raises(ValueError, match="dvs_digits: seed must be an integer >= 0; got -1"):
        create_dataset("dvs_digits", train=True, time_steps=4, seed=-1)
    code, err = train_error(capsys, "--dataset-option", "sensor_size=[100000, 100000]")
    assert code == 2 and "got 100000x100000" in err
