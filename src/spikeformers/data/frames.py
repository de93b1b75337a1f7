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
- ``'time_bins'`` (tonic 1.7's ``ToFrame(n_time_bins=T, overlap=...)``,
  frame for frame): the same windows, but the events after the last window
  (``t >= t_first + T*dt``, the remainder of the integer division) are
  dropped, as tonic drops them; with ``dt = 0`` all frames are zero. With
  ``overlap`` in ``[0, 1)`` each window is ``L = dt * (1 + overlap)`` long and
  starts ``L * (1 - overlap)`` after the previous one, so neighbouring frames
  share events; these edges are computed in float64 exactly as tonic computes
  them. (tonic's ``include_incomplete`` does not apply to ``n_time_bins``: its
  ``ToFrame`` ignores it there, so the remainder is dropped either way.)
  ``overlap`` belongs to this mode only.

The two time modes need events sorted by ``t`` and raise otherwise (sort with
``sort_events``); rather than guess whether the caller meant array order or
time order, the error makes them choose. ``integrate`` is the choice made for
recordings as read from a file, where a timestamp is occasionally out of
order: the time modes take the events in (stable) time order. Every reader
and data set integrates through it.

How it is computed (the counts are the definition's, only faster): every
event gets its pixel index ``(p*H + y)*W + x`` within a frame; since each
frame is a run of consecutive events (by index for 'number', by
``np.searchsorted`` on the sorted timestamps for the time modes), each frame
is one ``np.bincount`` over its slice, and no per-event frame index is ever
built. Readers that decode addresses straight into pixel indices (the AEDAT
2.0 frame path of ``read_event_frames``) call ``count_frames`` directly.
"""

from __future__ import annotations

import numpy as np

from .events import check_event_fields, sort_events

SPLIT_MODES = ("number", "time", "time_bins")


def events_to_frames(
    events: np.ndarray,
    time_steps: int,
    sensor_size: tuple[int, int],
    split_by: str = "number",
    overlap: float = 0.0,
) -> np.ndarray:
    """Count events per frame, polarity and pixel: an int32 array ``[T, 2, H, W]``.

    ``sensor_size`` is ``(H, W)``; an event at column ``x``, row ``y`` counts
    at ``[frame, p, y, x]``. See the module docstring for ``split_by`` and
    ``overlap`` (``'time_bins'`` only). Empty recordings give all-zero frames.
    """
    check_event_fields(events)
    check_frame_options(time_steps, split_by, overlap)
    height, width = check_sensor_size(sensor_size)
    if len(events) == 0:
        return np.zeros((time_steps, 2, height, width), dtype=np.int32)

    x = _checked_coordinates(events["x"], "x", width, sensor_size)
    y = _checked_coordinates(events["y"], "y", height, sensor_size)
    p = _checked_polarities(events["p"])
    timestamps = None if split_by == "number" else np.ascontiguousarray(_integer_column(events["t"]))
    return count_frames(lambda start, end: pixel_index(x[start:end], y[start:end], p[start:end], height, width),
                        len(events), time_steps, (height, width), split_by, timestamps, overlap)


def integrate(events: np.ndarray, time_steps: int, sensor_size: tuple[int, int],
              split_by: str = "number", overlap: float = 0.0) -> np.ndarray:
    """``events_to_frames`` of a recording as read: for the time modes its events are first put
    in time order (a stable sort, only when a timestamp is out of order), for 'number' they
    stay in file order."""
    check_event_fields(events)
    if split_by != "number" and len(events) > 1 and np.any(events["t"][1:] < events["t"][:-1]):
        events = sort_events(events)
    return events_to_frames(events, time_steps, sensor_size, split_by, overlap)


def check_time_steps(time_steps) -> int:
    """``time_steps`` as an int, or a clear ValueError unless it is an integer >= 1."""
    if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)):
        raise ValueError(f"time_steps must be an integer >= 1; got {time_steps!r}")
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1; got {time_steps}")
    return int(time_steps)


def check_frame_options(time_steps, split_by: str, overlap: float = 0.0) -> None:
    """A clear ValueError unless ``time_steps`` is an int >= 1, ``split_by`` one of ``SPLIT_MODES``
    and ``overlap`` a number in [0, 1), other than 0 only with ``'time_bins'``."""
    check_time_steps(time_steps)
    if split_by not in SPLIT_MODES:
        raise ValueError(f"unknown split_by {split_by!r}; valid: {SPLIT_MODES}")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float, np.integer, np.floating)) \
            or not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a number in [0, 1) (a fraction of a time bin); got {overlap!r}")
    if overlap and split_by != "time_bins":
        raise ValueError(f"overlap applies to split_by='time_bins' only (tonic's ToFrame overlap); "
                         f"got overlap={overlap!r} with split_by={split_by!r}")


def pixel_index(x: np.ndarray, y: np.ndarray, p: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(p*H + y)*W + x`` for in-range integer columns: each event's place in one
    flattened ``[2, H, W]`` frame (``np.intp``, what ``np.bincount`` counts)."""
    index = np.multiply(y, width, dtype=np.intp)
    index += x
    index += np.multiply(p, height * width, dtype=np.intp)
    return index


def count_frames(pixels_between, num_events: int, time_steps: int, sensor_size: tuple[int, int],
                 split_by: str, timestamps: np.ndarray | None = None, overlap: float = 0.0) -> np.ndarray:
    """The ``[T, 2, H, W]`` int32 counts of ``num_events`` events, as ``events_to_frames``.

    ``pixels_between(start, end)`` gives the events ``start..end-1`` as indices
    into a flattened ``[2, H, W]`` frame (see ``pixel_index``), all in range.
    Asking frame by frame keeps every temporary small, which matters as much
    as the arithmetic: large fresh arrays cost page faults on every file.
    ``timestamps``: the events' integer times, for the time modes only, which
    raise unless they are sorted. ``overlap``: of 'time_bins' (the frames then share events).
    """
    height, width = sensor_size
    frame_size = 2 * height * width
    frames = np.zeros((time_steps, frame_size), dtype=np.int32)
    starts, ends = frame_bounds(num_events, time_steps, split_by, timestamps, overlap)
    for frame, (start, end) in enumerate(zip(starts, ends)):
        if end > start:
            # bincount adds every event, also repeats at one pixel (indexed += would not).
            frames[frame] = np.bincount(pixels_between(start, end), minlength=frame_size)
    return frames.reshape(time_steps, 2, height, width)


def frame_bounds(num_events: int, time_steps: int, split_by: str,
                 timestamps: np.ndarray | None = None, overlap: float = 0.0) -> tuple[list[int], list[int]]:
    """``(starts, ends)``: frame j holds the events ``[starts[j], ends[j])`` (module docstring)."""
    if split_by == "number":
        per_frame = num_events // time_steps  # 0: every event lands in the last frame
        starts = [frame * per_frame for frame in range(time_steps)]
        return starts, starts[1:] + [num_events]

    t = timestamps
    if num_events == 0:
        return [0] * time_steps, [0] * time_steps
    if np.any(t[1:] < t[:-1]):
        first = int(np.flatnonzero(t[1:] < t[:-1])[0]) + 1
        raise ValueError(
            f"split_by={split_by!r} needs events sorted by t, but event {first} "
            f"(t={t[first]}) comes before event {first - 1} (t={t[first - 1]}); "
            "sort them first with spikeformers.data.sort_events"
        )
    first_time = int(t[0])
    window = (int(t[-1]) - first_time) // time_steps
    if split_by == "time_bins" and overlap:
        # tonic's edges, computed as tonic computes them (float64, same operations in the same order),
        # so that an event on an edge falls on the same side: windows of (1 + overlap) bins, one every
        # (1 - overlap) of a window.
        length = window * (1.0 + float(overlap))
        starts = np.arange(time_steps) * (length * (1.0 - float(overlap))) + first_time
        return (np.searchsorted(t, starts, side="left").tolist(),
                np.searchsorted(t, starts + length, side="left").tolist())
    # Window edges t0 + j*dt (j = 0..T) lie within [t0, t_last], so they fit t's
    # dtype: searching with that dtype spares a converted copy of t.
    edges = np.array([first_time + frame * window for frame in range(time_steps + 1)], dtype=t.dtype)
    bounds = np.searchsorted(t, edges, side="left").tolist()
    # 'time' extends the last window to the end of the recording (with dt = 0
    # the empty windows [t0, t0) leave it every event); 'time_bins' drops the rest.
    last_end = num_events if split_by == "time" else bounds[-1]
    return bounds[:-1], bounds[1:-1] + [last_end]


def check_sensor_size(sensor_size) -> tuple[int, int]:
    """``sensor_size`` as two positive ints ``(H, W)``, or a clear ValueError."""
    return check_size(sensor_size, "sensor_size")


def check_size(size, name: str, square: bool = False) -> tuple[int, int]:
    """``size`` as two positive ints ``(H, W)`` (with ``square``, an int is a square size), or a
    ValueError naming ``name``."""
    if square and isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        height, width = (int(side) for side in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (H, W){' or an int' if square else ''}; got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be (H, W) with positive sizes; got {size!r}")
    return height, width


def _integer_column(values: np.ndarray) -> np.ndarray:
    """The column as it is when its integers fit int64 exactly, else converted to int64
    (floats truncated, as ``astype`` does)."""
    kind = values.dtype.kind
    if kind == "i" or (kind == "u" and values.dtype.itemsize < 8):
        return values
    return values.astype(np.int64)


def _as_unsigned(values: np.ndarray) -> np.ndarray:
    """Signed integers viewed as unsigned: negatives become huge, so one ``max``
    checks both ends of a range ``[0, limit)``."""
    if values.dtype.kind == "i":
        return values.view(values.dtype.str.replace("i", "u"))
    return values


def _checked_coordinates(values: np.ndarray, name: str, limit: int, sensor_size) -> np.ndarray:
    values = _integer_column(values)
    if _as_unsigned(values).max() < limit:
        return values
    if values.max() >= limit:
        raise ValueError(
            f"event {name} coordinates reach {values.max()}, outside sensor_size="
            f"{tuple(sensor_size)} (H, W), which allows {name} < {limit}"
        )
    raise ValueError(f"event {name} coordinates go down to {values.min()}; they must be >= 0")


def _checked_polarities(p: np.ndarray) -> np.ndarray:
    p = _integer_column(p)
    if _as_unsigned(p).max() > 1:
        bad = np.unique(p[(p < 0) | (p > 1)])
        raise ValueError(f"p must be 0 (OFF) or 1 (ON); got other values {bad[:5].tolist()}")
    return p
