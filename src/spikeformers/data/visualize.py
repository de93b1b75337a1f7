"""Pictures of samples: event frames with ON and OFF events in two colours, one panel per
time step (PNG, with matplotlib) or one GIF frame per time step (Pillow); static images as they are.

People look at event data rather than read it: a wrong orientation, a
split that cuts a gesture in half or a resize that blurs everything away is
obvious in a picture and invisible in a tensor's statistics.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..atomic import atomic_write

ON_COLOUR = (1.0, 0.45, 0.05)  # orange: brighter (p = 1, channel 1)
OFF_COLOUR = (0.1, 0.55, 1.0)  # blue: darker (p = 0, channel 0)
PANEL_INCHES = 2.0
TITLE_INCHES = 0.5
MAX_COLUMNS = 8


def frames_to_rgb(frames) -> np.ndarray:
    """Event frames ``[T, 2, H, W]`` (counts) -> float RGB ``[T, H, W, 3]`` in [0, 1] on black.

    ON counts colour a pixel orange, OFF counts blue (both: towards white).
    One brightness scale for all T frames (the 99th percentile of the
    non-zero counts is full brightness), so the frames compare with each other.
    """
    frames = torch.as_tensor(frames).detach().cpu().float().numpy()
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f"event frames must be [T, 2, H, W]; got shape {list(frames.shape)}")
    nonzero = np.abs(frames[frames != 0])
    full = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    off, on = np.clip(np.abs(frames[:, 0]) / full, 0, 1), np.clip(np.abs(frames[:, 1]) / full, 0, 1)
    rgb = on[..., None] * np.array(ON_COLOUR) + off[..., None] * np.array(OFF_COLOUR)
    return np.clip(rgb, 0.0, 1.0)


def image_to_rgb(image) -> np.ndarray:
    """A ``[3, H, W]`` image with values in [0, 1] -> RGB ``[1, H, W, 3]`` (one panel)."""
    image = torch.as_tensor(image).detach().cpu().float().clamp(0, 1).numpy()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"an image must be [3, H, W]; got shape {list(image.shape)}")
    return image.transpose(1, 2, 0)[None]


def grid_shape(panels: int) -> tuple[int, int]:
    """``(rows, columns)`` of the PNG: up to 8 panels a row."""
    columns = min(panels, MAX_COLUMNS)
    return math.ceil(panels / columns), columns


def figure_pixels(panels: int, dpi: int) -> tuple[int, int]:
    """The PNG's ``(width, height)`` in pixels for ``panels`` panels at ``dpi``."""
    rows, columns = grid_shape(panels)
    return round(columns * PANEL_INCHES * dpi), round((rows * PANEL_INCHES + TITLE_INCHES) * dpi)


def _optional(module: str, purpose: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0].replace("PIL", "Pillow")
        raise ImportError(f"{purpose} needs {package}, which is not installed: pip install {package.lower()}") from None


def save_png(rgb: np.ndarray, path, title: str, dpi: int = 100, panel_titles=None) -> None:
    """Panels ``rgb [N, H, W, 3]`` in a grid under ``title``; the size is ``figure_pixels(N, dpi)``."""
    # a Figure made directly (not through pyplot) needs no display and leaves pyplot's state alone
    Figure = _optional("matplotlib.figure", "drawing a PNG of a sample").Figure

    count = len(rgb)
    rows, columns = grid_shape(count)
    width, height = columns * PANEL_INCHES, rows * PANEL_INCHES + TITLE_INCHES
    figure = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
    figure.suptitle(title, fontsize=9, y=1 - 0.15 * TITLE_INCHES / height)
    top = 1 - TITLE_INCHES / height
    for index in range(count):
        row, column = divmod(index, columns)
        axes = figure.add_axes((column / columns + 0.01, top - (row + 1) * (top / rows) + 0.01,
                                1 / columns - 0.02, top / rows - 0.06))
        axes.imshow(rgb[index], interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if panel_titles is not None:
            axes.set_title(panel_titles[index], fontsize=7, pad=2)
    atomic_write(path, lambda file: figure.savefig(file, dpi=dpi, format="png"))


def save_gif(rgb: np.ndarray, path, scale: int, frame_ms: int = 200, labels=None) -> None:
    """An animated GIF, one frame per panel of ``rgb [N, H, W, 3]``, each pixel ``scale`` x ``scale``;
    ``labels`` (one string a frame) are written in the top-left corner."""
    Image = _optional("PIL.Image", "writing a GIF of a sample")
    ImageDraw = _optional("PIL.ImageDraw", "writing a GIF of a sample")
    if scale < 1:
        raise ValueError(f"scale must be >= 1; got {scale}")
    pictures = []
    for index, panel in enumerate(rgb):
        picture = Image.fromarray(np.round(panel * 255).astype(np.uint8), "RGB")
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
        if labels is not None:
            ImageDraw.Draw(picture).text((2, 1), labels[index], fill=(255, 255, 255))
        pictures.append(picture)
    atomic_write(path, lambda file: pictures[0].save(file, format="GIF", save_all=True, append_images=pictures[1:],
                                                      duration=frame_ms, loop=0))


def default_scale(height: int, width: int) -> int:
    """Enlarge small sensors so a GIF is at least about 256 pixels across."""
    return max(1, 256 // max(height, width))
