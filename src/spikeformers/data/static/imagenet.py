"""ImageNet (ILSVRC 2012) from a class-per-folder tree, decoded with Pillow (an optional extra).

Layout: ``<root>/train/<class>/*.JPEG`` and ``<root>/val/<class>/*.JPEG`` (the
validation images sorted into class folders, as every ImageNet training
script expects). The classes are the train folder's sub-folders, sorted by
name (the WordNet ids ``n01440764``, ... give the usual label order); a val
class folder that train lacks is an error, so labels cannot shift.

Transforms, as timm builds them for the spiking transformers' ImageNet runs:

- val (``train=False``): resize the shorter side to ``floor(image_size / crop_pct)``
  with ``interpolation``, then take the centred ``image_size`` square.
  ``crop_pct=0.875`` (default) is the standard 256 -> 224; Spikformer's
  ``imagenet.yml`` uses ``crop_pct=1.0`` (resize to 224, then crop);
- train: a random resized crop (area fraction from ``scale``, aspect ratio
  log-uniform in ``ratio``, 10 tries, else the centred crop of the allowed
  aspect ratio), resized to ``image_size``, then a horizontal flip with
  probability ``hflip``. Spikformer's recipe uses ``scale=(1.0, 1.0)``;
  the standard is ``(0.08, 1.0)``. Then, optionally, timm's RandAugment
  (``randaugment='rand-m9-mstd0.5-inc1'``) and colour jitter on the crop,
  as timm orders them. The random draws come from a generator seeded by
  (seed, epoch, index) (``static.encoding.EpochSeeded``), so a resumed run
  draws what an uninterrupted one drew. Random erasing and mixup are the
  batched ops of ``spikeformers.data.augment``.

Both are bicubic by default (the recipes' ``interpolation: bicubic``). Then
the ImageNet mean/std normalisation and repetition over T (direct encoding).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ..datasets.discovery import class_folders, list_files
from ..frames import check_time_steps
from ..missing import DatasetNotFoundError, data_root
from ..registry import option, register_dataset
from .encoding import IMAGENET_MEAN, IMAGENET_STD, AugmentedImages, check_statistics, encode

EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "lanczos")
PUBLISHED = ("ImageNet (ILSVRC 2012, Russakovsky et al. 2015) is published at https://image-net.org "
             "(register, then download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar); extract the "
             "train images into train/<wnid>/ and sort the val images into val/<wnid>/ by their labels")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("the imagenet data set decodes images with Pillow, which is not installed: "
                          "pip install pillow") from None
    return Image


def expected_tree(root: str) -> str:
    return (f"the class folders {os.path.join(root, 'train', '<wnid>', '*.JPEG')} and "
            f"{os.path.join(root, 'val', '<wnid>', '*.JPEG')}")


def random_resized_box(width: int, height: int, scale, ratio, generator=None) -> tuple[int, int, int, int]:
    """A random crop ``(left, top, width, height)`` covering ``scale`` of the area with a
    log-uniform aspect ratio in ``ratio`` (10 tries; else the centred crop of the nearest allowed ratio)."""
    area = width * height
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        draws = torch.rand(2, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect = math.exp(log_low + (log_high - log_low) * draws[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return left, top, w, h
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, round(width / min(ratio))
    elif aspect > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def center_box(width: int, height: int, size: int, crop_pct: float) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """The eval transform's geometry: ``(resized (W, H), crop box (left, top, right, bottom))``."""
    short = math.floor(size / crop_pct)
    if width <= height:
        new_w, new_h = short, int(short * height / width)
    else:
        new_w, new_h = int(short * width / height), short
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    return (new_w, new_h), (left, top, left + size, top + size)


