"""``SNNAugmentWide``: the Spikformer recipe's one-op-per-sample augmentation, batched.

The recipe (ZK-Zhou/spikformer ``cifar10dvs/train.py`` and
``cifar10dvs/autoaugment.py``; also used by QKFormer and Spikingformer) first
flips each sample left to right with probability 0.5 (``random_hflip``),
then applies ``SNNAugmentWide``: for each sample one op chosen uniformly from
the six below, a magnitude bin chosen uniformly from 31, and, for the signed
ops, a sign flipped with probability 1/2; nearest interpolation, fill 0.
The authors' magnitude tables, and how each value is used:

==============  ===========================  ===========================================
op              magnitudes (31 bins)         applied as
==============  ===========================  ===========================================
identity        --                           nothing
shear_x         linspace(-0.3, 0.3)          ``F.affine(shear=(degrees(m), 0))``: the
                                             value is taken as radians and turned into
                                             degrees, so at most 17.19 degrees
translate_x     linspace(-5, 5)              ``F.affine(translate=(int(m), 0))``: whole
                                             pixels, truncated toward 0 (0 in 5 of the 31
                                             bins, +-5 in one bin each)
translate_y     linspace(-5, 5)              as translate_x, downwards
rotate          linspace(-30, 30)            ``F.rotate(m)``: degrees, counter-clockwise,
                                             steps of 2 degrees
cutout          linspace(1, 30) (unused)     ``RandomErasing(p=1, scale=(0.001, 0.11),
                                             ratio=(1, 1), value=0)``: a square of
                                             0.1% to 11% of the frame
==============  ===========================  ===========================================

The signed tables are symmetric, so the random sign does not change the
distribution; it is drawn anyway, as the authors do. The authors transform one
sample's ``[T, C, H, W]`` tensor at a time in a Python loop; here the whole
batch is one ``affine`` plus one ``erase`` call (samples whose op is not
geometric get the identity transform, which nearest sampling reproduces
exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._common import check_frames, check_non_negative, check_range, integers
from .erasing import draw_erasing_boxes, erase
from .geometric import affine

OPS = ("identity", "shear_x", "translate_x", "translate_y", "rotate", "cutout")


@dataclass
class WideParams:
    """One ``SNNAugmentWide`` draw: per sample, the op (index into ``OPS``), its signed
    magnitude as the authors' table gives it, and the cutout box (empty unless the op is cutout)."""

    op: torch.Tensor         # int64 [B]
    magnitude: torch.Tensor  # float64 [B]
    boxes: torch.Tensor      # int64 [B, 4]: top, left, height, width


def _symmetric_bins(limit: float, count: int) -> torch.Tensor:
    """``linspace(-limit, limit, count)`` with bin i exactly the negative of bin count-1-i (and 0 exact)."""
    table = torch.linspace(-limit, limit, count, dtype=torch.float64)
    return (table - table.flip(0)) / 2


class SNNAugmentWide:
    """Batched ``SNNAugmentWide`` on ``[T, B, C, H, W]`` (module docstring)."""

    def __init__(self, num_magnitude_bins: int = 31, max_shear: float = 0.3, max_translate: float = 5.0,
                 max_rotate: float = 30.0, cutout_scale=(0.001, 0.11)):
        if isinstance(num_magnitude_bins, bool) or not isinstance(num_magnitude_bins, int) or num_magnitude_bins < 2:
            raise ValueError(f"num_magnitude_bins must be an integer >= 2, got {num_magnitude_bins!r}")
        for name, value in (("max_shear", max_shear), ("max_translate", max_translate), ("max_rotate", max_rotate)):
            check_non_negative(value, name)
        if math.degrees(max_shear) >= 90:
            raise ValueError(f"max_shear is used as radians and must be below pi/2, got {max_shear!r}")
        self.num_magnitude_bins = num_magnitude_bins
        self.cutout_scale = check_range(cutout_scale, "cutout_scale", 0.0, 1.0)
        self.magnitudes = {
            "shear_x": _symmetric_bins(max_shear, num_magnitude_bins),
            "translate_x": _symmetric_bins(max_translate, num_magnitude_bins),
            "translate_y": _symmetric_bins(max_translate, num_magnitude_bins),
            "rotate": _symmetric_bins(max_rotate, num_magnitude_bins),
        }

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator | None = None) -> WideParams:
        """Draw the op, magnitude bin and sign of each sample, and the cutout boxes."""
        op = integers(0, len(OPS), (batch,), generator)
        bin_index = integers(0, self.num_magnitude_bins, (batch,), generator)
        negate = integers(0, 2, (batch,), generator).bool()
        magnitude = torch.zeros(batch, dtype=torch.float64, device=op.device)
        for index, name in enumerate(OPS):
            if name in self.magnitudes:
                table = self.magnitudes[name].to(op.device)
                magnitude = torch.where(op == index, table[bin_index], magnitude)
        magnitude = torch.where(negate, -magnitude, magnitude)
        boxes = draw_erasing_boxes(batch, height, width, self.cutout_scale, (1.0, 1.0), 1.0, generator)
        boxes = boxes * (op == OPS.index("cutout"))[:, None]
        return WideParams(op=op, magnitude=magnitude, boxes=boxes)

    @staticmethod
    def apply(frames: torch.Tensor, params: WideParams) -> torch.Tensor:
        """Apply a draw: one nearest-neighbour ``affine`` for the geometric ops, then the cutout boxes."""
        T, B, C, H, W = check_frames(frames, "SNNAugmentWide")
        if params.op.shape != (B,):
            raise ValueError(f"SNNAugmentWide: the draw is for {tuple(params.op.shape)} samples, "
                             f"the batch has {B}")
        op, magnitude = params.op, params.magnitude

        def where(name, value):
            return torch.where(op == OPS.index(name), value, torch.zeros_like(value))

        out = affine(
            frames,
            angle=where("rotate", magnitude),
            shear_x=where("shear_x", torch.rad2deg(magnitude)),
            translate_x=where("translate_x", torch.trunc(magnitude)),
            translate_y=where("translate_y", torch.trunc(magnitude)),
        )
        return erase(out, params.boxes)

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        T, B, C, H, W = check_frames(frames, "SNNAugmentWide")
        return self.apply(frames, self.draw(B, H, W, generator))

    def __repr__(self) -> str:
        return f"SNNAugmentWide(num_magnitude_bins={self.num_magnitude_bins}, cutout_scale={self.cutout_scale})"
