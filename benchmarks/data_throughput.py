"""Reading and framing throughput: spikeformers vs SpikingJelly on the same AEDAT 2.0 files.

Writes synthetic CIFAR10-DVS-sized recordings (about 200k events each, DVS128
addresses, big-endian AEDAT 2.0 with a jAER header, as the originals) to a
temporary folder, then converts every file to ``[T, 2, 128, 128]`` frames
with both libraries, side by side in one process, alternating the order
in each round:

- spikeformers: ``read_events(path)`` then ``events_to_frames(events, T, sensor_size, split_by)``;
- SpikingJelly: ``cifar10_dvs._load_origin_data(path)`` (its CIFAR10-DVS
  AEDAT loader) then ``utils.integrate_events_by_fixed_frames_number`` (its
  integrator), the two steps its ``CIFAR10DVS`` data set runs to build frames.

A third column times ``sketch``: a fused decoder written here only to show
where the time can go (a suggestion for the readers and frames modules, not
library code). All three produce the same frames (checked for every file
before timing). A stage's time is the sum over the files of each file's
best of ``--rounds`` rounds (the least disturbed by other processes on a
shared machine); ratios are SpikingJelly's time over ours.

SpikingJelly needs ``torchvision``, and its ``spikingjelly.datasets``
package imports every data set module (h5py, torchaudio, ...). The two
modules measured here need only torchvision's pure-Python dataset helpers,
so this script imports ``spikingjelly.datasets.utils`` and
``spikingjelly.datasets.cifar10_dvs`` without running the package's
``__init__`` and, where torchvision's compiled ops cannot load against the
installed torch, without torchvision's fake-kernel registrations (which
nothing here uses). SpikingJelly's own code runs unmodified.

Run (SpikingJelly in a venv that also sees this project):

    python -m venv --system-site-packages /tmp/venv-sj-data
    /tmp/venv-sj-data/bin/pip install --no-deps spikingjelly loguru torchvision==<the one for your torch>
    /tmp/venv-sj-data/bin/python benchmarks/data_throughput.py --files 20 --rounds 7 --T 16 10 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import tempfile
import time
import types
from importlib.metadata import version
from pathlib import Path

import numpy as np

from spikeformers.data import events_to_frames, read_events

HEADER = (
    b"#!AER-DAT2.0\r\n"
    b"# This is a raw AE data file - do not edit\r\n"
    b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
    b"# Timestamps tick is 1 us\r\n"
    b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
)


def write_recording(path: Path, num_events: int, rng: np.random.Generator) -> None:
    """A DVS128 recording over about 1.3 s: random pixels and polarities, increasing timestamps."""
    x_raw = rng.integers(0, 128, num_events, dtype=np.uint32)
    y_raw = rng.integers(0, 128, num_events, dtype=np.uint32)
    p_raw = rng.integers(0, 2, num_events, dtype=np.uint32)
    address = (y_raw << 8) | (x_raw << 1) | p_raw
    timestamp = (np.sort(rng.integers(0, 1_300_000, num_events)) + 5_000_000).astype(np.uint32)
    body = np.empty((num_events, 2), dtype=">u4")
    body[:, 0], body[:, 1] = address, timestamp
    path.write_bytes(HEADER + body.tobytes())


def import_spikingjelly():
    """SpikingJelly's CIFAR10-DVS loader and frame integrator (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        for name in ("torchvision", "torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules.pop(name, None)
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
    try:
        import spikingjelly
    except ImportError:
        sys.exit("SpikingJelly is not installed here; see the module docstring for the venv to run this in")
    package = types.ModuleType("spikingjelly.datasets")
    package.__path__ = [str(Path(spikingjelly.__path__[0]) / "datasets")]
    sys.modules["spikingjelly.datasets"] = package
    from spikingjelly.datasets import cifar10_dvs, utils

    return cifar10_dvs._load_origin_data, utils.integrate_events_by_fixed_frames_number, version("spikingjelly")


def ours(path, time_steps, split_by):
    started = time.perf_counter()
    events, sensor_size = read_events(path)
    read = time.perf_counter()
    frames = events_to_frames(events, time_steps, sensor_size, split_by)
    return frames, read - started, time.perf_counter() - read


def theirs(path, time_steps, split_by, load, integrate):
    started = time.perf_counter()
    events = load(path)
    read = time.perf_counter()
    frames = integrate(events, split_by, time_steps, 128, 128)
    return frames, read - started, time.perf_counter() - read


def _sketch_lookup_table() -> np.ndarray:
    """Flat frame-pixel index ``(p*128 + y)*128 + x`` of every 16-bit DVS128 address, in
    SpikingJelly's orientation; -1 for external events (bit 15)."""
    address = np.arange(1 << 16)
    x, y, p = 127 - ((address >> 8) & 0x7F), 127 - ((address >> 1) & 0x7F), 1 - (address & 1)
    return np.where(address & 0x8000, -1, (p * 128 + y) * 128 + x).astype(np.int32)


SKETCH_TABLE = _sketch_lookup_table()


