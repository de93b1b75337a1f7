"""Tests for the event-file readers (spikeformers.data.readers).

The writers below produce the exact on-disk formats byte by byte with
``struct``, from the layouts in shared/DATA.md; the expected events are
decoded again one event at a time, straight from those definitions, and the
vectorised readers must agree event by event. The real recordings in
shared/testdata/ pin the readers to bytes a real camera wrote.
"""

import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeformers.data.events import EVENT_DTYPE
from spikeformers.data.readers import (
    FORMATS,
    EventFileError,
    EventRecording,
    detect_format,
    read_events,
    read_frames_npz,
)

# SPIKEFORMERS_TESTDATA: where the samples are for a checkout elsewhere than beside shared/.
TESTDATA = Path(os.environ.get("SPIKEFORMERS_TESTDATA") or Path(__file__).resolve().parents[2] / "shared" / "testdata")


def real_sample(name):
    path = TESTDATA / name
    if not path.exists():
        pytest.skip(f"real sample {path} is absent (shared/testdata is not part of a user's clone)")
    return path


# --------------------------------------------------------------------------- writers

AEDAT2_HEADER = (
    b"#!AER-DAT2.0",
    b"# This is a raw AE data file - do not edit",
    b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
    b"# Timestamps tick is 1 us",
    b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128",
)


def dvs128_address(x_raw, y_raw, p_raw, external=0):
    return (external << 15) | (y_raw << 8) | (x_raw << 1) | p_raw


def aedat2_bytes(addresses, timestamps, newline=b"\r\n", header=AEDAT2_HEADER):
    head = b"".join(line + newline for line in header)
    return head + b"".join(struct.pack(">II", a, t) for a, t in zip(addresses, timestamps))


AEDAT3_HEADER = (b"#!AER-DAT3.1", b"#Format: RAW", b"#Source 1: DVS128",
                 b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)", b"#!END-HEADER")


