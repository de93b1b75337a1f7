"""The training-time augmentation a config asks for, as one batched call per step.

Applied on the device to ``[T, B, C, H, W]``, one random transform per
sample shared by its T frames (``spikeformers.data.augment``), in the
recipes' order: random crop with padding, horizontal flip, translation,
``SNNAugmentWide``, random erasing, then mixing (mixup / cutmix, or
EventMix). Every draw comes from the step's own generator, so a resumed run
augments exactly as an uninterrupted one.

Returns the frames and the targets: class indices, or soft target rows
(label smoothing included) once a mixing op is on. Mixing switches off from
``mixup_off_epoch`` (counted from 0, as timm counts it: the Spikformer recipe's
``75`` mixes in epochs 1-75 here); the loss then sees smoothed one-hot rows,
the same loss as before.
"""

from __future__ import annotations

import torch

from ..data.augment import EventMix, MixupCutmix, SNNAugmentWide, random_crop, random_erasing, random_hflip, random_translate


class BatchAugment:
    def __init__(self, cfg, num_classes: int):
        self.crop_padding = cfg.crop_padding
        self.hflip = cfg.hflip
        self.translate = cfg.translate
        self.wide = SNNAugmentWide() if cfg.augment_wide else None
        self.erasing = cfg.erasing
        if (cfg.mixup > 0 or cfg.cutmix > 0) and cfg.event_mix > 0:
            raise ValueError("Choose mixup/cutmix or event_mix, not both: each mixes the labels of a batch")
        self.mix = None
        if cfg.mixup > 0 or cfg.cutmix > 0:
            self.mix = MixupCutmix(num_classes, mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob,
                                   switch_prob=cfg.mixup_switch_prob, label_smoothing=cfg.label_smoothing,
                                   off_epoch=cfg.mixup_off_epoch or None)
        elif cfg.event_mix > 0:
            self.mix = EventMix(num_classes, prob=cfg.event_mix, label_smoothing=cfg.label_smoothing)

    def __call__(self, frames: torch.Tensor, labels: torch.Tensor, epoch: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one training batch of 1-based ``epoch``: ``(frames, targets)``."""
        if self.crop_padding:
            frames = random_crop(frames, self.crop_padding, generator=generator)
        if self.hflip:
            frames = random_hflip(frames, self.hflip, generator=generator)
        if self.translate:
            frames = random_translate(frames, self.translate, generator)
        if self.wide is not None:
            frames = self.wide(frames, generator)
        if self.erasing:
            frames = random_erasing(frames, self.erasing, generator=generator)
        if isinstance(self.mix, MixupCutmix):
            return self.mix(frames, labels, generator, epoch=epoch - 1)
        if isinstance(self.mix, EventMix):
            return self.mix(frames, labels, generator)
        return frames, labels