@register_dataset("imagenet")
@dataclass(eq=False, repr=False)
class ImageNet(AugmentedImages, Dataset):
    """ImageNet as ``(float32 [T, 3, image_size, image_size], class index)``; see the module docstring."""

    in_channels: ClassVar[int] = 3

    root: str | os.PathLike | None
    train: bool = True
    time_steps: int = 4
    _: KW_ONLY
    image_size: int = option(224, "the side of the square images served")
    crop_pct: float = option(0.875, "val: the centre crop's share of the resized image (0.875: 256 -> 224)")
    interpolation: str = option("bicubic", f"how images are resized: {', '.join(INTERPOLATIONS)}")
    scale: tuple[float, float] = option((0.08, 1.0), "train: the random crop's share of the image area")
    ratio: tuple[float, float] = option((3 / 4, 4 / 3), "train: the random crop's range of aspect ratios")
    hflip: float = option(0.5, "train: the probability of a horizontal flip")
    mean: tuple[float, float, float] = option(IMAGENET_MEAN, "per-channel mean to normalise with")
    std: tuple[float, float, float] = option(IMAGENET_STD, "per-channel std to normalise with")
    expected_classes: int | None = option(1000, "classes a complete copy holds (None: no warning)")

    def __post_init__(self):
        _pillow()  # fail now, not in the first batch
        self.root = data_root(self.root, "imagenet", "ImageNet", PUBLISHED, expected_tree)
        image_size, crop_pct, scale, ratio, hflip = self.image_size, self.crop_pct, self.scale, self.ratio, self.hflip
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; valid: {INTERPOLATIONS}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive int; got {image_size!r}")
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1]; got {crop_pct}")
        if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1] and 0 <= hflip <= 1):
            raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1, 0 < ratio[0] <= ratio[1] and hflip in "
                             f"[0, 1]; got scale={scale}, ratio={ratio}, hflip={hflip}")
        self.time_steps = check_time_steps(self.time_steps)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        self._mean, self._std = check_statistics(self.mean, self.std)
        self.augment = self.image_augment(self.mean)
        self.sensor_size = (image_size, image_size)

        train_dir = os.path.join(self.root, "train")
        part_dir = os.path.join(self.root, "train" if self.train else "val")
        for folder in {train_dir, part_dir}:
            if not os.path.isdir(folder):
                raise DatasetNotFoundError(f"ImageNet is missing in {self.root!r}: expected "
                                           f"{expected_tree(self.root)}; {folder} does not exist.\n{PUBLISHED}.")
        train_classes = class_folders(train_dir, EXTENSIONS)
        if not train_classes:
            raise DatasetNotFoundError(f"ImageNet: {train_dir} holds no class folders of images "
                                       f"({', '.join(EXTENSIONS)}).\n{PUBLISHED}.")
        self.classes = tuple(train_classes)
        self.num_classes = len(self.classes)
        part = train_classes if self.train else class_folders(part_dir, EXTENSIONS)
        unknown = sorted(set(part) - set(self.classes))
        if unknown:
            raise ValueError(f"{part_dir} has class folders that {train_dir} lacks: {unknown[:5]}; "
                             "the labels would not match the training labels")
        if not part:
            loose = list_files(part_dir, EXTENSIONS)
            hint = (f" It holds {len(loose)} images directly: sort them into val/<wnid>/ folders by their "
                    "ground-truth labels." if loose else "")
            raise DatasetNotFoundError(f"ImageNet: {part_dir} holds no class folders of images.{hint}\n{PUBLISHED}.")
        if self.expected_classes and self.num_classes != self.expected_classes:
            warnings.warn(f"ImageNet in {self.root} has {self.num_classes} classes, expected "
                          f"{self.expected_classes}. {PUBLISHED}.", stacklevel=3)
        index = {name: i for i, name in enumerate(self.classes)}
        self.samples = [(name, file, os.path.join(part_dir, name, file)) for name in part for file in part[name]]
        self.targets = [index[name] for name, _, _ in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, index: int) -> np.ndarray:
        """Sample ``index`` decoded and transformed: uint8 ``[3, image_size, image_size]``."""
        Image = _pillow()
        path = self.samples[index][2]
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise ValueError(f"cannot decode {path}: {error}") from None
        resample = getattr(Image.Resampling, self.interpolation.upper())
        size = (self.image_size, self.image_size)
        if self.train:
            generator = self.sample_generator(index)
            left, top, w, h = random_resized_box(*image.size, self.scale, self.ratio, generator)
            image = image.resize(size, resample, box=(left, top, left + w, top + h))
            if float(torch.rand(1, generator=generator)) < self.hflip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
            return self.augment(pixels, generator).numpy() if self.augment else pixels
        resized, box = center_box(*image.size, self.image_size, self.crop_pct)
        image = image.resize(resized, resample).crop(box)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return encode(self.image(index), self._mean, self._std, self.time_steps), self.targets[index]

    def split_files(self) -> list[str]:
        return [f"{name}/{file}" for name, file, _ in self.samples]

    def describe(self) -> str:
        if self.train:
            how = (f"random resized crop scale={self.scale} ratio={tuple(round(r, 4) for r in self.ratio)}, "
                   f"flip p={self.hflip}" + (f", {self.augment!r}" if self.augment else ""))
        else:
            how = f"resize {math.floor(self.image_size / self.crop_pct)} + centre crop (crop_pct={self.crop_pct})"
        return (f"imagenet {'train' if self.train else 'val'}: {len(self)} images in {self.num_classes} classes "
                f"from {self.root}; {how} to {self.image_size}x{self.image_size} ({self.interpolation}); "
                f"normalised with mean {self.mean}, std {self.std}; repeated over T={self.time_steps}")