def polarity_word(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def aedat3_packet(event_type=1, events=(), ts_overflow=0, padding=0, payload=b"", event_size=8,
                  ts_offset=4, number=None, capacity=None, valid=None, source=1):
    """A packet: 28-byte header, then ``number`` events and ``padding`` unused slots."""
    if event_type == 1:
        body = b"".join(struct.pack("<Ii", word, ts) for word, ts in events)
        count = len(events)
        valid_count = sum(word & 1 for word, _ in events)
    else:
        body, count, valid_count = payload, len(payload) // event_size, len(payload) // event_size
    number = count if number is None else number
    capacity = count + padding if capacity is None else capacity
    valid = valid_count if valid is None else valid
    header = struct.pack("<hhiiiiii", event_type, source, event_size, ts_offset, ts_overflow,
                         capacity, number, valid)
    return header + body + b"\x00" * (padding * event_size)


def aedat3_bytes(packets, header=AEDAT3_HEADER, newline=b"\r\n"):
    return b"".join(line + newline for line in header) + b"".join(packets)


def nmnist_bytes(x, y, p, t):
    return b"".join(bytes([xi, yi, (pi << 7) | (ti >> 16), (ti >> 8) & 0xFF, ti & 0xFF])
                    for xi, yi, pi, ti in zip(x, y, p, t))


def write(path, data):
    path.write_bytes(data)
    return path


def as_tuples(events):
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def assert_valid(recording):
    events, (height, width) = recording
    assert events.dtype == EVENT_DTYPE
    if len(events):
        assert events["x"].min() >= 0 and events["x"].max() < width
        assert events["y"].min() >= 0 and events["y"].max() < height
        assert set(np.unique(events["p"]).tolist()) <= {0, 1}
        assert events["t"].min() >= 0


# --------------------------------------------------------------------------- sample files

def cifar_like_aedat2(seed=0, count=60, newline=b"\r\n"):
    """Random DVS128 events, some external; the expected events in both orientations."""
    rng = np.random.default_rng(seed)
    addresses, timestamps = [], []
    expected = {"spikingjelly": [], "raw": []}
    t = 1000
    for _ in range(count):
        x_raw, y_raw = (int(v) for v in rng.integers(0, 128, 2))
        p_raw = int(rng.integers(0, 2))
        external = int(rng.random() < 0.1)
        t += int(rng.integers(0, 50))
        addresses.append(dvs128_address(x_raw, y_raw, p_raw, external))
        timestamps.append(t)
        if not external:
            expected["spikingjelly"].append((t, 127 - y_raw, 127 - x_raw, 1 - p_raw))
            expected["raw"].append((t, x_raw, y_raw, p_raw))
    # the extreme pixels and the largest timestamp
    for x_raw, y_raw, p_raw, t in ((0, 0, 0, 2**32 - 2), (127, 127, 1, 2**32 - 1)):
        addresses.append(dvs128_address(x_raw, y_raw, p_raw))
        timestamps.append(t)
        expected["spikingjelly"].append((t, 127 - y_raw, 127 - x_raw, 1 - p_raw))
        expected["raw"].append((t, x_raw, y_raw, p_raw))
    return aedat2_bytes(addresses, timestamps, newline=newline), expected


def gesture_like_aedat3(seed=0):
    """Polarity packets (one across a timestamp overflow, one with padding and
    invalid events) around an IMU packet; the expected events."""
    rng = np.random.default_rng(seed)
    packets, expected = [], []

    def polarity(count, ts_overflow, start, invalid_every=0, padding=0):
        events = []
        for i in range(count):
            x, y, p = int(rng.integers(0, 128)), int(rng.integers(0, 128)), int(rng.integers(0, 2))
            valid = 0 if invalid_every and i % invalid_every == 0 else 1
            ts = start + 3 * i
            events.append((polarity_word(x, y, p, valid), ts))
            if valid:
                expected.append((ts | (ts_overflow << 31), x, y, p))
        packets.append(aedat3_packet(1, events, ts_overflow=ts_overflow, padding=padding))

    polarity(12, 0, 2**31 - 40)
    packets.append(aedat3_packet(3, payload=rng.integers(0, 256, 36 * 3, dtype=np.uint8).tobytes(),
                                 event_size=36))
    polarity(9, 1, 5, invalid_every=4, padding=2)
    packets.append(aedat3_packet(1, []))  # empty polarity packet
    polarity(5, 2, 0)
    return aedat3_bytes(packets), expected


def nmnist_like(seed=0, count=80, size=(34, 34)):
    rng = np.random.default_rng(seed)
    height, width = size
    x = rng.integers(0, width, count).tolist()
    y = rng.integers(0, height, count).tolist()
    p = rng.integers(0, 2, count).tolist()
    t = np.sort(rng.integers(0, 2**23, count)).tolist()
    t[-1] = 2**23 - 1
    return nmnist_bytes(x, y, p, t), list(zip(t, x, y, p))


# --------------------------------------------------------------------------- AEDAT 2.0

@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
@pytest.mark.parametrize("orientation", ["spikingjelly", "raw"])
def test_aedat2_reads_back_event_by_event(tmp_path, newline, orientation):
    data, expected = cifar_like_aedat2(newline=newline)
    path = write(tmp_path / "cifar10_cat_0.aedat", data)
    recording = read_events(path, orientation=orientation)
    assert isinstance(recording, EventRecording)
    assert recording.sensor_size == (128, 128)
    assert as_tuples(recording.events) == expected[orientation]
    assert_valid(recording)


def test_aedat2_default_orientation_is_spikingjelly(tmp_path):
    path = write(tmp_path / "a.aedat", aedat2_bytes([dvs128_address(3, 10, 1)], [7]))
    events, _ = read_events(path)
    assert as_tuples(events) == [(7, 127 - 10, 127 - 3, 0)]
    events, _ = read_events(path, "aedat2", orientation="raw")
    assert as_tuples(events) == [(7, 3, 10, 1)]


def test_aedat2_rejects_non_dvs128_addresses_and_names_the_chip(tmp_path):
    header = AEDAT2_HEADER[:-1] + (b"# AEChip: eu.seebetter.ini.chips.davis.Davis346red",)
    path = write(tmp_path / "davis.aedat", aedat2_bytes([1 << 22, 5], [1, 2], header=header))
    with pytest.raises(EventFileError, match="not a DVS128 address.*Davis346red") as caught:
        read_events(path)
    assert caught.value.path == str(path)


def test_aedat2_truncated_record_is_an_error_unless_allowed(tmp_path):
    data, expected = cifar_like_aedat2(count=5)
    path = write(tmp_path / "cut.aedat", data[:-3])
    with pytest.raises(EventFileError, match="truncated event record") as caught:
        read_events(path)
    assert str(path) in str(caught.value)
    events, _ = read_events(path, allow_truncated=True)
    assert as_tuples(events) == expected["spikingjelly"][:-1]


@pytest.mark.parametrize("data, message", [
    (b"#!AER-DAT2.0\r\n# no line end", "truncated header"),
    (b"# a header without the version line\n", "bad magic"),
    (b"\x00" * 16, "bad magic"),
])
def test_aedat2_bad_headers(tmp_path, data, message):
    path = write(tmp_path / "bad.aedat", data)
    with pytest.raises(EventFileError, match=message):
        read_events(path, "aedat2")


# --------------------------------------------------------------------------- AEDAT 3.1

def test_aedat3_reads_back_event_by_event(tmp_path):
    data, expected = gesture_like_aedat3()
    path = write(tmp_path / "user01_fluorescent.aedat", data)
    recording = read_events(path)
    assert recording.sensor_size == (128, 128)
    assert as_tuples(recording.events) == expected
    assert recording.events["t"].max() > 2**31  # the overflow counter is applied
    assert_valid(recording)


@pytest.mark.parametrize("source, size", [(b"#Source 1: DAVIS346", (260, 346)),
                                          (b"#Source 2: DAVIS240C", (180, 240))])
def test_aedat3_sensor_size_from_the_header(tmp_path, source, size):
    header = AEDAT3_HEADER[:2] + (source,) + AEDAT3_HEADER[3:]
    packet = aedat3_packet(1, [(polarity_word(300, 200, 1), 5)] if size[1] > 300 else [])
    path = write(tmp_path / "d.aedat", aedat3_bytes([packet], header=header))
    assert read_events(path).sensor_size == size


def test_aedat3_unknown_camera_falls_back_to_dvs128_or_the_extent(tmp_path):
    header = AEDAT3_HEADER[:2] + AEDAT3_HEADER[3:]  # no #Source line
    small = aedat3_packet(1, [(polarity_word(100, 7, 1), 5)])
    large = aedat3_packet(1, [(polarity_word(200, 7, 1), 5)])
    assert read_events(write(tmp_path / "s.aedat", aedat3_bytes([small], header))).sensor_size == (128, 128)
    assert read_events(write(tmp_path / "l.aedat", aedat3_bytes([large], header))).sensor_size == (8, 201)
    with pytest.raises(EventFileError, match="outside the sensor size"):
        read_events(write(tmp_path / "x.aedat", aedat3_bytes([large])))  # DVS128 header


@pytest.mark.parametrize("packet, message", [
    (aedat3_packet(1, [(polarity_word(1, 2, 1), 5)], capacity=50), "beyond the end of the file"),
    (aedat3_packet(1, [], event_size=-8), "bad packet header"),
    (aedat3_packet(1, [(polarity_word(1, 2, 1), 5)], number=2, capacity=1), "bad packet header"),
    (aedat3_packet(1, [(polarity_word(1, 2, 1), 5)], ts_overflow=-1), "bad packet header"),
    (aedat3_packet(-3, payload=b"\x00" * 8), "bad packet header"),
    (aedat3_packet(1, [], event_size=12), "unsupported polarity packet"),
    (aedat3_packet(1, [(polarity_word(1, 2, 1), -5)]), "negative timestamp"),
    (aedat3_packet(1, [(polarity_word(1, 2, 1), 5)])[:20], "truncated packet header"),
])
def test_aedat3_damaged_packets(tmp_path, packet, message):
    good = aedat3_packet(1, [(polarity_word(3, 4, 0), 1)])
    path = write(tmp_path / "bad.aedat", aedat3_bytes([good, packet]))
    with pytest.raises(EventFileError, match=message) as caught:
        read_events(path)
    assert str(path) in str(caught.value)


def test_aedat3_allow_truncated_keeps_the_whole_events_of_a_cut_packet(tmp_path):
    events = [(polarity_word(i, i, i % 2), 10 + i) for i in range(4)]
    data = aedat3_bytes([aedat3_packet(1, events)])
    path = write(tmp_path / "cut.aedat", data[:-5])
    with pytest.raises(EventFileError, match="beyond the end"):
        read_events(path)
    kept, _ = read_events(path, allow_truncated=True)
    assert as_tuples(kept) == [(10 + i, i, i, i % 2) for i in range(3)]


@pytest.mark.parametrize("data", [
    b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n",
    b"#!AER-DAT3.1\r\n#!END-HEADER",
    b"#!AER-DAT3.1\r\n\x01\x00\x08\x00",
])
def test_aedat3_header_without_end_is_an_error(tmp_path, data):
    with pytest.raises(EventFileError, match="header"):
        read_events(write(tmp_path / "h.aedat", data))


# --------------------------------------------------------------------------- N-MNIST binary

def test_nmnist_reads_back_event_by_event(tmp_path):
    data, expected = nmnist_like()
    recording = read_events(write(tmp_path / "00002.bin", data))
    assert recording.sensor_size == (34, 34)
    assert as_tuples(recording.events) == expected
    assert_valid(recording)


def test_nmnist_sensor_size_rules(tmp_path):
    data, _ = nmnist_like(size=(180, 240))
    path = write(tmp_path / "image_0001.bin", data)
    assert read_events(path).sensor_size == (180, 240)
    assert read_events(path, sensor_size=(200, 300)).sensor_size == (200, 300)
    with pytest.raises(EventFileError, match="outside the sensor size"):
        read_events(path, sensor_size=(34, 34))
    wide = write(tmp_path / "wide.bin", nmnist_bytes([250], [3], [1], [9]))
    assert read_events(wide).sensor_size == (4, 251)  # beyond the standard sizes: the extent
    assert read_events(write(tmp_path / "empty.bin", b"")).sensor_size == (34, 34)


def test_nmnist_timestamp_overflow_markers(tmp_path):
    data = nmnist_bytes([1, 0, 2, 0, 3], [1, 240, 2, 240, 3], [0, 0, 1, 0, 1], [100, 0, 50, 0, 7])
    events, _ = read_events(write(tmp_path / "o.bin", data))
    assert as_tuples(events) == [(100, 1, 1, 0), (50 + 2**13, 2, 2, 1), (7 + 2**14, 3, 3, 1)]


def test_nmnist_truncated_record_is_an_error_unless_allowed(tmp_path):
    data, expected = nmnist_like(count=4)
    path = write(tmp_path / "cut.bin", data[:-2])
    with pytest.raises(EventFileError, match="truncated event record"):
        read_events(path)
    events, _ = read_events(path, allow_truncated=True)
    assert as_tuples(events) == expected[:3]


def test_nmnist_refuses_another_formats_magic(tmp_path):
    data, _ = cifar_like_aedat2(count=4)
    with pytest.raises(EventFileError, match="another format"):
        read_events(write(tmp_path / "x.bin", data[:40]), "nmnist")


# --------------------------------------------------------------------------- SpikingJelly .npz

def test_npz_event_cache_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 10**6, 50))
    x, y, p = rng.integers(0, 128, 50), rng.integers(0, 128, 50), rng.integers(0, 2, 50)
    x[0] = 100
    path = tmp_path / "cifar10_cat_0.npz"
    np.savez(path, t=t, x=x, y=y, p=p)
    recording = read_events(path)
    assert recording.sensor_size == (128, 128)
    assert as_tuples(recording.events) == list(zip(t.tolist(), x.tolist(), y.tolist(), p.tolist()))
    float_path = tmp_path / "float.npz"
    np.savez_compressed(float_path, t=t.astype(float), x=x.astype(np.float32), y=y, p=p.astype(bool))
    assert as_tuples(read_events(float_path).events) == as_tuples(recording.events)
    assert read_events(path, sensor_size=(200, 200)).sensor_size == (200, 200)


