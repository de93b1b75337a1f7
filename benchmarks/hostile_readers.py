"""Hostile event files against every reader: fuzzed recordings, files rewritten while read.

Not a test (``tests/test_hostile_readers.py`` and ``tests/test_readers_fuzz.py``
pin the behaviour); a probe to rerun after a change to a reader, counting per
format the cases that read, that raised an ``EventFileError`` naming the file,
that found no member (a zip whose damage hides the member: a
``FileNotFoundError``, as for a missing file), and anything else: another
exception, a hang, or a crash of the process. The last three must be 0.

Cases, deterministic from ``--seed``, for each format from small valid files
(the writers of ``tests/``), plus the real AEDAT 4 sample where it is present:

- every truncation (each byte offset),
- every single-bit flip (each bit; a sample of them for the real AEDAT 4 file),
- random multi-byte corruptions, and random bytes behind a valid header,
- huge declared sizes: each size or count field of a header (AEDAT 3.1 packet
  fields, AEDAT 4 IOHeader and packet sizes, Zstd blocks, ``.npy`` shapes, zip
  member sizes, MAT element and sub-element sizes and dimensions, DAT declared
  sensor sizes) set to extreme values, far coordinates (the sensor inferred
  from the data), Zstd and zlib (MAT) decompression bombs.

Each case is written to a file and read with ``read_events`` (detecting the
format), and also with ``read_event_frames(path, 4)`` ('number' and 'time') for the formats with a C++ path of their own (AEDAT 2.0,
DAT, MAT, ``.npy``, ``.npz``) and ``read_frames_npz`` for frame caches; a zip case is a class zip of
CIFAR10-DVS read through ``case.zip/<member>``. They run in worker processes under a
memory cap (``RLIMIT_AS``, ``--memory-cap-gib``) and a per-case alarm; a worker
that dies is counted as a crash of the case it was reading and replaced.

``--race-runs N``: N runs of a reader process reading a 1.6 MB AEDAT 2.0
recording 100 times (``read_events`` and ``read_event_frames``) while another
process truncates and rewrites it; a run that ends by a signal is a crash.

``--timing``: ``read_event_frames`` (the file's bytes read) against the same
call on a memory map of the file (the reader's way before the SIGBUS fix), on
CIFAR10-DVS-sized AEDAT 2.0 files, alternating, median of ``--rounds``; wall
and this thread's CPU time (which leaves out the time other processes hold the
cores of a shared machine).

    python benchmarks/hostile_readers.py                       # the counts, a few minutes on 2 cores
    python benchmarks/hostile_readers.py --race-runs 20 --timing
"""

from __future__ import annotations

import argparse
import collections
import json
import mmap
import os
import platform
import random
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FORMATS = ("AEDAT 2.0", "AEDAT 3.1", "AEDAT 4", "N-MNIST binary", "npz", "zip member", "DAT", "MAT", "npy")
# Formats whose read_event_frames takes a path of its own (C++ counting): read that way as well.
DIRECT_FRAMES = ("AEDAT 2.0", "zip member", "DAT", "MAT", "npy", "npz")
# "member not found": a zip whose damage hides the member read, a FileNotFoundError as for a missing file
OUTCOMES = ("read", "EventFileError", "member not found", "other exception", "hang", "crash")
ZIP_MEMBER = "cat/cifar10_cat_0.aedat"
CASE_SECONDS = 20  # a reader that takes longer on a file of a few KB hangs


# --------------------------------------------------------------------------- the cases

def truncations(data):
    return [data[:cut] for cut in range(len(data))]


def bit_flips(data, positions=None):
    flips = []
    for position in positions if positions is not None else range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            flips.append(bytes(damaged))
    return flips


def corruptions(data, rng, count, start=0):
    cases = []
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            damaged[rng.randrange(start, len(damaged))] = rng.randrange(256)
        cases.append(bytes(damaged))
    return cases


def random_tails(header, rng, count, size=200):
    return [header + rng.randbytes(rng.randint(0, size)) for _ in range(count)]


EXTREMES_32 = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0, 0x40000000, 2**31 - 28)


