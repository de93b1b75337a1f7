"""Training configuration: one dataclass, from which the YAML recipes and the CLI flags follow.

Every field is a recipe key and a ``--flag`` (underscores become dashes), so
the two never disagree; an unknown key or flag is an error naming the
closest valid ones. Booleans are ``--flag`` / ``--no-flag``, so a flag can
switch off what a recipe switches on. ``dataset_options`` is a mapping in a
recipe and ``--dataset-option KEY=VALUE`` (repeatable) on the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parent.parent / "configs"


def _help(text: str, **extra) -> dict:
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
    time_steps: int | None = field(default=None, metadata=_help("time steps T (default: the model's)"))
    limit_samples: int | None = field(default=None, metadata=_help(
        "use only this many training and test samples (a fixed random choice): quick checks"))
    model_options: dict = field(default_factory=dict, metadata=_help(
        "model overrides, e.g. img_size=64 (flag: --model-option KEY=VALUE, repeatable)"))

    # Neurons: every setting reaches every neuron the model builds
    neuron: str | None = field(default=None, metadata=_help("neuron for every layer: lif, plif, if"))
    tau: float | None = field(default=None, metadata=_help("membrane time constant of every neuron"))
    v_threshold: float | None = field(default=None, metadata=_help(
        "firing threshold (not the attention neuron's)", aliases=["--threshold"]))
    attn_threshold: float | None = field(default=None, metadata=_help("threshold of the attention neuron"))
    surrogate: str | None = field(default=None, metadata=_help("surrogate gradient: sigmoid, atan, qgate, gate"))
    alpha: float | None = field(default=None, metadata=_help("surrogate sharpness"))

    # Optimisation
    epochs: int = field(default=12, metadata=_help("epochs of the cosine schedule"))
    cooldown_epochs: int = field(default=0, metadata=_help("extra epochs at min_lr after the cosine (timm)"))
    batch_size: int = field(default=32, metadata=_help("samples per step and process"))
    drop_last: bool = field(default=False, metadata=_help("drop the last incomplete training batch"))
    lr: float = field(default=4e-3, metadata=_help("peak learning rate (AdamW)"))
    lr_base_batch: int | None = field(default=None, metadata=_help(
        "scale lr by (global batch / this), as BrainCog (1024) and Meta-SpikeFormer (256) do"))
    min_lr: float = field(default=1e-5, metadata=_help("learning rate at the end of the cosine schedule"))
    warmup_epochs: float = field(default=1.0, metadata=_help("linear warm-up length, in epochs"))
    warmup_lr: float = field(default=1e-6, metadata=_help("learning rate the warm-up starts from"))
    lr_update: str = field(default="step", metadata=_help(
        "update the learning rate every 'step' or every 'epoch' (timm's default, the papers' recipes)"))
    opt_eps: float = field(default=1e-8, metadata=_help("AdamW's epsilon"))
    weight_decay: float = field(default=0.06, metadata=_help("AdamW weight decay (not on biases and norms)"))
    clip_grad: float | None = field(default=None, metadata=_help("clip the gradient norm to this value"))
    label_smoothing: float = field(default=0.1, metadata=_help("label smoothing of the cross-entropy"))
    tet: bool = field(default=False, metadata=_help(
        "TET loss on per-step logits (Spike-driven Transformer; the model must take tet=True)"))
    tet_lamb: float = field(default=0.001, metadata=_help("weight of TET's MSE term"))
    amp: bool = field(default=False, metadata=_help("mixed precision (autocast; bfloat16 on CPU)"))
    amp_dtype: str = field(default="auto", metadata=_help("auto (float16 on CUDA, bfloat16 on CPU), bfloat16, float16"))
    ema: bool = field(default=False, metadata=_help("keep an exponential moving average of the weights; "
                                                      "its test accuracy is the one reported"))
    ema_decay: float = field(default=0.9998, metadata=_help("decay of the weight average per step"))
    sync_bn: bool = field(default=False, metadata=_help("synchronise batch norm across processes (torchrun)"))
    checkpoint_activations: bool = field(default=False, metadata=_help(
        "recompute the blocks and stem stages in backward: less memory (Spikformer-DVS: 0.63 of the tensors), identical results "
        "(on the CPU it also releases memory, as --release-memory)"))
    release_memory: bool = field(default=False, metadata=_help(
        "CPU: give freed memory back to the system at once (glibc), so resident memory stays near the "
        "tensors' peak; steps take longer, as fresh memory costs page faults"))
    frames_on_device: str = field(default="auto", metadata=_help(
        "keep the training frames on the device as integer counts: on, off, auto (on for CUDA when they fit)"))

    # Augmentation, batched on the device, one transform per sample for all its T frames
    hflip: float = field(default=0.0, metadata=_help("probability of a horizontal flip"))
    crop_padding: int = field(default=0, metadata=_help("random crop after zero padding by this many pixels"))
    translate: int = field(default=0, metadata=_help("random shift of each training sample, in pixels (0: off)"))
    augment_wide: bool = field(default=False, metadata=_help(
        "Spikformer's SNNAugmentWide: one of identity, shear, translate, rotate, cutout per sample"))
    erasing: float = field(default=0.0, metadata=_help("probability of random erasing (cutout)"))
    mixup: float = field(default=0.0, metadata=_help("mixup alpha (0: off)"))
    cutmix: float = field(default=0.0, metadata=_help("cutmix alpha (0: off)"))
    mixup_prob: float = field(default=1.0, metadata=_help("probability of mixing a batch"))
    mixup_switch_prob: float = field(default=0.5, metadata=_help("probability of cutmix when both are on"))
    mixup_off_epoch: int = field(default=0, metadata=_help("stop mixing from this epoch on (0: never)"))
    event_mix: float = field(default=0.0, metadata=_help("probability of EventMix on a batch (0: off)"))

    # The run
    seed: int = field(default=0, metadata=_help("random seed (weights, data order, augmentation)"))
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:1, ..."))
    workers: int = field(default=0, metadata=_help("data-loader worker processes"))
    save_every: int = field(default=0, metadata=_help("also checkpoint every N steps (0: at epoch ends only)"))
    out: str | None = field(default=None, metadata=_help("run folder (default: a new folder under runs_dir)"))
    runs_dir: str = field(default="runs", metadata=_help("where new run folders are made when --out is not given"))
    overwrite: bool = field(default=False, metadata=_help("allow writing into a run folder that holds a run"))

    def __post_init__(self):
        for name, allowed in (("lr_update", ("step", "epoch")), ("amp_dtype", ("auto", "bfloat16", "float16")),
                              ("frames_on_device", ("auto", "on", "off"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("dataset_options", "model_options"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping of option names to values, got {getattr(self, name)!r}")

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
        return overrides


def config_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def check_keys(keys, source: str) -> None:
    valid = config_fields()
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"Unknown key {key!r} in {source}.{hint} Valid keys: {', '.join(valid)}.")


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


def read_recipe(path: str | Path) -> dict[str, Any]:
    path = resolve_recipe(path)
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a recipe must be a mapping of keys to values")
    check_keys(loaded, str(path))
    return loaded


def matching_recipe(model: str, dataset: str) -> Path | None:
    """The shipped recipe for this model and data set, if there is one."""
    for name in list_recipes():
        recipe = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text()) or {}
        if recipe.get("model") == model and recipe.get("dataset") == dataset:
            return RECIPES_DIR / f"{name}.yaml"
    return None


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A config from a YAML recipe (a path or a shipped recipe's name; optional) with ``overrides`` on top."""
    values: dict[str, Any] = read_recipe(path) if path is not None else {}
    check_keys(overrides, "the overrides")
    for key in ("dataset_options", "model_options"):  # option mappings merge, flags win
        if key in overrides and key in values:
            overrides = {**overrides, key: {**values[key], **overrides[key]}}
    values.update(overrides)
    return TrainConfig(**values)
