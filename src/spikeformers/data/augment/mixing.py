"""Mixing two samples and their labels: mixup / cutmix (timm's ``Mixup``) and EventMix.

Both pair sample b with sample ``B-1-b`` of the same batch (the batch
flipped, timm's pairing; with an odd batch the middle sample is paired with
itself and stays as it is), and return soft targets ``[B, num_classes]``
(float32) for a soft-target cross-entropy. The draws come from the optional
``torch.Generator`` (through a NumPy generator seeded from it, for the Beta
draws), so a seeded run mixes the same way on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._common import check_frames, check_non_negative, check_probability


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets with label smoothing, float32 ``[B, num_classes]``: the true class gets
    ``1 - smoothing + smoothing/num_classes``, the others ``smoothing/num_classes`` (timm's ``mixup_target``)."""
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
    return targets.scatter_(1, labels.long()[:, None], 1.0 - smoothing + off)


def _check_labels(labels, batch: int, num_classes: int, op: str) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.shape != (batch,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{op}: labels must be an integer tensor of shape [B] = [{batch}], got {shape}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{op}: labels must be class indices (integers), got {labels.dtype}")
    if batch and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{op}: labels must lie in [0, {num_classes}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return labels


def _check_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    device = generator.device if generator is not None else "cpu"
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=device).item()
    return np.random.default_rng(seed)


@dataclass
class MixDraw:
    """One mixup / cutmix draw for a batch: the weight ``lam`` of each sample's own label,
    and for cutmix the pasted box ``(top, bottom, left, right)`` (rows ``top:bottom``)."""

    lam: float
    box: tuple[int, int, int, int] | None = None


class MixupCutmix:
    """Mixup and cutmix with label smoothing, timm's ``Mixup`` in batch mode, on ``[T, B, C, H, W]``.

    Per call (one draw for the whole batch): with probability ``prob`` the
    batch is mixed, otherwise only the label smoothing applies. When both
    alphas are positive, cutmix is chosen with probability ``switch_prob``,
    else mixup; ``lam ~ Beta(alpha, alpha)`` of the chosen one.

    - mixup: ``frames = lam * frames + (1 - lam) * flipped``;
    - cutmix: a box of sides ``int(H * sqrt(1 - lam))`` x ``int(W * sqrt(1 - lam))``
      centred on a uniform pixel, clipped to the frame, is pasted from the
      flipped batch into all T frames; with ``correct_lam`` (default, as
      timm) ``lam`` becomes ``1 - box area / (H * W)``, the fraction really kept.

    Targets: ``lam * smooth(labels) + (1 - lam) * smooth(flipped labels)``,
    which sums to 1 per sample.

    Switching off: ``off_epoch`` (None = never) and ``active(epoch)``
    (False from epoch ``off_epoch`` on, 0-based). The Spikformer recipe sets
    timm's ``mixup_enabled = False`` from epoch 75 and keeps calling it, so
    the late epochs still train on smoothed one-hot targets; calling
    ``mixup(frames, labels, generator, epoch=epoch)`` reproduces that (no
    mixing once inactive, smoothed targets). A loop may instead stop calling
    it after ``off_epoch`` and use a label-smoothing cross-entropy on the
    integer labels: the same loss.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, prob: float = 1.0,
                 switch_prob: float = 0.5, label_smoothing: float = 0.1, correct_lam: bool = True,
                 off_epoch: int | None = None):
        self.num_classes = _check_classes(num_classes)
        check_non_negative(mixup_alpha, "mixup_alpha")
        check_non_negative(cutmix_alpha, "cutmix_alpha")
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("MixupCutmix needs mixup_alpha > 0 or cutmix_alpha > 0 (both are 0)")
        check_probability(prob, "prob")
        check_probability(switch_prob, "switch_prob")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
                or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")
        if off_epoch is not None and (isinstance(off_epoch, bool) or not isinstance(off_epoch, int) or off_epoch < 0):
            raise ValueError(f"off_epoch must be None or an epoch number >= 0, got {off_epoch!r}")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob = float(prob), float(switch_prob)
        self.label_smoothing = float(label_smoothing)
        self.correct_lam = correct_lam
        self.off_epoch = off_epoch

    def active(self, epoch: int) -> bool:
        """Whether to mix in this (0-based) epoch: always when ``off_epoch`` is None, else before it."""
        return self.off_epoch is None or epoch < self.off_epoch

    def draw(self, height: int, width: int, generator: torch.Generator | None = None) -> MixDraw:
        """Draw whether and how to mix a batch of ``height`` x ``width`` frames (class docstring)."""
        rng = _numpy_rng(generator)
        if rng.random() >= self.prob:
            return MixDraw(1.0)
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = rng.random() < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        if not use_cutmix:
            return MixDraw(lam)
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, bottom = int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height))
        left, right = int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width))
        if self.correct_lam:
            lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return MixDraw(lam, (top, bottom, left, right))

    def apply(self, frames: torch.Tensor, labels: torch.Tensor, draw: MixDraw):
        """Mix ``frames`` and their labels as ``draw`` says: ``(frames, soft targets)``."""
        T, B, C, H, W = check_frames(frames, "MixupCutmix", floating=True)
        labels = _check_labels(labels, B, self.num_classes, "MixupCutmix")
        own = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        if draw.lam == 1.0 and draw.box is None:
            return frames, own
        partner = frames.flip(1)
        if draw.box is None:
            mixed = frames * draw.lam + partner * (1.0 - draw.lam)
        else:
            top, bottom, left, right = draw.box
            mixed = frames.clone()
            mixed[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        return mixed, own * draw.lam + own.flip(0) * (1.0 - draw.lam)

    def __call__(self, frames: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
                 epoch: int | None = None):
        """Mix a batch: ``(frames [T, B, C, H, W], soft targets [B, num_classes])``.

        With ``epoch`` given and ``active(epoch)`` False, nothing is mixed and
        the targets are the smoothed one-hot labels.
        """
        T, B, C, H, W = check_frames(frames, "MixupCutmix", floating=True)
        if epoch is not None and not self.active(epoch):
            return self.apply(frames, labels, MixDraw(1.0))
        return self.apply(frames, labels, self.draw(H, W, generator))


class EventMix:
    """EventMix-style mixing of event frames: a spatio-temporal box from the partner sample,
    labels weighted by the events each sample contributes.

    EventMix (Shen, Zhao and Zeng, "EventMix: An efficient data augmentation
    strategy for event-based learning", Information Sciences 2023) mixes two
    event streams through a random 3-D spatio-temporal mask and weights the
    labels by the share of the mixed sample's events that comes from each
    stream, not by the mask's volume. What is implemented here, per sample:

    - with probability ``prob`` the sample is mixed with its partner (the
      flipped batch), else kept;
    - ``lam ~ Beta(alpha, alpha)`` is the fraction of the volume ``T*H*W``
      to keep; the mask is a box (not the paper's Gaussian-random-field mask)
      with sides ``int(T*r)``, ``int(H*r)``, ``int(W*r)``, ``r = (1-lam)^(1/3)``,
      starting ``side//2`` before a uniformly drawn frame / row / column and
      clipped to the sample; inside it, all channels come from the partner;
    - the partner's label weight is ``w = events from the partner inside the
      box / all events of the mixed sample`` (frame values are event counts;
      a mixed sample without events uses the box's volume fraction instead);
      targets are ``(1-w) * smooth(label) + w * smooth(partner label)``.

    Frames must be non-negative counts (an error otherwise: weights by event
    counts mean nothing for normalised images).
    """

    def __init__(self, num_classes: int, alpha: float = 1.0, prob: float = 1.0, label_smoothing: float = 0.0):
        self.num_classes = _check_classes(num_classes)
        check_non_negative(alpha, "alpha")
        if alpha == 0:
            raise ValueError("EventMix alpha must be > 0")
        check_probability(prob, "prob")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
                or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")
        self.alpha, self.prob, self.label_smoothing = float(alpha), float(prob), float(label_smoothing)

    def draw(self, time_steps: int, batch: int, height: int, width: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """The boxes, int64 ``[B, 6]``: ``(t0, t1, y0, y1, x0, x1)``, half-open; empty for unmixed samples."""
        rng = _numpy_rng(generator)
        mixed = rng.random(batch) < self.prob
        ratio = (1.0 - rng.beta(self.alpha, self.alpha, batch)) ** (1.0 / 3.0)
        bounds = []
        for size in (time_steps, height, width):
            side = (size * ratio).astype(np.int64) * mixed
            start = rng.integers(0, size, batch) - side // 2
            bounds += [np.clip(start, 0, size), np.clip(start + side, 0, size)]
        return torch.from_numpy(np.stack(bounds, 1))

    def apply(self, frames: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor):
        """Mix with known boxes: ``(frames, soft targets, partner weights [B])``."""
        T, B, C, H, W = check_frames(frames, "EventMix", floating=True)
        labels = _check_labels(labels, B, self.num_classes, "EventMix")
        boxes = torch.as_tensor(boxes)
        if boxes.shape != (B, 6):
            raise ValueError(f"EventMix: boxes must have shape [B, 6] = [{B}, 6] (t0, t1, y0, y1, x0, x1), "
                             f"got {tuple(boxes.shape)}")
        if (frames < 0).any():
            raise ValueError("EventMix weights labels by event counts, but the frames hold negative values")
        boxes = boxes.to(frames.device, torch.int64)

        def inside(size, lo, hi):  # [B, size]
            index = torch.arange(size, device=frames.device)
            return (index >= lo[:, None]) & (index < hi[:, None])

        in_t, in_y, in_x = inside(T, boxes[:, 0], boxes[:, 1]), inside(H, boxes[:, 2], boxes[:, 3]), \
            inside(W, boxes[:, 4], boxes[:, 5])
        mask = in_t.t()[:, :, None, None, None] & in_y[None, :, None, :, None] & in_x[None, :, None, None, :]
        partner = frames.flip(1)
        mixed = torch.where(mask, partner, frames)
        from_partner = torch.where(mask, partner, 0).sum((0, 2, 3, 4), dtype=torch.float32)
        total = mixed.sum((0, 2, 3, 4), dtype=torch.float32)
        volume = mask.sum((0, 2, 3, 4)).float() / (T * H * W)
        weight = torch.where(total > 0, from_partner / total.clamp(min=1e-30), volume)
        own = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        targets = own * (1.0 - weight[:, None]) + own.flip(0) * weight[:, None]
        return mixed, targets, weight

    def __call__(self, frames: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None):
        """Mix a batch: ``(frames [T, B, C, H, W], soft targets [B, num_classes])``."""
        T, B, C, H, W = check_frames(frames, "EventMix", floating=True)
        mixed, targets, _ = self.apply(frames, labels, self.draw(T, B, H, W, generator))
        return mixed, targets