def with_u32(data, offset, values=EXTREMES_32, fmt="<I"):
    cases = []
    for value in values:
        damaged = bytearray(data)
        struct.pack_into(fmt, damaged, offset, value & 0xFFFFFFFF if fmt == "<I" else value)
        cases.append(bytes(damaged))
    return cases


def aedat2_cases(rng):
    from test_readers import cifar_like_aedat2

    data, _ = cifar_like_aedat2(count=60)
    header = data[:data.index(b"DVS128") + len(b"DVS128\r\n")]
    cases = truncations(data) + bit_flips(data) + corruptions(data, rng, 3000)
    cases += random_tails(header, rng, 2000, 400)
    return [(case, ".aedat") for case in cases]


def aedat3_cases(rng):
    from test_readers import gesture_like_aedat3

    data, _ = gesture_like_aedat3()
    header_end = data.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    cases = truncations(data) + bit_flips(data) + corruptions(data, rng, 3000)
    cases += random_tails(data[:header_end], rng, 2000, 300)
    position = header_end
    while position < len(data):  # every packet's size and count fields at extreme values
        for field in (4, 16, 20, 24):  # eventSize, eventCapacity, eventNumber, eventValid
            cases += with_u32(data, position + field)
        size, capacity = struct.unpack_from("<ii", data, position + 4)[0], struct.unpack_from("<i", data, position + 16)[0]
        position += 28 + size * capacity
    far = (32767 << 17) | (32767 << 2) | 3  # an event at x = y = 32767, no #Source line
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", far, 5)
    cases.append(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + packet)
    return [(case, ".aedat") for case in cases]


def aedat4_cases(rng):
    from test_hostile_readers import (aedat4_bytes, aedat4_event_packet, first_packet_offset, small_aedat4,
                                      zstd_rle_frame)
    from test_readers import TESTDATA

    plain, _ = small_aedat4(0)
    zstd, _ = small_aedat4(3)
    cases = truncations(plain) + bit_flips(plain) + corruptions(plain, rng, 1500, start=14)
    first = first_packet_offset(zstd)
    cases += truncations(zstd)[first:] + bit_flips(zstd, range(first, len(zstd))) + corruptions(zstd, rng, 1500, first)
    for data in (plain, zstd):
        position = first_packet_offset(data)
        cases += with_u32(data, len(b"#!AER-DAT4.0\r\n"))  # the IOHeader's size
        while position < len(data):
            cases += with_u32(data, position + 4)  # the packet's size
            cases += with_u32(data, position, (1, 7, 0xFFFFFFFF))  # its stream id
            position += 8 + struct.unpack_from("<I", data, position + 4)[0]
    for blocks in (1, 100, 8000, 40000):  # Zstd bombs, 4 bytes a block inflating to 128 KiB
        cases.append(aedat4_bytes([(0, zstd_rle_frame(blocks))], compression=3))
    for side in (2049, 32767, 65535):  # huge declared sensors
        cases.append(aedat4_bytes([(0, aedat4_event_packet([(5, 1, 2, 1)]))], streams={0: ("EVTS", side, side)}))
    sample = Path(TESTDATA) / "sample.aedat4"
    if sample.exists():  # the real file: costlier to decode, so sampled
        data = sample.read_bytes()
        cuts = sorted(set(range(0, 3000, 7)) | set(rng.sample(range(3000, len(data)), 150)))
        cases += [data[:cut] for cut in cuts]
        cases += bit_flips(data, rng.sample(range(14, 2400), 60))
        position = first_packet_offset(data)
        while position < 945_243:  # each packet's size field at two extreme values
            cases += with_u32(data, position + 4, (0xFFFFFFF0, 0x7FFFFFFF))
            position += 8 + struct.unpack_from("<I", data, position + 4)[0]
    return [(case, ".aedat4") for case in cases]


def nmnist_cases(rng):
    from test_readers import nmnist_like

    data, _ = nmnist_like(count=80)
    cases = truncations(data) + bit_flips(data) + corruptions(data, rng, 3000)
    cases += [rng.randbytes(rng.randint(0, 400)) for _ in range(2000)]
    return [(case, ".bin") for case in cases]


