"""Tests for the event-camera emulator (spikeformers/data/emulator.py)."""

import numpy as np
import pytest
import torch

from spikeformers.data import EVENT_DTYPE, emulate_events, emulate_events_batch, video_to_events

SENSOR = (20, 20)


def bright_square():
    image = np.zeros((8, 8))
    image[2:6, 2:6] = 1.0
    return image


def pixel_gaps(events):
    """Time between consecutive events of the same pixel, over all pixels."""
    order = np.lexsort((events["t"], events["x"], events["y"]))
    ordered = events[order]
    same_pixel = (np.diff(ordered["x"]) == 0) & (np.diff(ordered["y"]) == 0)
    return np.diff(ordered["t"])[same_pixel]


def assert_valid_recording(events, sensor_size, duration_us):
    assert events.dtype == EVENT_DTYPE
    assert np.all(np.diff(events["t"]) >= 0), "events must be sorted by t"
    assert events["t"].min() >= 0 and events["t"].max() <= duration_us
    assert events["x"].max() < sensor_size[1] and events["y"].max() < sensor_size[0]
    assert events["x"].min() >= 0 and events["y"].min() >= 0


def test_a_moving_image_gives_a_valid_time_sorted_recording():
    events = emulate_events(bright_square(), (20, 30), threshold_mismatch=0.05, refractory_us=500,
                            noise_rate_hz=5.0, duration_us=300_000)
    assert len(events) > 100
    assert_valid_recording(events, (20, 30), 300_000)
    assert set(np.unique(events["p"])) == {0, 1}


def test_a_static_image_without_noise_emits_nothing():
    events = emulate_events(bright_square(), SENSOR, saccade_amplitude=0.0, threshold_mismatch=0.1)
    assert len(events) == 0


def test_a_static_image_emits_noise_at_the_requested_rate():
    rate_hz, duration_us = 10.0, 1_000_000
    events = emulate_events(bright_square(), SENSOR, saccade_amplitude=0.0, noise_rate_hz=rate_hz,
                            duration_us=duration_us)
    expected = rate_hz * SENSOR[0] * SENSOR[1] * duration_us * 1e-6  # 4,000
    assert abs(len(events) - expected) < 5 * np.sqrt(expected)
    assert_valid_recording(events, SENSOR, duration_us)
    assert 0.4 < events["p"].mean() < 0.6


def ramp_video(start, end, num_frames=11):
    """A dim 3x4 video in which pixel (y=1, x=2) goes from `start` to `end`."""
    video = np.full((num_frames, 3, 4), 0.1)
    video[:, 1, 2] = np.linspace(start, end, num_frames)
    return video


@pytest.mark.parametrize("start, end, polarity", [(0.1, 1.0, 1), (1.0, 0.1, 0)])
def test_a_brightening_pixel_emits_on_events_and_a_darkening_one_off_events(start, end, polarity):
    times = np.arange(11) * 1_000
    events = video_to_events(ramp_video(start, end), times, contrast_threshold=0.2, log_eps=0.1)
    assert set(events["x"]) == {2} and set(events["y"]) == {1}
    assert set(events["p"]) == {polarity}
    # One event per threshold of log change: log(1.1 / 0.2) / 0.2 = 8.5 crossings.
    assert len(events) == 8
    assert events["t"].min() > 0 and events["t"].max() <= times[-1]


def test_the_first_video_frame_only_sets_the_reference():
    video = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 1.0)])
    assert len(video_to_events(video, [0, 1_000])) == 0


def test_motion_makes_on_events_at_the_leading_edge_of_a_bright_object():
    duration_us = 300_000
    events = emulate_events(bright_square(), SENSOR, duration_us=duration_us)
    # First saccade: the image moves down (and a little right), so the
    # bottom edge brightens and the top edge darkens.
    first = events[events["t"] < duration_us / 3]
    assert first["y"][first["p"] == 1].mean() > first["y"][first["p"] == 0].mean()
    # Third saccade: the image moves left; the left edge brightens.
    third = events[events["t"] > 2 * duration_us / 3]
    assert third["x"][third["p"] == 1].mean() < third["x"][third["p"] == 0].mean()


def test_the_number_of_events_scales_inversely_with_the_threshold():
    counts = [len(emulate_events(bright_square(), SENSOR, contrast_threshold=threshold))
              for threshold in (0.1, 0.2, 0.4)]
    assert 1.6 < counts[0] / counts[1] < 2.4
    assert 1.6 < counts[1] / counts[2] < 2.4


