"""N-MNIST and N-Caltech101 data sets on small fake trees of the real binary
format (5 bytes an event, big-endian bit order: x 8 bits, y 8 bits,
polarity 1 bit, timestamp 23 bits; shared/DATA.md)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from spikeformers.data.missing import DatasetNotFoundError
from spikeformers.data.frames import events_to_frames
from spikeformers.data.datasets.ncaltech101 import NCaltech101
from spikeformers.data.datasets.nmnist import NMNIST
from spikeformers.data.readers import EventFileError, read_events
from spikeformers.data.registry import create_dataset, list_datasets

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def nmnist_binary(seed, count=200, size=(34, 34)):
    rng = np.random.default_rng(seed)
    height, width = size
    x = rng.integers(0, width, count)
    y = rng.integers(0, height, count)
    p = rng.integers(0, 2, count)
    t = np.sort(rng.integers(0, 300_000, count))
    rows = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], axis=1)
    return rows.astype(np.uint8).tobytes()


def make_nmnist(root, per_digit=(3, 2)):
    for part, count in zip(("Train", "Test"), per_digit):
        for digit in range(10):
            folder = root / part / str(digit)
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i + 1:05d}.bin").write_bytes(nmnist_binary(digit * 100 + i + (part == "Test") * 50))
    return root


def nmnist(root, train=True, time_steps=4, **options):
    options.setdefault("workers", 0)
    options.setdefault("expected_recordings", None)
    return NMNIST(root, train=train, time_steps=time_steps, **options)


def test_nmnist_official_split_labels_and_frames(tmp_path):
    root = make_nmnist(tmp_path / "nmnist")
    train, test = nmnist(root, True), nmnist(root, False)
    assert len(train) == 30 and len(test) == 20
    assert train.targets == [d for d in range(10) for _ in range(3)]
    assert test.split_files()[:2] == ["0/00001.bin", "0/00002.bin"]
    assert train.sensor_size == (34, 34) and train.num_classes == 10 and train.in_channels == 2
    for data in (train, test):
        for index in (0, len(data) - 1):
            events = read_events(data.samples[index][2]).events
            frames, label = data[index]
            assert tuple(frames.shape) == (4, 2, 34, 34)
            assert np.array_equal(frames.numpy(), events_to_frames(events, 4, (34, 34), "number").astype(np.float32))
    # train and test hold the same file names: their caches must not mix
    assert train.cache.directory != test.cache.directory
    assert not np.array_equal(train[0][0].numpy(), test[0][0].numpy())


def test_nmnist_cache_reused_and_keyed(tmp_path, monkeypatch):
    root = make_nmnist(tmp_path / "nmnist")
    first = nmnist(root, False)
    expected = [first[i][0].numpy() for i in range(len(first))]
    for path in (root / "Test").rglob("*.bin"):
        path.write_bytes(b"\x00")  # corrupt: a cached run must not read it
    second = nmnist(root, False)
    assert all(np.array_equal(second[i][0].numpy(), expected[i]) for i in range(len(second)))
    with pytest.raises(EventFileError, match="truncated") as info:
        nmnist(root, False, time_steps=5)  # another key: events are read again
    assert str(root / "Test") in str(info.value)


def test_nmnist_missing_and_incomplete(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        nmnist(tmp_path, True)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "Train", "<digit>", "*.bin") in message
    assert "Orchard" in message and "garrickorchard.com" in message
    root = make_nmnist(tmp_path / "nmnist")
    shutil.rmtree(root / "Test" / "7")
    with pytest.raises(DatasetNotFoundError, match=r"Test/7 is missing"):
        nmnist(root, False)
    with pytest.warns(UserWarning, match="expected 60,000"):
        NMNIST(root, train=True, time_steps=2, workers=0, cache_dir=False)
    with pytest.raises(ValueError, match="official"):
        nmnist(root, True, split="sj")


def test_nmnist_spikingjelly_caches(tmp_path):
    root = make_nmnist(tmp_path / "nmnist")
    reference = nmnist(root, False, time_steps=3)
    sj = tmp_path / "sj"
    for index, (digit, name, path) in enumerate(reference.samples):
        events = read_events(path).events
        stem = os.path.splitext(name)[0]
        (sj / "events_np" / "test" / digit).mkdir(parents=True, exist_ok=True)
        np.savez(sj / "events_np" / "test" / digit / f"{stem}.npz",
                 t=events["t"], x=events["x"], y=events["y"], p=events["p"])
        (sj / "frames_number_3_split_by_number" / "test" / digit).mkdir(parents=True, exist_ok=True)
        np.savez(sj / "frames_number_3_split_by_number" / "test" / digit / f"{stem}.npz",
                 frames=reference[index][0].numpy())
    frames_source = nmnist(sj, False, time_steps=3)
    events_source = nmnist(sj, False, time_steps=3, source="events_np")
    assert frames_source.source_kind == "frames" and events_source.source_kind == "events_np"
    for i in range(len(reference)):
        assert np.array_equal(frames_source[i][0].numpy(), reference[i][0].numpy())
        assert np.array_equal(events_source[i][0].numpy(), reference[i][0].numpy())


def test_real_nmnist_sample_in_a_tree(tmp_path):
    sample = TESTDATA / "sample_nmnist.bin"
    if not sample.exists():
        pytest.skip(f"real sample {sample} is absent")
    root = make_nmnist(tmp_path / "nmnist", per_digit=(1, 1))
    shutil.copy(sample, root / "Test" / "3" / "00001.bin")
    test = nmnist(root, False, time_steps=6, split_by="time")
    frames, label = test[3]
    assert label == 3 and frames.sum().item() == 4325  # every event counted once


def test_registered_names():
    assert {"nmnist", "ncaltech101", "cifar10_dvs"} <= set(list_datasets())
    with pytest.raises(DatasetNotFoundError, match="data root"):
        create_dataset("nmnist", train=True, time_steps=4, root=None)


# --------------------------------------------------------------------------- N-Caltech101

def make_ncaltech(root, classes=("BACKGROUND_Google", "accordion", "airplanes"), per_class=11):
    for c, name in enumerate(classes):
        folder = root / "Caltech101" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            data = nmnist_binary(c * 100 + i, count=150, size=(170, 230))
            (folder / f"image_{i + 1:04d}.bin").write_bytes(data)
    return root


def test_ncaltech101_classes_split_and_frames(tmp_path):
    root = make_ncaltech(tmp_path / "ncaltech")
    train = NCaltech101(root, train=True, time_steps=2, workers=0)
    test = NCaltech101(root, train=False, time_steps=2, workers=0)
    assert train.classes == ("BACKGROUND_Google", "accordion", "airplanes") and train.num_classes == 3
    assert len(train) == 30 and len(test) == 3  # ceil(0.9 * 11) = 10 per class
    assert test.split_files()[0] == "BACKGROUND_Google/image_0011.bin"
    frames, label = test[2]
    events = read_events(test.samples[2][2], sensor_size=(180, 240)).events
    assert label == 2 and tuple(frames.shape) == (2, 2, 180, 240)
    assert np.array_equal(frames.numpy(), events_to_frames(events, 2, (180, 240)).astype(np.float32))
    no_background = NCaltech101(root, train=True, time_steps=2, workers=0, include_background=False)
    assert no_background.classes == ("accordion", "airplanes") and no_background.targets[0] == 0
    with pytest.raises(DatasetNotFoundError, match="garrickorchard.com"):
        NCaltech101(tmp_path / "empty", time_steps=2)
