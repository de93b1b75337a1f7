"""Property tests for the event-file readers: damaged files never crash, hang
or decode silently wrong; the reader returns valid events or raises
EventFileError naming the file.

- every truncation of small valid files (exact: a cut on a record or packet
  boundary gives the events before it, any other cut is an error),
- random bytes, alone and behind valid headers (hypothesis),
- random byte corruptions of valid files (hypothesis).
"""

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_readers import (  # noqa: E402  (the writers live with the round-trip tests)
    AEDAT3_HEADER,
    aedat3_bytes,
    aedat3_packet,
    as_tuples,
    assert_valid,
    cifar_like_aedat2,
    gesture_like_aedat3,
    nmnist_like,
    polarity_word,
    real_sample,
)

from spikeformers.data.readers import EventFileError, read_events, read_frames_npz

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def read_or_file_error(path, reader=read_events, **options):
    """The recording when valid; None after an EventFileError that names the file."""
    try:
        result = reader(path, **options)
    except EventFileError as error:
        assert str(path) in str(error)
        assert error.path == str(path)
        return None
    if reader is read_events:
        assert_valid(result)
    return result


def small_npz_bytes(tmp_path, frames=False):
    rng = np.random.default_rng(0)
    path = tmp_path / "cache.npz"
    if frames:
        np.savez_compressed(path, frames=rng.integers(0, 3, (2, 2, 4, 4)).astype(np.float32))
    else:
        np.savez(path, t=np.arange(6) * 10, x=rng.integers(0, 128, 6), y=rng.integers(0, 128, 6),
                 p=rng.integers(0, 2, 6))
    return path.read_bytes()


# --------------------------------------------------------------------------- truncations

@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_every_truncation_of_an_aedat2_file(tmp_path, newline):
    data, _ = cifar_like_aedat2(count=8, newline=newline)
    (tmp_path / "full.aedat").write_bytes(data)
    full, _ = read_events(tmp_path / "full.aedat")
    body_start = data.index(b"# AEChip") + data[data.index(b"# AEChip"):].index(b"\n") + 1
    line_ends = {i + 1 for i in range(body_start) if data[i:i + 1] == b"\n"}
    path = tmp_path / "cut.aedat"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path, format="aedat2")
        on_record = cut >= body_start and (cut - body_start) % 8 == 0
        assert (result is not None) == (on_record or cut in line_ends), cut
        if result is not None:
            assert as_tuples(result.events) == as_tuples(full[:len(result.events)])


def test_every_truncation_of_an_aedat3_file(tmp_path):
    data, _ = gesture_like_aedat3()
    path = tmp_path / "full.aedat"
    path.write_bytes(data)
    full, _ = read_events(path)
    header_end = data.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    boundaries, position = {header_end}, header_end
    while position < len(data):  # walk the packets with the header fields the writer wrote
        size, capacity = np.frombuffer(data, "<i4", 1, position + 4)[0], np.frombuffer(data, "<i4", 1, position + 16)[0]
        position += 28 + int(size) * int(capacity)
        boundaries.add(position)
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path)
        assert (result is not None) == (cut in boundaries), cut
        if result is not None:
            assert as_tuples(result.events) == as_tuples(full[:len(result.events)])
        kept = read_or_file_error(path, allow_truncated=True)
        if cut >= header_end:
            assert kept is not None
            assert as_tuples(kept.events) == as_tuples(full[:len(kept.events)])


def test_every_truncation_of_an_nmnist_file(tmp_path):
    data, expected = nmnist_like(count=30)
    path = tmp_path / "cut.bin"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path)
        assert (result is not None) == (cut % 5 == 0), cut
        if result is not None:
            assert as_tuples(result.events) == expected[:cut // 5]


@pytest.mark.parametrize("frames", [False, True])
def test_every_truncation_of_an_npz_cache(tmp_path, frames):
    data = small_npz_bytes(tmp_path, frames)
    reader = read_frames_npz if frames else read_events
    path = tmp_path / "cut.npz"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        assert read_or_file_error(path, reader) is None, cut


def test_truncations_of_the_real_nmnist_sample(tmp_path):
    data = real_sample("sample_nmnist.bin").read_bytes()
    path = tmp_path / "cut.bin"
    for cut in list(range(0, 40)) + list(range(len(data) - 12, len(data))):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path)
        assert (result is not None) == (cut % 5 == 0)


