"""The model registry: ``@register_model``, ``register_configs``, ``create_model(name, **overrides)``, ``list_models``."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from .base import to_pair

_MODELS: dict[str, Callable[..., nn.Module]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What the model zoo table says of a registered configuration."""

    paper: str = ""  # e.g. "Spikformer (ICLR 2023)"
    dataset: str = ""  # the data set the configuration is for
    reported: str = ""  # top-1 the paper reports, e.g. "80.9"
    source: str = ""  # where that number is published


def register_model(fn: Callable[..., nn.Module] | None = None, *, model_class: type[nn.Module] | None = None,
                   **info: str):
    """Register a factory ``fn(**overrides) -> nn.Module`` under its function name.

    Use as ``@register_model`` or ``@register_model(model_class=Cls, paper=..., dataset=...,
    reported=..., source=...)``; with a class, ``create_model`` checks overrides against its
    constructor; the rest fills the model zoo table (:class:`ModelInfo`).
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            raise ValueError(f"A model named {fn.__name__!r} is already registered")
        fn.model_class = model_class
        fn.info = ModelInfo(**info)
        _MODELS[fn.__name__] = fn
        return fn

    return decorator if fn is None else decorator(fn)


class Config(NamedTuple):
    """One published configuration, a row of its family's table (timm's ``model_args`` and what the zoo
    table says of it)."""

    args: dict[str, Any]  # the model's arguments
    dataset: str  # the data set the configuration is for
    reported: str = ""  # top-1 (%) its paper or authors report
    source: str = ""  # where that number is published
    note: str = ""  # anything else its one-line description should say
    paper: str = ""  # when not the family's


def register_configs(model_class: type[nn.Module], paper: str, configs: dict[str, Config]) -> None:
    """Register each row of a family's table under its name: ``create_model(name, **overrides)`` builds
    ``model_class(**{**row.args, **overrides})``."""
    defaults = {name: p.default for name, p in inspect.signature(model_class).parameters.items()}
    for name, row in configs.items():
        args = {**defaults, **row.args}
        reported = f", {row.reported}% top-1" if row.reported else ""
        description = (f"{row.dataset}, T={args['time_steps']}, {'x'.join(map(str, to_pair(args['img_size'])))}: "
                       f"{row.paper or paper}{reported}{'; ' + row.note if row.note else ''}")
        register_model(_factory(model_class, name, row.args, description), model_class=model_class,
                       paper=row.paper or paper, dataset=row.dataset, reported=row.reported, source=row.source)


def _factory(model_class: type[nn.Module], name: str, args: dict[str, Any], description: str) -> Callable[..., nn.Module]:
    def create(**overrides: Any) -> nn.Module:
        return model_class(**{**args, **overrides})

    create.__name__ = create.__qualname__ = name
    create.__module__ = model_class.__module__
    create.__doc__ = description
    return create


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``'spikformer*'``)."""
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def model_entry(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.4)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} See `spikeformers models` for all {len(_MODELS)}.")
    return _MODELS[name]


def create_model(name: str, checkpoint_path: str | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model; ``overrides`` replace its configuration's values.

    Overrides are checked against the model class's constructor, so a typo
    (``embed_dims=``) is an error naming the closest valid option rather than
    a silently ignored keyword. ``checkpoint_path`` loads weights: this
    library's checkpoints and safetensors files, or the authors' checkpoints
    (their key names are converted; see ``models/checkpoints.py``).
    """
    fn = model_entry(name)
    cls = getattr(fn, "model_class", None)
    if cls is not None:
        valid = [p for p in inspect.signature(cls).parameters if p != "self"]
        for key in overrides:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise TypeError(f"{name} has no option {key!r}.{hint} Options: {', '.join(valid)}.")
    model = fn(**overrides)
    model.model_name = name
    if checkpoint_path is not None:
        from .checkpoints import load_weights

        load_weights(model, checkpoint_path)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shape_only(name: str) -> nn.Module:
    """Registered model ``name`` built on PyTorch's meta device: its structure and tensor shapes (so
    its parameter count) without memory or initialisation, in milliseconds even for ImageNet sizes."""
    with torch.device("meta"):
        return _MODELS[name]()


def zoo_table(pattern: str = "*") -> str:
    """The model zoo as a Markdown table, built from the registry (the README's table is this)."""
    rows = ["| model | paper | data set | T | input | parameters | reported top-1 (%) | source |",
            "|---|---|---|---|---|---|---|---|"]
    for name in list_models(pattern):
        fn = _MODELS[name]
        model = shape_only(name)
        size = "x".join(map(str, getattr(model, "img_size", ())))
        info = fn.info
        rows.append(f"| `{name}` | {info.paper} | {info.dataset} | {getattr(model, 'time_steps', '')} | "
                    f"{getattr(model, 'in_channels', '')}x{size} | {count_parameters(model):,} | "
                    f"{info.reported or '-'} | {info.source or '-'} |")
    return "\n".join(rows)
