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
    Name the options as keyword-only parameters, so that a wrong one gets an
    error listing the valid ones (a factory with ``**options`` leaves the
    checking to whatever it calls).
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


def dataset_options(name: str) -> dict:
    """The options of data set ``name`` and their defaults (what ``create_dataset`` accepts
    besides train, time_steps and root)."""
    if name not in _DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known: {', '.join(list_datasets())}.")
    params = inspect.signature(_DATASETS[name]).parameters
    return {key: p.default for key, p in params.items()
            if key not in ("train", "time_steps", "root") and p.kind is not p.VAR_KEYWORD}


def _factory_options(factory) -> set[str] | None:
    """The option names a factory takes, or None when it forwards ``**options`` to a class
    (then the class's own signature is the judge and its TypeError names the option)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {"train", "time_steps", "root"}


# Each factory names its options (keyword-only, with the data set's defaults), so that
# ``create_dataset`` can name a wrong one and list the valid ones; the data
# set modules are imported inside, when the data set is built.

@register_dataset("dvs_digits")
def _dvs_digits(train: bool, time_steps: int, root: str | None = None, *,
                sensor_size: tuple[int, int] = (24, 24), seed: int = 0) -> Dataset:
    """The built-in DVSDigits (sklearn digits through the event emulator); ``root``, when given,
    keeps the emulated recordings on disk."""
    from .digits import DVSDigits

    return DVSDigits(train=train, time_steps=time_steps, sensor_size=sensor_size, seed=seed, cache_dir=root)


@register_dataset("cifar10_dvs")
def _cifar10_dvs(train: bool, time_steps: int, root: str | None = None, *, split: str = "sj",
                 split_by: str = "number", orientation: str = "spikingjelly", source: str = "auto",
                 cache_dir=None, workers: int | None = None, seed: int = 0, train_fraction: float = 0.9,
                 braincog_train: int = 900, tebn_test: int = 100, resize=None, resize_mode: str = "bilinear",
                 expected_per_class: int | None = 1000) -> Dataset:
    """CIFAR10-DVS from ``root`` (AEDAT 2.0 class folders or a SpikingJelly cache)."""
    from .cifar10_dvs import CIFAR10DVS

    return CIFAR10DVS(root, train=train, time_steps=time_steps, split=split, split_by=split_by,
                      orientation=orientation, source=source, cache_dir=cache_dir, workers=workers, seed=seed,
                      train_fraction=train_fraction, braincog_train=braincog_train, tebn_test=tebn_test,
                      resize=resize, resize_mode=resize_mode, expected_per_class=expected_per_class)


@register_dataset("dvs_gesture")
def _dvs_gesture(train: bool, time_steps: int, root: str | None = None, *, split: str = "official",
                 split_by: str = "number", source: str = "auto", cache_dir=None, workers: int | None = None,
                 resize=None, resize_mode: str = "bilinear", expected_samples: int | None | bool = True) -> Dataset:
    """DVS128 Gesture from ``root`` (the extracted DvsGesture.tar.gz or a SpikingJelly cache), official split."""
    from .dvs_gesture import DVSGesture

    return DVSGesture(root, train=train, time_steps=time_steps, split=split, split_by=split_by, source=source,
                      cache_dir=cache_dir, workers=workers, resize=resize, resize_mode=resize_mode,
                      expected_samples=expected_samples)


@register_dataset("nmnist")
def _nmnist(train: bool, time_steps: int, root: str | None = None, *, split: str = "official",
            split_by: str = "number", source: str = "auto", cache_dir=None, workers: int | None = None,
            resize=None, resize_mode: str = "bilinear", expected_recordings: int | None | bool = True) -> Dataset:
    """N-MNIST from ``root`` (``Train``/``Test`` digit folders or a SpikingJelly cache), the official split."""
    from .nmnist import NMNIST

    return NMNIST(root, train=train, time_steps=time_steps, split=split, split_by=split_by, source=source,
                  cache_dir=cache_dir, workers=workers, resize=resize, resize_mode=resize_mode,
                  expected_recordings=expected_recordings)


@register_dataset("ncaltech101")
def _ncaltech101(train: bool, time_steps: int, root: str | None = None, *, split: str = "sj",
                 split_by: str = "number", include_background: bool = True, cache_dir=None,
                 workers: int | None = None, seed: int = 0, train_fraction: float = 0.9, resize=None,
                 resize_mode: str = "bilinear") -> Dataset:
    """N-Caltech101 from ``root`` (class folders of .bin), 180x240."""
    from .ncaltech101 import NCaltech101

    return NCaltech101(root, train=train, time_steps=time_steps, split=split, split_by=split_by,
                       include_background=include_background, cache_dir=cache_dir, workers=workers, seed=seed,
                       train_fraction=train_fraction, resize=resize, resize_mode=resize_mode)


@register_dataset("cifar10")
def _cifar10(train: bool, time_steps: int, root: str | None = None, *, mean=None, std=None,
             randaugment: str | None = None, color_jitter: float | None = None,
             randaugment_interpolation: str = "random") -> Dataset:
    """CIFAR-10 from the official Python-pickle archive under ``root``; images repeated over T."""
    from .cifar import CIFAR10

    return CIFAR10(root, train=train, time_steps=time_steps, mean=mean, std=std, randaugment=randaugment,
                   color_jitter=color_jitter, randaugment_interpolation=randaugment_interpolation)


@register_dataset("cifar100")
def _cifar100(train: bool, time_steps: int, root: str | None = None, *, mean=None, std=None,
              randaugment: str | None = None, color_jitter: float | None = None,
              randaugment_interpolation: str = "random") -> Dataset:
    """CIFAR-100 (fine labels) from the official Python-pickle archive under ``root``; images repeated over T."""
    from .cifar import CIFAR100

    return CIFAR100(root, train=train, time_steps=time_steps, mean=mean, std=std, randaugment=randaugment,
                    color_jitter=color_jitter, randaugment_interpolation=randaugment_interpolation)


@register_dataset("imagenet")
def _imagenet(train: bool, time_steps: int, root: str | None = None, *, image_size: int = 224,
              crop_pct: float = 0.875, interpolation: str = "bicubic", scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
              hflip: float = 0.5, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
              expected_classes: int | None = 1000, randaugment: str | None = None,
              color_jitter: float | None = None, randaugment_interpolation: str = "random") -> Dataset:
    """ImageNet from ``root/train/<class>/`` and ``root/val/<class>/`` (needs Pillow); images repeated over T."""
    from .imagenet import ImageNet

    return ImageNet(root, train=train, time_steps=time_steps, image_size=image_size, crop_pct=crop_pct,
                    interpolation=interpolation, scale=tuple(scale), ratio=tuple(ratio), hflip=hflip,
                    mean=tuple(mean), std=tuple(std), expected_classes=expected_classes, randaugment=randaugment,
                    color_jitter=color_jitter, randaugment_interpolation=randaugment_interpolation)
