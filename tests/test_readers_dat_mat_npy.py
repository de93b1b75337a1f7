"""The readers of the second wave of event formats: Prophesee DAT (N-CARS), the MATLAB files of
Bi et al. (ASL-DVS, UCF101-DVS, HMDB51-DVS), DVS-Lip's ``.npy`` arrays and HARDVS's ``.npz``.

The writers below build each format byte by byte from its published description, not from the
readers: Prophesee's "DAT File Format" page (``%`` header lines, an event type byte, an event size
byte, 8-byte records: uint32 timestamp, uint32 with x in bits 0..13, y in 14..27, polarity in
28..31), MathWorks' "MAT-File Format" (a 128-byte header, tagged data elements, the small element
format, miMATRIX with its flags, dimensions, name and real part, miCOMPRESSED as a zlib stream)
and NumPy's "NPY format" (magic, version, a little-endian header length, a dict literal padded to
64 bytes, the raw data). scipy's ``savemat`` is a second, independent writer of MAT files (the reader needs no scipy). Where
tonic (or the Prophesee reader it installs, expelliarmus) reads a format, a test shows that its
events equal ours; those tests skip when it is absent.
"""

import ast
import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_readers import as_tuples, assert_valid, real_sample, write  # noqa: E402

from spikeformers.data.frames import events_to_frames  # noqa: E402
from spikeformers.data.readers import EventFileError, detect_format, read_event_frames, read_events  # noqa: E402

# --------------------------------------------------------------------------- Prophesee DAT

DAT_HEADER = (b"% Data file containing Event2d events.", b"% Version 2", b"% Date 2017-10-31 11:29:21")


def dat_word(x, y, p):
    """The 32 bits after the timestamp: x in bits 0..13, y in bits 14..27, polarity in 28..31."""
    return x | (y << 14) | (p << 28)


def dat_bytes(events, header=DAT_HEADER, event_type=0x00, event_size=8):
    """A DAT file of ``(t, x, y, p)`` events: header lines, type and size bytes, 8-byte records."""
    text = b"".join(line + b"\n" for line in header)
    body = b"".join(struct.pack("<II", t, dat_word(x, y, p)) for t, x, y, p in events)
    return text + bytes([event_type, event_size]) + body


def ncars_like(seed=0, count=50, size=(100, 120)):
    """Events of an N-CARS sample (at most 120 wide, 100 high), in time order."""
    rng = np.random.default_rng(seed)
    height, width = size
    t = np.sort(rng.integers(0, 100_000, count))
    return [(int(t[i]), int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(0, 2)))
            for i in range(count)]


def test_dat_reads_back_event_by_event(tmp_path):
    events = ncars_like()
    path = write(tmp_path / "obj_000001_td.dat", dat_bytes(events))
    recording = read_events(path)
    assert detect_format(path) == "dat"
    assert_valid(recording)
    assert as_tuples(recording.events) == events
    assert recording.sensor_size == (100, 120)  # N-CARS's size holds them


@pytest.mark.parametrize("event_type", [0x00, 0x0C])
def test_dat_header_size_and_both_cd_event_types(tmp_path, event_type):
    events = [(5, 600, 400, 1), (9, 0, 0, 0), (12, 639, 479, 1)]
    header = (b"% Data file containing CD events", b"% Date 2020-09-14 14:18:29", b"% Version 2",
              b"% Width 640", b"% Height 480")
    path = write(tmp_path / "cd.dat", dat_bytes(events, header, event_type))
    recording = read_events(path)
    assert recording.sensor_size == (480, 640)
    assert as_tuples(recording.events) == events


def test_dat_sensor_size_rules(tmp_path):
    atis = write(tmp_path / "atis.dat", dat_bytes([(1, 303, 239, 0)]))
    assert read_events(atis).sensor_size == (240, 304)
    wide = write(tmp_path / "wide.dat", dat_bytes([(1, 400, 10, 0)]))
    assert read_events(wide).sensor_size == (11, 401)
    with pytest.raises(EventFileError, match="outside the sensor size"):
        read_events(wide, sensor_size=(100, 120))
    far = write(tmp_path / "far.dat", dat_bytes([(1, 16383, 16383, 1)]))
    with pytest.raises(EventFileError, match="implausible sensor size"):
        read_events(far)
    header_only = write(tmp_path / "empty.dat", dat_bytes([]))
    assert read_events(header_only).sensor_size == (100, 120) and len(read_events(header_only).events) == 0


