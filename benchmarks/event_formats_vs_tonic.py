"""Reading + framing throughput of the second wave's formats: spikeformers against tonic, same files.

Writes synthetic recordings in each release's exact format (the independent writers of
``tests/test_readers_dat_mat_npy.py``) to a temporary folder, then turns every file into
``[T, 2, H, W]`` frames two ways, side by side on the same machine:

- spikeformers: ``read_event_frames(path, T, "time_bins")`` (the reader, then ``integrate``);
- tonic, in its own interpreter (``--tonic-python``, a venv with tonic 1.7), as its users run it:
  the reader, then ``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)`` (the same frames as
  ``time_bins``: checked, file by file, before anything is timed). The readers are tonic's own
  where it has one: ``tonic.datasets.ASLDVS`` (``scipy.io.loadmat``; also the way BrainCog's
  tonic-based UCF101-DVS and HMDB51-DVS loaders read those files) and ``tonic.datasets.DVSLip``
  (``np.load``), each data set's ``__getitem__`` then ``ToFrame`` (ASLDVS returns loadmat's
  ``(N, 1)`` columns, on which ``ToFrame`` raises, so they are flattened first, as a user must);
  ``expelliarmus`` (the Prophesee reader tonic depends on) for N-CARS's DAT files, tonic 1.7
  having no N-CARS data set; for HARDVS's ``.npz``, which tonic does not read, ``np.load`` and
  ``tonic.io.make_structured_array``.

The tonic side is a worker process that stays up; each round runs, per format, one pass of ours
and one of tonic's, in an order that alternates between rounds, after one untimed pass of each
(the files in the page cache, the code warm). A pass converts every file of the format; the
table gives the median pass over ``--rounds`` rounds, wall-clock and CPU time (this thread's for
ours, the worker's process time for tonic's), and tonic's over ours (above 1: we are faster).
Reading alone (ours ``read_events``, tonic's reader without ``ToFrame``) is timed the same way.

Recording sizes are this script's choice (``SPECS``), not measured from the releases: N-CARS's
100 ms samples hold about 2,000 events (the real sample in tonic's test data: 2,009); the others
are set to plausible sizes for their durations and sensors.

    python benchmarks/event_formats_vs_tonic.py --rounds 7
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from spikeformers.data.readers import read_event_frames, read_events  # noqa: E402

# format: (reader name, files, events per file, sensor (H, W), data set it stands for)
SPECS = {
    "dat": ("dat", 300, 2_000, (100, 120), "N-CARS (Prophesee DAT)"),
    "mat": ("mat", 40, 30_000, (180, 240), "ASL-DVS (.mat, zlib-compressed doubles)"),
    "mat_long": ("mat", 6, 300_000, (180, 240), "UCF101-DVS / HMDB51-DVS (.mat, compressed doubles)"),
    "npy": ("npy", 60, 30_000, (128, 128), "DVS-Lip (.npy structured)"),
    "npz": ("npz", 6, 300_000, (260, 346), "HARDVS (.npz of t, x, y, p)"),
}

WORKER = r'''
import hashlib, json, sys, time
import numpy as np
import tonic
from tonic.transforms import ToFrame

def digest(frames):
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.int32).tobytes()).hexdigest()

def readers(job):
    """(name, read(path) -> events, read_frame(path) -> frames) for the job's format."""
    W, H = job["sensor"][1], job["sensor"][0]
    frame = ToFrame(sensor_size=(W, H, 2), n_time_bins=job["T"])
    kind = job["reader"]
    if kind == "dat":
        from expelliarmus import Wizard
        wizard = Wizard(encoding="dat")
        read = lambda path: wizard.read(path)
        return read, lambda path: frame(read(path))
    if kind in ("mat", "npy"):
        cls = tonic.datasets.ASLDVS if kind == "mat" else tonic.datasets.DVSLip
        cls._check_exists = lambda self: True
        plain = cls(job["root"]) if kind == "mat" else cls(job["root"], train=True)
        index = {path: i for i, path in enumerate(plain.data)}
        missing = [p for p in job["files"] if p not in index]
        assert not missing, f"tonic did not list {missing[:3]}"
        # ASLDVS gives loadmat's (N, 1) columns, on which ToFrame raises: flattened, as a user must
        read = lambda path: plain[index[path]][0].reshape(-1)
        return read, lambda path: frame(read(path))
    if kind == "npz":
        from tonic.io import events_struct, make_structured_array
        def read(path):
            arrays = np.load(path)
            return make_structured_array(arrays["x"], arrays["y"], arrays["t"], arrays["p"], dtype=events_struct)
        return read, lambda path: frame(read(path))
    raise ValueError(kind)

