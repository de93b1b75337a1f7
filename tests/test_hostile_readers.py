"""Hostile event files: a reader never crashes the process, never allocates what a
tiny file merely declares, and reads zipped data sets without trusting the zip.

The crash and memory tests run the reader in a fresh interpreter, so that a
SIGBUS shows as a negative return code and an abort under a memory cap
(``RLIMIT_AS``) as one too, rather than taking the test run down; the child
reports its outcome as one JSON line.

The AEDAT 4 writer here produces files the ``aedat`` package reads (checked
below): an IOHeader FlatBuffer, then packets of one stream id and size each,
holding size-prefixed EventPacket FlatBuffers, stored as they are or wrapped
in Zstd frames of raw blocks (valid Zstd, no compressor needed).
"""

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_datasets_cifar10_dvs import aedat2_recording, make_tree  # noqa: E402
from test_readers import as_tuples, cifar_like_aedat2, real_sample  # noqa: E402

import spikeformers  # noqa: E402
from spikeformers.data.datasets.cifar10_dvs import CIFAR10DVS, CLASSES  # noqa: E402
from spikeformers.data.readers import (  # noqa: E402
    MAX_SENSOR_SIDE,
    EventFileError,
    read_event_frames,
    read_events,
    read_frames_npz,
)
from spikeformers.data.readers.archive import DEFLATE_MAX_RATIO, list_members  # noqa: E402

MEMORY_CAP = 1536 * 2**20  # far below what the hostile files declare, well above an interpreter with torch
# Generous: the child imports torch (a second or two), and the first run on a machine compiles the
# AEDAT 2.0 counter (20-60 s); the tests measure outcomes, never time.
CHILD_TIMEOUT = 600

# --------------------------------------------------------------------------- AEDAT 4 writer

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


def aedat4_description(streams):
    """The IOHeader's XML: ``streams`` maps stream id -> (type identifier, width, height)."""
    nodes = []
    for stream_id, (identifier, width, height) in streams.items():
        info = (f'<node name="info" path="/mainloop/Recorder/outInfo/{stream_id}/info/">'
                f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
                f"</node>") if identifier in ("EVTS", "FRME") else ""
        nodes.append(f'<node name="{stream_id}" path="/mainloop/Recorder/outInfo/{stream_id}/">'
                     f'<attr key="typeIdentifier" type="string">{identifier}</attr>{info}</node>')
    return ('<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
            + "".join(nodes) + "</node></dv>").encode()


def aedat4_ioheader(compression, data_table_position, description):
    """A FlatBuffer table {compression: int32, dataTablePosition: int64, description: string}."""
    buffer = struct.pack("<I", 24) + b"IOHE"  # root table at 24, file identifier
    buffer += struct.pack("<5H", 10, 20, 4, 8, 16) + bytes(6)  # vtable at 8: its size, the table's, 3 fields
    buffer += struct.pack("<iiqI", 24 - 8, compression, data_table_position, 4)  # the table; string at 44
    buffer += struct.pack("<I", len(description)) + description + b"\0"
    return buffer + bytes(-len(buffer) % 4)


def aedat4_event_packet(events):
    """A size-prefixed EventPacket FlatBuffer of ``(t, x, y, on)`` events (16-byte structs)."""
    body = struct.pack("<I", 16) + b"EVTS" + struct.pack("<3H", 6, 8, 4) + bytes(2)  # root at 20, vtable at 12
    body += struct.pack("<iII", 8, 4, len(events))  # the table; its vector at 28, elements 8-aligned at 32
    body += b"".join(struct.pack("<qhhB3x", t, x, y, on) for t, x, y, on in events)
    return struct.pack("<I", len(body)) + body


def zstd_raw_frame(data):
    """``data`` as a valid Zstd frame of raw (stored) blocks, with its content size."""
    frame = struct.pack("<IBI", 0xFD2FB528, 0xA0, len(data))  # single segment, 4-byte content size
    blocks = [data[i:i + 128 * 1024] for i in range(0, len(data), 128 * 1024)] or [b""]
    for i, block in enumerate(blocks):
        frame += struct.pack("<I", (i == len(blocks) - 1) | (len(block) << 3))[:3] + block
    return frame


