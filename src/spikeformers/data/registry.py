"""Data sets by name, and their options, as the CLI and recipes select them.

A data set is registered as a class (``@register_dataset("name")``), or as a
factory function, and built as ``entry(root=..., train=..., time_steps=...,
**options)``. Its options are the other parameters of its signature, with
their defaults; a dataclass declares each as a field ``option(default,
help)``, whose one-line description ``spikeformers data options`` prints. So
an option is written once, in its class: ``create_dataset`` checks names
against the signature (a wrong one is named, with the valid ones), and the
CLI passes ``--dataset-option KEY=VALUE`` through unchanged.

A name ``PREFIX:NAME`` is a data set of another library, resolved when it is
asked for by the function registered for the prefix
(``register_dataset_prefix``): ``tonic:NMNIST`` is tonic's N-MNIST
(``spikeformers.data.tonic``). Such an entry gives its options' descriptions
as ``option_help``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any, Callable

from torch.utils.data import Dataset

_DATASETS: dict[str, Callable[..., Dataset]] = {}
_PREFIXES: dict[str, Callable[[str], Callable[..., Dataset]]] = {}
_BUILT_FROM = ("root", "train", "time_steps")


def option(default: Any, help: str) -> Any:
    """A data set's option, as a dataclass field: its default and a one-line description."""
    return dataclasses.field(default=default, metadata={"help": help})


def register_dataset(name: str):
    """Register a data set class, or a factory ``fn(train, time_steps, root, **options)``, as ``name``.

    The data set must expose ``num_classes``, ``in_channels`` and
    ``sensor_size`` (H, W), and yield ``(frames [T, C, H, W], label)``. A
    class whose data root is a parameter of another name says which in
    ``root_option`` (``DVSDigits``: its ``cache_dir``). Name the options as
    keyword parameters, so that a wrong one gets an error listing the valid
    ones (an entry with ``**options`` leaves the checking to whatever it calls).
    """

    def decorator(entry):
        _DATASETS[name] = entry
        return entry

    return decorator


def register_dataset_prefix(prefix: str, resolve: Callable[[str], Callable[..., Dataset]]):
    """Resolve names ``prefix:NAME`` with ``resolve(NAME)``, which returns the entry (as
    ``register_dataset`` takes one) or raises a ValueError naming what is wrong with NAME."""
    _PREFIXES[prefix] = resolve


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def create_dataset(name: str, train: bool, time_steps: int, root: str | None = None, **options) -> Dataset:
    """The data set ``name``; ``options`` go to its class (for example ``split='braincog'``),
    and one it does not take is an error naming the ones it does."""
    entry = _entry(name)
    accepted = _parameters(entry)
    for key in options:
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(accepted)) or "none"
            raise ValueError(f"Data set {name!r} has no option {key!r}.{hint} Its options: {known}.")
    return entry(train=train, time_steps=time_steps, **{_root_option(entry): root}, **options)


def dataset_options(name: str) -> dict:
    """The options of data set ``name`` and their defaults (what ``create_dataset`` accepts
    besides train, time_steps and root)."""
    entry = _entry(name)
    params = inspect.signature(entry).parameters
    skipped = {*_BUILT_FROM, _root_option(entry)}
    return {key: p.default for key, p in params.items() if key not in skipped and p.kind is not p.VAR_KEYWORD}


def dataset_option_help(name: str) -> dict[str, str]:
    """The one-line description of each option of data set ``name`` ('' where it has none)."""
    entry = _entry(name)
    declared = getattr(entry, "option_help", None) or (
        {f.name: f.metadata.get("help", "") for f in dataclasses.fields(entry)} if dataclasses.is_dataclass(entry)
        else {})
    return {key: declared.get(key, "") for key in dataset_options(name)}


def _entry(name: str) -> Callable[..., Dataset]:
    prefix, colon, rest = name.partition(":")
    if colon and prefix in _PREFIXES:
        if not rest:
            raise ValueError(f"Dataset {name!r} names no data set after {prefix!r}: (e.g. {prefix}:NAME)")
        return _PREFIXES[prefix](rest)
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, _DATASETS, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        others = "".join(f", or {prefix}:NAME" for prefix in sorted(_PREFIXES))
        raise ValueError(f"Unknown dataset {name!r}.{hint} Known: {', '.join(list_datasets())}{others}.")
    return _DATASETS[name]


def _root_option(entry) -> str:
    return getattr(entry, "root_option", "root")


def _parameters(entry) -> set[str] | None:
    """The option names an entry takes, or None when it forwards ``**options`` (then what it
    calls is the judge, and its TypeError names the option)."""
    params = inspect.signature(entry).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {*_BUILT_FROM, _root_option(entry)}