@pytest.mark.parametrize("data, message", [
    (b"% Data file containing CD events\n% Version 2", "truncated header"),
    (b"% Data file containing CD events\n", "without the event type and event size"),
    (b"% Data file containing CD events\n\x00", "without the event type and event size"),
    (dat_bytes([(1, 2, 3, 1)], event_type=0x0E), "EventExtTrigger"),
    (dat_bytes([(1, 2, 3, 1)], event_type=0x07), "event type 0x07"),
    (dat_bytes([(1, 2, 3, 1)], event_size=16), "event size 16"),
    (dat_bytes([(1, 2, 3, 2)]), "polarity 2"),
    (dat_bytes([(1, 2, 3, 1)], header=(b"% Data file containing CD events", b"% Width 0", b"% Height 4")),
     "Width must be one positive integer"),
    (b"\x00\x08" + struct.pack("<II", 1, 2), "starts with '%'"),
])
def test_dat_damage_is_a_file_error(tmp_path, data, message):
    path = write(tmp_path / "bad.dat", data)
    with pytest.raises(EventFileError, match=message) as caught:
        read_events(path, format="dat")
    assert caught.value.path == str(path)


def test_dat_truncated_record_is_an_error_unless_allowed(tmp_path):
    events = ncars_like(count=6)
    path = write(tmp_path / "cut.dat", dat_bytes(events)[:-3])
    with pytest.raises(EventFileError, match="truncated event record"):
        read_events(path)
    assert as_tuples(read_events(path, allow_truncated=True).events) == events[:-1]


def test_dat_frames_are_the_frames_of_its_events(tmp_path):
    path = write(tmp_path / "frames.dat", dat_bytes(ncars_like(count=400)))
    events = read_events(path).events
    for split_by in ("number", "time", "time_bins"):
        assert np.array_equal(read_event_frames(path, 5, split_by), events_to_frames(events, 5, (100, 120), split_by))


def test_real_ncars_sample():
    """A real N-CARS recording (tonic's test data): its facts as Prophesee's reader gives them."""
    path = real_sample("sample_ncars.dat")
    recording = read_events(path)
    assert len(recording.events) == 2009 and recording.sensor_size == (100, 120)
    assert as_tuples(recording.events[:3]) == [(0, 25, 8, 0), (35, 67, 35, 0), (152, 56, 27, 1)]
    assert int(recording.events["t"][-1]) <= 100_000  # an N-CARS sample is 100 ms


@pytest.mark.parametrize("which", ["written", "real"])
def test_dat_events_equal_the_prophesee_reader_tonic_installs(tmp_path, which):
    """tonic reads Prophesee files with expelliarmus (a dependency of tonic); same events."""
    expelliarmus = pytest.importorskip("expelliarmus", reason="expelliarmus comes with tonic")
    if which == "real":
        path = real_sample("sample_ncars.dat")
    else:
        path = write(tmp_path / "ours.dat", dat_bytes(ncars_like(count=300)))
    theirs = expelliarmus.Wizard(encoding="dat").read(str(path))
    ours = read_events(path).events
    assert len(theirs) == len(ours) > 0
    for field in ("t", "x", "y", "p"):
        assert np.array_equal(ours[field].astype(np.int64), theirs[field].astype(np.int64)), field


# --------------------------------------------------------------------------- MATLAB level 5

MI = {"int8": 1, "uint8": 2, "int16": 3, "uint16": 4, "int32": 5, "uint32": 6, "single": 7, "double": 9,
      "int64": 12, "uint64": 13, "matrix": 14, "compressed": 15}
MX_CLASS = {"double": 6, "single": 7, "int8": 8, "uint8": 9, "int16": 10, "uint16": 11, "int32": 12,
            "uint32": 13, "int64": 14, "uint64": 15}
NUMPY_OF = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
            "single": "f4", "double": "f8", "int64": "i8", "uint64": "u8"}


def mat_header(order="<", text=b"MATLAB 5.0 MAT-file, Platform: test, Created on: Mon Jan  1 00:00:00 2024"):
    """116 bytes of text, 8 bytes of subsystem offset, version 0x0100, the characters 'MI' as a 16-bit value."""
    return text.ljust(116, b" ") + bytes(8) + struct.pack(order + "H", 0x0100) + \
        struct.pack(order + "H", (ord("M") << 8) | ord("I"))