def npz_bytes(arrays, compressed=False):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npz"
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
        return path.read_bytes()


def npy_with_shape(shape, payload=8):
    """A one-member npz whose ``t.npy`` header declares ``shape`` of int64 over ``payload`` bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.npz"
        with zipfile.ZipFile(path, "w") as archive, archive.open("t.npy", "w") as member:
            header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.int64))
            header["shape"] = shape
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(payload))
        return path.read_bytes()


def npz_cases(rng):
    gen = np.random.default_rng(0)
    events = npz_bytes(dict(t=np.arange(6) * 10, x=gen.integers(0, 128, 6), y=gen.integers(0, 128, 6),
                            p=gen.integers(0, 2, 6)))
    frames = npz_bytes(dict(frames=gen.integers(0, 3, (2, 2, 4, 4)).astype(np.float32)), compressed=True)
    cases = []
    for data, kind in ((events, ".npz"), (frames, ".frames.npz")):
        damaged = truncations(data) + bit_flips(data) + corruptions(data, rng, 1500)
        central = data.index(b"PK\x01\x02")
        for offset in (18, 22):  # the first local header's compressed and uncompressed sizes
            damaged += with_u32(data, offset)
        for offset in (20, 24, 42):  # the first central entry's sizes and local header offset
            damaged += with_u32(data, central + offset)
        cases += [(case, kind) for case in damaged]
    for shape in ((2**31,), (2**40,), (2**62,), (2**31, 2**31), (0, 2**62), (-1,)):
        try:
            cases.append((npy_with_shape(shape), ".npz"))
        except (ValueError, OverflowError):
            pass
    for far in (2048, 4096, 32767):
        cases.append((npz_bytes(dict(t=[1, 2], x=[0, far], y=[0, far], p=[0, 1])), ".npz"))
    return cases


def zip_cases(rng):
    """A class zip as CIFAR10-DVS publishes them (deflated), read through the path ``case.zip/<member>``."""
    from test_readers import cifar_like_aedat2

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cat.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(ZIP_MEMBER, cifar_like_aedat2(count=40)[0])
        data = path.read_bytes()
    cases = truncations(data) + bit_flips(data) + corruptions(data, rng, 1500)
    central = data.index(b"PK\x01\x02")
    for offset in (18, 22):  # the local header's compressed and uncompressed sizes
        cases += with_u32(data, offset)
    for offset in (20, 24, 42):  # the central entry's sizes and local header offset
        cases += with_u32(data, central + offset)
    return [(case, ".zip") for case in cases]


def dat_cases(rng):
    """N-CARS-like Prophesee DAT: a header with and without a declared size; far coordinates."""
    from test_readers_dat_mat_npy import DAT_HEADER, dat_bytes, ncars_like

    cases = []
    for header, seed, count in ((DAT_HEADER, 0, 60), (DAT_HEADER + (b"% Height 100", b"% Width 120"), 1, 40)):
        data = dat_bytes(ncars_like(seed=seed, count=count), header=header)
        cases += truncations(data) + bit_flips(data) + corruptions(data, rng, 1500)
        cases += random_tails(data[:len(data) - 8 * count], rng, 1000, 400)  # header, type and size bytes
    for side in (2049, 8000, 16383):
        cases.append(dat_bytes([(5, side, side, 1)]))
        cases.append(dat_bytes([(5, 1, 1, 1)], header=DAT_HEADER + (f"% Height {side}".encode(),
                                                                      f"% Width {side}".encode())))
    return [(case, ".dat") for case in cases]


def mat_cases(rng):
    """ASL-DVS-like MAT-files, plain and compressed, both byte orders; every element and sub-element
    size at extreme values; a decompression bomb."""
    from test_readers_dat_mat_npy import asl_like, mat_bytes, mat_compressed, mat_header, mat_matrix

    columns = asl_like(count=12)
    plain, packed, big = mat_bytes(columns), mat_bytes(columns, compress=True), mat_bytes(columns, ">")
    cases = []
    for data, fmt in ((plain, "<I"), (packed, "<I"), (big, ">I")):
        cases += truncations(data) + bit_flips(data) + corruptions(data, rng, 1500, start=128)
        cases += random_tails(data[:128], rng, 800, 300)
        position = 128
        while position + 8 <= len(data):  # each top-level element's size
            cases += with_u32(data, position + 4, fmt=fmt)
            size = struct.unpack_from(fmt, data, position + 4)[0]
            if data is not packed:  # and each sub-element's tag of an uncompressed matrix
                for offset in range(position + 8, position + 8 + size, 8):
                    cases += with_u32(data, offset + 4, (0xFFFFFFF0, 0x7FFFFFFF), fmt=fmt)
            position += 8 + size + (-size % 8 if data is not packed else 0)
    zeros = np.zeros(1 << 21)  # 16 MiB of doubles compressing to a few KiB
    cases.append(mat_header() + mat_compressed(mat_matrix("ts", zeros)))
    for dims in ((2**31 - 1, 1), (65536, 65536), (-1, 1)):
        cases.append(mat_header() + mat_matrix("ts", [1.0], dims=dims))
    return [(case, ".mat") for case in cases]


def npy_cases(rng):
    """DVS-Lip-like structured .npy files; declared shapes at extreme values."""
    from test_readers_dat_mat_npy import lip_like, npy_bytes

    data = npy_bytes(lip_like(count=30))
    header_end = data.index(b"\n") + 1
    cases = truncations(data) + bit_flips(data) + corruptions(data, rng, 2000)
    cases += random_tails(data[:header_end], rng, 1000, 300)
    for shape in ((2**31,), (2**40,), (2**62,), (2**31, 2**31), (0, 2**62)):
        cases.append(npy_bytes(lip_like(count=2), shape=shape))
    return [(case, ".npy") for case in cases]


GENERATORS = {"AEDAT 2.0": aedat2_cases, "AEDAT 3.1": aedat3_cases, "AEDAT 4": aedat4_cases,
              "N-MNIST binary": nmnist_cases, "npz": npz_cases, "zip member": zip_cases,
              "DAT": dat_cases, "MAT": mat_cases, "npy": npy_cases}


def all_cases(seed):
    cases = []
    for name in FORMATS:
        cases += [(name, data, suffix) for data, suffix in GENERATORS[name](random.Random(f"{seed}-{name}"))]
    return cases


# --------------------------------------------------------------------------- the worker

def worker(args):
    """Read the cases ``args.first``.. in order; one JSON line per case on stdout, a
    ``start`` line before each, so that the parent knows which case a crash hit."""
    cap = int(args.memory_cap_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from spikeformers.data.readers import EventFileError, read_event_frames, read_events, read_frames_npz

    def alarm(signum, frame):
        raise TimeoutError("the case hung")

    signal.signal(signal.SIGALRM, alarm)
    cases = all_cases(args.seed)
    folder = tempfile.mkdtemp(prefix="hostile_readers_")
    for index in range(args.first, min(args.last, len(cases))):
        name, data, suffix = cases[index]
        path = os.path.join(folder, f"case{suffix}")
        with open(path, "wb") as handle:
            handle.write(data)
        target = os.path.join(path, ZIP_MEMBER) if suffix == ".zip" else path
        calls = [lambda: read_frames_npz(path)] if suffix == ".frames.npz" else [lambda: read_events(target)]
        if name in DIRECT_FRAMES and suffix != ".frames.npz":
            calls.append(lambda: read_event_frames(target, 4, "number"))
            calls.append(lambda: read_event_frames(target, 4, "time"))
        print(json.dumps({"start": index}), flush=True)
        outcomes = []
        for call in calls:
            signal.alarm(CASE_SECONDS)
            try:
                call()
                outcomes.append("read")
            except EventFileError as error:
                named = error.path in (target, path)  # the member, or its archive
                outcomes.append("EventFileError" if named else f"other exception: unnamed {error}")
            except FileNotFoundError as error:
                outcomes.append("member not found" if suffix == ".zip" else f"other exception: {error}")
            except TimeoutError:
                outcomes.append("hang")
            except Exception as error:  # noqa: BLE001 (counted, that is the point)
                outcomes.append(f"other exception: {type(error).__name__}: {str(error)[:200]}")
            finally:
                signal.alarm(0)
        worst = max(outcomes, key=lambda o: OUTCOMES.index(o.split(":")[0]))
        print(json.dumps({"case": index, "outcome": worst}), flush=True)
        os.remove(path)
    os.rmdir(folder)


def run_cases(args):
    """``(outcome per case index, problems outside any case)``, from worker processes."""
    from spikeformers.data.readers import aedat2

    from spikeformers.data.readers import counting

    aedat2._compiled_counter()  # build the C++ counters here, not under the workers' memory cap
    counting._compiled()
    total = len(all_cases(args.seed))
    results, details = {}, []
    chunk = (total + args.workers - 1) // args.workers
    pending = collections.deque((start, min(start + chunk, total)) for start in range(0, total, chunk))
    running = {}
    with tempfile.TemporaryDirectory() as folder:
        while pending or running:
            while pending and len(running) < args.workers:
                first, last = pending.popleft()
                log = Path(folder) / f"{first}.jsonl"
                command = [sys.executable, __file__, "--worker", "--first", str(first), "--last", str(last),
                           "--seed", str(args.seed), "--memory-cap-gib", str(args.memory_cap_gib)]
                with open(log, "w") as handle:
                    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.DEVNULL)
                running[process] = (first, last, log)
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                first, last, log = running.pop(process)
                started = None
                for line in log.read_text().splitlines():
                    record = json.loads(line)
                    if "start" in record:
                        started = record["start"]
                    else:
                        results[record["case"]] = record["outcome"]
                        started = None
                if started is not None:  # died inside a case: a crash; go on after it
                    results[started] = f"crash: return code {process.returncode}"
                    if started + 1 < last:
                        pending.append((started + 1, last))
                elif process.returncode != 0:
                    details.append(f"the worker for cases {first}..{last - 1} exited with {process.returncode} "
                                   "outside any case")
    return results, details


def tabulate(results, seed):
    cases = all_cases(seed)
    counts = {name: collections.Counter() for name in FORMATS}
    examples = collections.defaultdict(list)
    for index, outcome in results.items():
        name = cases[index][0]
        kind = outcome.split(":")[0]
        counts[name][kind] += 1
        if kind not in ("read", "EventFileError", "member not found") and len(examples[name]) < 5:
            examples[name].append(f"case {index}: {outcome}")
    print("| format | cases | EventFileError | read | member not found | other exception | hang | crash |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total = collections.Counter()
    for name in FORMATS:
        row = counts[name]
        total.update(row)
        print(f"| {name} | {sum(row.values()):,} | {row['EventFileError']:,} | {row['read']:,} | "
              f"{row['member not found']:,} | {row['other exception']} | {row['hang']} | {row['crash']} |")
    print(f"| all | {sum(total.values()):,} | {total['EventFileError']:,} | {total['read']:,} | "
          f"{total['member not found']:,} | {total['other exception']} | {total['hang']} | {total['crash']} |")
    for name, lines in examples.items():
        print(f"\n{name}:\n" + "\n".join(f"- {line}" for line in lines))
    return total


# --------------------------------------------------------------------------- races and timing

RACE_READER = """
import sys
from spikeformers.data.readers import EventFileError, read_event_frames, read_events
path = sys.argv[1]
counts = {"read": 0, "EventFileError": 0}
for i in range(100):
    try:
        read_events(path) if i % 2 else read_event_frames(path, 16, "number")
        counts["read"] += 1
    except EventFileError:
        counts["EventFileError"] += 1
