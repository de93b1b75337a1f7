"""Property tests for the event-file readers: damaged files never crash, hang
or decode silently wrong; the reader returns valid events or raises
EventFileError naming the file.

- every truncation of small valid files (exact: a cut on a record or packet
  boundary gives the events before it, any other cut is an error),
- random bytes, alone and behind valid headers (hypothesis),
- random byte corruptions of valid files (hypothesis),
- declared sizes of any value: AEDAT 4 packet headers, Zstd frame and block
  headers, .npy shapes, zip member sizes, MAT element tags and matrix
  dimensions (hypothesis), and every truncation of small AEDAT 4 files (the
  writer of test_hostile_readers.py),
- the same for Prophesee DAT, MATLAB and .npy event files (the writers of
  test_readers_dat_mat_npy.py).
"""

import struct
import sys
import zipfile
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

from test_readers_dat_mat_npy import (  # noqa: E402
    COMPACT,
    asl_like,
    dat_bytes,
    lip_like,
    mat_bytes,
    mat_header,
    ncars_like,
    npy_bytes,
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


def test_every_truncation_of_a_dat_file(tmp_path):
    """Exact: a cut after the type and size bytes on a record boundary gives the events before it,
    any other cut (inside the header, before the two bytes, inside a record) is an error."""
    events = ncars_like(count=12)
    data = dat_bytes(events)
    body = data.index(b"\n% Date") + 1
    body = data.index(b"\n", body) + 1 + 2
    path = tmp_path / "cut.dat"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path)
        assert (result is not None) == (cut >= body and (cut - body) % 8 == 0), cut
        if result is not None:
            assert as_tuples(result.events) == events[:(cut - body) // 8]
        kept = read_or_file_error(path, allow_truncated=True)
        assert (kept is not None) == (cut >= body), cut


@pytest.mark.parametrize("compress", [False, True])
def test_every_truncation_of_a_mat_file_is_an_error(tmp_path, compress):
    """The four variables are needed whole: every cut before the end of the file is an error."""
    data = mat_bytes(asl_like(count=10), compress=compress)  # doubles: no padding after the last variable
    path = tmp_path / "cut.mat"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        assert read_or_file_error(path) is None, cut
    path.write_bytes(data)
    assert len(read_or_file_error(path).events) == 10


def test_every_truncation_of_an_npy_file_is_an_error(tmp_path):
    data = npy_bytes(lip_like(count=10))
    path = tmp_path / "cut.npy"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        assert read_or_file_error(path) is None, cut


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
       format=st.sampled_from([None, "aedat2", "aedat3", "nmnist", "npz", "dat", "mat", "npy"]),
       suffix=st.sampled_from([".bin", ".aedat", ".npz", ".dat", ".mat", ".npy"]))
def test_random_bytes(tmp_path, data, format, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    read_or_file_error(path, format=format)


@FUZZ
@given(header=st.sampled_from([b"#!AER-DAT2.0\r\n", b"#!AER-DAT2.0\n# AEChip: DVS128\n",
                               b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
                               b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n",
                               dat_bytes([]), b"% Data file containing CD events\n% Width 8\n% Height 8\n\x0c\x08",
                               mat_header(), mat_header(">"), npy_bytes(lip_like(count=0))]),
       body=st.binary(max_size=160))
def test_valid_header_then_random_bytes(tmp_path, header, body):
    suffix = ".mat" if header.startswith(b"MATLAB") else ".npy" if header.startswith(b"\x93NUMPY") else ".aedat"
    path = tmp_path / f"random{suffix}"
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


CORRUPTED = {
    "aedat2": (lambda: cifar_like_aedat2(count=12)[0], ".aedat"),
    "aedat3": (lambda: gesture_like_aedat3()[0], ".aedat"),
    "nmnist": (lambda: nmnist_like(count=20)[0], ".bin"),
    "dat": (lambda: dat_bytes(ncars_like(count=20)), ".dat"),
    "mat": (lambda: mat_bytes(asl_like(count=12), storage=COMPACT), ".mat"),
    "mat_compressed": (lambda: mat_bytes(asl_like(count=12), compress=True), ".mat"),
    "mat_big_endian": (lambda: mat_bytes(asl_like(count=12), order=">"), ".mat"),
    "npy": (lambda: npy_bytes(lip_like(count=20)), ".npy"),
}


@FUZZ
@given(edits=EDITS, which=st.sampled_from(sorted(CORRUPTED)))
def test_corrupted_event_files(tmp_path, edits, which):
    make, suffix = CORRUPTED[which]
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(corrupt(make(), edits))
    read_or_file_error(path)
    read_or_file_error(path, format=which.split("_")[0])


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


# --------------------------------------------------------------------------- AEDAT 4 and declared sizes

def aedat4_packet_bounds(data):
    """The offsets where the AEDAT 4 packets of ``data`` start, and its end."""
    from test_hostile_readers import first_packet_offset

    bounds, position = [first_packet_offset(data)], first_packet_offset(data)
    while position < len(data):
        position += 8 + struct.unpack_from("<I", data, position + 4)[0]
        bounds.append(position)
    return bounds


@pytest.mark.parametrize("compression", [0, 3])
def test_every_truncation_of_an_aedat4_file(tmp_path, compression):
    """Exact: a cut at most 3 bytes past a packet's end gives the packets before it (the
    aedat package stops where no stream id is left), any other cut is an error."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from test_hostile_readers import small_aedat4

    data, expected = small_aedat4(compression)
    bounds = aedat4_packet_bounds(data)
    per_packet = len(expected) // 2
    path = tmp_path / "cut.aedat4"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        result = read_or_file_error(path)
        whole = [b for b in bounds if b <= cut]
        assert (result is not None) == (bool(whole) and cut - whole[-1] < 4), cut
        if result is not None:
            assert as_tuples(result.events) == expected[:per_packet * (len(whole) - 1)]


@FUZZ
@given(edits=EDITS, compression=st.sampled_from([0, 3]))
def test_corrupted_aedat4_files(tmp_path, edits, compression):
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from test_hostile_readers import small_aedat4

    path = tmp_path / "damaged.aedat4"
    path.write_bytes(corrupt(small_aedat4(compression)[0], [(14 + p, v) for p, v in edits]))
    read_or_file_error(path)


@FUZZ
@given(packet=st.integers(0, 1), field=st.sampled_from([0, 4]),
       value=st.sampled_from([1, 7, 2**16, 2**24, 2**31 - 1, 2**31, 2**32 - 16, 2**32 - 1]),
       compression=st.sampled_from([0, 3]))
def test_aedat4_packet_headers_declaring_huge_sizes(tmp_path, packet, field, value, compression):
    """A packet's stream id or size set to anything: an error naming the file, or the events."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from test_hostile_readers import small_aedat4

    data = bytearray(small_aedat4(compression)[0])
    struct.pack_into("<I", data, aedat4_packet_bounds(bytes(data))[packet] + field, value)
    path = tmp_path / "declared.aedat4"
    path.write_bytes(bytes(data))
    read_or_file_error(path)


@FUZZ
@given(blocks=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**21 - 1)), min_size=1, max_size=6),
       descriptor=st.integers(0, 255), window=st.integers(0, 255), tail=st.binary(max_size=24))