def mat_element(kind, payload, order="<", small=True):
    """A tagged data element; 1 to 4 bytes go into the small format (count and type as 16-bit values)."""
    if small and 0 < len(payload) <= 4:
        return struct.pack(order + "I", (len(payload) << 16) | kind) + payload.ljust(4, b"\0")
    return struct.pack(order + "II", kind, len(payload)) + payload + bytes(-len(payload) % 8)


def mat_matrix(name, values, array_class="double", storage="double", order="<", dims=None, flags=0):
    """A miMATRIX element: array flags, dimensions (a column), name, real part stored as ``storage``."""
    values = np.asarray(values)
    dims = dims if dims is not None else (len(values), 1)
    stored = values.astype(np.dtype(order + NUMPY_OF[storage]))
    body = (mat_element(MI["uint32"], struct.pack(order + "II", MX_CLASS[array_class] | flags, 0), order)
            + mat_element(MI["int32"], struct.pack(f"{order}{len(dims)}i", *dims), order)
            + mat_element(MI["int8"], name.encode(), order)
            + mat_element(MI[storage], stored.tobytes(), order, small=False))
    return struct.pack(order + "II", MI["matrix"], len(body)) + body


def mat_compressed(element, order="<"):
    packed = zlib.compress(element)
    return struct.pack(order + "II", MI["compressed"], len(packed)) + packed


def mat_bytes(columns, order="<", compress=False, storage=None, extra=()):
    """A MAT-file with the variables ``columns`` (name -> values) and ``extra`` elements before them."""
    storage = storage or {}
    elements = list(extra)
    for name, values in columns.items():
        array_class, stored = storage.get(name, ("double", "double"))
        matrix = mat_matrix(name, values, array_class, stored, order)
        elements.append(mat_compressed(matrix, order) if compress else matrix)
    return mat_header(order) + b"".join(elements)


def asl_like(seed=0, count=200):
    """``ts, x, y, pol`` of a DAVIS240C recording, y counted from the bottom row."""
    rng = np.random.default_rng(seed)
    return {"ts": np.sort(rng.integers(0, 2_000_000, count)), "x": rng.integers(0, 240, count),
            "y": rng.integers(0, 180, count), "pol": rng.integers(0, 2, count)}


COMPACT = {"ts": ("double", "uint32"), "x": ("double", "uint8"), "y": ("double", "uint8"), "pol": ("uint8", "uint8")}


def expected_mat_events(columns, orientation="tonic", size=(180, 240)):
    height, width = size
    x, y = np.asarray(columns["x"]), np.asarray(columns["y"])
    if orientation != "raw":
        y = height - 1 - y
    if orientation == "spikingjelly":
        x = width - 1 - x
    return [(int(t), int(a), int(b), int(p)) for t, a, b, p in zip(columns["ts"], x, y, columns["pol"])]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("storage", [None, COMPACT], ids=["doubles", "compact"])
def test_mat_reads_back_event_by_event(tmp_path, order, compress, storage):
    columns = asl_like()
    other = mat_matrix("label", [3.0], order=order)  # another variable, ignored
    path = write(tmp_path / "a_0001.mat", mat_bytes(columns, order, compress, storage, extra=[other]))
    recording = read_events(path)
    assert detect_format(path) == "mat"
    assert_valid(recording)
    assert recording.sensor_size == (180, 240)
    assert as_tuples(recording.events) == expected_mat_events(columns)


@pytest.mark.parametrize("orientation", ["tonic", "spikingjelly", "raw"])
def test_mat_orientations(tmp_path, orientation):
    columns = asl_like(seed=1)
    path = write(tmp_path / "o.mat", mat_bytes(columns))
    recording = read_events(path, orientation=orientation)
    assert as_tuples(recording.events) == expected_mat_events(columns, orientation)
    events = read_events(path, orientation=orientation, sensor_size=(200, 250)).events
    assert as_tuples(events) == expected_mat_events(columns, orientation, (200, 250))


