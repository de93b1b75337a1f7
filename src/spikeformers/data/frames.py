"""Integrate an event recording into T frames of per-pixel event counts.

The result has shape ``[T, 2, H, W]``: frame, polarity channel (channel 0 =
OFF events, p = 0; channel 1 = ON events, p = 1, SpikingJelly's order), row
``y`` and column ``x``. Values are raw counts, which is what the published
spiking transformers consume.

How events are assigned to the T frames (``split_by``):

- ``'number'`` (SpikingJelly, used by the Spikformer / QKFormer results):
  with N events and ``di = N // T``, frame j holds the events with array
  index in ``[j*di, (j+1)*di)``; the last frame runs to N. Events are taken
  in array order. With fewer events than frames (``di = 0``) every event
  lands in the last frame.
- ``'time'`` (SpikingJelly): with ``dt = (t_last - t_first) // T``, frame j
  holds ``t_first + j*dt <= t < t_first + (j+1)*dt``; the last frame is
  extended to the end of the recording, so no event is lost. When the
  recording spans less than T microseconds (``dt = 0``) every event lands in
  the last frame. (SpikingJelly fails on a window without events; here such
  a frame is simply zero.)
- ``'time_bins'`` (tonic's ``ToFrame(n_time_bins=T)``): the same windows,
  but the events after the last window (``t >= t_first + T*dt``, the
  remainder of the integer division) are dropped, as tonic drops them; with
  ``dt = 0`` all frames are zero.

The two time modes need events sorted by ``t`` and raise otherwise (sort with
``sort_events``); rather than guess whether the caller meant array order or
time order, the error makes them choose.
"""

from __future__ import annotations

import numpy as np

from .events import check_event_fields

SPLIT_MODES = ("number", "time", "time_bins")


def events_to_frames(
    events: np.ndarray,
    time_steps: int,
    sensor_size: tuple[int, int],
    split_by: str = "number",
) -> np.ndarray:
    """Count events per frame, polarity and pixel: an int32 array ``[T, 2, H, W]``.

    ``sensor_size`` is ``(H, W)``; an event at column ``x``, row ``y`` counts
    at ``[frame, p, y, x]``. See the module docstring for ``split_by``.
    Empty recordings give all-zero frames.
    """
    check_event_fields(events)
    if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)):
        raise ValueError(f"time_steps must be an integer >= 1; got {time_steps!r}")
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1; got {time_steps}")
    if split_by not in SPLIT_MODES:
        raise ValueError(f"unknown split_by {split_by!r}; valid: {SPLIT_MODES}")
    height, width = check_sensor_size(sensor_size)

    frames_shape = (time_steps, 2, height, width)
    if len(events) == 0:
        return np.zeros(frames_shape, dtype=np.int32)

    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(np.int64)
    _check_coordinates(x, "x", width, sensor_size)
    _check_coordinates(y, "y", height, sensor_size)
    if p.min() < 0 or p.max() > 1:
        bad = np.unique(p[(p < 0) | (p > 1)])
        raise ValueError(f"p must be 0 (OFF) or 1 (ON); got other values {bad[:5].tolist()}")

    frame_index = _frame_index(events, time_steps, split_by)
    kept = frame_index < time_steps  # 'time_bins' marks dropped events with T
    flat_index = ((frame_index * 2 + p) * height + y) * width + x
    # bincount adds every event, also repeats at one pixel (indexed += would not).
    counts = np.bincount(flat_index[kept], minlength=int(np.prod(frames_shape)))
    return counts.reshape(frames_shape).astype(np.int32)


def _frame_index(events: np.ndarray, time_steps: int, split_by: str) -> np.ndarray:
    """The frame each event falls in; ``time_steps`` marks an event that is dropped."""
    num_events = len(events)
    if split_by == "number":
        per_frame = num_events // time_steps
        if per_frame == 0:
            return np.full(num_events, time_steps - 1, dtype=np.int64)
        return np.minimum(np.arange(num_events) // per_frame, time_steps - 1)

    t = events["t"].astype(np.int64)
    if np.any(t[1:] < t[:-1]):
        first = int(np.flatnonzero(t[1:] < t[:-1])[0]) + 1
        raise ValueError(
            f"split_by={split_by!r} needs events sorted by t, but event {first} "
            f"(t={t[first]}) comes before event {first - 1} (t={t[first - 1]}); "
            "sort them first with spikeformers.data.sort_events"
        )
    window = (t[-1] - t[0]) // time_steps
    if window == 0:
        # Every window [t0, t0) is empty: 'time' extends the last one over all
        # events, 'time_bins' keeps nothing.
        fill = time_steps - 1 if split_by == "time" else time_steps
        return np.full(num_events, fill, dtype=np.int64)
    frame_index = (t - t[0]) // window
    if split_by == "time":
        return np.minimum(frame_index, time_steps - 1)
    return np.minimum(frame_index, time_steps)  # 'time_bins': past the end -> dropped


def check_sensor_size(sensor_size) -> tuple[int, int]:
    """``sensor_size`` as two positive ints ``(H, W)``, or a clear ValueError."""
    try:
        height, width = (int(size) for size in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(f"sensor_size must be (H, W); got {sensor_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"sensor_size must be (H, W) with positive sizes; got {sensor_size!r}")
    return height, width


def _check_coordinates(values: np.ndarray, name: str, limit: int, sensor_size) -> None:
    if values.max() >= limit:
        raise ValueError(
            f"event {name} coordinates reach {values.max()}, outside sensor_size="
            f"{tuple(sensor_size)} (H, W), which allows {name} < {limit}"
        )
    if values.min() < 0:
        raise ValueError(f"event {name} coordinates go down to {values.min()}; they must be >= 0")
