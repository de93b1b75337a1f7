"""Tests for the built-in DVSDigits data set (spikeformers/data/datasets/digits.py)."""

import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from spikeformers.data import DVSDigits, events_to_frames, make_events
from spikeformers.data.datasets import digits as digits_module


@pytest.fixture(scope="module")
def splits():
    return DVSDigits(train=True), DVSDigits(train=False)


def test_train_and_test_partition_the_1797_digits(splits):
    train, test = splits
    assert (len(train), len(test)) == (1347, 450)
    assert not set(train.indices) & set(test.indices)
    assert sorted(set(train.indices) | set(test.indices)) == list(range(1797))


def test_the_split_is_stratified(splits):
    targets = load_digits().target
    train, test = splits
    for label in range(10):
        in_class = np.sum(targets == label)
        in_test = np.sum(test.targets == label)
        assert in_test > 0 and np.sum(train.targets == label) > 0
        assert abs(in_test - 0.25 * in_class) <= 1


def test_labels_are_sklearns_targets(splits):
    targets = load_digits().target
    for dataset in splits:
        np.testing.assert_array_equal(dataset.targets, targets[dataset.indices])
        for index in (0, 7, len(dataset) - 1):
            label = dataset[index][1]
            assert type(label) is int and label == targets[dataset.indices[index]]


def test_items_are_float_count_frames_of_the_declared_shape(splits):
    train, _ = splits
    frames, _ = train[0]
    assert frames.dtype == torch.float32
    assert frames.shape == (4, train.in_channels, 24, 24)
    assert train.sensor_size == (24, 24) and train.num_classes == 10 == len(train.classes)
    assert torch.equal(frames, frames.round()) and frames.min() >= 0


def test_frames_are_the_number_split_of_the_recording(splits):
    _, test = splits
    for index in (0, 123, 449):
        events = test.events(index)
        expected = events_to_frames(events, 4, (24, 24), split_by="number")
        np.testing.assert_array_equal(test[index][0].numpy(), expected)
        assert int(test[index][0].sum()) == len(events)


def test_recordings_have_enough_events_to_show_the_digit(splits):
    counts = [len(dataset.events(i)) for dataset in splits for i in range(len(dataset))]
    assert 500 < np.mean(counts) < 3000
    assert min(counts) > 300


def test_a_linear_classifier_on_the_summed_frames_learns_the_digits(splits):
    # Guards learnability: the frames must keep the digits' shapes. (A ridge
    # classifier is closed-form, so this takes a fraction of a second.)
    from sklearn.linear_model import RidgeClassifier

    def features(dataset):
        return np.log1p(np.stack([dataset[i][0].sum(0).flatten().numpy() for i in range(len(dataset))]))

    train, test = splits
    classifier = RidgeClassifier(alpha=10.0).fit(features(train), train.targets)
    assert classifier.score(features(test), test.targets) > 0.9


def test_recordings_are_read_only_and_items_are_copies(splits):
    train, _ = splits
    with pytest.raises(ValueError):
        train.events(0)["t"][0] = 5
    frames, _ = train[0]
    frames += 1
    assert not torch.equal(train[0][0], frames)


SMALL = (16, 16)  # other settings are tested on a smaller sensor: faster to emulate


def test_generation_is_deterministic():
    first = DVSDigits(train=True, sensor_size=SMALL)
    digits_module.clear_memory_cache()
    regenerated = DVSDigits(train=True, sensor_size=SMALL)
    for index in (0, 500, 1346):
        np.testing.assert_array_equal(regenerated.events(index), first.events(index))
        assert torch.equal(regenerated[index][0], first[index][0])


def test_time_steps_and_seed_change_the_frames_but_not_the_split():
    four_steps = DVSDigits(train=True, sensor_size=SMALL)
    two_steps = DVSDigits(train=True, time_steps=2, sensor_size=SMALL)
    assert two_steps[0][0].shape == (2, 2, 16, 16)
    assert torch.equal(two_steps[0][0].sum(0), four_steps[0][0].sum(0))  # same events, split otherwise
    other_seed = DVSDigits(train=True, seed=1, sensor_size=SMALL)
    np.testing.assert_array_equal(other_seed.indices, four_steps.indices)
    assert not np.array_equal(other_seed.events(0), four_steps.events(0))


def test_describe_states_the_provenance(splits):
    text = splits[1].describe()
    assert "load_digits" in text and "450" in text and "contrast_threshold=0.3" in text


