"""Tests for the event representation and events_to_frames.

events_to_frames is pinned against a plain per-event loop written from the
SpikingJelly / tonic definitions (see spikeformers/data/frames.py).
"""

import numpy as np
import pytest

from spikeformers.data import EVENT_DTYPE, SPLIT_MODES, events_to_frames, make_events, sort_events


def random_events(seed, num_events, sensor_size=(5, 7), max_time=1_000):
    rng = np.random.default_rng(seed)
    height, width = sensor_size
    t = np.sort(rng.integers(0, max_time, num_events))
    return make_events(t, rng.integers(0, width, num_events), rng.integers(0, height, num_events),
                       rng.integers(0, 2, num_events))


def reference_frames(events, time_steps, sensor_size, split_by):
    """One event at a time, straight from the definitions."""
    frames = np.zeros((time_steps, 2) + tuple(sensor_size), dtype=np.int64)
    num_events = len(events)
    if num_events == 0:
        return frames
    if split_by == "number":
        per_frame = num_events // time_steps
        for frame in range(time_steps):
            start = frame * per_frame
            end = num_events if frame == time_steps - 1 else (frame + 1) * per_frame
            for event in events[start:end]:
                frames[frame, event["p"], event["y"], event["x"]] += 1
        return frames
    first, last = int(events["t"][0]), int(events["t"][-1])
    window = (last - first) // time_steps
    for event in events:
        inside = [f for f in range(time_steps) if first + f * window <= event["t"] < first + (f + 1) * window]
        if inside:
            frames[inside[0], event["p"], event["y"], event["x"]] += 1
        elif split_by == "time":  # the last frame is extended to the end
            frames[time_steps - 1, event["p"], event["y"], event["x"]] += 1
    return frames