def zstd_rle_frame(blocks, byte=0):
    """A Zstd frame of ``blocks`` RLE blocks of 128 KiB each: 4 bytes a block inflate to 128 KiB."""
    frame = struct.pack("<IBB", 0xFD2FB528, 0x00, (17 - 10) << 3)  # no content size, a 128 KiB window
    for i in range(blocks):
        frame += struct.pack("<I", (i == blocks - 1) | (1 << 1) | ((128 * 1024) << 3))[:3] + bytes([byte])
    return frame


def aedat4_bytes(packets, streams=None, compression=0, data_table_position=-1):
    """A file of ``(stream id, packet bytes)`` packets (already compressed when ``compression``)."""
    streams = streams or {0: ("EVTS", 320, 240)}
    header = aedat4_ioheader(compression, data_table_position, aedat4_description(streams))
    data = AEDAT4_MAGIC + struct.pack("<I", len(header)) + header
    return data + b"".join(struct.pack("<iI", stream_id, len(packet)) + packet for stream_id, packet in packets)


def small_aedat4(compression=0, count=40, seed=0):
    """Two event packets of random events (Zstd: raw-block frames); the expected tuples."""
    rng = np.random.default_rng(seed)
    events = [(1_000 + 7 * i, int(rng.integers(0, 320)), int(rng.integers(0, 240)), int(rng.integers(0, 2)))
              for i in range(count)]
    wrap = zstd_raw_frame if compression == 3 else (lambda packet: packet)
    half = count // 2
    packets = [(0, wrap(aedat4_event_packet(events[:half]))), (0, wrap(aedat4_event_packet(events[half:])))]
    return aedat4_bytes(packets, compression=compression), [(t, x, y, on) for t, x, y, on in events]


def first_packet_offset(data):
    return len(AEDAT4_MAGIC) + 4 + struct.unpack_from("<I", data, len(AEDAT4_MAGIC))[0]


# --------------------------------------------------------------------------- running a reader apart

CHILD = """
import json, resource, sys
cap = {cap}
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from spikeformers.data.readers import EventFileError, read_event_frames, read_events
path = {path!r}
{setup}
outcomes = []
for call in ({calls},):
    try:
        result = call()
    except EventFileError as error:
        outcomes.append({{"outcome": "EventFileError", "path": error.path, "message": str(error)}})
    except BaseException as error:
        outcomes.append({{"outcome": type(error).__name__, "message": str(error)[:500]}})
    else:
        outcomes.append({{"outcome": "ok", "shape": list(getattr(result, "shape", None) or [len(result.events)])}})
# VmHWM, the peak of this process's own memory: ru_maxrss would carry over the parent's at fork
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"outcomes": outcomes, "peak_kib": peak}}))
"""


def run_reader(path, calls="lambda: read_events(path)", *, cap=MEMORY_CAP, setup=""):
    """Run ``calls`` (Python lambdas over ``path``) in a fresh interpreter; the
    completed process and its outcomes (None when it died)."""
    source = str(Path(spikeformers.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))
    code = CHILD.format(cap=cap or 0, path=str(path), setup=setup, calls=calls)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=CHILD_TIMEOUT)
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    return done, report


def assert_refused(path, calls, match):
    """Every call ends in an EventFileError naming ``path`` and matching ``match``, and the child exits."""
    done, report = run_reader(path, calls)
    assert done.returncode == 0, f"the reader died (return code {done.returncode}): {done.stderr[-2000:]}"
    for outcome in report["outcomes"]:
        assert outcome["outcome"] == "EventFileError", outcome
        assert outcome["path"] == str(path)
        assert match in outcome["message"], outcome["message"]
    return report


BOTH = "lambda: read_events(path), lambda: read_event_frames(path, 16, 'number')"

# --------------------------------------------------------------------------- 1. files that shrink while read

# Truncates the file to its header and three events just before the AEDAT 2.0 header is parsed,
# that is after the reader has opened the file and taken its bytes (before the fix: mapped them).
SHRINK = """
import os
from spikeformers.data.readers import aedat2
original = aedat2.split_text_header
def shrink_then_parse(data, where, *args, **kwargs):
    header_end = bytes(data[:4096]).index(b"DVS128") + len(b"DVS128\\r\\n")
    os.truncate(where, header_end + 24)
    return original(data, where, *args, **kwargs)
aedat2.split_text_header = shrink_then_parse
"""


@pytest.mark.parametrize("reader", ["read_events(path)", "read_event_frames(path, 16, 'number')",
                                    "read_event_frames(path, 10, 'time')"])
