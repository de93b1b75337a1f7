"""Reading and framing throughput: spikeformers vs SpikingJelly on the same AEDAT 2.0 files.

Writes synthetic CIFAR10-DVS-sized recordings (about 200k events each, DVS128
addresses, big-endian AEDAT 2.0 with a jAER header, as the originals) to a
temporary folder, then converts every file to ``[T, 2, 128, 128]`` frames
four ways, side by side in one process:

- SpikingJelly: ``cifar10_dvs._load_origin_data(path)`` (its CIFAR10-DVS
  AEDAT loader) then ``utils.integrate_events_by_fixed_frames_number`` (its
  integrator), the two steps its ``CIFAR10DVS`` data set runs to build frames;
- spikeformers ``read_event_frames(path, T, split_by)``: the direct path
  (a C++ pass counting the file's records into frames, no event array), what
  a frame cache needs;
- the same with the C++ counter set aside: its NumPy fallback (addresses
  looked up as frame pixels, ``np.bincount`` per frame);
- spikeformers ``read_events(path)`` then ``events_to_frames(events, T,
  sensor_size, split_by)``: the general two-step path through the event array.

All four give the same frames (checked for every file and setting before
any timing). In each round each path converts every file, one path after the
other (as a data set conversion runs one path over many files: another
library's allocations in between would change what the allocator and the
caches hold), in an order that alternates between rounds, so the paths share
the load of other processes; a path's time for a file is its median over
``--rounds`` rounds, and the table sums those medians over the files. Ratios are
SpikingJelly's time over ours (above 1: we are faster): of wall-clock times
(the headline), and of the CPU time of this thread (``time.thread_time``),
which leaves out the time other processes hold the cores on a shared
machine.

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
    /tmp/venv-sj-data/bin/pip install --no-deps spikingjelly loguru torchvision==0.28.0   # any; its ops need not load
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
from spikeformers.data.readers import read_event_frames

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


def direct(path, time_steps, split_by):
    started = time.perf_counter()
    frames = read_event_frames(path, time_steps, split_by)
    return frames, time.perf_counter() - started, 0.0


def direct_numpy(path, time_steps, split_by):
    """``read_event_frames`` with its C++ counter set aside: the NumPy counting it falls back to."""
    from spikeformers.data.readers import aedat2

    compiled = aedat2._compiled_counter
    aedat2._compiled_counter = lambda: None
    try:
        return direct(path, time_steps, split_by)
    finally:
        aedat2._compiled_counter = compiled


def two_step(path, time_steps, split_by):
    started = time.perf_counter()
    events, sensor_size = read_events(path)
    read = time.perf_counter()
    frames = events_to_frames(events, time_steps, sensor_size, split_by)
    return frames, read - started, time.perf_counter() - read


def spikingjelly(path, time_steps, split_by, load, integrate):
    started = time.perf_counter()
    events = load(path)
    read = time.perf_counter()
    frames = integrate(events, split_by, time_steps, 128, 128)
    return frames, read - started, time.perf_counter() - read


PATHS = {
    "SpikingJelly": "SpikingJelly `_load_origin_data` + `integrate_events_by_fixed_frames_number`",
    "direct": "spikeformers `read_event_frames`",
    "direct_numpy": "spikeformers `read_event_frames`, NumPy counting (no C++ counter)",
    "two_step": "spikeformers `read_events` + `events_to_frames`",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--events", type=int, default=200_000, help="events per recording")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--T", type=int, nargs="+", default=[16, 10])
    parser.add_argument("--split-by", nargs="+", default=["number", "time"])
    parser.add_argument("--profile", action="store_true", help="also profile this project's two paths")
    args = parser.parse_args()

    load, integrate, sj_version = import_spikingjelly()
    print(f"python {platform.python_version()}, numpy {np.__version__}, spikingjelly {sj_version}, "
          f"cpus {os.cpu_count()}, load average before: {load_average()}")

    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        paths = [Path(folder) / f"cifar10_synthetic_{i}.aedat" for i in range(args.files)]
        for path in paths:
            write_recording(path, args.events, rng)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.files} AEDAT 2.0 files, {args.events} events each ({megabytes:.1f} MB), "
              f"median of {args.rounds} rounds per file, summed over the files\n")
        print("| T | split_by | path | ms per file | of which reading | Mevents/s | samples/s | "
              "ratio (SJ time / this) | ratio of CPU times |")
        print("|" + "---|" * 9)
        for time_steps in args.T:
            for split_by in args.split_by:
                convert = {
                    "SpikingJelly": lambda path: spikingjelly(path, time_steps, split_by, load, integrate),
                    "direct": lambda path: direct(path, time_steps, split_by),
                    "direct_numpy": lambda path: direct_numpy(path, time_steps, split_by),
                    "two_step": lambda path: two_step(path, time_steps, split_by),
                }
                for path in paths:  # the same frames before any timing
                    reference = convert["SpikingJelly"](path)[0]
                    for who in ("direct", "direct_numpy", "two_step"):
                        if not np.array_equal(convert[who](path)[0], reference):
                            sys.exit(f"{who}: frames differ for {path.name}, T={time_steps}, split_by={split_by}")
                # seconds[who][round, file] = (wall read, wall frames, CPU time of this thread)
                seconds = {who: np.zeros((args.rounds, len(paths), 3)) for who in convert}
                for round_index in range(args.rounds):
                    order = list(convert) if round_index % 2 == 0 else list(reversed(convert))
                    for who in order:
                        for index, path in enumerate(paths):
                            cpu_started = time.thread_time()
                            _, read_s, frames_s = convert[who](path)
                            seconds[who][round_index, index] = read_s, frames_s, time.thread_time() - cpu_started
                wall = {who: np.median(s[..., 0] + s[..., 1], axis=0).sum() for who, s in seconds.items()}
                reading = {who: np.median(s[..., 0], axis=0).sum() for who, s in seconds.items()}
                cpu = {who: np.median(s[..., 2], axis=0).sum() for who, s in seconds.items()}
                for who in convert:
                    total = wall[who]
                    read = "-" if who.startswith("direct") else f"{reading[who] / args.files * 1e3:.2f}"
                    ratios = ("1 | 1" if who == "SpikingJelly" else
                              f"**{wall['SpikingJelly'] / total:.2f}x** | {cpu['SpikingJelly'] / cpu[who]:.2f}x")
                    print(f"| {time_steps} | {split_by} | {PATHS[who]} | {total / args.files * 1e3:.2f} | {read} | "
                          f"{args.files * args.events / total / 1e6:.1f} | {args.files / total:,.1f} | {ratios} |")

        if args.profile:
            for name, convert in (("read_event_frames", direct), ("read_events + events_to_frames", two_step)):
                profiler = cProfile.Profile()
                profiler.enable()
                for path in paths:
                    convert(path, args.T[0], args.split_by[0])
                profiler.disable()
                print(f"\nprofile of {name} (T={args.T[0]}, split_by={args.split_by[0]}), "
                      "top functions by own time:")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(8)

    print("load average after:", load_average())


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


if __name__ == "__main__":
    main()
