"""The event representation shared by every reader, transform and data set.

An event-camera recording is a NumPy structured array with one row per event
and the fields of ``EVENT_DTYPE``:

- ``t``: timestamp in microseconds (int64),
- ``x``, ``y``: pixel column and row (int16; row 0 is the top of the frame),
- ``p``: polarity, 1 = ON (brighter), 0 = OFF (darker).

A structured array keeps the four fields of an event together, sorts and
slices as one object, and saves to ``.npz`` without pickling.
"""

from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])

EVENT_FIELDS = ("t", "x", "y", "p")

_INT16 = np.iinfo(np.int16)


def make_events(t, x, y, p) -> np.ndarray:
    """Pack four equally long 1-D sequences into an ``EVENT_DTYPE`` array.

    Raises ValueError when the lengths differ, when an input is not 1-D, when
    ``x`` or ``y`` does not fit int16 (a silent wrap-around would move events
    to the wrong pixel), or when ``p`` holds anything but 0 and 1.
    """
    columns = {"t": t, "x": x, "y": y, "p": p}
    arrays = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(
                f"make_events needs 1-D sequences; {name} has shape {array.shape}"
            )
        arrays[name] = array

    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise ValueError(f"make_events needs t, x, y, p of equal length; got {listed}")

    for name in ("x", "y"):
        array = arrays[name]
        if array.size and (array.min() < _INT16.min or array.max() > _INT16.max):
            raise ValueError(
                f"{name} values must fit int16 [{_INT16.min}, {_INT16.max}]; "
                f"got range [{array.min()}, {array.max()}]"
            )

    polarity = arrays["p"]
    if polarity.size and not np.isin(polarity, (0, 1)).all():
        bad = np.unique(polarity[~np.isin(polarity, (0, 1))])
        raise ValueError(
            f"p must be 0 (OFF) or 1 (ON); got other values {bad[:5].tolist()}"
        )

    events = np.empty(lengths["t"], dtype=EVENT_DTYPE)
    for name, array in arrays.items():
        events[name] = array
    return events


def check_event_fields(events) -> None:
    """Raise a clear error unless ``events`` is a structured array with t, x, y, p."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None:
        described = getattr(events, "dtype", type(events).__name__)
        raise ValueError(
            f"events must be a structured array with fields {EVENT_FIELDS} "
            f"(see make_events); got {described}"
        )
    missing = [name for name in EVENT_FIELDS if name not in names]
    if missing:
        raise ValueError(
            f"events lack the field(s) {missing}; they have {names}, "
            f"and need {EVENT_FIELDS}"
        )


def sort_events(events: np.ndarray) -> np.ndarray:
    """Return the events ordered by ``t``; events with equal ``t`` keep their order.

    (``np.sort(events, order='t')`` is not this: it breaks ties on the other
    fields instead of keeping the recorded order.)
    """
    check_event_fields(events)
    return events[np.argsort(events["t"], kind="stable")]
