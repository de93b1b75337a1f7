"""Training configuration: one dataclass, from which the YAML recipes and the CLI flags follow.

Every field is a recipe key and a ``--flag`` (underscores become dashes), so
the two never disagree; an unknown key or flag is an error naming the
closest valid ones. Booleans are ``--flag`` / ``--no-flag``, so a flag can
switch off what a recipe switches on. ``dataset_options`` is a mapping in a
recipe and ``--dataset-option KEY=VALUE`` (repeatable) on the command line.

Every value is checked against its field's annotation and the ``range`` or
``choices`` in the field's metadata; all bad fields are named in one error.
Recipes and ``KEY=VALUE`` options are read by ``load_yaml``: plain values
only (YAML 1.2 numbers, so ``1e-3`` is a number), no tags, no aliases.

The module a config names as ``plugin`` (the user's own models or data sets)
is imported by :func:`import_plugin`, the first thing a command does.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import importlib
import math
import numbers
import re
import reprlib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parent.parent / "configs"


def _help(text: str, **extra) -> dict:
    """A field's metadata: its help text and, where they apply, ``range`` (an interval such as
    ``"[0, 1)"`` or ``"(0, inf)"``, checked for numbers), ``choices`` and ``aliases`` (more flags)."""
    return {"help": text, **extra}


@dataclass
class TrainConfig:
    # What to train on what
    model: str = field(default="spikformer_tiny", metadata=_help("registered model name (`spikeformers models`)"))
    plugin: str | None = field(default=None, metadata=_help(
        "Python module to import first, e.g. one that registers your own model or data set"))
    dataset: str = field(default="dvs_digits", metadata=_help("data set name"))
    data_root: str | None = field(default=None, metadata=_help("folder holding the data set (or its cache)"))
    dataset_options: dict = field(default_factory=dict, metadata=_help(
        "data-set options, e.g. split=braincog (flag: --dataset-option KEY=VALUE, repeatable)"))
    time_steps: int | None = field(default=None, metadata=_help(
        "time steps T (default: the model's)", range="[1, 4096]"))
    limit_samples: int | None = field(default=None, metadata=_help(
        "use only this many training and test samples (a fixed random choice): quick checks", range="[1, inf)"))
    model_options: dict = field(default_factory=dict, metadata=_help(
        "model overrides, e.g. img_size=64 (flag: --model-option KEY=VALUE, repeatable)"))

    # Neurons: every setting reaches every neuron the model builds
    neuron: str | None = field(default=None, metadata=_help(
        "neuron for every layer: lif, plif, if, eif, ... (`spikeformers neurons`)"))
    tau: float | None = field(default=None, metadata=_help(
        "membrane time constant of every neuron", range="(1, inf)"))
    v_threshold: float | None = field(default=None, metadata=_help(
        "firing threshold (not the attention neuron's)", aliases=["--threshold"]))
    attn_threshold: float | None = field(default=None, metadata=_help("threshold of the attention neuron"))
    surrogate: str | None = field(default=None, metadata=_help("surrogate gradient: sigmoid, atan, qgate, gate"))
    alpha: float | None = field(default=None, metadata=_help("surrogate sharpness", range="(0, inf)"))

    # Optimisation
    epochs: int = field(default=10, metadata=_help("epochs of the cosine schedule", range="[1, inf)"))
    cooldown_epochs: int = field(default=0, metadata=_help(
        "extra epochs at min_lr after the cosine (timm)", range="[0, inf)"))
    batch_size: int = field(default=16, metadata=_help("samples per step and process", range="[1, inf)"))
    drop_last: bool = field(default=False, metadata=_help("drop the last incomplete training batch"))
    lr: float = field(default=6e-3, metadata=_help("peak learning rate (AdamW)", range="(0, inf)"))
    lr_base_batch: int | None = field(default=None, metadata=_help(
        "scale lr by (global batch / this), as BrainCog (1024) and Meta-SpikeFormer (256) do", range="[1, inf)"))
    min_lr: float = field(default=1e-5, metadata=_help(
        "learning rate at the end of the cosine schedule", range="[0, inf)"))
    warmup_epochs: float = field(default=0.5, metadata=_help("linear warm-up length, in epochs", range="[0, inf)"))
    warmup_lr: float = field(default=1e-6, metadata=_help(
        "learning rate the warm-up starts from", range="[0, inf)"))
    lr_update: str = field(default="step", metadata=_help(
        "update the learning rate every 'step' or every 'epoch' (timm's default, the papers' recipes)",
        choices=("step", "epoch")))
    opt_eps: float = field(default=1e-8, metadata=_help("AdamW's epsilon", range="[0, inf)"))
    weight_decay: float = field(default=0.06, metadata=_help(
        "AdamW weight decay (not on biases and norms)", range="[0, inf)"))
    clip_grad: float | None = field(default=None, metadata=_help("clip the gradient norm to this value", range="(0, inf)"))
    label_smoothing: float = field(default=0.1, metadata=_help(
        "label smoothing of the cross-entropy", range="[0, 1]"))
    tet: bool = field(default=False, metadata=_help(
        "TET loss on per-step logits (Spike-driven Transformer; the model must take tet=True)"))
    tet_lamb: float = field(default=0.001, metadata=_help("weight of TET's MSE term", range="[0, inf)"))
    amp: bool = field(default=False, metadata=_help("mixed precision (autocast; bfloat16 on CPU)"))
    amp_dtype: str = field(default="auto", metadata=_help(
        "auto (float16 on CUDA, bfloat16 on CPU), bfloat16, float16", choices=("auto", "bfloat16", "float16")))
    ema: bool = field(default=False, metadata=_help("keep an exponential moving average of the weights; "
                                                      "its test accuracy is the one reported"))
    ema_decay: float = field(default=0.9998, metadata=_help(
        "decay of the weight average per step", range="[0, 1)"))
    sync_bn: bool = field(default=False, metadata=_help("synchronise batch norm across processes (torchrun)"))
    checkpoint_activations: bool = field(default=False, metadata=_help(
        "recompute the blocks and stem stages in backward: less memory, identical results "
        "(on the CPU it also releases memory, as --release-memory)"))
    release_memory: bool = field(default=False, metadata=_help(
        "CPU: give freed memory back to the system at once (glibc), so resident memory stays near the "
        "tensors' peak; steps take longer, as fresh memory costs page faults"))
    frames_on_device: str = field(default="auto", metadata=_help(
        "keep the training frames on the device as integer counts: on, off, auto (on for CUDA when they fit)",
        choices=("auto", "on", "off")))

    # Augmentation, batched on the device, one transform per sample for all its T frames
    hflip: float = field(default=0.0, metadata=_help("probability of a horizontal flip", range="[0, 1]"))
    crop_padding: int = field(default=0, metadata=_help(
        "random crop after zero padding by this many pixels", range="[0, 4096]"))
    translate: int = field(default=0, metadata=_help(
        "random shift of each training sample, in pixels (0: off)", range="[0, 4096]"))
    augment_wide: bool = field(default=False, metadata=_help(
        "Spikformer's SNNAugmentWide: one of identity, shear, translate, rotate, cutout per sample"))
    erasing: float = field(default=0.0, metadata=_help("probability of random erasing (cutout)", range="[0, 1]"))
    mixup: float = field(default=0.0, metadata=_help("mixup alpha (0: off)", range="[0, inf)"))
    cutmix: float = field(default=0.0, metadata=_help("cutmix alpha (0: off)", range="[0, inf)"))
    mixup_prob: float = field(default=1.0, metadata=_help("probability of mixing a batch", range="[0, 1]"))
    mixup_switch_prob: float = field(default=0.5, metadata=_help(
        "probability of cutmix when both are on", range="[0, 1]"))
    mixup_off_epoch: int = field(default=0, metadata=_help(
        "stop mixing from this epoch on (0: never)", range="[0, inf)"))
    event_mix: float = field(default=0.0, metadata=_help(
        "probability of EventMix on a batch (0: off)", range="[0, 1]"))

    # The run
    seed: int = field(default=0, metadata=_help(
        "random seed (weights, data order, augmentation)", range="[0, 4294967295]"))
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:1, ..."))
    workers: int = field(default=0, metadata=_help("data-loader worker processes", range="[0, 1024]"))
    save_every: int = field(default=0, metadata=_help(
        "also checkpoint every N steps (0: at epoch ends only)", range="[0, inf)"))
    out: str | None = field(default=None, metadata=_help("run folder (default: a new folder under runs_dir)"))
    runs_dir: str = field(default="runs", metadata=_help("where new run folders are made when --out is not given"))
    overwrite: bool = field(default=False, metadata=_help("allow writing into a run folder that holds a run"))

    def __post_init__(self):
        problems = field_problems(self)
        if problems:
            raise ConfigError("bad config: " + "; ".join(problems.values()), problems)

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.cooldown_epochs

    def model_overrides(self) -> dict[str, Any]:
        """The options this config passes to ``create_model``."""
        overrides: dict[str, Any] = dict(self.model_options)
        if self.time_steps is not None:
            overrides["time_steps"] = self.time_steps
        if self.neuron is not None:
            overrides["neuron"] = self.neuron
        if self.attn_threshold is not None:
            overrides["attn_threshold"] = self.attn_threshold
        if self.tet:
            overrides["tet"] = True
        neuron_kwargs = {k: getattr(self, k) for k in ("tau", "v_threshold", "surrogate", "alpha")
                         if getattr(self, k) is not None}
        if neuron_kwargs:
            overrides["neuron_kwargs"] = {**overrides.get("neuron_kwargs", {}), **neuron_kwargs}
        neuron = overrides.get("neuron")
        if neuron is not None and "T" not in overrides.get("neuron_kwargs", {}):
            from ..neurons.neuron import get_neuron_class, neuron_keywords

            if "T" in (neuron_keywords(get_neuron_class(neuron)) or ()):  # PSN, GLIF, HD-LIF: weights per step
                if "time_steps" not in overrides:
                    raise ConfigError(f"neuron {neuron!r} has weights per time step: set time_steps (the model's T)",
                                      {"time_steps": f"required by neuron {neuron!r}"})
                overrides["neuron_kwargs"] = {**overrides.get("neuron_kwargs", {}), "T": overrides["time_steps"]}
        return overrides


class ConfigError(ValueError, argparse.ArgumentTypeError):
    """A recipe or config value that cannot be used; ``problems`` maps each bad field to its message.

    Also an ``ArgumentTypeError``, so that argparse shows this message for a flag's bad value
    (``--dataset-option KEY=VALUE``) instead of its generic "invalid value"."""

    def __init__(self, message: str, problems: dict[str, str] | None = None):
        super().__init__(message)
        self.problems = dict(problems or {})


def config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


# --------------------------------------------------------------------------- checking values

# Bounded reprs in messages: a hostile value (a huge string, a deeply shared
# list) must not make the message itself huge.
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxstring, _repr.maxother = 3, 6, 6, 60, 60


def shorten(value: Any) -> str:
    """``repr(value)``, cut to a line."""
    return _repr.repr(value)


_KIND_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}


@functools.cache
def _field_kinds() -> dict[str, tuple[type, bool]]:
    """Each field's type and whether it may be None, from the annotations (strings here)."""
    kinds = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        args = typing.get_args(hint)
        optional = type(None) in args
        kinds[name] = (next(a for a in args if a is not type(None)) if args else hint, optional)
    return kinds