def test_aedat4_zstd_frames_with_garbage_headers(tmp_path, blocks, descriptor, window, tail):
    """Zstd frame and block headers of any value: refused or bounded before the package inflates."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from test_hostile_readers import aedat4_bytes

    frame = struct.pack("<IBB", 0xFD2FB528, descriptor, window)
    for i, (kind, size) in enumerate(blocks):
        frame += struct.pack("<I", (i == len(blocks) - 1) | (kind << 1) | (size << 3))[:3] + tail[:8]
    path = tmp_path / "zstd.aedat4"
    path.write_bytes(aedat4_bytes([(0, frame + tail)], compression=3))
    read_or_file_error(path)


@FUZZ
@given(shape=st.lists(st.integers(0, 2**40), min_size=0, max_size=3),
       dtype=st.sampled_from(["<i8", "<f4", "|u1", "|b1", "<u2"]), payload=st.integers(0, 64))
def test_npz_arrays_declaring_any_shape(tmp_path, shape, dtype, payload):
    """An .npy header may declare any shape over any payload: exact ones read, others refused."""
    path = tmp_path / "declared.npz"
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("t", "x", "y", "p"):
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array_header_1_0(member, header)
                member.write(bytes(payload))
    result = read_or_file_error(path)
    if result is not None:
        assert len(result.events) * np.dtype(dtype).itemsize == payload


@FUZZ
@given(field=st.sampled_from([(18, "local compressed"), (22, "local size"), (20, "central compressed"),
                              (24, "central size"), (42, "central offset")]),
       value=st.sampled_from([0, 1, 100, 2**20, 2**31 - 1, 2**31, 2**32 - 1]), frames=st.booleans())
def test_npz_zip_members_declaring_any_size(tmp_path, field, value, frames):
    data = bytearray(small_npz_bytes(tmp_path, frames))
    offset, where = field
    base = data.index(b"PK\x01\x02") if where.startswith("central") else 0
    struct.pack_into("<I", data, base + offset, value)
    path = tmp_path / "declared.npz"
    path.write_bytes(bytes(data))
    read_or_file_error(path, read_frames_npz if frames else read_events)


@FUZZ
@given(offset=st.integers(0, 15).map(lambda word: 128 + 4 * word),
       value=st.sampled_from([0, 1, 4, 5, 7, 8, 9, 14, 15, 2**16 + 9, 2**31 - 1, 2**31, 2**32 - 1]),
       compress=st.booleans())
def test_mat_element_tags_and_dimensions_declaring_anything(tmp_path, offset, value, compress):
    """Any word of the first matrix (its tag, flags, dimensions, name and real-part tags) set to any
    value: the events, or an error naming the file; never an allocation of what it declares."""
    from test_readers_dat_mat_npy import mat_compressed

    data = bytearray(mat_bytes(asl_like(count=6)))
    struct.pack_into("<I", data, offset, value)
    if compress:  # the damaged matrix, compressed: its declarations are met after inflating
        first_end = 128 + 8 + struct.unpack_from("<I", mat_bytes(asl_like(count=6)), 132)[0]
        data = bytearray(bytes(data[:128]) + mat_compressed(bytes(data[128:first_end])) + bytes(data[first_end:]))
    path = tmp_path / "declared.mat"
    path.write_bytes(bytes(data))
    read_or_file_error(path)


@FUZZ
@given(shape=st.lists(st.integers(0, 2**40), min_size=0, max_size=3), payload=st.integers(0, 64))
def test_npy_events_declaring_any_shape(tmp_path, shape, payload):
    """A structured .npy may declare any shape over any payload: exact ones read, others refused."""
    array = lip_like(count=0)
    path = tmp_path / "declared.npy"
    path.write_bytes(npy_bytes(array, shape=tuple(shape)) + bytes(payload))
    result = read_or_file_error(path)
    if result is not None:
        assert len(result.events) * array.dtype.itemsize == payload