def test_mat_written_by_scipy_savemat(tmp_path):
    """scipy's writer, compressed or not, columns or rows, any numeric class."""
    scipy_io = pytest.importorskip("scipy.io")
    columns = asl_like(seed=2)
    for compress in (False, True):
        arrays = {"ts": columns["ts"].astype(np.float64)[:, None], "x": columns["x"].astype(np.uint16)[None, :],
                  "y": columns["y"].astype(np.int32)[:, None], "pol": columns["pol"].astype(bool)[:, None]}
        path = tmp_path / f"scipy_{compress}.mat"
        scipy_io.savemat(path, {**arrays, "note": "text is ignored"}, do_compression=compress)
        assert as_tuples(read_events(path).events) == expected_mat_events(columns)


def test_empty_mat_recording(tmp_path):
    path = write(tmp_path / "empty.mat", mat_bytes({name: [] for name in ("ts", "x", "y", "pol")}))
    recording = read_events(path)
    assert len(recording.events) == 0 and recording.sensor_size == (180, 240)
    assert read_event_frames(path, 3).sum() == 0


@pytest.mark.parametrize("data, message", [
    (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .", "MATLAB 7.3 MAT-file \\(HDF5\\)"),
    (mat_header()[:100], "truncated header"),
    (mat_header()[:126] + b"XX", "byte order indicator"),
    (mat_bytes({"ts": [1], "x": [2], "y": [3]}), "lacks the variable\\(s\\) pol"),
    (mat_bytes({"ts": [1], "x": [2], "y": [3], "pol": [2]}), "polarity 2"),
    (mat_bytes({"ts": [1.5], "x": [2], "y": [3], "pol": [1]}), "not whole numbers"),
    (mat_bytes({"ts": [-1], "x": [2], "y": [3], "pol": [1]}), "negative timestamp"),
    (mat_bytes({"ts": [1, 2], "x": [2], "y": [3], "pol": [1]}), "differ in length"),
    (mat_header() + mat_matrix("ts", [1.0], dims=(2**31 - 1, 1)), "declare 17179869176 bytes"),
    (mat_header() + mat_matrix("ts", [1.0, 2.0], dims=(2, 2)), "must be a vector"),
    (mat_header() + mat_matrix("ts", [1.0], flags=0x0800), "real numeric array"),
    (mat_header() + mat_matrix("ts", [1.0], array_class="uint8")[:-8], "declares 56 bytes; 48 are left"),
    (mat_header() + struct.pack("<II", MI["matrix"], 2**31) + bytes(16), "declares 2147483648 bytes"),
    (mat_header() + struct.pack("<II", MI["compressed"], 11) + b"not zlib at", "cannot be inflated"),
    (mat_header() + mat_compressed(mat_matrix("ts", [1.0]))[:-4], r"declares \d+ bytes; \d+ are left"),
    (mat_header() + struct.pack("<II", MI["compressed"], 20) + zlib.compress(mat_matrix("ts", [1.0]))[:20],
     "cut short"),
])
def test_mat_damage_is_a_file_error(tmp_path, data, message):
    path = write(tmp_path / "bad.mat", data)
    with pytest.raises(EventFileError, match=message) as caught:
        read_events(path, format="mat")
    assert caught.value.path == str(path)


def test_mat_compressed_element_inflating_beyond_the_bound_is_refused_while_inflating(tmp_path, monkeypatch):
    from spikeformers.data.readers import mat

    monkeypatch.setattr(mat, "MAX_INFLATED_BYTES", 4 << 20)
    monkeypatch.setattr(mat, "_STEP", 1 << 16)
    bomb = mat_header() + mat_compressed(mat_matrix("ts", np.zeros(1 << 20)))  # 8 MiB of doubles, 8 KiB zipped
    path = write(tmp_path / "bomb.mat", bomb)
    assert path.stat().st_size < 64 << 10
    with pytest.raises(EventFileError, match="refused as a decompression bomb"):
        read_events(path)


def test_mat_reads_without_scipy(tmp_path, monkeypatch):
    """The MAT reader decodes the file itself: scipy, which tonic's readers use, is not needed."""
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes `import scipy.io` fail
    monkeypatch.setitem(sys.modules, "scipy", None)
    columns = asl_like(count=3)
    path = write(tmp_path / "x.mat", mat_bytes(columns, compress=True))
    assert as_tuples(read_events(path).events) == expected_mat_events(columns)


def test_mat_orientation_values_are_checked(tmp_path):
    path = write(tmp_path / "o.mat", mat_bytes(asl_like(count=3)))
    with pytest.raises(ValueError, match="orientation 'tonic' does not apply to format 'aedat2'"):
        read_events(path, "aedat2", orientation="tonic")
    with pytest.raises(ValueError, match="unknown orientation 'sideways'"):
        read_events(path, orientation="sideways")
    with pytest.raises(ValueError, match="orientation applies to the formats aedat2, mat only"):
        read_events(write(tmp_path / "n.dat", dat_bytes([])), orientation="raw")


def test_mat_events_equal_tonics_asl_dvs(tmp_path, monkeypatch):
    """tonic.datasets.ASLDVS reads a folder of these files; its events are ours ('tonic' orientation)."""
    pytest.importorskip("scipy.io", reason="tonic's ASLDVS reads with scipy")
    tonic = pytest.importorskip("tonic", reason="tonic is an optional extra")
    folder = tmp_path / "ASLDVS"
    recordings = {}
    for letter, seed in (("a", 0), ("b", 1), ("y", 2)):
        (folder / letter).mkdir(parents=True)
        columns = asl_like(seed=seed, count=150)
        path = write(folder / letter / f"{letter}_0001.mat", mat_bytes(columns, compress=seed == 1, storage=COMPACT))
        recordings[str(path)] = path
    monkeypatch.setattr(tonic.datasets.ASLDVS, "_check_exists", lambda self: True)  # it wants all 100,800 files
    theirs = tonic.datasets.ASLDVS(str(tmp_path))
    assert sorted(theirs.data) == sorted(recordings)
    for index, path in enumerate(theirs.data):
        events, _ = theirs[index]
        events = events.reshape(-1)
        ours = read_events(path).events
        assert [tuple(map(int, (e["t"], e["x"], e["y"], e["p"]))) for e in events] == as_tuples(ours)


# --------------------------------------------------------------------------- NPY (DVS-Lip)

DVS_LIP_DTYPE = [("t", "<i4"), ("x", "i1"), ("y", "i1"), ("p", "i1")]


def npy_bytes(array, version=(1, 0), fortran=False, shape=None):
    """An .npy file from the format's description: magic, version, header length, a padded dict literal
    (``shape``: the shape the header declares, the array's by default)."""
    descr = np.lib.format.dtype_to_descr(array.dtype)
    declared = array.shape if shape is None else shape
    header = repr({"descr": descr, "fortran_order": fortran, "shape": declared}).encode("latin-1")
    length_bytes = 2 if version == (1, 0) else 4
    preamble = 6 + 2 + length_bytes
    header += b" " * (-(preamble + len(header) + 1) % 64) + b"\n"
    length = struct.pack("<H" if length_bytes == 2 else "<I", len(header))
    data = (array.T if fortran else array).tobytes()
    return b"\x93NUMPY" + bytes(version) + length + header + data


def lip_like(seed=0, count=120, dtype=DVS_LIP_DTYPE):
    rng = np.random.default_rng(seed)
    array = np.zeros(count, dtype=dtype)
    array["t"] = np.sort(rng.integers(0, 1_000_000, count))
    array["x"] = rng.integers(0, 128, count)
    array["y"] = rng.integers(0, 128, count)
    array["p"] = rng.integers(0, 2, count)
    return array


def test_npy_writer_is_the_npy_format():
    """The writer's header follows the description: numpy reads its files back unchanged."""
    import io

    array = lip_like()
    assert np.array_equal(np.load(io.BytesIO(npy_bytes(array))), array)
    assert np.array_equal(np.load(io.BytesIO(npy_bytes(array, version=(2, 0)))), array)
    assert np.dtype(ast.literal_eval(npy_bytes(array)[10:].split(b"\n", 1)[0].decode())["descr"]) == array.dtype


@pytest.mark.parametrize("dtype", [
    DVS_LIP_DTYPE,
    [("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")],  # tonic's order and types
    [("p", "u1"), ("t", ">u4"), ("x", ">u2"), ("y", ">u2"), ("extra", "<f4")],  # big-endian, a field more
    [("t", "<f8"), ("x", "<f4"), ("y", "<f4"), ("p", "<f4")],  # whole numbers as floats
], ids=["dvs_lip", "tonic", "big_endian_extra", "floats"])
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_npy_reads_back_event_by_event(tmp_path, dtype, version):
    array = lip_like(dtype=dtype)
    path = write(tmp_path / "00001.npy", npy_bytes(array, version))
    recording = read_events(path)
    assert detect_format(path) == "npy"
    assert_valid(recording)
    assert recording.sensor_size == (128, 128)
    assert as_tuples(recording.events) == [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in array]


@pytest.mark.parametrize("data, message", [
    (npy_bytes(np.arange(8).reshape(2, 4)), "structured array with the fields t, x, y, p"),
    (npy_bytes(np.zeros(3, [("t", "<i4"), ("x", "i1"), ("y", "i1")])), "lacks the field\\(s\\) \\['p'\\]"),
    (npy_bytes(lip_like().reshape(3, 40)), "must be 1-D"),
    (npy_bytes(lip_like())[:-1], "declares shape \\(120,\\)"),
    (npy_bytes(lip_like()) + b"\0", "declares shape \\(120,\\)"),
    (npy_bytes(lip_like())[:20], "damaged .npy header|cannot be read"),
    (npy_bytes(np.array([(1, 2, 3.5, 1)], [("t", "<f8"), ("x", "<f8"), ("y", "<f8"), ("p", "<f8")])),
     "not whole numbers"),
    (npy_bytes(np.array([(1, 2, 3, 2)], DVS_LIP_DTYPE)), "polarity 2"),
    (npy_bytes(np.array([(1, -2, 3, 1)], DVS_LIP_DTYPE)), "x=-2"),
    (b"\x93NUMPY\x03\x00" + bytes(8), "format version"),
])
def test_npy_damage_is_a_file_error(tmp_path, data, message):
    path = write(tmp_path / "bad.npy", data)
    with pytest.raises(EventFileError, match=message) as caught:
        read_events(path)
    assert caught.value.path == str(path)


def test_npy_of_python_objects_is_refused_unread(tmp_path):
    header = repr({"descr": "|O", "fortran_order": False, "shape": (2,)}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = write(tmp_path / "pickle.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"x" * 16)
    with pytest.raises(EventFileError, match="never unpickled"):
        read_events(path)


def test_npy_header_declaring_a_huge_shape_is_refused_before_allocating(tmp_path):
    path = write(tmp_path / "huge.npy", npy_bytes(lip_like(count=2), shape=(4_000_000_000,)))
    with pytest.raises(EventFileError, match="declares shape \\(4000000000,\\)"):
        read_events(path)


def test_npy_events_equal_tonics_dvs_lip(tmp_path, monkeypatch):
    """tonic.datasets.DVSLip reads DVS-Lip's layout; its events are ours."""
    tonic = pytest.importorskip("tonic", reason="tonic is an optional extra")
    folder = tmp_path / "DVSLip" / "DVS-Lip" / "train"
    written = {}
    for word, seed in (("accused", 0), ("young", 1)):
        (folder / word).mkdir(parents=True)
        for speaker in range(2):
            array = lip_like(seed=seed * 10 + speaker, count=90)
            written[str(write(folder / word / f"{speaker}.npy", npy_bytes(array)))] = array
    monkeypatch.setattr(tonic.datasets.DVSLip, "_check_exists", lambda self: True)  # it wants 100 files
    theirs = tonic.datasets.DVSLip(str(tmp_path), train=True)
    assert sorted(theirs.data) == sorted(written)
    for index, path in enumerate(theirs.data):
        events, label = theirs[index]
        assert label == tonic.datasets.DVSLip.classes.index(Path(path).parent.name)
        ours = read_events(path).events
        assert [tuple(map(int, (e["t"], e["x"], e["y"], e["p"]))) for e in events] == as_tuples(ours)


# --------------------------------------------------------------------------- HARDVS (.npz) and zips

def test_hardvs_npz_recording_reads_on_the_davis346(tmp_path):
    rng = np.random.default_rng(3)
    count = 300
    arrays = {"t": np.sort(rng.integers(0, 3_000_000, count)), "x": rng.integers(0, 346, count).astype(np.uint16),
              "y": rng.integers(0, 260, count).astype(np.uint16), "p": rng.integers(0, 2, count).astype(np.uint8)}
    path = tmp_path / "dvSave-2021_10_15_19_18_02.npz"
    with zipfile.ZipFile(path, "w") as archive:  # the .npz layout: one .npy member per array
        for key, values in arrays.items():
            archive.writestr(f"{key}.npy", npy_bytes(values))
    recording = read_events(path, sensor_size=(260, 346))
    assert recording.sensor_size == (260, 346)
    assert as_tuples(recording.events) == list(zip(*(arrays[key].tolist() for key in "txyp")))


@pytest.mark.parametrize("suffix, data", [
    (".dat", lambda: dat_bytes(ncars_like(count=20))),
    (".npy", lambda: npy_bytes(lip_like(count=20))),
    (".mat", lambda: mat_bytes(asl_like(count=20), compress=True)),
])
def test_new_formats_read_from_a_zip_member(tmp_path, suffix, data):
    content = data()
    plain = write(tmp_path / f"plain{suffix}", content)
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(f"class/recording{suffix}", content)
    member = archive / "class" / f"recording{suffix}"
    assert as_tuples(read_events(member).events) == as_tuples(read_events(plain).events)


# --------------------------------------------------------------------------- frames counted from the columns

def hardvs_npz_bytes(columns) -> bytes:
    """An .npz of the arrays t, x, y, p (one .npy member each), HARDVS's layout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, dtype in (("t", np.int64), ("x", np.uint16), ("y", np.uint16), ("p", np.uint8)):
            archive.writestr(f"{key}.npy", npy_bytes(np.asarray(columns[key]).astype(dtype)))
    return buffer.getvalue()


def columns_like(seed, count, size, *, shuffle_times=False, span=1_000_000):
    """t, x, y, p of ``count`` events on ``size`` with repeated pixels; times in order unless shuffled."""
    rng = np.random.default_rng(seed)
    height, width = size
    columns = {"t": np.sort(rng.integers(0, span, count)), "x": rng.integers(0, width, count),
               "y": rng.integers(0, height, count), "p": rng.integers(0, 2, count)}
    columns["x"][: count // 4] = 3  # many events on a few pixels
    if shuffle_times and count > 2:
        swap = rng.integers(0, count, max(count // 10, 2))
        columns["t"][swap] = columns["t"][swap[::-1]]
    return columns


def write_columns(folder, fmt, columns):
    """The recording ``columns`` as a file of format ``fmt`` (the writers above)."""
    if fmt == "dat":
        events = list(zip(*(np.asarray(columns[key]).tolist() for key in "txyp")))
        return write(folder / "obj_000001_td.dat", dat_bytes(events))
    if fmt == "mat":
        renamed = {"ts": columns["t"], "x": columns["x"], "y": columns["y"], "pol": columns["p"]}
        return write(folder / "a_0001.mat", mat_bytes(renamed, compress=True))
    if fmt == "npy":
        array = np.zeros(len(columns["t"]), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
        for key in "txyp":
            array[key] = columns[key]
        return write(folder / "0.npy", npy_bytes(array))
    return write(folder / "dvSave-0.npz", hardvs_npz_bytes(columns))


DIRECT = {"dat": (100, 120), "mat": (180, 240), "npy": (128, 128), "npz": (260, 346)}


def expected_frames(path, time_steps, split_by, **options):
    """``integrate``'s frames of ``read_events``: the time modes on time-sorted events."""
    from spikeformers.data.frames import integrate

    recording = read_events(path, **options)
    return integrate(recording.events, time_steps, recording.sensor_size, split_by)


@pytest.mark.parametrize("fmt", sorted(DIRECT))
def test_frames_counted_from_the_columns_equal_read_events_then_integrate(tmp_path, fmt, monkeypatch):
    """DAT, MAT, .npy and .npz files are counted straight from their decoded columns (C++, no event
    array): the frames must be ``integrate`` of ``read_events``, in every mode, for in-order and
    out-of-order times (these take the general path in the time modes), few or no events, and a
    caller's larger sensor size."""
    from spikeformers.data.frames import SPLIT_MODES
    from spikeformers.data.readers import counting

    counter = counting._compiled()
    if counter is None:
        pytest.skip("the C++ counter cannot be built here")
    calls = []

    class Spy:
        def __getattr__(self, name):
            return lambda *args: calls.append(name) or getattr(counter, name)(*args)

    monkeypatch.setattr(counting, "_compiled", lambda: Spy())
    size = DIRECT[fmt]
    cases = {"plain": columns_like(1, 3000, size), "unsorted": columns_like(2, 500, size, shuffle_times=True),
             "few": columns_like(3, 5, size), "empty": columns_like(4, 0, size)}
    counted = 0
    for name, columns in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        path = write_columns(folder, fmt, columns)
        for split_by in SPLIT_MODES:
            for time_steps in (1, 7, 16):
                for sensor_size in (None, (size[0] + 3, size[1] + 5)):
                    before = len(calls)
                    got = read_event_frames(path, time_steps, split_by, sensor_size=sensor_size)
                    counted += len(calls) > before
                    want = expected_frames(path, time_steps, split_by, sensor_size=sensor_size)
                    assert got.dtype == np.int32 and got.shape == want.shape, (name, split_by)
                    np.testing.assert_array_equal(got, want, err_msg=f"{name} {split_by} T={time_steps}")
    # every call but the unsorted recording's in the two time modes
    assert counted == len(cases) * len(SPLIT_MODES) * 3 * 2 - 2 * 3 * 2


@pytest.mark.parametrize("fmt, bad, message", [
    ("dat", {"p": 2}, "polarity 2"),
    ("mat", {"p": 2}, "polarity 2"),
    ("npy", {"y": -1}, "y=-1, outside the sensor"),
    ("npz", {"t": -5}, "negative timestamp"),
])
def test_a_refused_event_gives_read_events_error_from_read_event_frames(tmp_path, fmt, bad, message):
    """The counter checks every event and declines a file with one ``read_events`` refuses: the error
    is then ``read_events``'s, word for word."""
    columns = columns_like(5, 200, DIRECT[fmt])
    for key, value in bad.items():
        columns[key] = np.asarray(columns[key])
        columns[key][150] = value
    path = write_columns(tmp_path, fmt, columns)
    with pytest.raises(EventFileError, match=message) as theirs:
        read_events(path)
    assert theirs.value.path == str(path)
    for split_by in ("number", "time", "time_bins"):
        with pytest.raises(EventFileError) as ours:
            read_event_frames(path, 4, split_by)
        assert str(ours.value) == str(theirs.value)


def test_without_the_compiled_counter_the_frames_are_the_same(tmp_path, monkeypatch):
    """No compiler (or no torch): the direct paths decline and the general path gives the frames."""
    from spikeformers.data.readers import counting

    paths = {fmt: write_columns(tmp_path / fmt, fmt, columns_like(6, 400, DIRECT[fmt])) for fmt in DIRECT
             if (tmp_path / fmt).mkdir() is None}
    compiled = {fmt: read_event_frames(path, 5, "time") for fmt, path in paths.items()}
    monkeypatch.setattr(counting, "_compiled", lambda: None)
    for fmt, path in paths.items():
        got = read_event_frames(path, 5, "time")
        np.testing.assert_array_equal(got, expected_frames(path, 5, "time"))
        np.testing.assert_array_equal(got, compiled[fmt])


def test_columns_of_any_integer_type_and_byte_order_are_counted_alike(tmp_path):
    """The counter reads the integer columns as stored (structured fields in place, any integer type);
    big-endian ones are converted first; an unsigned value beyond int64 is read_events' error."""
    columns = columns_like(7, 600, (128, 128))
    for order in ("<", ">"):
        array = np.zeros(600, dtype=[("p", "u1"), ("t", order + "u4"), ("y", order + "u2"), ("x", order + "i8")])
        for key in "txyp":
            array[key] = columns[key]
        path = write(tmp_path / f"{order == '<'}.npy", npy_bytes(array))
        for split_by in ("number", "time_bins"):
            np.testing.assert_array_equal(read_event_frames(path, 6, split_by), expected_frames(path, 6, split_by))
    huge = {**columns, "t": np.asarray(columns["t"], dtype=np.uint64)}
    huge["t"][-1] = 2**63 + 5
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key in "txyp":
            archive.writestr(f"{key}.npy", npy_bytes(np.asarray(huge[key], dtype=np.uint64)))
    with pytest.raises(EventFileError, match="beyond int64") as theirs:
        read_events(path)
    with pytest.raises(EventFileError) as ours:
        read_event_frames(path, 4, "number")
    assert str(ours.value) == str(theirs.value)
