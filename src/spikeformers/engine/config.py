"""Training configuration: one dataclass, from which the YAML recipes and the CLI flags follow.

Every field is a recipe key and a ``--flag`` (underscores become dashes), so
the two never disagree; an unknown key or flag is an error naming the
closest valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrainConfig:
    model: str = field(default="spikformer_tiny", metadata={"help": "registered model name (`spikeformers models`)"})
    plugin: str | None = field(default=None, metadata={
        "help": "Python module to import first, e.g. one that registers your own model or data set"})
    dataset: str = field(default="dvs_digits", metadata={"help": "data set name"})
    data_root: str | None = field(default=None, metadata={"help": "folder holding the data set (or its cache)"})
    epochs: int = field(default=12, metadata={"help": "training epochs"})
    batch_size: int = field(default=32, metadata={"help": "samples per step"})
    lr: float = field(default=4e-3, metadata={"help": "peak learning rate (AdamW)"})
    min_lr: float = field(default=1e-5, metadata={"help": "learning rate at the end of the cosine schedule"})
    warmup_epochs: float = field(default=1.0, metadata={"help": "linear warm-up length, in epochs"})
    weight_decay: float = field(default=0.06, metadata={"help": "AdamW weight decay (not on biases and norms)"})
    label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing of the cross-entropy"})
    translate: int = field(default=0, metadata={"help": "random shift of each training sample, in pixels (0: off)"})
    time_steps: int | None = field(default=None, metadata={"help": "time steps T (default: the model's)"})
    neuron: str | None = field(default=None, metadata={"help": "neuron for every layer: lif, plif, if"})
    tau: float | None = field(default=None, metadata={"help": "membrane time constant of every neuron"})
    v_threshold: float | None = field(default=None, metadata={"help": "firing threshold (not the attention neuron's)"})
    attn_threshold: float | None = field(default=None, metadata={"help": "threshold of the attention neuron"})
    surrogate: str | None = field(default=None, metadata={"help": "surrogate gradient: sigmoid, atan, qgate, gate"})
    alpha: float | None = field(default=None, metadata={"help": "surrogate sharpness"})
    seed: int = field(default=0, metadata={"help": "random seed (weights, data order)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, ..."})
    workers: int = field(default=0, metadata={"help": "data-loader worker processes"})
    save_every: int = field(default=0, metadata={"help": "also checkpoint every N steps (0: at epoch ends only)"})
    out: str | None = field(default=None, metadata={"help": "run folder (default: a new folder under runs/)"})
    overwrite: bool = field(default=False, metadata={"help": "allow writing into a run folder that holds a run"})

    def model_overrides(self) -> dict[str, Any]:
        """The options this config passes to ``create_model``."""
        overrides: dict[str, Any] = {}
        if self.time_steps is not None:
            overrides["time_steps"] = self.time_steps
        if self.neuron is not None:
            overrides["neuron"] = self.neuron
        if self.attn_threshold is not None:
            overrides["attn_threshold"] = self.attn_threshold
        neuron_kwargs = {k: getattr(self, k) for k in ("tau", "v_threshold", "surrogate", "alpha")
                         if getattr(self, k) is not None}
        if neuron_kwargs:
            overrides["neuron_kwargs"] = neuron_kwargs
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


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A config from a YAML recipe (optional) with ``overrides`` on top."""
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a recipe must be a mapping of keys to values")
        check_keys(loaded, str(path))
        values.update(loaded)
    check_keys(overrides, "the overrides")
    values.update(overrides)
    return TrainConfig(**values)