cache = {}
for line in sys.stdin:
    job = json.loads(line)
    key = json.dumps({k: job[k] for k in ("reader", "root", "T", "sensor")})
    if key not in cache:
        cache[key] = readers(job)
    read, read_frame = cache[key]
    call = read_frame if job["what"] != "read" else read
    if job["what"] == "digests":
        print(json.dumps({"digests": [digest(read_frame(p)) for p in job["files"]],
                          "events": [int(len(read(p))) for p in job["files"]]}), flush=True)
        continue
    wall, cpu = time.perf_counter(), time.process_time()
    for path in job["files"]:
        call(path)
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}), flush=True)
'''


def write_files(folder: Path, name: str, spec, seed: int) -> list[str]:
    """The files of one format, in the layout tonic's reader lists them from."""
    from test_readers_dat_mat_npy import dat_bytes, mat_bytes, npy_bytes

    reader, count, events, (height, width), _ = spec
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        t = np.sort(rng.integers(0, 100_000 if reader == "dat" else 50 * events, events))
        x, y, p = rng.integers(0, width, events), rng.integers(0, height, events), rng.integers(0, 2, events)
        if reader == "dat":
            path = folder / "dat" / f"obj_{i:06d}_td.dat"
            data = dat_bytes(list(zip(t.tolist(), x.tolist(), y.tolist(), p.tolist())))
        elif reader == "mat":  # tonic's ASLDVS takes the class from the folder's last letter
            path = folder / "ASLDVS" / ("a" if name == "mat" else "u") / f"{name}_{i:04d}.mat"
            data = mat_bytes({"ts": t, "x": x, "y": y, "pol": p}, compress=True)
        elif reader == "npy":
            path = folder / "DVSLip" / "DVS-Lip" / "train" / "accused" / f"{i}.npy"
            array = np.zeros(events, dtype=[("t", "<i4"), ("x", "i1"), ("y", "i1"), ("p", "i1")])
            array["t"], array["x"], array["y"], array["p"] = t, x, y, p
            data = npy_bytes(array)
        else:
            path = folder / "hardvs" / f"action_{1 + i % 3:03d}" / f"dvSave-{i:04d}.npz"
            buffer = {key: npy_bytes(values.astype(dtype)) for key, values, dtype in
                      (("t", t, np.int64), ("x", x, np.uint16), ("y", y, np.uint16), ("p", p, np.uint8))}
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w") as archive:
                for key, member in buffer.items():
                    archive.writestr(f"{key}.npy", member)
            paths.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def digest(frames) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.int32).tobytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--T", type=int, default=16)
    parser.add_argument("--formats", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--tonic-python", default="/work/refenv/tonic/bin/python")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    versions = subprocess.run([args.tonic_python, "-c", "import tonic, expelliarmus, scipy, numpy; "
                               "print(tonic.__version__, scipy.__version__, numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    import scipy

    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; tonic side: "
          f"tonic {versions[0]}, scipy {versions[1]}, numpy {versions[2]}; cpus {os.cpu_count()}, load average "
          f"before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; T={args.T}, {args.rounds} rounds")
    worker = subprocess.Popen([args.tonic_python, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)

    def ask(job):
        worker.stdin.write(json.dumps(job) + "\n")
        worker.stdin.flush()
        line = worker.stdout.readline()
        if not line:
            raise RuntimeError(f"the tonic worker stopped (return code {worker.poll()})")
        return json.loads(line)

    rows = []
    with tempfile.TemporaryDirectory(prefix="formats_vs_tonic_") as folder:
        folder = Path(folder)
        written = {name: write_files(folder, name, SPECS[name], args.seed + index)
                   for index, name in enumerate(args.formats)}  # all first: tonic's data sets list their folder once
        jobs = {}
        for name, files in written.items():
            spec = SPECS[name]
            size = sum(os.path.getsize(p) for p in files)
            job = {"reader": spec[0], "root": str(folder), "files": files, "T": args.T, "sensor": list(spec[3])}
            theirs = ask({**job, "what": "digests"})
            ours = [digest(read_event_frames(p, args.T, "time_bins", sensor_size=spec[3])) for p in files]
            same = sum(a == b for a, b in zip(ours, theirs["digests"]))
            assert same == len(files), f"{name}: {len(files) - same} of {len(files)} files frame differently"
            print(f"{name}: {len(files)} files of {spec[2]:,} events ({size / len(files) / 1e3:.0f} kB each), "
                  f"{spec[4]}: frames identical to tonic's for all {len(files)}")
            jobs[name] = (job, files, spec)

        def ours_pass(files, sensor, what):
            wall, cpu = time.perf_counter(), time.thread_time()
            for path in files:
                if what == "read":
                    read_events(path, sensor_size=sensor)
                else:
                    read_event_frames(path, args.T, "time_bins", sensor_size=sensor)
            return {"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu}

        for what in ("frames", "read"):
            for name, (job, files, spec) in jobs.items():
                ours_pass(files, spec[3], what)  # untimed: page cache and code warm
                ask({**job, "what": what})
                times = {"ours": [], "tonic": []}
                for round_index in range(args.rounds):
                    order = ("ours", "tonic") if round_index % 2 == 0 else ("tonic", "ours")
                    for side in order:
                        times[side].append(ours_pass(files, spec[3], what) if side == "ours" else
                                           ask({**job, "what": what}))
                median = {side: {key: float(np.median([t[key] for t in runs])) for key in ("wall", "cpu")}
                          for side, runs in times.items()}
                rows.append((what, name, spec, len(files), median))
    worker.stdin.close()
    worker.wait()

    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print("| step | format (stands for) | files x events | ours: ms a file | tonic: ms a file | tonic / ours | "
          "ours: CPU ms | tonic: CPU ms | tonic / ours, CPU | ours: M events/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for what, name, spec, count, median in rows:
        ours, theirs = median["ours"], median["tonic"]
        step = "read + frame" if what == "frames" else "read"
        print(f"| {step} | {name}: {spec[4]} | {count} x {spec[2]:,} | {1e3 * ours['wall'] / count:.2f} | "
              f"{1e3 * theirs['wall'] / count:.2f} | {theirs['wall'] / ours['wall']:.2f} | "
              f"{1e3 * ours['cpu'] / count:.2f} | {1e3 * theirs['cpu'] / count:.2f} | "
              f"{theirs['cpu'] / max(ours['cpu'], 1e-9):.2f} | {count * spec[2] / ours['wall'] / 1e6:.1f} |")


if __name__ == "__main__":
    main()
