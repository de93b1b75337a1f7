"""RandAugment and colour jitter as timm applies them, on one uint8 image ``[3, H, W]``.

The static-image recipes of Spikformer, the Spike-driven Transformer and
QKFormer train with timm's RandAugment (``rand-m9-n1-mstd0.4-inc1`` on
CIFAR, ``rand-m9-mstd0.5-inc1`` on ImageNet), which timm runs on each PIL
image before normalisation. This module reproduces its semantics with torch
ops on the data set's uint8 image, sample by sample (``__getitem__``):

- ``n`` ops per image, each chosen uniformly from the op list *with*
  replacement (``w0``: timm's fixed op weights, then without replacement);
- each chosen op runs with probability 0.5;
- its magnitude is ``m`` (0..10), or, with ``mstd``, a fresh draw from
  ``N(m, mstd)`` each time (``mstd`` > 100: uniform in [0, m]), clipped to
  [0, ``mmax``] (default 10); the level ``magnitude / 10`` sets the op's
  argument (the table in ``op_argument``); rotation, shear, translation and
  the ``*Increasing`` enhancements get a random sign;
- ``inc1`` takes the op list whose severity grows with the magnitude
  (posterize keeps ``4 - int(4 L)`` bits, solarize thresholds at
  ``256 - int(256 L)``, enhancement factors ``1 +- 0.9 L``).

The pixel ops follow Pillow's definitions, so that they agree with Pillow
(what timm calls) to within one grey level: ``ImageOps`` (autocontrast,
equalize, invert, solarize, posterize), ``ImageEnhance`` (a blend of the
image with a degenerate image: grey for colour, the mean grey for contrast,
black for brightness, the 3x3 SMOOTH blur for sharpness) and
``Image.transform(AFFINE)`` for rotation, shear and translation (each output
pixel centre mapped back into the image; outside it gets ``fill``, timm's
``img_mean``: the data set's mean times 255). Interpolation is ``bilinear``,
``bicubic`` or ``nearest``, or ``random`` (bilinear or bicubic per op,
timm's default ``--train-interpolation random``).

Random draws use the ``generator`` passed in, else torch's global generator
(which PyTorch seeds per loader worker from the run's seed), as the data
sets' other per-sample draws do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import torch

LEVEL_DENOMINATOR = 10.0
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "random")

# The op lists of timm's RandAugment (Cutout is not one: timm does random erasing apart).
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# timm's ``w0`` op weights (by position in the op list; timm reads them by the plain names).
CHOICE_WEIGHTS_0 = (0.025, 0.005, 0.0, 0.3, 0.0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1)


# ---------------------------------------------------------------- pixel ops

def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        what = f"{image.dtype} {list(image.shape)}" if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected a uint8 image [3, H, W]; got {what}")


def _apply_lut(image: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """Map each channel through its own 256-entry table (``luts [3, 256]`` or one ``[256]``)."""
    luts = luts.expand(3, 256).clamp(0, 255).to(torch.uint8)
    return torch.stack([lut[channel.long()] for lut, channel in zip(luts, image)])


def invert(image: torch.Tensor) -> torch.Tensor:
    return 255 - image


def solarize(image: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the values at or above ``threshold`` (``ImageOps.solarize``)."""
    return torch.where(image.int() >= threshold, 255 - image, image)  # in int: thresholds run up to 256