@pytest.mark.parametrize("split_by", SPLIT_MODES)
@pytest.mark.parametrize(
    "num_events, time_steps",
    [(0, 4), (1, 1), (1, 3), (3, 5), (10, 3), (57, 4), (200, 1), (200, 7), (500, 16)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_frames_match_the_per_event_reference(split_by, num_events, time_steps, seed):
    events = random_events(seed, num_events)
    frames = events_to_frames(events, time_steps, (5, 7), split_by=split_by)
    np.testing.assert_array_equal(frames, reference_frames(events, time_steps, (5, 7), split_by))


@pytest.mark.parametrize("split_by", ["time", "time_bins"])
def test_time_modes_match_the_reference_with_repeated_and_clustered_timestamps(split_by):
    rng = np.random.default_rng(3)
    t = np.sort(rng.choice([0, 0, 5, 9, 9, 9, 10, 40, 41, 41], size=300))
    events = make_events(t, rng.integers(0, 2, 300), rng.integers(0, 2, 300), rng.integers(0, 2, 300))
    for time_steps in (1, 3, 4, 16, 50):
        frames = events_to_frames(events, time_steps, (2, 2), split_by=split_by)
        np.testing.assert_array_equal(frames, reference_frames(events, time_steps, (2, 2), split_by))


def test_number_split_gives_spikingjelly_frame_sizes():
    # 10 events, 3 frames: di = 3, so 3, 3 and the remaining 4.
    events = random_events(0, 10)
    frames = events_to_frames(events, 3, (5, 7), split_by="number")
    assert frames.sum(axis=(1, 2, 3)).tolist() == [3, 3, 4]


def test_fewer_events_or_microseconds_than_frames_land_in_the_last_frame():
    # number: di = 3 // 5 = 0; time: dt = (2 - 0) // 5 = 0, both leave frames 0..3 empty.
    events = make_events([0, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    for split_by in ("number", "time"):
        frames = events_to_frames(events, 5, (5, 7), split_by=split_by)
        assert frames.sum(axis=(1, 2, 3)).tolist() == [0, 0, 0, 0, 3]
    assert not events_to_frames(events, 5, (5, 7), split_by="time_bins").any()


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_every_event_is_counted_once(split_by):
    events = random_events(5, 1_000)
    assert events_to_frames(events, 6, (5, 7), split_by=split_by).sum() == 1_000


def test_time_bins_drops_only_the_events_after_the_last_bin():
    events = make_events([0, 3, 6, 9, 10, 11], [0] * 6, [0] * 6, [1] * 6)
    # dt = 11 // 3 = 3: bins [0,3), [3,6), [6,9); events at 9, 10, 11 dropped.
    frames = events_to_frames(events, 3, (1, 1), split_by="time_bins")
    assert frames[:, 1, 0, 0].tolist() == [1, 1, 1]
    frames = events_to_frames(events, 3, (1, 1), split_by="time")
    assert frames[:, 1, 0, 0].tolist() == [1, 1, 4]


def test_repeated_pixels_are_all_counted():
    events = make_events([0, 1, 2, 3, 4], [2, 2, 2, 2, 0], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0])
    frames = events_to_frames(events, 1, (2, 3))
    assert frames[0, 1, 1, 2] == 3
    assert frames[0, 0, 1, 2] == 1
    assert frames[0, 0, 0, 0] == 1
    assert frames.sum() == 5


def test_channel_is_polarity_and_pixel_is_row_y_column_x():
    events = make_events([0, 1], [4, 0], [1, 2], [0, 1])
    frames = events_to_frames(events, 1, (3, 5))
    assert frames.shape == (1, 2, 3, 5)
    assert frames.dtype == np.int32
    assert frames[0, 0, 1, 4] == 1  # OFF event at x=4, y=1
    assert frames[0, 1, 2, 0] == 1  # ON event at x=0, y=2
    assert frames.sum() == 2


@pytest.mark.parametrize("split_by", SPLIT_MODES)
def test_empty_recording_gives_zero_frames(split_by):
    frames = events_to_frames(np.zeros(0, dtype=EVENT_DTYPE), 4, (3, 5), split_by=split_by)
    assert frames.shape == (4, 2, 3, 5)
    assert not frames.any()


def test_accepts_other_structured_dtypes_with_the_same_fields():
    events = random_events(0, 50)
    other = np.zeros(50, dtype=[("x", "<u2"), ("y", "<u2"), ("p", "<i4"), ("t", "<u4")])
    for field in ("t", "x", "y", "p"):
        other[field] = events[field]
    np.testing.assert_array_equal(events_to_frames(other, 3, (5, 7)), events_to_frames(events, 3, (5, 7)))


def test_bad_time_steps_and_split_mode_are_named():
    events = random_events(0, 10)
    with pytest.raises(ValueError, match="time_steps must be >= 1"):
        events_to_frames(events, 0, (5, 7))
    with pytest.raises(ValueError, match="time_steps must be an integer"):
        events_to_frames(events, 2.5, (5, 7))
    with pytest.raises(ValueError, match=r"unknown split_by 'frames'.*'number', 'time', 'time_bins'"):
        events_to_frames(events, 2, (5, 7), split_by="frames")


def test_events_outside_the_sensor_are_named_with_their_value():
    events = make_events([0, 1], [3, 9], [0, 1], [0, 1])
    with pytest.raises(ValueError, match=r"x coordinates reach 9.*x < 7"):
        events_to_frames(events, 1, (5, 7))
    events = make_events([0, 1], [3, 2], [0, 5], [0, 1])
    with pytest.raises(ValueError, match=r"y coordinates reach 5.*y < 5"):
        events_to_frames(events, 1, (5, 7))
    events = make_events([0, 1], [3, -2], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="x coordinates go down to -2"):
        events_to_frames(events, 1, (5, 7))


def test_polarity_outside_zero_one_is_rejected():
    events = np.zeros(2, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    events["p"] = [1, -1]
    with pytest.raises(ValueError, match=r"p must be 0 \(OFF\) or 1 \(ON\); got other values \[-1\]"):
        events_to_frames(events, 1, (5, 7))


def test_events_without_the_fields_are_rejected():
    with pytest.raises(ValueError, match="structured array with fields"):
        events_to_frames(np.zeros((10, 4)), 1, (5, 7))
    with pytest.raises(ValueError, match=r"lack the field\(s\) \['p'\]"):
        events_to_frames(np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2")]), 1, (5, 7))


@pytest.mark.parametrize("split_by", ["time", "time_bins"])
def test_time_modes_reject_unsorted_events(split_by):
    events = make_events([0, 5, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match=r"sorted by t.*event 2 \(t=3\)"):
        events_to_frames(events, 2, (1, 1), split_by=split_by)
    ordered = sort_events(events)
    np.testing.assert_array_equal(
        events_to_frames(ordered, 2, (1, 1), split_by=split_by), reference_frames(ordered, 2, (1, 1), split_by)
    )


def test_number_split_takes_events_in_array_order():
    events = make_events([5, 0], [0, 1], [0, 0], [1, 1])
    frames = events_to_frames(events, 2, (1, 2), split_by="number")
    assert frames[0, 1, 0, 0] == 1 and frames[1, 1, 0, 1] == 1


def test_bad_sensor_size_is_rejected():
    with pytest.raises(ValueError, match="sensor_size must be"):
        events_to_frames(random_events(0, 3), 1, (5,))


def test_make_events_packs_the_fields():
    events = make_events([3, 1], [4, 5], [6, 7], [True, False])
    assert events.dtype == EVENT_DTYPE
    assert events["t"].tolist() == [3, 1]
    assert events["x"].tolist() == [4, 5]
    assert events["y"].tolist() == [6, 7]
    assert events["p"].tolist() == [1, 0]


def test_make_events_names_unequal_lengths():
    with pytest.raises(ValueError, match="equal length; got t=3, x=3, y=2, p=3"):
        make_events([0, 1, 2], [0, 1, 2], [0, 1], [0, 1, 1])


def test_make_events_rejects_values_that_would_wrap_or_mean_nothing():
    with pytest.raises(ValueError, match=r"x values must fit int16"):
        make_events([0], [40_000], [0], [0])
    with pytest.raises(ValueError, match=r"p must be 0 \(OFF\) or 1 \(ON\); got other values \[2\]"):
        make_events([0, 1], [0, 0], [0, 0], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        make_events([[0]], [0], [0], [0])


def test_sort_events_keeps_the_order_of_equal_timestamps():
    events = make_events([2, 1, 2, 1], [0, 1, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0])
    assert sort_events(events)["x"].tolist() == [1, 3, 0, 2]