@functools.cache
def _interval(text: str) -> tuple[float, float, bool, bool]:
    """``"[0, 1)"`` -> ``(0, 1, True, False)``: the bounds and whether each is included."""
    match = re.fullmatch(r"([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])", text)
    if match is None:
        raise ValueError(f"bad range {text!r} in TrainConfig's metadata")
    left, low, high, right = match.groups()
    return float(low), float(high), left == "[", right == "]"


def _range_words(text: str) -> str:
    low, high, low_in, _ = _interval(text)
    return f"{'>=' if low_in else '>'} {low:g}" if math.isinf(high) else f"in {text}"


def _in_range(value: float, text: str) -> bool:
    low, high, low_in, high_in = _interval(text)
    return (low < value or (low_in and value == low)) and (value < high or (high_in and value == high))


def _type_problem(name: str, value: Any, kind: type, optional: bool) -> str:
    words = _KIND_WORDS.get(kind, kind.__name__) + (" or null" if optional else "")
    hint = ""
    if isinstance(value, str) and kind in (bool, int, float):  # "false" or "1e-3" in quotes
        try:
            read = load_yaml(value, name)
        except ValueError:
            read = None
        if isinstance(read, {bool: bool, int: int, float: numbers.Real}[kind]) and \
                (kind is bool) == isinstance(read, bool):
            hint = f" (a string: write {shorten(value.strip())[1:-1]} without quotes)"
    return f"{name} must be {words}, got {shorten(value)}{hint}"