@pytest.fixture
def fake_emulator(monkeypatch):
    """A stand-in emulator (the cache tests need recordings, not realistic ones); counts its calls."""
    calls = []

    def emulate(images, sensor_size, seed, **settings):
        calls.append(seed)
        return [make_events(np.arange(i % 7), np.zeros(i % 7), np.zeros(i % 7), np.ones(i % 7))
                for i in range(len(images))]

    monkeypatch.setattr(digits_module, "emulate_events_batch", emulate)
    digits_module.clear_memory_cache()
    yield calls
    digits_module.clear_memory_cache()  # leave no fake recordings behind


def test_disk_cache_is_written_atomically_and_read_back(tmp_path, fake_emulator):
    written = DVSDigits(train=False, cache_dir=tmp_path)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("dvsdigits_24x24_seed0_") and files[0].endswith(".npz")

    digits_module.clear_memory_cache()
    read = DVSDigits(train=False, cache_dir=tmp_path)
    assert len(fake_emulator) == 1, "the second data set should have read the cache"
    for index in (0, 5, 449):
        np.testing.assert_array_equal(read.events(index), written.events(index))
        assert torch.equal(read[index][0], written[index][0])


def test_the_disk_cache_is_keyed_by_the_seed_and_sensor_size(tmp_path, fake_emulator):
    DVSDigits(train=False, cache_dir=tmp_path)
    DVSDigits(train=False, seed=1, cache_dir=tmp_path)
    DVSDigits(train=False, sensor_size=SMALL, cache_dir=tmp_path)
    assert len(os.listdir(tmp_path)) == 3 and len(fake_emulator) == 3


def test_a_damaged_disk_cache_is_regenerated(tmp_path, fake_emulator):
    DVSDigits(train=False, cache_dir=tmp_path)
    (cache_file,) = tmp_path.iterdir()
    size = cache_file.stat().st_size
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # as if a writer had died mid-way
    digits_module.clear_memory_cache()
    rebuilt = DVSDigits(train=False, cache_dir=tmp_path)
    assert len(fake_emulator) == 2
    assert len(rebuilt.events(5)) == rebuilt.indices[5] % 7
    assert cache_file.stat().st_size == size


def damage_cache(path, damage):
    """Overwrite the cache file at ``path`` as ``damage`` says, keeping what else it holds."""
    if damage in ("empty", "random bytes"):
        path.write_bytes(b"" if damage == "empty" else np.random.default_rng(0).bytes(path.stat().st_size))
        return
    with np.load(path) as cached:
        arrays = {name: cached[name] for name in cached.files}
    if damage == "short offsets":
        arrays["offsets"] = arrays["offsets"][:-5]
    elif damage == "x beyond the sensor":
        arrays["x"] = arrays["x"] + 1000
    elif damage == "a missing column":
        del arrays["p"]
    elif damage == "a float column":
        arrays["t"] = arrays["t"].astype(np.float64)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", ["empty", "random bytes", "short offsets", "x beyond the sensor", "a missing column",
                                    "a float column"])
def test_an_unusable_disk_cache_is_regenerated_and_said_in_one_line(tmp_path, fake_emulator, capsys, damage):
    DVSDigits(train=False, cache_dir=tmp_path)
    (cache_file,) = tmp_path.iterdir()
    whole = digits_module._read_cache(cache_file, (24, 24), 0)
    damage_cache(cache_file, damage)
    digits_module.clear_memory_cache()
    rebuilt = DVSDigits(train=False, cache_dir=tmp_path)
    assert len(fake_emulator) == 2 and len(rebuilt.events(5)) == rebuilt.indices[5] % 7
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dvs_digits: regenerating the recordings, as the cache "
                                                   f"{cache_file} is unusable"), lines
    for written, expected in zip(digits_module._read_cache(cache_file, (24, 24), 0), whole):  # overwritten whole
        np.testing.assert_array_equal(written, expected)


def test_a_full_disk_while_writing_the_cache_names_the_file(tmp_path, fake_emulator, monkeypatch):
    import errno

    from spikeformers.atomic import DiskFullError

    def full(file, **arrays):
        file.write(b"PK\x03\x04")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(digits_module.np, "savez", full)
    with pytest.raises(DiskFullError, match=rf"^no space left on device while writing {tmp_path}/dvsdigits_\S+\.npz$"):
        DVSDigits(train=False, cache_dir=tmp_path)
    assert os.listdir(tmp_path) == []  # neither a partial cache nor its temporary file
