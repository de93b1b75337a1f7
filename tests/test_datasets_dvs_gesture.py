"""DVS128 Gesture on a tiny fake DvsGesture folder in the real formats: AEDAT
3.1 recordings (written here from the layout in shared/DATA.md: '#' header
ending with '#!END-HEADER', 28-byte little-endian packet headers, 8-byte
polarity events with x in bits 17..31, y in bits 2..16, polarity bit 1, valid
bit 0, time = ts | tsOverflow << 31), '*_labels.csv' and the official trial lists."""

import os
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeformers.data.datasets.dvs_gesture import CLASSES, DVSGesture
from spikeformers.data.events import make_events
from spikeformers.data.missing import DatasetNotFoundError
from spikeformers.data.frames import events_to_frames
from spikeformers.data.registry import create_dataset

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01 00:00:00\r\n#!END-HEADER\r\n"
PACKET = struct.Struct("<hhiiiiii")


def aedat31(events, per_packet=70):
    """AEDAT 3.1 bytes of ``events``: polarity packets of at most ``per_packet`` events (one
    overflow value each), a non-polarity packet in between, and invalid events that must be dropped."""
    chunks = [HEADER, PACKET.pack(2, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 0, 5)]  # a special event
    overflow = events["t"] >> 31
    start = 0
    while start < len(events):
        end = min(start + per_packet, len(events))
        end = start + int(np.sum(overflow[start:end] == overflow[start]))
        part = events[start:end]
        data = (part["x"].astype(np.uint32) << 17) | (part["y"].astype(np.uint32) << 2) \
            | (part["p"].astype(np.uint32) << 1) | 1
        body = np.empty(len(part) + 1, dtype=[("data", "<u4"), ("ts", "<i4")])
        body["data"][:-1], body["ts"][:-1] = data, part["t"] & 0x7FFFFFFF
        body[-1] = (3 << 17) | (4 << 2), 1  # valid bit 0: dropped by the reader
        chunks.append(PACKET.pack(1, 1, 8, 4, int(overflow[start]), len(body), len(body), len(body) - 1))
        chunks.append(body.tobytes())
        start = end
    return b"".join(chunks)


def recording(seed, duration, count=600, offset=0):
    rng = np.random.default_rng(seed)
    t = offset + np.sort(rng.integers(0, duration, count))
    return make_events(t, rng.integers(0, 128, count), rng.integers(0, 128, count), rng.integers(0, 2, count))


# recording -> (events seed, label rows (class 1..11, start, end)); class 3 twice in user01
TRIALS = {
    "user01_fluorescent": (1, [(3, 1_000, 20_000), (1, 20_000, 45_000), (3, 50_000, 90_000)]),
    "user02_led": (2, [(11, 0, 30_000), (2, 35_000, 99_000)]),
    "user24_natural": (24, [(5, 10_000, 60_000), (1, 60_000, 95_000)]),
}
TRAIN, TEST = ["user01_fluorescent", "user02_led"], ["user24_natural"]


