"""Batched augmentation of frame sequences ``[T, B, C, H, W]``, on the batch's device.

Every op draws one transform per sample and applies it to all T frames of
that sample (the published event-data recipes transform a sample's frames
together), for the whole batch at once: no Python loop over samples.

Each random op is two steps, so that a test or a caller can apply a known
transform: ``draw_*`` returns the per-sample parameters (drawn from the
optional ``torch.Generator``, on the generator's device, CPU by default), and
a plain function applies them (``hflip``, ``crop``, ``translate``,
``affine``, ``erase``). The ``random_*`` functions do both.

- ``geometric``: flip, crop with padding, translation, rotation, shear (one
  nearest-neighbour sampler for all of them; fill 0 = no events).
- ``erasing``: cutout (fixed square) and random erasing (torchvision's
  area / aspect-ratio draw).
- ``wide``: ``SNNAugmentWide``, the Spikformer recipe's one-op-per-sample
  augmentation.
- ``randaugment``: timm's ``RandAugment`` (from its config string, e.g.
  ``rand-m9-n1-mstd0.4-inc1``) and ``ColorJitter``, per sample on one uint8
  image ``[3, H, W]`` (the static-image data sets' training transform), with
  its ops as plain functions matching Pillow's.
- ``mixing``: ``MixupCutmix`` (timm's batch mode, label smoothing,
  switch-off epoch) and ``EventMix`` (a spatio-temporal box, labels weighted
  by the events each sample contributes).
"""

from .erasing import cutout, draw_cutout_boxes, draw_erasing_boxes, erase, random_erasing
from .geometric import (
    affine,
    crop,
    draw_crop_offsets,
    draw_hflip,
    draw_rotation,
    draw_shear,
    draw_translation,
    hflip,
    random_crop,
    random_hflip,
    random_rotate,
    random_shear,
    random_translate,
    translate,
)
from .mixing import EventMix, MixupCutmix, smooth_one_hot
from .randaugment import ColorJitter, RandAugment, RandAugmentConfig, parse_randaugment
from .wide import SNNAugmentWide, WideParams

__all__ = [
    "ColorJitter",
    "RandAugment",
    "RandAugmentConfig",
    "parse_randaugment",
    "EventMix",
    "MixupCutmix",
    "SNNAugmentWide",
    "WideParams",
    "affine",
    "crop",
    "cutout",
    "draw_crop_offsets",
    "draw_cutout_boxes",
    "draw_erasing_boxes",
    "draw_hflip",
    "draw_rotation",
    "draw_shear",
    "draw_translation",
    "erase",
    "hflip",
    "random_crop",
    "random_erasing",
    "random_hflip",
    "random_rotate",
    "random_shear",
    "random_translate",
    "smooth_one_hot",
    "translate",
]