def test_aedat2_file_truncated_while_it_is_read_never_crashes(tmp_path, reader):
    path = tmp_path / "shrinking.aedat"
    path.write_bytes(aedat2_recording(seed=3, count=200_000))
    done, report = run_reader(path, f"lambda: {reader}", cap=None, setup=SHRINK)
    assert done.returncode == 0, f"the reader died (return code {done.returncode}; -7 is SIGBUS)"
    assert os.path.getsize(path) < 200  # the hook did cut it
    (outcome,) = report["outcomes"]
    # the bytes that were there when the reader took them: every event, or a clear error
    assert outcome["outcome"] in ("ok", "EventFileError"), outcome
    if outcome["outcome"] == "EventFileError":
        assert outcome["path"] == str(path)


# Another process truncates the file to a third and writes it whole again, as fast as it can,
# while the child reads it; it stops when the child's end of its stdin pipe closes.
REWRITER = """
import select, sys
path = sys.argv[1]
data = open(path, "rb").read()
while not select.select([sys.stdin], [], [], 0)[0]:
    with open(path, "r+b") as handle:
        handle.truncate(len(data) // 3)
        handle.seek(0)
        handle.write(data)
"""
REWRITE = f"""
import subprocess, sys
rewriter = subprocess.Popen([sys.executable, "-c", {REWRITER!r}, path], stdin=subprocess.PIPE)
"""


def test_aedat2_file_rewritten_during_reads_never_crashes(tmp_path):
    path = tmp_path / "rewritten.aedat"
    path.write_bytes(aedat2_recording(seed=4, count=200_000))
    calls = ", ".join(["lambda: read_events(path)", "lambda: read_event_frames(path, 16, 'number')"] * 100)
    done, report = run_reader(path, calls, cap=None, setup=REWRITE)
    assert done.returncode == 0, f"the reader died (return code {done.returncode}; -7 is SIGBUS)"
    outcomes = [outcome["outcome"] for outcome in report["outcomes"]]
    assert set(outcomes) <= {"ok", "EventFileError"}, report["outcomes"]


# --------------------------------------------------------------------------- 2. tiny files, huge declarations

def test_tiny_npz_with_far_coordinates_is_refused_not_allocated(tmp_path):
    path = tmp_path / "far.npz"
    np.savez(path, t=np.array([1, 2]), x=np.array([0, 32767]), y=np.array([0, 32767]), p=np.array([0, 1]))
    assert path.stat().st_size < 2048
    report = assert_refused(path, BOTH, "implausible sensor size (H, W)=(32768, 32768)")
    assert "sensor_size=(H, W)" in report["outcomes"][0]["message"]


def test_tiny_aedat3_with_far_coordinates_is_refused_not_allocated(tmp_path):
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n"  # no #Source line: size from the data
    word = (32767 << 17) | (32767 << 2) | (1 << 1) | 1
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", word, 5)
    path = tmp_path / "far.aedat"
    path.write_bytes(header + packet)
    assert_refused(path, BOTH, "implausible sensor size (H, W)=(32768, 32768)")


def test_a_sensor_size_the_caller_gives_is_not_bounded(tmp_path):
    path = tmp_path / "wide.npz"
    np.savez(path, t=np.array([1]), x=np.array([MAX_SENSOR_SIDE]), y=np.array([3]), p=np.array([1]))
    with pytest.raises(EventFileError, match="implausible"):
        read_events(path)
    assert read_events(path, sensor_size=(4, MAX_SENSOR_SIDE + 1)).sensor_size == (4, MAX_SENSOR_SIDE + 1)


def test_aedat4_packet_declaring_4_gib_is_refused_before_the_aedat_package_allocates(tmp_path):
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    data = bytearray(small_aedat4()[0])
    struct.pack_into("<I", data, first_packet_offset(data) + 4, 0xFFFFFFF0)
    path = tmp_path / "huge_packet.aedat4"
    path.write_bytes(bytes(data))
    assert_refused(path, BOTH, "declares 4294967280 bytes")


def test_aedat4_event_stream_declaring_a_huge_sensor_is_refused(tmp_path):
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    packets = [(0, aedat4_event_packet([(5, 1, 2, 1)]))]
    path = tmp_path / "huge_sensor.aedat4"
    path.write_bytes(aedat4_bytes(packets, streams={0: ("EVTS", 65535, 65535)}))
    assert_refused(path, BOTH, "implausible sensor size (H, W)=(65535, 65535)")
    assert read_events(path, sensor_size=(4, 4)).sensor_size == (4, 4)  # the caller's size is used