@pytest.mark.parametrize("arrays, message", [
    ({"t": [1, 2], "x": [1, 2], "y": [1, 2]}, "missing \\['p'\\]"),
    ({"frames": np.zeros((2, 2, 4, 4))}, "read_frames_npz"),
    ({"t": [1, 2], "x": [1, 2], "y": [1], "p": [0, 1]}, "differ in length"),
    ({"t": [1, 2], "x": [1, 2], "y": [1, 2], "p": [-1, 1]}, "polarity -1"),
    ({"t": [1.5, 2], "x": [1, 2], "y": [1, 2], "p": [0, 1]}, "not whole numbers"),
    ({"t": [1, 2], "x": [1, -2], "y": [1, 2], "p": [0, 1]}, "x ranges"),
    ({"t": [-1, 2], "x": [1, 2], "y": [1, 2], "p": [0, 1]}, "negative timestamp"),
    ({"t": [[1, 2]], "x": [[1, 2]], "y": [[1, 2]], "p": [[0, 1]]}, "1-D"),
])
def test_npz_event_cache_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(EventFileError, match=message):
        read_events(path)


def test_npz_frame_cache(tmp_path):
    frames = np.random.default_rng(0).integers(0, 5, (4, 2, 8, 8)).astype(np.float64)
    path = tmp_path / "frames.npz"
    np.savez_compressed(path, frames=frames)
    np.testing.assert_array_equal(read_frames_npz(path), frames)
    for bad, message in ((np.zeros((4, 3, 8, 8)), "2 polarity"), (-frames, "negative"),
                         (np.full((1, 2, 2, 2), np.nan), "non-finite")):
        np.savez(path, frames=bad)
        with pytest.raises(EventFileError, match=message):
            read_frames_npz(path)
    np.savez(path, t=[1], x=[1], y=[1], p=[1])
    with pytest.raises(EventFileError, match="use read_events"):
        read_frames_npz(path)