def field_problems(cfg: TrainConfig) -> dict[str, str]:
    """What is wrong with each bad field of ``cfg`` (by name), checked against the field's annotation
    and its metadata's ``range`` (an interval such as ``"[0, 1)"``) or ``choices``. Whole numbers
    given for a float field become floats."""
    problems = {}
    for name, spec in config_fields().items():
        kind, optional = _field_kinds()[name]
        value = getattr(cfg, name)
        if value is None:
            if not optional:
                problems[name] = f"{name} must be {_KIND_WORDS.get(kind, kind.__name__)}, got null"
            continue
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if kind is int and isinstance(value, numbers.Integral) and is_number:
            value = int(value)
        elif kind is float and is_number:
            value = float(value) if not isinstance(value, numbers.Integral) or abs(value) < 2 ** 1000 else math.inf
        elif not (isinstance(value, kind) and (kind is bool) == isinstance(value, bool)):
            problems[name] = _type_problem(name, value, kind, optional)
            continue
        setattr(cfg, name, value)
        if kind is float and not math.isfinite(value):
            problems[name] = f"{name} must be a finite number, got {value}"
        elif "range" in spec.metadata and not _in_range(value, spec.metadata["range"]):
            words = f"{_KIND_WORDS[kind]} {_range_words(spec.metadata['range'])}"
            problems[name] = f"{name} must be {words}, got {shorten(value)}"
        elif "choices" in spec.metadata and value not in spec.metadata["choices"]:
            problems[name] = f"{name} must be one of {', '.join(spec.metadata['choices'])}, got {shorten(value)}"
        elif kind is dict and any(not isinstance(key, str) for key in value):
            key = next(key for key in value if not isinstance(key, str))
            problems[name] = f"{name} must map option names to values, got the key {shorten(key)}"
    return problems