def test_aedat4_zstd_bomb_is_refused_before_it_inflates(tmp_path):
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    path = tmp_path / "bomb.aedat4"
    path.write_bytes(aedat4_bytes([(0, zstd_rle_frame(8000))], compression=3))  # 32 KB -> 1 GiB
    report = assert_refused(path, "lambda: read_events(path)", "refused as a decompression bomb")
    assert report["peak_kib"] < 512 * 1024  # the interpreter with torch, not the GiB it would inflate to


def test_aedat4_zstd_bomb_of_small_packets_is_refused(tmp_path):
    """Each packet within the per-packet bound (15 MiB from 360 bytes), the event stream's
    packets together far beyond the file's size: refused before the package inflates one."""
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    path = tmp_path / "small_bombs.aedat4"
    path.write_bytes(aedat4_bytes([(0, zstd_rle_frame(120))] * 40, compression=3))
    with pytest.raises(EventFileError, match=f"from a file of {path.stat().st_size}: refused as a decompression"):
        read_events(path)


def test_npz_array_declaring_more_than_its_member_holds_is_refused(tmp_path):
    path = tmp_path / "declared.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.int64))
        header["shape"] = (2**31,)  # 16 GiB of int64 in a file of a few hundred bytes
        with archive.open("t.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(8))
    assert_refused(path, "lambda: read_events(path)", "array 't' declares shape (2147483648,)")


def test_npz_member_inflating_beyond_deflate_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, frames=np.zeros((4, 2, 64, 64), np.float32))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    compressed = struct.unpack_from("<I", data, central + 20)[0]
    struct.pack_into("<I", data, central + 24, DEFLATE_MAX_RATIO * compressed + 4096)  # declared size
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="beyond deflate's") as caught:
        read_frames_npz(path)
    assert caught.value.path == str(path)


# --------------------------------------------------------------------------- 3. CIFAR10-DVS as published: zips

def zip_class_folders(tree, root, *, folder_inside=True, junk=True, compression=zipfile.ZIP_DEFLATED):
    """``root/<class>.zip`` from ``tree/<class>/*.aedat``, as the published release."""
    root.mkdir(parents=True, exist_ok=True)
    for name in CLASSES:
        with zipfile.ZipFile(root / f"{name}.zip", "w", compression=compression) as archive:
            for file in sorted((tree / name).iterdir()):
                archive.write(file, f"{name}/{file.name}" if folder_inside else file.name)
            if junk:  # what a zip made on macOS carries beside the recordings
                archive.writestr(f"__MACOSX/{name}/._{name}_0.aedat", b"\x00\x05\x16\x07")
                archive.writestr(f"{name}/.DS_Store", b"junk")
    return root


@pytest.mark.parametrize("folder_inside", [True, False])
def test_cifar10_dvs_reads_the_published_class_zips(tmp_path, folder_inside):
    tree = make_tree(tmp_path / "folders", per_class=3)
    zips = zip_class_folders(tree, tmp_path / "zips", folder_inside=folder_inside)
    options = dict(train=True, time_steps=3, workers=0, expected_per_class=None)
    from_zips = CIFAR10DVS(zips, cache_dir=False, **options)
    from_folders = CIFAR10DVS(tree, cache_dir=False, **options)
    assert from_zips.source_kind == "aedat_zip"
    assert from_zips.split_files() == from_folders.split_files()
    assert from_zips.targets == from_folders.targets
    for i in range(len(from_zips)):
        assert np.array_equal(from_zips[i][0].numpy(), from_folders[i][0].numpy())
    cached = CIFAR10DVS(zips, **{**options, "workers": 2})  # a frame cache built in worker processes
    assert np.array_equal(cached[0][0].numpy(), from_folders[0][0].numpy())