def test_npz_garbage_is_a_file_error(tmp_path):
    path = write(tmp_path / "garbage.npz", b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(EventFileError, match="cannot be read as a .npz"):
        read_events(path)
    with pytest.raises(EventFileError, match="cannot be read as a .npz"):
        read_frames_npz(path)


# --------------------------------------------------------------------------- detection, API

def test_detection_by_content_then_extension(tmp_path):
    aedat2, _ = cifar_like_aedat2(count=2)
    aedat3, _ = gesture_like_aedat3()
    assert detect_format(write(tmp_path / "a.dat", aedat2)) == "aedat2"
    assert detect_format(write(tmp_path / "b.bin", aedat3)) == "aedat3"  # content wins
    assert detect_format(write(tmp_path / "c.x", b"#!AER-DAT4.0\r\n")) == "aedat4"
    np.savez(tmp_path / "d.npz", t=[1], x=[1], y=[1], p=[1])
    (tmp_path / "d.npz").rename(tmp_path / "d.cache")
    assert detect_format(tmp_path / "d.cache") == "npz"
    assert detect_format(write(tmp_path / "e.BIN", b"\x01\x02\x03\x04\x05")) == "nmnist"


def test_unknown_formats_list_the_supported_ones(tmp_path):
    path = write(tmp_path / "recording.xyz", b"\x01\x02\x03")
    with pytest.raises(EventFileError, match="supported formats: aedat2, aedat3, aedat4, nmnist, npz, dat, mat, npy"):
        read_events(path)
    with pytest.raises(EventFileError, match="unsupported AEDAT version"):
        read_events(write(tmp_path / "v1.aedat", b"#!AER-DAT1.0\r\n"))
    with pytest.raises(ValueError, match="supported: aedat2"):
        read_events(path, format="hdf5")
    with pytest.raises(ValueError, match="orientation"):
        read_events(write(tmp_path / "n.bin", b""), orientation="raw")
    with pytest.raises(ValueError, match="orientation"):
        read_events(path, "aedat2", orientation="upside-down")
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "missing.bin")