def solarize_add(image: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    """Add ``add`` (saturating) to the values below ``threshold``."""
    return torch.where(image.int() < threshold, (image.int() + add).clamp(max=255).to(torch.uint8), image)


def posterize(image: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the ``bits`` most significant bits (8 or more: unchanged; 0 bits: black, what
    ``ImageOps.posterize`` gave before Pillow began refusing 0, and what timm asks for at
    ``PosterizeIncreasing`` m10)."""
    if bits >= 8:
        return image
    return image & (0xFF ^ ((1 << (8 - max(bits, 0))) - 1))


def auto_contrast(image: torch.Tensor) -> torch.Tensor:
    """Stretch each channel so its darkest value becomes 0 and its lightest 255 (``ImageOps.autocontrast``)."""
    flat = image.flatten(1).int()
    low, high = flat.min(1).values, flat.max(1).values
    values = torch.arange(256, dtype=torch.float64)
    luts = []
    for lo, hi in zip(low.tolist(), high.tolist()):
        if hi <= lo:
            luts.append(values)
        else:
            scale = 255.0 / (hi - lo)
            luts.append(torch.trunc(values * scale - lo * scale))  # Pillow's int(): towards zero
    return _apply_lut(image, torch.stack(luts).long())


def equalize(image: torch.Tensor) -> torch.Tensor:
    """Per-channel histogram equalisation with Pillow's integer rule (``ImageOps.equalize``)."""
    luts = []
    for channel in image:
        histogram = torch.bincount(channel.flatten().long(), minlength=256)
        used = histogram[histogram > 0]
        step = (int(used.sum()) - int(used[-1])) // 255 if len(used) > 1 else 0
        if step == 0:
            luts.append(torch.arange(256))
            continue
        before = torch.cumsum(histogram, 0) - histogram  # pixels in the lower bins
        luts.append((before + step // 2) // step)
    return _apply_lut(image, torch.stack(luts))


def luminance(image: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma as Pillow's ``convert('L')`` computes it (fixed point, rounded): ``[H, W]`` int."""
    r, g, b = image.int()
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def blend(degenerate: torch.Tensor, image: torch.Tensor, factor: float) -> torch.Tensor:
    """``degenerate + factor * (image - degenerate)``, clipped and truncated as ``Image.blend`` does."""
    mixed = degenerate.float() + float(factor) * (image.float() - degenerate.float())
    return mixed.clamp(0, 255).to(torch.uint8)


def color(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Saturation: 0 gives the grey image, 1 the image (``ImageEnhance.Color``)."""
    return blend(luminance(image).expand(3, -1, -1), image, factor)


def contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast: 0 gives the image's mean grey everywhere, 1 the image (``ImageEnhance.Contrast``)."""
    mean = int(luminance(image).double().mean() + 0.5)
    return blend(torch.full_like(image, mean), image, factor)


def brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Brightness: 0 gives black, 1 the image (``ImageEnhance.Brightness``)."""
    return blend(torch.zeros_like(image), image, factor)


def sharpness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Sharpness: 0 gives the SMOOTH-blurred image, 1 the image, 2 a sharpened one (``ImageEnhance.Sharpness``)."""
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5.0
    blurred = torch.nn.functional.conv2d(image.float().unsqueeze(1), (kernel / 13).view(1, 1, 3, 3)).squeeze(1)
    degenerate = image.clone()
    # Pillow's 3x3 filter leaves the one-pixel border as it was.
    degenerate[:, 1:-1, 1:-1] = (blurred + 0.5).clamp(0, 255).to(torch.uint8)
    return blend(degenerate, image, factor)


# ---------------------------------------------------------------- geometric ops

def _cubic_weights(d: torch.Tensor) -> torch.Tensor:
    """The four weights of Pillow's transform bicubic (a = -1 cubic convolution) at fraction ``d``."""
    a = -1.0
    distances = torch.stack([1 + d, d, 1 - d, 2 - d])
    near = (a + 2) * distances ** 3 - (a + 3) * distances ** 2 + 1
    far = a * distances ** 3 - 5 * a * distances ** 2 + 8 * a * distances - 4 * a
    return torch.where(distances <= 1, near, far)


def affine(image: torch.Tensor, matrix: Sequence[float], fill: Sequence[int] = (128, 128, 128),
           interpolation: str = "bilinear") -> torch.Tensor:
    """``Image.transform(size, AFFINE, matrix)``: output pixel centre ``(x, y)`` takes the input at
    ``(a x + b y + c, d x + e y + f)``; points outside the image take ``fill``."""
    _check_image(image)
    if interpolation not in ("bilinear", "bicubic", "nearest"):
        raise ValueError(f"unknown interpolation {interpolation!r}; valid: bilinear, bicubic, nearest")
    a, b, c, d, e, f = (float(v) for v in matrix)
    _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    source_x, source_y = a * xs + b * ys + c, d * xs + e * ys + f
    inside = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    pixels = image.double()

    def gather(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return pixels[:, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]  # Pillow clamps at the border

    if interpolation == "nearest":
        result = gather(source_y.floor().long(), source_x.floor().long())
    else:
        grid_x, grid_y = source_x - 0.5, source_y - 0.5  # sample positions on the pixel-centre grid
        x0, y0 = grid_x.floor(), grid_y.floor()
        dx, dy = grid_x - x0, grid_y - y0
        x0, y0 = x0.long(), y0.long()
        if interpolation == "bilinear":
            offsets, weights_x, weights_y = (0, 1), torch.stack([1 - dx, dx]), torch.stack([1 - dy, dy])
        else:
            offsets, weights_x, weights_y = (-1, 0, 1, 2), _cubic_weights(dx), _cubic_weights(dy)
        result = torch.zeros_like(pixels)
        for i, oy in enumerate(offsets):
            row = torch.zeros_like(pixels)
            for j, ox in enumerate(offsets):
                row += weights_x[j] * gather(y0 + oy, x0 + ox)
            result += weights_y[i] * row
    fill_values = torch.tensor([float(v) for v in fill], dtype=torch.float64).view(3, 1, 1)
    result = torch.where(inside, result.clamp(0, 255), fill_values)
    return result.to(torch.uint8)  # truncated, as Pillow stores an interpolated value


def rotate(image: torch.Tensor, degrees: float, **kwargs) -> torch.Tensor:
    """Rotate anticlockwise by ``degrees`` about the image centre (``Image.rotate``, same size)."""
    _, height, width = image.shape
    angle = -math.radians(degrees)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = width / 2.0, height / 2.0
    matrix = (cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy)
    return affine(image, matrix, **kwargs)


def shear_x(image: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    return affine(image, (1, factor, 0, 0, 1, 0), **kwargs)


def shear_y(image: torch.Tensor, factor: float, **kwargs) -> torch.Tensor:
    return affine(image, (1, 0, 0, factor, 1, 0), **kwargs)


def translate_x(image: torch.Tensor, pixels: float, **kwargs) -> torch.Tensor:
    """Shift left by ``pixels`` (the output at x shows the input at x + pixels), as timm's TranslateX."""
    return affine(image, (1, 0, pixels, 0, 1, 0), **kwargs)


def translate_y(image: torch.Tensor, pixels: float, **kwargs) -> torch.Tensor:
    return affine(image, (1, 0, 0, 0, 1, pixels), **kwargs)


# ---------------------------------------------------------------- RandAugment

@dataclass(frozen=True)
class RandAugmentConfig:
    """A parsed timm RandAugment string; see ``parse_randaugment``."""

    magnitude: float = 10.0
    num_ops: int = 2
    magnitude_std: float = 0.0
    magnitude_max: float = LEVEL_DENOMINATOR
    increasing: bool = False
    weighted: bool = False

    @property
    def ops(self) -> tuple[str, ...]:
        return RAND_INCREASING_OPS if self.increasing else RAND_OPS


def parse_randaugment(config: str) -> RandAugmentConfig:
    """timm's config string: ``rand`` then dash-separated ``m<int>`` (magnitude, default 10),
    ``n<int>`` (ops per image, default 2), ``mstd<float>`` (magnitude noise; > 100: uniform),
    ``mmax<int>`` (magnitude ceiling, default 10), ``inc<0|1>`` (severity-increasing ops),
    ``w0`` (timm's op weights). ``rand-m9-n1-mstd0.4-inc1``: magnitude 9, 1 op, noise 0.4, increasing.
    Stricter than timm, which skips a part without digits and takes ``inc0`` as on (``bool('0')``):
    here both are errors or off, as the parts are documented."""
    if not isinstance(config, str) or not config:
        raise ValueError(f"randaugment must be a config string such as 'rand-m9-mstd0.5-inc1'; got {config!r}")
    parts = config.split("-")
    if parts[0] != "rand":
        raise ValueError(f"randaugment config {config!r} must start with 'rand'")
    values: dict = {}
    for part in parts[1:]:
        match = re.fullmatch(r"(mstd|mmax|inc|m|n|w)(\d+(?:\.\d*)?)", part)
        if match is None:
            raise ValueError(f"randaugment config {config!r}: cannot read {part!r}; the parts are m<int>, n<int>, "
                             "mstd<float>, mmax<int>, inc<0|1>, w0")
        key, text = match.groups()
        if key in values:
            raise ValueError(f"randaugment config {config!r} sets {key!r} twice")
        if key != "mstd" and not text.isdigit():
            raise ValueError(f"randaugment config {config!r}: {key!r} takes an integer; got {text!r}")
        values[key] = float(text) if key == "mstd" else int(text)
    if values.get("inc", 0) not in (0, 1):
        raise ValueError(f"randaugment config {config!r}: inc is 0 or 1; got {values['inc']}")
    if values.get("w", 0) != 0:
        raise ValueError(f"randaugment config {config!r}: timm defines only the op weights w0; got w{values['w']}")
    if values.get("n", 2) < 1:
        raise ValueError(f"randaugment config {config!r}: n (ops per image) must be >= 1")
    std = values.get("mstd", 0.0)
    return RandAugmentConfig(
        magnitude=float(values.get("m", LEVEL_DENOMINATOR)),
        num_ops=values.get("n", 2),
        magnitude_std=math.inf if std > 100 else std,
        magnitude_max=float(values.get("mmax", LEVEL_DENOMINATOR)),
        increasing=bool(values.get("inc", 0)),
        weighted="w" in values,
    )


def op_argument(name: str, level: float, sign: float, size: tuple[int, int]):
    """The argument of op ``name`` at ``level = magnitude / 10`` (None for ops without one);
    ``sign`` (+-1) is the random sign of the signed ops; ``size`` is ``(H, W)``."""
    if name == "Rotate":
        return sign * 30.0 * level
    if name in ("ShearX", "ShearY"):
        return sign * 0.3 * level
    if name == "TranslateXRel":
        return sign * 0.45 * level * size[1]
    if name == "TranslateYRel":
        return sign * 0.45 * level * size[0]
    if name == "Posterize":
        return int(4 * level)
    if name == "PosterizeIncreasing":
        return 4 - int(4 * level)
    if name == "Solarize":
        return int(256 * level)
    if name == "SolarizeIncreasing":
        return 256 - int(256 * level)
    if name == "SolarizeAdd":
        return int(110 * level)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return 1.8 * level + 0.1
    if name.endswith("Increasing"):
        return max(0.1, 1.0 + sign * 0.9 * level)
    return None


_PIXEL_OPS = {"AutoContrast": auto_contrast, "Equalize": equalize, "Invert": invert}
_ARGUMENT_OPS = {"Posterize": posterize, "Solarize": solarize, "SolarizeAdd": solarize_add, "Color": color,
                 "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness}
_GEOMETRIC_OPS = {"Rotate": rotate, "ShearX": shear_x, "ShearY": shear_y, "TranslateXRel": translate_x,
                  "TranslateYRel": translate_y}


def apply_op(image: torch.Tensor, name: str, magnitude: float, sign: float = 1.0,
             fill: Sequence[int] = (128, 128, 128), interpolation: str = "bilinear") -> torch.Tensor:
    """Op ``name`` of the RandAugment lists at a known ``magnitude`` (0..10) and sign."""
    _check_image(image)
    base = name.removesuffix("Increasing")
    if name in _PIXEL_OPS:
        return _PIXEL_OPS[name](image)
    argument = op_argument(name, magnitude / LEVEL_DENOMINATOR, sign, tuple(image.shape[1:]))
    if base in _ARGUMENT_OPS:
        return _ARGUMENT_OPS[base](image, argument)
    if name in _GEOMETRIC_OPS:
        return _GEOMETRIC_OPS[name](image, argument, fill=fill, interpolation=interpolation)
    valid = ", ".join(sorted(set(RAND_OPS + RAND_INCREASING_OPS)))
    raise ValueError(f"unknown RandAugment op {name!r}; valid: {valid}")


def _check_fill(fill) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in fill)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ValueError(f"fill must be three grey levels 0..255; got {fill!r}")
    return values


class RandAugment:
    """timm's RandAugment from its config string; ``augment(image_uint8, generator=None)``.

    ``fill`` is the grey the geometric ops bring in (timm: the data set's
    mean times 255, rounded); ``interpolation`` their resampling.
    """

    def __init__(self, config: str | RandAugmentConfig, fill: Sequence[int] = (128, 128, 128),
                 interpolation: str = "random", prob: float = 0.5):
        self.config = config if isinstance(config, RandAugmentConfig) else parse_randaugment(config)
        self.fill = _check_fill(fill)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must be in [0, 1]; got {prob}")
        self.interpolation, self.prob = interpolation, prob

    def _choose_ops(self, generator) -> list[str]:
        ops = self.config.ops
        if self.config.weighted:
            weights = torch.tensor(CHOICE_WEIGHTS_0, dtype=torch.float64)
            count = min(self.config.num_ops, int((weights > 0).sum()))
            indices = torch.multinomial(weights, count, replacement=False, generator=generator)
        else:
            indices = torch.randint(len(ops), (self.config.num_ops,), generator=generator)
        return [ops[i] for i in indices.tolist()]

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(image)
        config = self.config
        for name in self._choose_ops(generator):
            # Every op takes the same draws whether or not it runs: a fixed count per op.
            run, uniform, sign_draw, interp_draw = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
            gaussian = float(torch.randn(1, generator=generator, dtype=torch.float64))
            if run >= self.prob:
                continue
            magnitude = config.magnitude
            if config.magnitude_std == math.inf:
                magnitude = uniform * magnitude
            elif config.magnitude_std > 0:
                magnitude += config.magnitude_std * gaussian
            magnitude = min(max(magnitude, 0.0), config.magnitude_max)
            interpolation = self.interpolation
            if interpolation == "random":
                interpolation = "bilinear" if interp_draw < 0.5 else "bicubic"
            image = apply_op(image, name, magnitude, -1.0 if sign_draw < 0.5 else 1.0, self.fill, interpolation)
        return image

    def __repr__(self) -> str:
        c = self.config
        return (f"RandAugment(m={c.magnitude:g}, n={c.num_ops}, mstd={c.magnitude_std:g}, mmax={c.magnitude_max:g}, "
                f"ops={'increasing' if c.increasing else 'standard'}{', w0' if c.weighted else ''}, "
                f"fill={self.fill}, interpolation={self.interpolation})")


class ColorJitter:
    """torchvision's ``ColorJitter(j, j, j)`` (timm's scalar ``color_jitter``) on a uint8 image:
    brightness, contrast and saturation factors each uniform in ``[max(0, 1 - j), 1 + j]``,
    applied in a random order with the ``ImageEnhance`` definitions above."""

    def __init__(self, strength: float):
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
            raise ValueError(f"color_jitter must be a number >= 0; got {strength!r}")
        self.strength = float(strength)

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(image)
        low, high = max(0.0, 1.0 - self.strength), 1.0 + self.strength
        order = torch.randperm(3, generator=generator).tolist()
        factors = (low + (high - low) * torch.rand(3, generator=generator, dtype=torch.float64)).tolist()
        for index in order:
            image = (brightness, contrast, color)[index](image, factors[index])
        return image

    def __repr__(self) -> str:
        return f"ColorJitter(brightness=contrast=saturation={self.strength:g})"