def test_read_events_reads_a_member_through_a_zip_path(tmp_path):
    data, expected = cifar_like_aedat2(count=30)
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        archive = tmp_path / f"recordings_{compression}.zip"
        with zipfile.ZipFile(archive, "w", compression=compression) as handle:
            handle.writestr("cat/cifar10_cat_0.aedat", data)
        member = archive / "cat" / "cifar10_cat_0.aedat"
        assert as_tuples(read_events(member).events) == expected["spikingjelly"]
        assert read_event_frames(member, 2).sum() == len(expected["spikingjelly"])
        with pytest.raises(FileNotFoundError, match="no member"):
            read_events(archive / "cat" / "cifar10_cat_1.aedat")
    cut = tmp_path / "cut.zip"
    with zipfile.ZipFile(cut, "w") as handle:
        handle.writestr("a.aedat", data[:-3])
        handle.writestr("b.aedat4", small_aedat4()[0])
    with pytest.raises(EventFileError, match="truncated event record") as caught:
        read_events(cut / "a.aedat")
    assert caught.value.path == str(cut / "a.aedat")
    with pytest.raises(EventFileError, match="extract it from the zip archive first"):
        read_events(cut / "b.aedat4")


@pytest.mark.parametrize("name", ["../evil.aedat", "/etc/evil.aedat", "cat/../../evil.aedat",
                                  "C:/evil.aedat", "cat\\..\\evil.aedat"])
def test_zip_with_an_escaping_member_name_is_refused(tmp_path, name):
    archive = tmp_path / "cat.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("cat/cifar10_cat_0.aedat", aedat2_recording(0, 10))
        handle.writestr(zipfile.ZipInfo(name), aedat2_recording(1, 10))
    with pytest.raises(EventFileError, match="unsafe name") as caught:
        list_members(archive, (".aedat",))
    assert caught.value.path == str(archive)
    assert not (tmp_path.parent / "evil.aedat").exists()


def test_zip_members_whose_data_overlap_are_refused(tmp_path):
    archive = tmp_path / "cat.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("cat/cifar10_cat_0.aedat", aedat2_recording(0, 10))
    data = archive.read_bytes()
    central, end = data.index(b"PK\x01\x02"), data.index(b"PK\x05\x06")
    entry = data[central:end]
    copy = entry.replace(b"cifar10_cat_0", b"cifar10_cat_1")  # a second name for the same bytes
    count = struct.unpack_from("<H", data, end + 10)[0]
    tail = bytearray(data[end:])
    struct.pack_into("<HHI", tail, 8, count + 1, count + 1, len(entry) + len(copy))
    archive.write_bytes(data[:end] + copy + bytes(tail))
    with pytest.raises(EventFileError, match="(?i)overlap") as caught:
        list_members(archive, (".aedat",))
    assert caught.value.path == str(archive)


def test_zip_member_declaring_more_than_a_recording_is_refused_before_inflating(tmp_path):
    archive = tmp_path / "cat.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("cat/cifar10_cat_0.aedat", bytes(1_000_000))  # about 1 KB compressed
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 2**31)  # the size the central directory declares
    archive.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="declares 2147483648 bytes"):
        list_members(archive, (".aedat",))
    with pytest.raises(EventFileError, match="declares 2147483648 bytes"):
        read_events(archive / "cat" / "cifar10_cat_0.aedat")


def test_damaged_class_zip_names_the_zip(tmp_path):
    tree = make_tree(tmp_path / "folders", per_class=2)
    zips = zip_class_folders(tree, tmp_path / "zips", junk=False)
    (zips / "dog.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(EventFileError, match="cannot be read as a zip archive") as caught:
        CIFAR10DVS(zips, train=True, time_steps=2, workers=0, cache_dir=False, expected_per_class=None)
    assert caught.value.path == str(zips / "dog.zip")


# --------------------------------------------------------------------------- the AEDAT 4 writer itself

@pytest.mark.parametrize("compression", [0, 3])
def test_aedat4_writer_makes_files_the_reader_decodes(tmp_path, compression):
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    data, expected = small_aedat4(compression)
    path = tmp_path / "small.aedat4"
    path.write_bytes(data)
    recording = read_events(path)
    assert recording.sensor_size == (240, 320)
    assert as_tuples(recording.events) == expected


def test_real_aedat4_sample_passes_the_packet_checks():
    pytest.importorskip("aedat", reason="AEDAT 4 needs the optional aedat package")
    from spikeformers.data.readers.aedat4 import check_io_header, check_packets

    path = real_sample("sample.aedat4")
    compression, table_position, first = check_io_header(path)
    assert (compression, table_position) == (1, 945_243)  # LZ4, a data table at the end
    check_packets(path, compression, table_position, first)