def check_keys(keys, source: str) -> None:
    valid = config_fields()
    for key in keys:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: a key must be a name, got {shorten(key)}")
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"Unknown key {shorten(key)} in {source}.{hint} Valid keys: {', '.join(valid)}.")


# --------------------------------------------------------------------------- reading YAML

class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2's core schema for untagged scalars (``1e-3`` is a
    number, ``on`` and ``yes`` are strings), no aliases or anchors (one alias can stand for
    billions of nodes), no duplicate keys, and bounded nesting."""

    yaml_implicit_resolvers: dict = {}
    MAX_DEPTH = 32

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) and anchors (&name) are not allowed here: write the values out",
                event.start_mark)
        if self._depth >= self.MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {self.MAX_DEPTH} levels",
                                              event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {shorten(key_node.value)} appears twice", key_node.start_mark)
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


def _construct_int(loader: _PlainLoader, node) -> int:
    text = loader.construct_scalar(node)
    try:
        if text[:2] in ("0o", "0x"):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"{shorten(text)} is not an integer",
                                                node.start_mark) from None


_SPECIAL_FLOATS = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _construct_float(loader: _PlainLoader, node) -> float:
    text = loader.construct_scalar(node)
    if text.lower() in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text.lower()]
    try:
        return float(text)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"{shorten(text)} is not a number",
                                                node.start_mark) from None


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), integers before floats.
for _tag, _pattern, _first in (
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    ("float", r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)",
     list("-+0123456789.")),
):
    _PlainLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"), _first)
_PlainLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_PlainLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):  # explicit tags of values no option takes
    del _PlainLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]


def load_yaml(text: str, source: str) -> Any:
    """``text`` as YAML plain values (mappings, lists, strings, YAML 1.2 numbers, true/false, null),
    as recipes and ``KEY=VALUE`` options are read. Tags that name Python objects, aliases,
    anchors, duplicate keys and deep nesting are refused: any problem is one ``ConfigError``
    line naming ``source`` (and the line)."""
    try:
        return yaml.load(text, Loader=_PlainLoader)
    except yaml.MarkedYAMLError as error:
        problem = error.problem or error.context or "not valid YAML"
        tag = re.match(r"could not determine a constructor for the tag '(.*)'", problem, re.DOTALL)
        if tag:
            shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
            problem = (f"the tag {shorten(shown)} is not allowed: only plain values (numbers, strings, "
                       f"true/false, null, lists, mappings)")
        mark = error.problem_mark or error.context_mark
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: {problem.splitlines()[0][:300]}") from None
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError, RecursionError) as error:
        # a reader error (a control character), or a bad explicit !!timestamp and the like
        first = (str(error).splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"{source}: not a valid YAML value: {first}") from None


# --------------------------------------------------------------------------- recipes

# A recipe is a page of keys; anything far larger is not one.
MAX_RECIPE_BYTES = 1 << 20


def list_recipes() -> list[str]:
    """The shipped recipes, as ``family/dataset`` names."""
    return sorted(str(p.relative_to(RECIPES_DIR).with_suffix("")) for p in RECIPES_DIR.glob("*/*.yaml"))


def resolve_recipe(path: str | Path) -> Path:
    """A recipe file: a path, or a shipped recipe's name such as ``spikformer/cifar10_dvs``."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    shipped = RECIPES_DIR / Path(str(path)).with_suffix(".yaml")
    if not candidate.suffix and shipped.is_file():
        return shipped
    close = difflib.get_close_matches(str(path).removesuffix(".yaml"), list_recipes(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise FileNotFoundError(f"No recipe {path!r}: not a file, nor a shipped recipe.{hint} "
                            f"Shipped: {', '.join(list_recipes())}.")


def _recipe_values(path: Path) -> Any:
    with open(path, "rb") as file:
        data = file.read(MAX_RECIPE_BYTES + 1)
    if len(data) > MAX_RECIPE_BYTES:
        raise ConfigError(f"{path}: over {MAX_RECIPE_BYTES // 1024} KiB; a recipe is a short YAML file of keys")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); a recipe is a YAML file") from None
    return load_yaml(text, str(path))


def read_recipe(path: str | Path) -> dict[str, Any]:
    path = resolve_recipe(path)
    loaded = _recipe_values(path)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values, got {shorten(loaded)}")
    check_keys(loaded, str(path))
    return loaded


def matching_recipe(model: str, dataset: str) -> Path | None:
    """The shipped recipe for this model and data set, if there is one (not a neuron ablation's: those
    name a neuron, which the model's own recipe leaves to the model)."""
    for name in list_recipes():
        recipe = read_recipe(RECIPES_DIR / f"{name}.yaml")
        if recipe.get("model") == model and recipe.get("dataset") == dataset and "neuron" not in recipe:
            return RECIPES_DIR / f"{name}.yaml"
    return None


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A config from a YAML recipe (a path or a shipped recipe's name; optional) with ``overrides`` on top.

    A bad value is a ``ConfigError`` naming every bad field, each with where it came from:
    the recipe, or the override (``--flag``)."""
    values: dict[str, Any] = read_recipe(path) if path is not None else {}
    check_keys(overrides, "the overrides")
    for key in ("dataset_options", "model_options"):  # option mappings merge, flags win
        if key in overrides and key in values:
            overrides = {**overrides, key: {**values[key], **overrides[key]}}
    values.update(overrides)
    try:
        return TrainConfig(**values)
    except ConfigError as error:
        recipe = resolve_recipe(path) if path is not None else None
        described = {name: problem + (f" (--{name.replace('_', '-')})" if name in overrides or recipe is None
                                      else f" (in {recipe})")
                     for name, problem in error.problems.items()}
        raise ConfigError("bad config: " + "; ".join(described.values()), error.problems) from None


def import_plugin(name: str | None) -> None:
    """Import the module that registers a user's own models or data sets."""
    if name:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"Cannot import plugin {name!r} (is its folder on PYTHONPATH?): {err}") from None
