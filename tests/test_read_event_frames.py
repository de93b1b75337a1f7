"""Tests for read_event_frames: a recording straight to frames.

AEDAT 2.0 files take a direct path (addresses looked up as frame pixels, no
event array); every other case goes through read_events. Both must give
exactly ``events_to_frames`` of ``read_events``'s events (the time modes after
a stable sort by time) and the same errors, which these tests pin on files
written in the exact on-disk format by the writers of test_readers.py.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_readers import (  # noqa: E402  (the writers live with the round-trip tests)
    AEDAT2_HEADER,
    aedat2_bytes,
    cifar_like_aedat2,
    dvs128_address,
    gesture_like_aedat3,
    nmnist_like,
    write,
)

from spikeformers.data import SPLIT_MODES, events_to_frames, sort_events  # noqa: E402
from spikeformers.data.readers import EventFileError, read_event_frames, read_events  # noqa: E402


def recording_aedat2(seed, count, *, shuffle_times=False, external=0.05, time_span=100_000):
    """DVS128 events with repeated pixels and some external events; sorted times unless
    ``shuffle_times``."""
    rng = np.random.default_rng(seed)
    x_raw = rng.integers(0, 128, count)
    y_raw = rng.integers(0, 128, count)
    x_raw[: count // 4] = 5  # many events on a few pixels
    y_raw[: count // 4] = rng.integers(0, 3, count // 4)
    p_raw = rng.integers(0, 2, count)
    flags = (rng.random(count) < external).astype(np.int64)
    addresses = [dvs128_address(int(x), int(y), int(p), int(e)) for x, y, p, e in zip(x_raw, y_raw, p_raw, flags)]
    times = np.sort(rng.integers(0, time_span, count)) + 1_000
    if shuffle_times:
        swap = rng.integers(0, count, count // 10)
        times[swap] = times[swap[::-1]]
    return aedat2_bytes(addresses, times.tolist())


def expected_frames(path, time_steps, split_by, **options):
    events, sensor_size = read_events(path, **options)
    if split_by != "number" and np.any(np.diff(events["t"]) < 0):
        events = sort_events(events)
    return events_to_frames(events, time_steps, sensor_size, split_by)


def assert_same_frames(got, want):
    assert got.dtype == np.int32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("split_by", SPLIT_MODES)
@pytest.mark.parametrize("orientation", ["spikingjelly", "raw"])
@pytest.mark.parametrize("time_steps", [1, 7, 16])
def test_aedat2_direct_path_equals_read_events_then_events_to_frames(tmp_path, split_by, orientation, time_steps):
    path = write(tmp_path / "sample.aedat", recording_aedat2(0, 3_000))
    got = read_event_frames(path, time_steps, split_by, orientation=orientation)
    assert got.shape == (time_steps, 2, 128, 128)
    assert got.sum() > 0
    assert_same_frames(got, expected_frames(path, time_steps, split_by, orientation=orientation))


@pytest.mark.parametrize("split_by", SPLIT_MODES)
def test_aedat2_out_of_order_times_are_sorted_for_the_time_modes_only(tmp_path, split_by):
    path = write(tmp_path / "shuffled.aedat", recording_aedat2(1, 2_000, shuffle_times=True))
    events, sensor_size = read_events(path)
    assert np.any(np.diff(events["t"]) < 0)
    got = read_event_frames(path, 5, split_by)
    if split_by == "number":  # array order, as events_to_frames
        assert_same_frames(got, events_to_frames(events, 5, sensor_size, "number"))
    else:
        assert_same_frames(got, events_to_frames(sort_events(events), 5, sensor_size, split_by))


@pytest.mark.parametrize("split_by", SPLIT_MODES)
@pytest.mark.parametrize("count, time_span", [(0, 1), (1, 1), (3, 1), (10, 5), (40, 1_000)])
def test_aedat2_tiny_recordings_and_short_spans(tmp_path, split_by, count, time_span):
    """Fewer events than frames, and spans shorter than T microseconds (dt = 0)."""
    path = write(tmp_path / "tiny.aedat", recording_aedat2(2, count, external=0.0, time_span=time_span))
    got = read_event_frames(path, 8, split_by)
    assert_same_frames(got, expected_frames(path, 8, split_by))


def test_aedat2_only_external_events_give_empty_frames(tmp_path):
    path = write(tmp_path / "external.aedat", aedat2_bytes([dvs128_address(1, 2, 1, 1)] * 3, [5, 6, 7]))
    assert_same_frames(read_event_frames(path, 4, "time"), np.zeros((4, 2, 128, 128), np.int32))


@pytest.mark.parametrize("sensor_size", [(128, 128), (130, 140)])
def test_aedat2_a_larger_sensor_size_places_events_alike(tmp_path, sensor_size):
    path = write(tmp_path / "sample.aedat", recording_aedat2(3, 1_000))
    got = read_event_frames(path, 4, "number", sensor_size=sensor_size)
    assert got.shape == (4, 2) + sensor_size
    assert_same_frames(got, expected_frames(path, 4, "number", sensor_size=sensor_size))


def test_aedat2_a_smaller_sensor_size_is_checked_as_read_events_does(tmp_path):
    inside = write(tmp_path / "inside.aedat", aedat2_bytes([dvs128_address(127, 120, 0)], [9]))  # x=7, y=0
    assert_same_frames(read_event_frames(inside, 2, "time", sensor_size=(10, 10)),
                       expected_frames(inside, 2, "time", sensor_size=(10, 10)))
    outside = write(tmp_path / "outside.aedat", aedat2_bytes([dvs128_address(0, 0, 0)], [9]))  # x=y=127
    with pytest.raises(EventFileError, match="outside the sensor size") as caught:
        read_event_frames(outside, 2, "number", sensor_size=(10, 10))
    with pytest.raises(EventFileError) as by_read_events:
        read_events(outside, sensor_size=(10, 10))
    assert str(caught.value) == str(by_read_events.value)


def test_aedat2_errors_are_those_of_read_events(tmp_path):
    header = AEDAT2_HEADER[:-1] + (b"# AEChip: eu.seebetter.ini.chips.davis.Davis346red",)
    davis = write(tmp_path / "davis.aedat", aedat2_bytes([5, 1 << 22], [1, 2], header=header))
    with pytest.raises(EventFileError, match="event 1 has address 0x00400000.*Davis346red") as caught:
        read_event_frames(davis, 4, "number")
    assert caught.value.path == str(davis)

    data, _ = cifar_like_aedat2(count=20)
    cut = write(tmp_path / "cut.aedat", data[:-3])
    with pytest.raises(EventFileError, match="truncated event record"):
        read_event_frames(cut, 4, "time")
    assert_same_frames(read_event_frames(cut, 4, "time", allow_truncated=True),
                       expected_frames(cut, 4, "time", allow_truncated=True))

    with pytest.raises(EventFileError, match="bad magic"):
        read_event_frames(write(tmp_path / "bad.aedat", b"#!AER-DAT2.x\n"), 4, format="aedat2")


def test_bad_arguments_are_value_errors(tmp_path):
    path = write(tmp_path / "sample.aedat", recording_aedat2(4, 10))
    with pytest.raises(ValueError, match="time_steps must be >= 1"):
        read_event_frames(path, 0)
    with pytest.raises(ValueError, match="unknown split_by 'frames'"):
        read_event_frames(path, 4, "frames")
    with pytest.raises(ValueError, match="unknown orientation"):
        read_event_frames(path, 4, orientation="upside-down")


@pytest.mark.parametrize("split_by", SPLIT_MODES)
def test_other_formats_go_through_read_events(tmp_path, split_by):
    data, _ = nmnist_like(count=300)
    nmnist = write(tmp_path / "00001.bin", data)
    got = read_event_frames(nmnist, 6, split_by)
    assert got.shape == (6, 2, 34, 34)
    assert_same_frames(got, expected_frames(nmnist, 6, split_by))

    data, _ = gesture_like_aedat3()
    gesture = write(tmp_path / "user01.aedat", data)
    assert_same_frames(read_event_frames(gesture, 3, split_by), expected_frames(gesture, 3, split_by))
    with pytest.raises(ValueError, match="orientation applies to the formats aedat2, mat only"):
        read_event_frames(nmnist, 6, split_by, orientation="raw")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 40), split_by=st.sampled_from(SPLIT_MODES))
def test_damaged_aedat2_files_give_the_frames_or_the_error_of_read_events(tmp_path, edits, cut, split_by):
    """Corrupted bytes (any of them, the header's too) and cut ends: the direct path
    agrees with read_events + events_to_frames, down to the error message."""
    data = bytearray(recording_aedat2(5, 40, shuffle_times=True))
    for position, value in edits:
        data[position % len(data)] = value
    path = write(tmp_path / "damaged.aedat", bytes(data[:len(data) - cut]))
    try:
        want = expected_frames(path, 4, split_by, format="aedat2")
    except EventFileError as error:
        assert error.path == str(path)
        with pytest.raises(EventFileError) as caught:
            read_event_frames(path, 4, split_by, format="aedat2")
        assert str(caught.value) == str(error)
    else:
        assert_same_frames(read_event_frames(path, 4, split_by, format="aedat2"), want)


def test_compiled_counter_gives_the_numpy_path_s_frames(tmp_path, monkeypatch):
    """Plain AEDAT 2.0 files (every address a DVS128 event, the CIFAR10-DVS case) are counted by a C++
    pass over the file's bytes; its frames must be the NumPy path's, in every mode and orientation,
    also with fewer events than frames, no events, or times out of order (which take the NumPy path)."""
    from spikeformers.data.readers import aedat2

    counter = aedat2._compiled_counter()
    if counter is None:
        pytest.skip("the C++ counter cannot be built here")
    calls = []
    monkeypatch.setattr(aedat2, "_compiled_counter", lambda: lambda *a: calls.append(1) or counter(*a))
    files = {
        "plain": recording_aedat2(1, 5000, external=0.0),
        "unsorted": recording_aedat2(2, 3000, external=0.0, shuffle_times=True),
        "few": recording_aedat2(3, 7, external=0.0),
        "empty": aedat2_bytes([], []),
    }
    compiled = 0
    for name, data in files.items():
        path = write(tmp_path / f"{name}.aedat", data)
        for split_by in SPLIT_MODES:
            for time_steps in (1, 10, 16):
                for orientation in ("spikingjelly", "raw"):
                    before = len(calls)
                    got = read_event_frames(path, time_steps, split_by, orientation=orientation)
                    compiled += len(calls) > before
                    assert_same_frames(got, expected_frames(path, time_steps, split_by, orientation=orientation))
    # every call on the three in-order files, and the unsorted file's number-mode calls
    assert compiled == 3 * len(SPLIT_MODES) * 3 * 2 + 3 * 2