def sketch(path, time_steps, split_by):
    """A sketch of a fused AEDAT 2.0 -> frames path (benchmark code, not the library's):
    one table lookup turns each address into its frame pixel, so no per-field decoding,
    no structured event array, and one small bincount per frame. Same frames as both above."""
    started = time.perf_counter()
    data = Path(path).read_bytes()
    body = 0
    while data.startswith(b"#", body):
        body = data.index(b"\n", body) + 1
    words = np.frombuffer(data, dtype=">u4", offset=body).reshape(-1, 2)
    address = words[:, 0]
    if address.max() > 0xFFFF:
        raise ValueError(f"{path}: not a DVS128 recording")
    pixel = np.take(SKETCH_TABLE, address)  # np.take: a faster gather than fancy indexing
    timestamps = words[:, 1]
    if len(pixel) and pixel.min() < 0:  # external events: drop them
        kept = pixel >= 0
        pixel, timestamps = pixel[kept], timestamps[kept]
    read = time.perf_counter()
    count = len(pixel)
    if split_by == "number":
        starts = np.arange(time_steps) * (count // time_steps)
    else:  # 'time' (sorted timestamps, as events_to_frames requires)
        t = timestamps.astype(np.int64)
        window = (t[-1] - t[0]) // time_steps
        starts = np.searchsorted(t, t[0] + np.arange(time_steps) * window, "left")
    ends = np.append(starts[1:], count)
    frames = np.empty((time_steps, 2 * 128 * 128), dtype=np.int32)
    for j in range(time_steps):
        frames[j] = np.bincount(pixel[starts[j]:ends[j]], minlength=2 * 128 * 128)
    return frames.reshape(time_steps, 2, 128, 128), read - started, time.perf_counter() - read


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--events", type=int, default=200_000, help="events per recording")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--T", type=int, nargs="+", default=[16, 10])
    parser.add_argument("--split-by", nargs="+", default=["number", "time"])
    parser.add_argument("--profile", action="store_true", help="also profile this project's path")
    args = parser.parse_args()

    load, integrate, sj_version = import_spikingjelly()
    with open("/proc/loadavg") as handle:
        load_before = handle.read().split()[:3]
    print(f"python {platform.python_version()}, numpy {np.__version__}, spikingjelly {sj_version}, "
          f"cpus {os.cpu_count()}, load average before: {' '.join(load_before)}")

    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        paths = [Path(folder) / f"cifar10_synthetic_{i}.aedat" for i in range(args.files)]
        for path in paths:
            write_recording(path, args.events, rng)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.files} AEDAT 2.0 files, {args.events} events each ({megabytes:.1f} MB), "
              f"best of {args.rounds} rounds\n")

        print("| T | split_by | stage | spikeformers Mevents/s | SpikingJelly Mevents/s | "
              "spikeformers samples/s | SpikingJelly samples/s | ratio (SJ time / ours) | "
              "ratio of the fused sketch |")
        print("|" + "---|" * 9)
        for time_steps in args.T:
            for split_by in args.split_by:
                paths_by = {
                    "ours": lambda path: ours(path, time_steps, split_by),
                    "theirs": lambda path: theirs(path, time_steps, split_by, load, integrate),
                    "sketch": lambda path: sketch(path, time_steps, split_by),
                }
                for path in paths:  # same frames before any timing
                    reference = paths_by["theirs"](path)[0]
                    for who in ("ours", "sketch"):
                        if not np.array_equal(paths_by[who](path)[0], reference):
                            sys.exit(f"{who}: frames differ for {path.name}, T={time_steps}, split_by={split_by}")
                # Per file and stage, the best of the rounds; the three paths run back to back
                # on each file (order alternating), so they see the same load from other processes.
                fastest = {who: np.full((len(paths), 2), np.inf) for who in paths_by}
                for round_index in range(args.rounds):
                    order = list(paths_by) if round_index % 2 == 0 else list(reversed(paths_by))
                    for index, path in enumerate(paths):
                        for who in order:
                            _, read_s, frame_s = paths_by[who](path)
                            fastest[who][index] = np.minimum(fastest[who][index], (read_s, frame_s))
                best = {who: times.sum(0) for who, times in fastest.items()}
                for stage, index in {"read": 0, "frames": 1}.items():
                    _row(time_steps, split_by, stage, best["ours"][index], best["theirs"][index],
                         best["sketch"][index], args)
                _row(time_steps, split_by, "read + frames", sum(best["ours"]), sum(best["theirs"]),
                     sum(best["sketch"]), args)

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for path in paths:
                ours(path, args.T[0], args.split_by[0])
            profiler.disable()
            print(f"\nprofile of this project's path (T={args.T[0]}, split_by={args.split_by[0]}), "
                  f"top functions by own time:")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)

    with open("/proc/loadavg") as handle:
        print("load average after:", " ".join(handle.read().split()[:3]))


def _row(time_steps, split_by, stage, ours_s, theirs_s, sketch_s, args):
    events = args.files * args.events
    print(f"| {time_steps} | {split_by} | {stage} | {events / ours_s / 1e6:.1f} | {events / theirs_s / 1e6:.1f} | "
          f"{args.files / ours_s:,.1f} | {args.files / theirs_s:,.1f} | **{theirs_s / ours_s:.2f}x** | "
          f"{theirs_s / sketch_s:.2f}x |")


if __name__ == "__main__":
    main()
