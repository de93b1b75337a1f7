"""Data sets by name, as the CLI and recipes select them."""

from __future__ import annotations

import difflib
import inspect
from typing import Callable

from torch.utils.data import Dataset

_DATASETS: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str):
    """Register ``fn(train: bool, time_steps: int, root: str | None) -> Dataset``.

    The data set must expose ``num_classes``, ``in_channels`` and
    ``sensor_size`` (H, W), and yield ``(frames [T, C, H, W], label)``.
    """

    def decorator(fn):
        _DATASETS[name] = fn
        return fn

    return decorator


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def create_dataset(name: str, train: bool, time_steps: int, root: str | None = None, **options) -> Dataset:
    """The data set ``name``; ``options`` go to its factory (for example ``split='braincog'``),
    and one it does not take is an error naming the ones it does."""
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, _DATASETS, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown dataset {name!r}.{hint} Known: {', '.join(list_datasets())}.")
    factory = _DATASETS[name]
    accepted = _factory_options(factory)
    for key in options:
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(accepted)) or "none"
            raise ValueError(f"Data set {name!r} has no option {key!r}.{hint} Its options: {known}.")
    return factory(train=train, time_steps=time_steps, root=root, **options)


def _factory_options(factory) -> set[str] | None:
    """The option names a factory takes, or None when it forwards ``**options`` to a class
    (then the class's own signature is the judge and its TypeError names the option)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {"train", "time_steps", "root"}


@register_dataset("dvs_digits")
def _dvs_digits(train: bool, time_steps: int, root: str | None = None) -> Dataset:
    from .digits import DVSDigits

    return DVSDigits(train=train, time_steps=time_steps, cache_dir=root)


@register_dataset("cifar10_dvs")
def _cifar10_dvs(train: bool, time_steps: int, root: str | None = None, **options) -> Dataset:
    """CIFAR10-DVS from ``root`` (AEDAT 2.0 class folders or a SpikingJelly cache);
    options: split ('sj'), split_by ('number'), orientation, source, cache_dir, workers, seed."""
    from .cifar10_dvs import CIFAR10DVS

    return CIFAR10DVS(root, train=train, time_steps=time_steps, **options)


@register_dataset("nmnist")
def _nmnist(train: bool, time_steps: int, root: str | None = None, **options) -> Dataset:
    """N-MNIST from ``root`` (``Train``/``Test`` digit folders or a SpikingJelly cache), the official split;
    options: split_by ('number'), source, cache_dir, workers."""
    from .nmnist import NMNIST

    return NMNIST(root, train=train, time_steps=time_steps, **options)


@register_dataset("ncaltech101")
def _ncaltech101(train: bool, time_steps: int, root: str | None = None, **options) -> Dataset:
    """N-Caltech101 from ``root`` (class folders of .bin), 180x240; options: split ('sj'), split_by,
    include_background, cache_dir, workers, seed."""
    from .ncaltech101 import NCaltech101

    return NCaltech101(root, train=train, time_steps=time_steps, **options)