def make_gesture(root, offset=0):
    """A DvsGesture folder; ``offset`` shifts all times (past 2^31 to exercise tsOverflow)."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    recordings = {}
    for name, (seed, rows) in TRIALS.items():
        events = recording(seed, 100_000, offset=offset)
        recordings[name] = events
        (folder / f"{name}.aedat").write_bytes(aedat31(events))
        lines = ["class,startTime_usec,endTime_usec"] + [f"{c},{s + offset},{e + offset}" for c, s, e in rows]
        (folder / f"{name}_labels.csv").write_text("\r\n".join(lines) + "\r\n")
    (folder / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in TRAIN) + "\n")
    (folder / "trials_to_test.txt").write_text("".join(f"{n}.aedat\n" for n in TEST))
    return root, recordings


def gesture(root, train=True, time_steps=4, **options):
    options.setdefault("workers", 0)
    options.setdefault("expected_samples", None)
    return DVSGesture(root, train=train, time_steps=time_steps, **options)


def expected_samples(names, recordings, offset=0):
    """(class index, sample name, events of the window) from the written data, in class-then-name order."""
    rows = []
    for name in names:
        seen = {}
        for c, start, end in TRIALS[name][1]:
            k = seen.get(c, 0)
            seen[c] = k + 1
            events = recordings[name]
            cut = events[(events["t"] >= start + offset) & (events["t"] < end + offset)]
            rows.append((c - 1, f"{name}_{k}", cut))
    return sorted(rows, key=lambda row: (row[0], row[1]))


@pytest.mark.parametrize("offset", [0, 2**31 - 50_000])
def test_samples_labels_and_frames_cut_per_label_row(tmp_path, offset):
    root, recordings = make_gesture(tmp_path / "g", offset=offset)
    for part, names in ((True, TRAIN), (False, TEST)):
        data = gesture(root, part, cache_dir=False)
        expected = expected_samples(names, recordings, offset)
        assert len(data) == len(expected) and data.num_classes == 11 and data.sensor_size == (128, 128)
        assert data.targets == [c for c, _, _ in expected]
        assert [name for _, name, _ in data.samples] == [name for _, name, _ in expected]
        for index, (c, _, cut) in enumerate(expected):
            assert np.array_equal(data.events(index), cut)
            frames, label = data[index]
            assert label == c and frames.dtype == torch.float32
            assert np.array_equal(frames.numpy(), events_to_frames(cut, 4, (128, 128)).astype(np.float32))
    train = gesture(root, True, cache_dir=False)
    assert train.split_files()[:3] == ["hand_clapping/user01_fluorescent_0", "right_hand_wave/user02_led_0",
                                       "left_hand_wave/user01_fluorescent_0"]
    assert train.samples[2][0] == CLASSES[2] == "left_hand_wave"


def test_cache_serves_frames_and_is_keyed_by_the_label_rows(tmp_path):
    root, recordings = make_gesture(tmp_path / "g")
    uncached = gesture(root, True, time_steps=3, split_by="time", cache_dir=False)
    cached = gesture(root, True, time_steps=3, split_by="time")
    assert len(os.listdir(cached.cache.directory)) > 1
    reference = [uncached[i][0] for i in range(len(uncached))]
    assert all(torch.equal(cached[i][0], reference[i]) for i in range(len(cached)))
    for name in TRAIN:  # corrupt the recordings: the cache must serve the frames
        (root / "DvsGesture" / f"{name}.aedat").write_bytes(HEADER + b"\x01\x00")  # a cut packet header
    again = gesture(root, True, time_steps=3, split_by="time")
    assert again.cache.directory == cached.cache.directory
    assert all(torch.equal(again[i][0], reference[i]) for i in range(len(again)))
    # another label file is another cache
    labels = root / "DvsGesture" / "user01_fluorescent_labels.csv"
    labels.write_text(labels.read_text().replace("90000", "80000"))
    with pytest.raises(ValueError, match="user01_fluorescent.aedat.*truncated packet header"):
        gesture(root, True, time_steps=3, split_by="time")


def test_resize_avg_to_64(tmp_path):
    root, _ = make_gesture(tmp_path / "g")
    full = gesture(root, False, cache_dir=False)
    small = create_dataset("dvs_gesture", train=False, time_steps=4, root=str(root), cache_dir=False,
                           workers=0, expected_samples=None, resize=(64, 64), resize_mode="avg")
    assert small.sensor_size == (64, 64)
    assert torch.equal(small[1][0], F.avg_pool2d(full[1][0], 2))


def test_missing_and_incomplete_data_named(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        gesture(tmp_path, True)
    message = str(info.value)
    assert "trials_to_train.txt" in message and "DvsGesture.tar.gz" in message
    assert "research.ibm.com" in message and str(tmp_path) in message
    root, _ = make_gesture(tmp_path / "g")
    (root / "DvsGesture" / "user02_led_labels.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="user02_led_labels.csv"):
        gesture(root, True)
    gesture(root, False)  # the test part does not need it
    with pytest.warns(UserWarning, match="expected 288 test samples, found 2"):
        DVSGesture(root, train=False, time_steps=2, workers=0, cache_dir=False)
    bad = root / "DvsGesture" / "user24_natural_labels.csv"
    bad.write_text("class,startTime_usec,endTime_usec\n12,0,10\n")
    with pytest.raises(ValueError, match=r"user24_natural_labels.csv, line 2: class must be 1..11"):
        gesture(root, False)


def test_spikingjelly_event_cache(tmp_path):
    """SpikingJelly's cut samples: events_np/<part>/<class 0..10>/<recording>_<k>.npz."""
    written = {}
    for c in range(len(CLASSES)):
        folder = tmp_path / "events_np" / "test" / str(c)
        folder.mkdir(parents=True)
        events = recording(100 + c, 50_000, count=200)
        written[c] = events
        np.savez(folder / "user24_led_0.npz", t=events["t"], x=events["x"], y=events["y"], p=events["p"])
    data = gesture(tmp_path, False, time_steps=5, cache_dir=False)
    assert data.source_kind == "events_np" and data.targets == list(range(11))
    for c in range(11):
        assert np.array_equal(data[c][0].numpy(), events_to_frames(written[c], 5, (128, 128)).astype(np.float32))
    with pytest.raises(DatasetNotFoundError, match="no train samples|trials_to_train"):
        gesture(tmp_path, True)