print(counts)
"""


def race_runs(runs):
    from test_hostile_readers import REWRITER

    from data_throughput import write_recording

    crashes, outcomes = 0, collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rewritten.aedat"
        for run in range(runs):
            write_recording(path, 200_000, np.random.default_rng(run))
            rewriter = subprocess.Popen([sys.executable, "-c", REWRITER, str(path)], stdin=subprocess.PIPE)
            done = subprocess.run([sys.executable, "-c", RACE_READER, str(path)], capture_output=True, text=True)
            rewriter.stdin.close()
            rewriter.wait()
            if done.returncode < 0:
                crashes += 1
            elif done.returncode == 0:
                outcomes.update(eval(done.stdout.strip().splitlines()[-1]))  # the dict printed above
            else:
                print(done.stderr[-2000:])
    print(f"{runs} race runs of 100 reads each: {crashes} crashed; of the reads in the others, "
          f"{outcomes['read']} read and {outcomes['EventFileError']} raised EventFileError")
    return crashes


def timing(rounds, files, events):
    from spikeformers.data.readers import aedat2, read_event_frames

    from data_throughput import write_recording

    def mapped(path, time_steps, split_by):  # the reader before the fix: the file's memory map
        with open(path, "rb") as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return aedat2.read_aedat2_frames(path, data, time_steps, split_by)

    assert aedat2._compiled_counter() is not None, "the C++ counter did not build"
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        paths = [Path(folder) / f"cifar10_synthetic_{i}.aedat" for i in range(files)]
        for path in paths:
            write_recording(path, events, rng)
        print(f"\n{files} AEDAT 2.0 files of {events:,} events ({paths[0].stat().st_size / 1e6:.1f} MB each), "
              f"median of {rounds} rounds per file, summed; the two ways alternate within each round\n")
        print("| T | split_by | read: ms per file | map: ms per file | read / map | read: CPU ms | map: CPU ms | "
              "read / map, CPU |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|")
        for time_steps, split_by in ((16, "number"), (16, "time"), (10, "number")):
            ways = {"read": lambda p: read_event_frames(p, time_steps, split_by),
                    "map": lambda p: mapped(p, time_steps, split_by)}
            for path in paths:
                assert np.array_equal(ways["read"](path), ways["map"](path))
            # seconds[way][round, file] = (wall, CPU time of this thread)
            seconds = {way: np.zeros((rounds, files, 2)) for way in ways}
            for round_index in range(rounds):
                order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
                for index, path in enumerate(paths):
                    for way in order:
                        wall, cpu = time.perf_counter(), time.thread_time()
                        ways[way](path)
                        seconds[way][round_index, index] = time.perf_counter() - wall, time.thread_time() - cpu
            (read_wall, read_cpu), (map_wall, map_cpu) = (
                np.median(seconds[way], axis=0).sum(axis=0) / files * 1e3 for way in ("read", "map"))
            print(f"| {time_steps} | {split_by} | {read_wall:.3f} | {map_wall:.3f} | {read_wall / map_wall:.2f} | "
                  f"{read_cpu:.3f} | {map_cpu:.3f} | {read_cpu / map_cpu:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-cap-gib", type=float, default=1.5)
    parser.add_argument("--race-runs", type=int, default=0)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--no-fuzz", action="store_true", help="only the race runs and the timing")
    parser.add_argument("--release-memory", action="store_true",
                        help="time with glibc's fixed mmap threshold (spikeformers train --release-memory), "
                             "under which every fresh buffer of the read faults in anew")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    print(f"python {platform.python_version()}, numpy {np.__version__}, aedat {installed('aedat')}, "
          f"cpus {os.cpu_count()}, load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    failures = 0
    if not args.no_fuzz:
        started = time.perf_counter()
        results, details = run_cases(args)
        print(f"{len(results):,} cases in {time.perf_counter() - started:.0f} s, {args.workers} worker processes "
              f"under a {args.memory_cap_gib} GiB address-space cap\n")
        total = tabulate(results, args.seed)
        for line in details:
            print(line)
        failures += total["other exception"] + total["hang"] + total["crash"] + len(details)
    if args.race_runs:
        print()
        failures += race_runs(args.race_runs)
    if args.timing:
        if args.release_memory:
            from spikeformers.memory import return_freed_memory_to_os

            print(f"\nreturn_freed_memory_to_os(): {return_freed_memory_to_os()}")
        timing(args.rounds, args.files, args.events)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
