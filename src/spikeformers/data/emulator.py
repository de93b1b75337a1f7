"""An event-camera emulator: turn still images into event recordings.

It records an image the way N-MNIST was recorded (Orchard et al. 2015): the
image sits on the sensor and moves in three straight saccades that form a
triangle, about 100 ms each, and the camera reports the brightness changes
that the motion causes at the edges.

The pixel model (a simple DVS pixel):

- each pixel remembers a reference log intensity ``log(I + log_eps)`` and
  emits an ON event (p = 1) each time its log intensity rises one contrast
  threshold above the reference, an OFF event (p = 0) each time it falls one
  threshold below; the reference moves one threshold per crossing, so a
  large change gives several events;
- the signal is sampled at ``time_samples`` instants; between two samples the
  log intensity is taken to change linearly, so the crossings inside one
  interval get evenly spread timestamps;
- each sensor pixel may have its own threshold (``threshold_mismatch``: the
  relative spread of a log-normal factor), the same in every recording, as a
  real sensor's fabrication mismatch is;
- after an event a pixel is blind for ``refractory_us``: crossings inside
  that time are dropped, while the reference still follows the signal, as a
  real pixel held in reset does, so the change is lost, not replayed later;
- optional background noise: events at uniformly random times, pixels and
  polarities at ``noise_rate_hz`` per pixel (not subject to the refractory
  period).

The motion is rendered with sub-pixel accuracy: at each sample the image is
resampled bilinearly at its current offset. Everything is vectorised across
images and pixels; the only Python loop runs over the time samples, so a
batch of thousands of small images takes seconds. The same ``seed`` gives
the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from .events import EVENT_DTYPE
from .frames import check_sensor_size

# ITU-R BT.601 luma weights: how a camera's single channel sees RGB.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

# Refractory arithmetic runs on float timestamps that are floored to whole
# microseconds; this margin (far above float rounding, far below 1 us) keeps
# the floored times of one pixel at least refractory_us apart.
_TIME_MARGIN_US = 1e-3


@dataclass(frozen=True)
class PixelModel:
    """The settings of the DVS pixel model (module docstring), one place for every emulator entry:
    ``contrast_threshold`` (the common DVS threshold 0.2), ``threshold_mismatch`` (0: none),
    ``refractory_us`` (0: none), ``noise_rate_hz`` (0: none) and ``log_eps`` (0.1 keeps faint
    interpolation tails on a dark background from firing). The defaults are an ideal sensor."""

    contrast_threshold: float = 0.2
    threshold_mismatch: float = 0.0
    refractory_us: int = 0
    noise_rate_hz: float = 0.0
    log_eps: float = 0.1

    def __post_init__(self):
        if self.contrast_threshold <= 0:
            raise ValueError(f"contrast_threshold must be > 0; got {self.contrast_threshold}")
        if self.threshold_mismatch < 0 or self.refractory_us < 0 or self.noise_rate_hz < 0 or self.log_eps <= 0:
            raise ValueError(
                "need threshold_mismatch >= 0, refractory_us >= 0, noise_rate_hz >= 0 and log_eps > 0; got "
                f"{self.threshold_mismatch}, {self.refractory_us}, {self.noise_rate_hz}, {self.log_eps}"
            )


def emulate_events(image, sensor_size: tuple[int, int] = (34, 34), **settings) -> np.ndarray:
    """Record one image moving in N-MNIST-style saccades: events in ``EVENT_DTYPE``.

    ``image``: NumPy array or torch tensor, ``[H, W]`` grayscale or
    ``[C, H, W]`` with C = 1 or 3 (RGB is turned into luma). ``settings``:
    those of ``emulate_events_batch``, whose batch of one this is.
    """
    pixels = _to_numpy(image)
    if pixels.ndim == 3:
        pixels = _to_grayscale(pixels[None])[0]
    elif pixels.ndim != 2:
        raise ValueError(
            f"emulate_events takes one image [H, W] or [C, H, W]; got shape {pixels.shape} "
            "(use emulate_events_batch for a batch)"
        )
    return emulate_events_batch(pixels[None], sensor_size, **settings)[0]


def emulate_events_batch(
    images,
    sensor_size: tuple[int, int] = (34, 34),
    *,
    scale: float | None = None,
    value_range: tuple[float, float] | None = None,
    saccade_amplitude: float = 2.0,
    duration_us: int = 300_000,
    time_samples: int = 60,
    seed: int = 0,
    **pixel,
) -> list[np.ndarray]:
    """Record a batch of images at once: one ``EVENT_DTYPE`` array per image.

    ``images``: NumPy array or torch tensor, ``[N, H, W]`` or ``[N, C, H, W]``
    (C = 1 or 3). ``sensor_size``: ``(H, W)`` of the sensor canvas (default
    34x34, N-MNIST's). ``scale``: resize factor of the images; None fits them
    and their saccades inside the canvas. ``value_range``: the ``(dark,
    bright)`` pixel values, mapped to intensity 0 and 1; None uses each
    image's own min and max. ``saccade_amplitude``: size of the triangle in
    sensor pixels. ``duration_us``: the whole recording (three saccades) in
    microseconds, sampled at ``time_samples`` instants after the start (60:
    each sample moves the image about 0.1 pixel). ``pixel``: the settings of
    ``PixelModel`` (an ideal sensor by default).

    All images share the sensor, the motion and the settings. The random
    draws come from one generator seeded with ``seed``: the threshold pattern
    depends only on the seed and the sensor, so without noise each image's
    recording is the one it gets alone; the noise depends on the whole batch.
    """
    model = PixelModel(**pixel)
    pixels = _to_numpy(images)
    if pixels.ndim == 4:
        pixels = _to_grayscale(pixels)
    elif pixels.ndim != 3:
        raise ValueError(
            f"emulate_events_batch takes images [N, H, W] or [N, C, H, W]; got shape {pixels.shape}"
        )
    height, width = check_sensor_size(sensor_size)
    if saccade_amplitude < 0:
        raise ValueError(f"saccade_amplitude must be >= 0; got {saccade_amplitude}")
    if time_samples < 1 or duration_us < time_samples:
        raise ValueError(
            "need time_samples >= 1 and duration_us >= time_samples (distinct sample times); "
            f"got time_samples={time_samples}, duration_us={duration_us}"
        )
    intensities = _normalise(pixels, value_range).astype(np.float32)

    image_height, image_width = intensities.shape[1:]
    if scale is None:
        # Largest size at which the image and its whole path stay on the sensor.
        scale = min((height - saccade_amplitude) / image_height, (width - saccade_amplitude) / image_width)
    if scale <= 0:
        raise ValueError(f"scale must be > 0; got {scale} (is the sensor smaller than the saccades?)")
    top = (height - scale * image_height) / 2
    left = (width - scale * image_width) / 2

    sample_times = np.round(np.linspace(0, duration_us, time_samples + 1)).astype(np.int64)
    offset_y, offset_x = saccade_offsets(sample_times / duration_us, saccade_amplitude)

    def rendered_frames():
        for dy, dx in zip(offset_y, offset_x):
            rows = _resampling_matrix(height, image_height, scale, top + dy)
            columns = _resampling_matrix(width, image_width, scale, left + dx)
            yield rows @ intensities @ columns.T

    return _pixel_events(rendered_frames(), sample_times, (len(intensities), height, width), model,
                         np.random.default_rng(seed))


def video_to_events(video, timestamps_us, *, seed: int = 0, **pixel) -> np.ndarray:
    """Run the DVS pixel model on a video: events in ``EVENT_DTYPE``.

    ``video``: ``[K, H, W]`` linear intensities (>= 0), NumPy or torch;
    ``timestamps_us``: the K strictly increasing sample times in
    microseconds. The first frame sets the references and emits nothing.
    ``pixel``: the settings of ``PixelModel``; ``seed`` its random draws.
    This is the pixel model of ``emulate_events`` without the saccades.
    """
    model = PixelModel(**pixel)
    frames = _to_numpy(video)
    times = np.asarray(timestamps_us, dtype=np.int64)
    if frames.ndim != 3:
        raise ValueError(f"video must be [K, H, W]; got shape {frames.shape}")
    if times.shape != (len(frames),):
        raise ValueError(
            f"need one timestamp per frame: video has {len(frames)} frames, "
            f"timestamps_us has shape {times.shape}"
        )
    if np.any(np.diff(times) <= 0):
        raise ValueError("timestamps_us must be strictly increasing")
    if frames.min() < 0:
        raise ValueError(f"video intensities must be >= 0; got minimum {frames.min()}")
    return _pixel_events((frame[None] for frame in frames), times, (1,) + frames.shape[1:], model,
                         np.random.default_rng(seed))[0]


def saccade_offsets(progress, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """The image offset ``(dy, dx)`` in pixels at ``progress`` in [0, 1] of the recording.

    Three straight saccades of equal duration trace a triangle: down and
    right, up and right, then back left to the start. Their directions differ
    by about 60 degrees or more, so edges of every orientation move across
    pixels in at least one of them. The triangle is centred on the rest
    position, so offsets stay within ``amplitude / 2`` of it.
    """
    corners_y = np.array([0.0, 1.0, 0.0, 0.0]) * amplitude - amplitude / 2
    corners_x = np.array([0.0, 0.5, 1.0, 0.0]) * amplitude - amplitude / 2
    corner_times = np.linspace(0.0, 1.0, 4)
    return np.interp(progress, corner_times, corners_y), np.interp(progress, corner_times, corners_x)


def _pixel_events(intensity_frames: Iterable[np.ndarray], sample_times: np.ndarray, shape: tuple[int, int, int],
                  model: PixelModel, rng: np.random.Generator) -> list[np.ndarray]:
    """The DVS pixel model on ``[N, H, W]`` intensity frames, one per sample time.

    Returns one time-sorted ``EVENT_DTYPE`` array per image. The pixel state
    is kept flat over N*H*W pixels in float32 (ample for log intensities,
    and twice as fast as float64 on the dense per-sample work); each
    interval then works only on the few pixels that crossed a threshold.
    """
    log_eps, refractory_us = model.log_eps, model.refractory_us
    num_images, height, width = shape
    pixels_per_image = height * width
    # One threshold per sensor pixel, the same in every recording, as a real
    # sensor's fixed pattern is. Drawn even without mismatch, so that the
    # noise of a seed does not depend on the mismatch setting.
    sensor_thresholds = model.contrast_threshold * np.exp(model.threshold_mismatch *
                                                          rng.standard_normal(pixels_per_image))
    thresholds = np.tile(sensor_thresholds.astype(np.float32), num_images)

    frames = iter(intensity_frames)
    reference = _log_intensity(next(frames), log_eps)
    last_event_time = np.full(reference.shape, -np.inf)
    pieces = []

    for previous_time, time, frame in zip(sample_times[:-1], sample_times[1:], frames):
        change = _log_intensity(frame, log_eps) - reference
        active = np.flatnonzero(np.abs(change) >= thresholds)
        active_change = change[active].astype(np.float64)
        active_threshold = thresholds[active].astype(np.float64)
        crossings = np.floor(np.abs(active_change) / active_threshold)
        reference[active] += (np.sign(active_change) * crossings * active_threshold).astype(np.float32)

        # The log intensity changes linearly within the interval, so crossing
        # m (1..crossings) happens at previous_time + m * spacing.
        spacing = (time - previous_time) * active_threshold / np.abs(active_change)
        first, step, emitted = _kept_crossings(
            crossings, spacing, last_event_time[active] - previous_time, refractory_us
        )
        fired = emitted > 0
        last_kept = first[fired] + (emitted[fired] - 1) * step[fired]
        last_event_time[active[fired]] = np.floor(previous_time + last_kept * spacing[fired])

        # Expand every pixel into its emitted events: k = 0..emitted-1 per pixel.
        owner = np.repeat(np.arange(active.size), emitted)
        k = np.arange(owner.size) - np.repeat(np.cumsum(emitted) - emitted, emitted)
        event_times = np.floor(previous_time + (first[owner] + k * step[owner]) * spacing[owner])
        interval = [active[owner], event_times.astype(np.int64), (active_change[owner] > 0).astype(np.uint8)]

        if model.noise_rate_hz > 0:
            # Drawn interval by interval, so that noise, like the signal,
            # stays inside the interval and one sort per interval suffices.
            noise = _noise_events(rng, model.noise_rate_hz, num_images, pixels_per_image, previous_time, time)
            interval = [np.concatenate(pair) for pair in zip(interval, noise)]
        pieces.append(_interval_events(*interval, previous_time, width, pixels_per_image))

    return _split_by_image(pieces, num_images)


def _kept_crossings(crossings, spacing, since_last_event, refractory_us):
    """Which crossings of each pixel survive its refractory period.

    A pixel's crossings come every ``spacing`` microseconds; its last event
    was ``since_last_event`` before the interval (negative, or -inf if none).
    Kept are crossing ``first``, then every ``step``-th one, ``emitted`` in
    all: consecutive kept events are at least ``refractory_us`` apart.
    """
    if refractory_us == 0:
        ones = np.ones_like(crossings)
        return ones, ones, crossings.astype(np.int64)
    blind_for = since_last_event + refractory_us + _TIME_MARGIN_US
    first = np.maximum(1.0, np.ceil(blind_for / spacing))
    step = np.maximum(1.0, np.ceil((refractory_us + _TIME_MARGIN_US) / spacing))
    emitted = np.where(first <= crossings, (crossings - first) // step + 1, 0).astype(np.int64)
    return first, step, emitted


def _noise_events(rng, rate_hz, num_images, pixels_per_image, start_time, end_time):
    """Background events: Poisson counts per image, uniform pixels, times and polarities."""
    expected = rate_hz * pixels_per_image * (end_time - start_time) * 1e-6
    image = np.repeat(np.arange(num_images), rng.poisson(expected, size=num_images))
    flat_pixel = image * pixels_per_image + rng.integers(0, pixels_per_image, image.size)
    times = rng.integers(start_time, end_time, image.size, endpoint=True)
    polarity = rng.integers(0, 2, image.size, dtype=np.uint8)
    return flat_pixel, times, polarity


def _log_intensity(frame: np.ndarray, log_eps: float) -> np.ndarray:
    return np.log(np.asarray(frame, dtype=np.float32).ravel() + np.float32(log_eps))


def _interval_events(flat_pixel, times, polarity, start_time, width, pixels_per_image):
    """One interval's events (all at ``t >= start_time``) sorted by time, with their images."""
    order = _stable_order(times - start_time)
    flat_pixel = flat_pixel[order]
    events = np.empty(order.size, dtype=EVENT_DTYPE)
    events["t"] = times[order]
    within_image = flat_pixel % pixels_per_image
    events["y"] = within_image // width
    events["x"] = within_image % width
    events["p"] = polarity[order]
    return flat_pixel // pixels_per_image, events


def _split_by_image(pieces, num_images: int) -> list[np.ndarray]:
    """One time-sorted event array per image, from the intervals' sorted events.

    Every interval's events lie inside that interval, so the intervals
    concatenated in order are sorted by time; a stable sort by image keeps
    that order within each image.
    """
    if not pieces:
        return [np.zeros(0, dtype=EVENT_DTYPE) for _ in range(num_images)]
    image = np.concatenate([piece_image for piece_image, _ in pieces])
    events = np.concatenate([piece_events for _, piece_events in pieces])
    order = _stable_order(image)
    boundaries = np.searchsorted(image[order], np.arange(1, num_images))
    return np.split(np.take(events, order), boundaries)  # take: ~5x faster than events[order] on records


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer keys.

    NumPy sorts 16-bit keys stably with a radix sort, several times faster
    than its merge sort of int64 keys, and the keys here (image index, time
    within one interval) usually fit.
    """
    if keys.size and keys.max() <= np.iinfo(np.uint16).max:
        keys = keys.astype(np.uint16)
    return np.argsort(keys, kind="stable")


def _resampling_matrix(out_size: int, in_size: int, scale: float, offset: float) -> np.ndarray:
    """Weights ``[out_size, in_size]`` that resample one image axis onto the sensor.

    The image, resized by ``scale``, starts at sensor coordinate ``offset``
    (sub-pixel). Sensor pixel i samples the image at source coordinate
    ``(i + 0.5 - offset) / scale - 0.5`` with a tent filter: bilinear
    interpolation when enlarging; when shrinking the tent widens to 1/scale
    pixels, so small sensors average rather than alias. Outside the image the
    weights fade to zero, i.e. a dark background.
    """
    source = (np.arange(out_size) + 0.5 - offset) / scale - 0.5
    shrink = min(scale, 1.0)
    distance = np.abs(source[:, None] - np.arange(in_size)[None, :])
    return (np.maximum(0.0, 1.0 - distance * shrink) * shrink).astype(np.float32)


def _to_numpy(images) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float64)


def _to_grayscale(images: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` with C = 1 or 3 to ``[N, H, W]``."""
    channels = images.shape[1]
    if channels == 1:
        return images[:, 0]
    if channels == 3:
        return np.einsum("nchw,c->nhw", images, _LUMA_WEIGHTS)
    raise ValueError(
        f"images must have 1 or 3 channels (grayscale or RGB); got {channels} in shape {images.shape}"
    )


def _normalise(images: np.ndarray, value_range) -> np.ndarray:
    """Map pixel values to intensities in [0, 1]: ``value_range`` or each image's min..max."""
    if value_range is None:
        low = images.min(axis=(1, 2), keepdims=True)
        high = images.max(axis=(1, 2), keepdims=True)
    else:
        low, high = (float(value) for value in value_range)
        if high <= low:
            raise ValueError(f"value_range must be (dark, bright) with dark < bright; got {value_range}")
    span = np.where(high > low, high - low, 1.0)  # a flat image stays dark, emits nothing
    return np.clip((images - low) / span, 0.0, 1.0)