# --------------------------------------------------------------------------- random bytes

@FUZZ
@given(data=st.binary(max_size=200),
       format=st.sampled_from([None, "aedat2", "aedat3", "nmnist", "npz"]),
       suffix=st.sampled_from([".bin", ".aedat", ".npz", ".dat"]))
def test_random_bytes(tmp_path, data, format, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    read_or_file_error(path, format=format)


@FUZZ
@given(header=st.sampled_from([b"#!AER-DAT2.0\r\n", b"#!AER-DAT2.0\n# AEChip: DVS128\n",
                               b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
                               b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"]),
       body=st.binary(max_size=160))
def test_valid_header_then_random_bytes(tmp_path, header, body):
    path = tmp_path / "random.aedat"
    path.write_bytes(header + body)
    read_or_file_error(path)


@FUZZ
@given(fields=st.tuples(st.integers(-2, 4), st.integers(-1, 2), st.sampled_from([-8, 0, 4, 8, 36, 2**30]),
                        st.integers(-1, 6), st.sampled_from([-1, 0, 1, 2**31 - 1]),
                        st.integers(-1, 4), st.integers(-1, 4), st.integers(-1, 4)),
       body=st.binary(max_size=48))
def test_aedat3_packet_headers_with_garbage_fields(tmp_path, fields, body):
    packet = struct.pack("<hhiiiiii", *fields) + body
    good = aedat3_packet(1, [(polarity_word(5, 6, 1), 9)])
    path = tmp_path / "packets.aedat"
    path.write_bytes(aedat3_bytes([good, packet, good], AEDAT3_HEADER))
    result = read_or_file_error(path)
    if result is not None:  # the packets around the damaged one decode unchanged
        events = as_tuples(result.events)
        assert events[0] == (9, 5, 6, 1)


# --------------------------------------------------------------------------- corruptions

def corrupt(data, edits):
    damaged = bytearray(data)
    for position, value in edits:
        damaged[position % len(damaged)] = value
    return bytes(damaged)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


@FUZZ
@given(edits=EDITS, which=st.sampled_from(["aedat2", "aedat3", "nmnist"]))
def test_corrupted_event_files(tmp_path, edits, which):
    data = {"aedat2": lambda: cifar_like_aedat2(count=12)[0],
            "aedat3": lambda: gesture_like_aedat3()[0],
            "nmnist": lambda: nmnist_like(count=20)[0]}[which]()
    path = tmp_path / ("damaged.bin" if which == "nmnist" else "damaged.aedat")
    path.write_bytes(corrupt(data, edits))
    read_or_file_error(path)
    read_or_file_error(path, format=which)


@FUZZ
@given(edits=EDITS, frames=st.booleans())
def test_corrupted_npz_caches(tmp_path, edits, frames):
    data = small_npz_bytes(tmp_path, frames)
    path = tmp_path / "damaged.npz"
    path.write_bytes(corrupt(data, edits))
    read_or_file_error(path, read_frames_npz if frames else read_events)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(14, 2400), st.integers(0, 255)), min_size=1, max_size=3),
       cut=st.sampled_from([3000, 60_000, None]))
def test_corrupted_aedat4_headers(tmp_path, edits, cut):
    """The aedat package aborts the interpreter on some damaged headers; the
    reader's own IOHeader check must turn those into EventFileError."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    data = real_sample("sample.aedat4").read_bytes()[:cut]
    path = tmp_path / "damaged.aedat4"
    path.write_bytes(corrupt(data, edits))
    read_or_file_error(path)