def test_event_file_error_is_a_value_error_that_pickles(tmp_path):
    error = EventFileError(tmp_path / "f.aedat", "bad magic")
    assert isinstance(error, ValueError)
    assert str(error) == f"{tmp_path / 'f.aedat'}: bad magic"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.problem, str(copy)) == (error.path, error.problem, str(error))
    assert FORMATS == ("aedat2", "aedat3", "aedat4", "nmnist", "npz", "dat", "mat", "npy")


def test_aedat4_without_the_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "aedat", None)  # makes `import aedat` fail
    path = write(tmp_path / "x.aedat4", b"#!AER-DAT4.0\r\n")
    with pytest.raises(ImportError, match="pip install aedat"):
        read_events(path)


# --------------------------------------------------------------------------- real recordings

def test_real_nmnist_sample():
    events, sensor_size = read_events(real_sample("sample_nmnist.bin"))
    assert len(events) == 4325
    assert sensor_size == (34, 34)
    assert_valid((events, sensor_size))
    assert np.all(np.diff(events["t"]) >= 0)
    assert set(np.unique(events["p"]).tolist()) == {0, 1}


def test_real_aedat2_header_only_sample_is_zero_events():
    path = real_sample("sample_aedat_header.aedat")
    assert detect_format(path) == "aedat2"
    events, sensor_size = read_events(path)
    assert len(events) == 0 and events.dtype == EVENT_DTYPE
    assert sensor_size == (128, 128)


def test_real_aedat4_sample():
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    recording = read_events(real_sample("sample.aedat4"))
    assert len(recording.events) == 111_954
    assert recording.sensor_size == (240, 320)
    assert_valid(recording)