@pytest.mark.parametrize("refractory_us, threshold", [(20_000, 0.2), (1_000, 0.03)])
def test_no_pixel_fires_twice_within_its_refractory_period(refractory_us, threshold):
    # The second case has many crossings per sample interval (5 ms), so the
    # period is enforced within intervals, not only across them.
    free = emulate_events(bright_square(), SENSOR, contrast_threshold=threshold, threshold_mismatch=0.1)
    limited = emulate_events(bright_square(), SENSOR, contrast_threshold=threshold, threshold_mismatch=0.1,
                             refractory_us=refractory_us)
    assert pixel_gaps(free).min() < refractory_us  # the period has something to suppress
    assert pixel_gaps(limited).min() >= refractory_us
    assert 0 < len(limited) < len(free)


def test_the_same_seed_gives_the_same_events_and_another_seed_other_noise():
    settings = dict(sensor_size=SENSOR, threshold_mismatch=0.1, noise_rate_hz=20.0)
    first = emulate_events(bright_square(), seed=3, **settings)
    again = emulate_events(bright_square(), seed=3, **settings)
    other = emulate_events(bright_square(), seed=4, **settings)
    np.testing.assert_array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


def test_torch_and_numpy_images_give_the_same_events():
    image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    settings = dict(sensor_size=SENSOR, threshold_mismatch=0.05, noise_rate_hz=5.0, refractory_us=500)
    np.testing.assert_array_equal(emulate_events(image, **settings),
                                  emulate_events(torch.from_numpy(image), **settings))


def test_a_batch_gives_each_image_its_own_recording():
    images = np.stack([bright_square(), bright_square().T[::-1], np.zeros((8, 8))])
    settings = dict(sensor_size=SENSOR, threshold_mismatch=0.1, refractory_us=2_000)
    batch = emulate_events_batch(images, **settings)
    assert len(batch) == 3
    for image, events in zip(images, batch):
        np.testing.assert_array_equal(events, emulate_events(image, **settings))
    assert len(batch[0]) > 0 and len(batch[2]) == 0


def test_pixel_values_are_normalised_unless_a_value_range_is_given():
    image = bright_square()
    np.testing.assert_array_equal(emulate_events(image, SENSOR), emulate_events(255 * image, SENSOR))
    dimmer = emulate_events(image, SENSOR, value_range=(0.0, 4.0))  # the square at a quarter brightness
    assert 0 < len(dimmer) < len(emulate_events(image, SENSOR))


def test_channel_images_are_accepted_and_bad_shapes_named():
    gray = bright_square()
    assert len(emulate_events(gray[None], SENSOR)) == len(emulate_events(gray, SENSOR))
    assert len(emulate_events(np.stack([gray] * 3), SENSOR)) > 0
    with pytest.raises(ValueError, match="1 or 3 channels"):
        emulate_events(np.stack([gray] * 2), SENSOR)
    with pytest.raises(ValueError, match="emulate_events_batch"):
        emulate_events(np.zeros((2, 2, 8, 8)), SENSOR)
    with pytest.raises(ValueError, match=r"\[N, H, W\] or \[N, C, H, W\]"):
        emulate_events_batch(gray, SENSOR)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="contrast_threshold must be > 0"):
        emulate_events(bright_square(), SENSOR, contrast_threshold=0)
    with pytest.raises(ValueError, match="duration_us >= time_samples"):
        emulate_events(bright_square(), SENSOR, duration_us=10, time_samples=60)
    with pytest.raises(ValueError, match="strictly increasing"):
        video_to_events(ramp_video(0.1, 1.0, 3), [0, 5, 5])
    with pytest.raises(ValueError, match=">= 0"):
        video_to_events(ramp_video(-1.0, 1.0, 3), [0, 5, 10])


def test_threshold_mismatch_is_a_fixed_pattern_of_the_sensor():
    # Two recordings of one image differ only by noise: without noise they
    # match, though each pixel's threshold is drawn at random.
    images = np.stack([bright_square(), bright_square()])
    first, second = emulate_events_batch(images, SENSOR, threshold_mismatch=0.2)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, emulate_events(bright_square(), SENSOR))  # the mismatch matters
