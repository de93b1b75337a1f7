"""How a trained model's input is made from a recording or an image: the settings its data set used.

A run's checkpoint stores them (``"preprocessing"``, a plain dict); an ONNX
file carries them in its metadata; a checkpoint written before they were
stored has them rebuilt from its config (the data set's name and options)
and the model (T, channels, input size). :meth:`Preprocessing.frames` then
turns one file into the model's ``[T, C, H, W]`` input exactly as the data
set served its samples: an event recording is read (format detected), framed
with ``split_by`` on the sensor, and resized; an image is resized, centre
cropped, normalised and repeated T times (direct encoding).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

KINDS = ("events", "image")


@dataclass(frozen=True)
class Preprocessing:
    """The input a model was trained on, and how to make it from a file (module docstring).

    ``input_size`` is the model's ``(H, W)``; for event data ``sensor_size`` is the
    recording's, resized to ``input_size`` with ``resize_mode`` when they differ.
    """

    kind: str
    time_steps: int
    channels: int
    input_size: tuple[int, int]
    sensor_size: tuple[int, int] | None = None
    split_by: str = "number"
    resize_mode: str = "bilinear"
    orientation: str | None = None  # AEDAT 2.0 addresses (CIFAR10-DVS): 'spikingjelly' or 'raw'
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    crop_pct: float = 1.0
    classes: tuple[str, ...] | None = None
    dataset: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"preprocessing kind must be one of {KINDS}; got {self.kind!r}")
        if self.kind == "events" and self.sensor_size is None:
            raise ValueError("event preprocessing needs the sensor_size its recordings were framed on")
        if self.kind == "image" and (self.mean is None or self.std is None):
            raise ValueError("image preprocessing needs the mean and std it normalises with")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, not tuples), as a checkpoint and JSON hold them."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Any, source) -> "Preprocessing":
        """The settings of a checkpoint's or ONNX file's ``preprocessing`` entry; a ValueError naming
        ``source`` and the field when one is missing or malformed."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: its preprocessing entry is a {type(values).__name__}, not a mapping")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"{source}: unknown preprocessing field(s) {unknown}")
        try:
            converted = {key: _as_field(key, value) for key, value in values.items()}
            return cls(**converted)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: bad preprocessing settings: {err}") from None

    def describe(self) -> str:
        if self.kind == "image":
            return (f"images resized to {self.input_size[0]}x{self.input_size[1]} (crop_pct {self.crop_pct}), "
                    f"normalised with mean {self.mean}, std {self.std}, repeated T={self.time_steps}")
        size = f"{self.sensor_size[0]}x{self.sensor_size[1]}"
        if tuple(self.sensor_size) != tuple(self.input_size):
            size += f" resized to {self.input_size[0]}x{self.input_size[1]} ({self.resize_mode})"
        return f"events framed into T={self.time_steps} by {self.split_by!r} on a {size} sensor"

    def frames(self, path: str | Path) -> torch.Tensor:
        """The model's input for one file: float32 ``[T, C, H, W]``. Errors about the file's content are
        ``ValueError`` s naming it (``EventFileError`` for a recording)."""
        if self.kind == "image":
            return self._image(path)
        from ..data.readers import detect_format, read_event_frames
        from ..data.resize import resize_frames

        format = detect_format(path)
        options = {"orientation": self.orientation} if format == "aedat2" and self.orientation else {}
        counts = read_event_frames(path, self.time_steps, self.split_by, format=format,
                                   sensor_size=self.sensor_size, **options)
        resize = None if tuple(self.sensor_size) == tuple(self.input_size) else tuple(self.input_size)
        return resize_frames(counts, resize, self.resize_mode)

    def _image(self, path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        from ..data.static.encoding import check_statistics, encode

        height, width = self.input_size
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (UnidentifiedImageError, OSError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"{path}: not a readable image ({err})") from None
        # the evaluation transform of the static data sets: shorter side to size / crop_pct, centre crop
        scale = max(height, width) / self.crop_pct / min(image.size)
        resized = (max(width, math.floor(image.size[0] * scale)), max(height, math.floor(image.size[1] * scale)))
        image = image.resize(resized, Image.BILINEAR)
        left, top = (resized[0] - width) // 2, (resized[1] - height) // 2
        image = image.crop((left, top, left + width, top + height))
        array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width, 3)
        mean, std = check_statistics(self.mean, self.std)
        return encode(array.permute(2, 0, 1), mean, std, self.time_steps).contiguous()


def _as_field(key: str, value: Any) -> Any:
    if key in ("input_size", "sensor_size", "mean", "std", "classes") and value is not None:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list; got {value!r}")
        return tuple(str(v) for v in value) if key == "classes" else tuple(value)
    return value


def describe_input(dataset: str, options: dict[str, Any], model, classes: Sequence[str] | None = None) -> Preprocessing:
    """The preprocessing of data set ``dataset`` with ``options`` (a run's ``dataset_options``) for
    ``model`` (its T, channels and input size), found without the data: from the data set's class
    and its options' defaults. ``classes`` (the names the run saw) wins over the class's own list."""
    from ..data.registry import _entry, dataset_options

    entry = _entry(dataset)
    settings = {**dataset_options(dataset), **(options or {})}
    time_steps, channels = int(model.time_steps), int(model.in_channels)
    input_size = tuple(int(s) for s in model.img_size)
    names = classes if classes is not None else getattr(entry, "classes", None)
    names = tuple(str(n) for n in names) if isinstance(names, (list, tuple)) else None
    if names is not None and len(names) != model.num_classes:
        names = None  # a data set whose classes were overridden or subset: indices, not wrong names
    common = dict(time_steps=time_steps, channels=channels, input_size=input_size, classes=names, dataset=dataset)
    if channels == 3:
        from ..data.static.encoding import IMAGENET_MEAN, IMAGENET_STD

        mean = settings.get("mean") or getattr(entry, "default_mean", None) or IMAGENET_MEAN
        std = settings.get("std") or getattr(entry, "default_std", None) or IMAGENET_STD
        return Preprocessing("image", mean=tuple(map(float, mean)), std=tuple(map(float, std)),
                             crop_pct=float(settings.get("crop_pct") or 1.0), **common)
    sensor = settings.get("sensor_size") or getattr(entry, "sensor_size", None)
    if isinstance(sensor, int) and not isinstance(sensor, bool):
        sensor = (sensor, sensor)
    if not isinstance(sensor, (list, tuple)) or len(sensor) != 2:
        raise ValueError(f"cannot tell the sensor size data set {dataset!r} frames its recordings on; "
                         "pass the preprocessing settings explicitly")
    return Preprocessing("events", sensor_size=tuple(int(s) for s in sensor),
                         split_by=str(settings.get("split_by") or "number"),
                         resize_mode=str(settings.get("resize_mode") or "bilinear"),
                         orientation=settings.get("orientation"), **common)


def checkpoint_preprocessing(state: dict[str, Any], model, source) -> Preprocessing:
    """A run checkpoint's stored preprocessing, or, for one written before it was stored, the one its
    config describes (``describe_input``)."""
    if state.get("preprocessing") is not None:
        return Preprocessing.from_dict(state["preprocessing"], source)
    config = state.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("dataset"), str):
        raise ValueError(f"{source} stores no preprocessing and no config naming its data set: "
                         "it cannot tell how its input is made")
    return describe_input(config["dataset"], config.get("dataset_options") or {}, model)
