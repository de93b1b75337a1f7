"""Hostile recipes and flags, damaged caches, full disks and killed ``data prepare``, rerun as a user would.

The probes of issue 16's sweep for configs (item 8), caches (item 7) and the
frame cache's full disk (item 6). Each runs in its own process under a
memory cap (``--memory-gib``), as ``spikeformers ...`` or a short Python
reader, and is classed:

- **clear**: a bad input refused with a non-zero exit, one error line on
  stderr naming the culprit (the file, the field or the option), no traceback;
- **accepted**: a valid input (a YAML 1.2 number, ``on``/``off`` strings) runs
  and the value is read as meant;
- **handled**: a damaged cache is rebuilt, every sample served equals the one
  read from the recordings, and it is said in one line per data set; a full
  disk names the file and leaves only whole cache files; a killed ``data
  prepare`` leaves no pool workers behind;
- **raw traceback**: "Traceback (most recent call last)" on stderr (must be 0);
- **wrong**: anything else (a bad value accepted, a wrong sample served, a
  message that does not name the culprit, a worker left running).

``--src`` points the probes at another source tree (say main's, to compare).
The full-disk probes mount small tmpfs folders (root only; skipped otherwise).

    python benchmarks/hostile_configs.py
    python benchmarks/hostile_configs.py --src /tmp/main/src --out /tmp/main.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACEBACK = "Traceback (most recent call last)"

# Every training probe trains at most this much when its input is accepted.
QUICK = {"limit_samples": "8", "epochs": "1", "batch_size": "8"}


def last_error(stderr: str) -> str:
    """The exception line of a traceback (its last line may be a YAML snippet's caret)."""
    errors = [line for line in stderr.splitlines() if re.match(r"[\w.]+(Error|Exception|Exit)\b", line)]
    return errors[-1] if errors else stderr.strip().splitlines()[-1]


@dataclass
class Outcome:
    group: str
    probe: str
    verdict: str  # clear, accepted, handled, raw traceback, wrong, skipped
    detail: str


class Runner:
    def __init__(self, src: Path, work: Path, memory_gib: float):
        self.src, self.work, self.memory = src, work, int(memory_gib * 2 ** 30)
        self.outcomes: list[Outcome] = []

    def env(self) -> dict:
        return {**os.environ, "PYTHONPATH": str(self.src), "PYTHONUNBUFFERED": "1"}

    def _limit(self):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))

    def run(self, argv: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=self.env(),
                                  timeout=timeout, preexec_fn=self._limit, cwd=self.work)
        except subprocess.TimeoutExpired as expired:
            return subprocess.CompletedProcess(argv, -9, expired.stdout or "", f"timed out after {timeout} s")

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.run(["-m", "spikeformers.cli", *map(str, args)], timeout)

    def record(self, group: str, probe: str, verdict: str, detail: str) -> None:
        detail = " ".join(detail.split())[:220]
        self.outcomes.append(Outcome(group, probe, verdict, detail))
        print(f"{verdict:>14}  {group}: {probe}: {detail}", flush=True)

    def refused(self, group: str, probe: str, done: subprocess.CompletedProcess, culprit: str) -> None:
        """A bad input: non-zero exit, one stderr line naming ``culprit``, no traceback."""
        err = done.stderr.strip()
        lines = [line for line in err.splitlines() if line.strip()]
        if lines and lines[0].startswith("usage:"):  # argparse: its usage block, then the error line
            lines = lines[-1:]
        if TRACEBACK in err:
            verdict, detail = "raw traceback", last_error(err)
        elif done.returncode == 0:
            verdict, detail = "wrong", "accepted (exit 0): " + (done.stdout.strip().splitlines() or [""])[-1]
        elif len(lines) == 1 and culprit in lines[0]:
            verdict, detail = "clear", lines[0]
        else:
            verdict, detail = "wrong", f"exit {done.returncode}: " + " / ".join(lines[-3:])
        self.record(group, probe, verdict, detail)


# --------------------------------------------------------------------------- configs

def alias_bomb(levels: int = 8) -> str:
    """``model_options``, a list of ``levels`` anchors, each nine aliases of the one before (9**levels
    leaves): refused, its error message must not spell it out (about 200 MB at 8 levels)."""
    lines = ["model_options:", "  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"  - &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


# (probe, recipe text or bytes, the culprit the error must name; None: the recipe's path)
BAD_RECIPES = [
    ("!!python/object/apply tag", "epochs: !!python/object/apply:os.system ['echo OWNED']\n", None),
    ("!!python/name tag", "model: !!python/name:os.system\n", None),
    ("!!python/object/new tag in an option", "dataset_options: {split: !!python/object/new:str [x]}\n", None),
    ("alias bomb in model_options, 9**8 leaves", alias_bomb(), None),
    ("anchor and merge key", "base: &b {lr: 0.1}\n<<: *b\n", None),
    ("epochs: -3", "epochs: -3\n", "epochs"),
    ("epochs: 0", "epochs: 0\n", "epochs"),
    ("epochs: 1.0e9", "epochs: 1.0e9\n", "epochs"),
    ("batch_size: 0", "batch_size: 0\n", "batch_size"),
    ("batch_size: '32'", "batch_size: '32'\n", "batch_size"),
    ("lr: -1", "lr: -1\n", "lr"),
    ("lr: .nan", "lr: .nan\n", "lr"),
    ("warmup_epochs: .inf", "warmup_epochs: .inf\n", "warmup_epochs"),
    ("label_smoothing: 5", "label_smoothing: 5\n", "label_smoothing"),
    ('amp: "false"', 'amp: "false"\n', "amp"),
    ("amp: yes", "amp: yes\n", "amp"),
    ("time_steps: 100000", "time_steps: 100000\n", "time_steps"),
    ("seed: -1", "seed: -1\n", "seed"),
    ("workers: -1", "workers: -1\n", "workers"),
    ("sensor_size: [100000, 100000]", "dataset_options: {sensor_size: [100000, 100000]}\n", "sensor_size"),
    ("sensor_size: 5", "dataset_options: {sensor_size: 5}\n", "sensor_size"),
    ("an option the data set lacks", "dataset_options: {no_such_option: 1}\n", "no_such_option"),
    ("dataset_options a list", "dataset_options: [1, 2]\n", "dataset_options"),
    ("recipe a list", "- epochs\n- 3\n", None),
    ("duplicate key", "lr: 0.1\nlr: 0.2\n", None),
    ("nesting 200 deep", "model_options: " + "[" * 200 + "]" * 200 + "\n", None),
    ("unknown key", "epoch: 3\n", "epoch"),
    ("not UTF-8", b"lr: 0.1\n\xff\xfe\x00\n", None),
    ("a 2 MiB recipe", "# padding\n" * 210_000 + "lr: 0.1\n", None),
    ("device: cuda:99 (no such GPU)", "device: cuda:99\n", "cuda:99"),
]

# (probe, flags, the culprit the error must name)
BAD_FLAGS = [
    ("--dataset-option with a !!python tag", ["--dataset-option", "sensor_size=!!python/name:os.system"],
     "--dataset-option"),
    ("--dataset-option with an alias", ["--dataset-option", "sensor_size=[&a 24, *a]"], "--dataset-option"),
    ("--epochs -3", ["--epochs", "-3"], "--epochs"),
    ("--label-smoothing 5", ["--label-smoothing", "5"], "--label-smoothing"),
]

# (probe, recipe text, the config.yaml line the run must have written)
GOOD_RECIPES = [
    ("lr: 1e-3 (a YAML 1.2 number)", "lr: 1e-3\nmin_lr: 1e-6\n", "lr: 0.001"),
    ("frames_on_device: off (a string)", "frames_on_device: off\n", "frames_on_device: 'off'"),
]


def with_quick_settings(text: str) -> str:
    """The recipe with the quick settings for the keys it does not set itself."""
    extra = "".join(f"{key}: {value}\n" for key, value in QUICK.items() if not re.search(rf"(?m)^{key}:", text))
    return text + extra


def config_probes(runner: Runner) -> None:
    """The recipe and flag probes, two processes at a time (each mostly imports torch)."""
    recipes = runner.work / "recipes"
    recipes.mkdir()
    runs = runner.work / "runs"
    jobs = []  # (group, probe, argv, culprit)
    for number, (probe, text, culprit) in enumerate(BAD_RECIPES):
        path = recipes / f"bad{number}.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text + "".join(f"{k}: {v}\n" for k, v in QUICK.items()).encode())
        else:
            path.write_text(with_quick_settings(text) if not text.startswith("-") else text)
        jobs.append(("recipe", probe, ["train", "--config", path, "--runs-dir", runs], culprit or str(path)))
    for probe, flags, culprit in BAD_FLAGS:
        quick = [item for key, value in QUICK.items() if f"--{key.replace('_', '-')}" not in flags
                 for item in (f"--{key.replace('_', '-')}", value)]
        jobs.append(("flag", probe, ["train", *flags, *quick, "--runs-dir", runs], culprit))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda job: runner.cli(*job[2]), jobs))
    for (group, probe, _, culprit), done in zip(jobs, results):
        runner.refused(group, probe, done, culprit)
    for number, (probe, text, line) in enumerate(GOOD_RECIPES):
        path = recipes / f"good{number}.yaml"
        path.write_text(with_quick_settings(text))
        out = runs / f"good{number}"
        done = runner.cli("train", "--config", path, "--out", out)
        written = (out / "config.yaml").read_text() if (out / "config.yaml").is_file() else ""
        if TRACEBACK in done.stderr:
            runner.record("recipe", probe, "raw traceback", last_error(done.stderr))
        elif done.returncode == 0 and re.search(rf"(?m)^{re.escape(line)}$", written):
            runner.record("recipe", probe, "accepted", f"the run wrote {line!r}")
        else:
            runner.record("recipe", probe, "wrong", f"exit {done.returncode}: {done.stderr.strip()[-200:]}")


# --------------------------------------------------------------------------- damaged caches

MAKE_TREE = textwrap.dedent("""
    import sys, pathlib
    sys.path.insert(0, sys.argv[3])
    from test_datasets_cifar10_dvs import make_tree
    make_tree(pathlib.Path(sys.argv[1]), per_class=int(sys.argv[2]))
""")

# Reads every test sample through the frame cache and compares it with the frames read from the recordings.
READ_ALL = textwrap.dedent("""
    import sys, numpy as np
    from spikeformers.data.registry import create_dataset
    options = dict(train=False, time_steps=4, root=sys.argv[1], expected_per_class=None, workers=0)
    reference = create_dataset("cifar10_dvs", cache_dir=False, **options)
    cached = create_dataset("cifar10_dvs", **options)
    wrong = [i for i in range(len(cached)) if not np.array_equal(cached[i][0].numpy(), reference[i][0].numpy())]
    print(f"wrong samples: {wrong}")
    sys.exit(3 if wrong else 0)
""")


def npz_bytes(**arrays) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def huge_header() -> bytes:
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (1 << 20, 2, 4096, 4096)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("frames.npy", header.getvalue())
    return archive.getvalue()


def damages():
    import numpy as np

    def flip(at):
        return lambda data: data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]

    return [
        ("empty file", lambda data: b""),
        ("truncated to half", lambda data: data[: len(data) // 2]),
        ("a bit flipped in the data", lambda data: flip(len(data) // 3)(data)),
        ("a bit flipped in the zip directory", lambda data: flip(len(data) - 30)(data)),
        ("random bytes", lambda data: os.urandom(len(data))),
        ("wrong shape (64x64)", lambda data: npz_bytes(frames=np.ones((4, 2, 64, 64), np.uint8))),
        ("wrong dtype (float32)", lambda data: npz_bytes(frames=np.ones((4, 2, 128, 128), np.float32))),
        ("wrong key", lambda data: npz_bytes(x=np.ones((4, 2, 128, 128), np.uint8))),
        ("an extra array", lambda data: npz_bytes(frames=np.ones((4, 2, 128, 128), np.uint8), x=np.ones(2))),
        ("header declaring 32 TiB", lambda data: huge_header()),
    ]


def cache_probes(runner: Runner, tree: Path) -> None:
    done = runner.cli("data", "prepare", "--dataset", "cifar10_dvs", "--root", tree, "--time-steps", "4",
                      "--workers", "2", "--option", "expected_per_class=null")
    if done.returncode != 0:
        raise SystemExit(f"data prepare failed: {done.stderr}")
    cache = tree / "spikeformers_frames"
    pristine = runner.work / "pristine_cache"
    shutil.copytree(cache, pristine)
    for probe, damage in damages():
        shutil.rmtree(cache)
        shutil.copytree(pristine, cache)
        # the test split's files: 'cifar10_<class>_9' of three classes
        targets = sorted(cache.rglob("cifar10_*_9.npz"))[:3]
        for path in targets:
            path.write_bytes(damage(path.read_bytes()))
        read = runner.run(["-c", READ_ALL, str(tree)])
        notes = [line for line in read.stderr.splitlines() if line.startswith("frame cache: rebuilt")]
        if TRACEBACK in read.stderr:
            runner.record("frame cache", probe, "raw traceback", last_error(read.stderr))
        elif read.returncode == 0 and len(notes) == 1 and str(targets[0]) in notes[0]:
            runner.record("frame cache", probe, "handled", notes[0])
        elif read.returncode == 0 and not notes:  # bytes that nothing reads (a zip field): served right
            runner.record("frame cache", probe, "handled", "every sample served right, nothing to rebuild")
        else:
            runner.record("frame cache", probe, "wrong", f"exit {read.returncode}, {len(notes)} notes: "
                                                         f"{read.stdout.strip()} {read.stderr.strip()[-150:]}")
    shutil.rmtree(cache)
    shutil.copytree(pristine, cache)

    digits = runner.work / "digits"
    done = runner.cli("data", "prepare", "--dataset", "dvs_digits", "--root", digits, "--time-steps", "4")
    (cache_file,) = digits.glob("dvsdigits_*.npz")
    whole = cache_file.read_bytes()
    same = "import sys, numpy as np\na, b = (np.load(p) for p in sys.argv[1:])\n" \
           "sys.exit(0 if set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files) else 1)"
    (runner.work / "whole_digits.npz").write_bytes(whole)
    for probe, damage in [("empty file", lambda data: b""), ("truncated to half", lambda data: data[: len(data) // 2]),
                          ("random bytes", lambda data: os.urandom(len(data))),
                          ("an npz of other arrays", lambda data: npz_bytes(t=[1, 2], offsets=[0, 5]))]:
        cache_file.write_bytes(damage(whole))
        done = runner.cli("data", "prepare", "--dataset", "dvs_digits", "--root", digits, "--time-steps", "4")
        notes = [line for line in done.stderr.splitlines() if line.startswith("dvs_digits: regenerating")]
        if TRACEBACK in done.stderr:
            runner.record("digits cache", probe, "raw traceback", last_error(done.stderr))
        elif done.returncode == 0 and len(notes) == 1 and \
                runner.run(["-c", same, str(cache_file), str(runner.work / "whole_digits.npz")]).returncode == 0:
            runner.record("digits cache", probe, "handled", notes[0])
        else:
            runner.record("digits cache", probe, "wrong", f"exit {done.returncode}: {done.stderr.strip()[-200:]}")


# --------------------------------------------------------------------------- full disks

CHECK_WHOLE = textwrap.dedent("""
    import sys, pathlib, numpy as np
    files = list(pathlib.Path(sys.argv[1]).rglob("*.npz"))
    for path in files:
        with np.load(path) as archive:
            assert archive.files == ["frames"] and archive["frames"].shape == (4, 2, 128, 128), path
    temporaries = list(pathlib.Path(sys.argv[1]).rglob("*.tmp"))
    print(f"{len(files)} whole files, {len(temporaries)} temporary files")
    sys.exit(1 if temporaries or not files else 0)
""")


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def disk_full_probes(runner: Runner, tree: Path) -> None:
    for workers in (0, 2):
        mount = runner.work / f"full{workers}"
        probe = f"frame cache on a 160 KiB tmpfs, --workers {workers}"
        if not mount_tmpfs(mount, "160k"):
            runner.record("full disk", probe, "skipped", "cannot mount a tmpfs (needs root)")
            continue
        try:
            done = runner.cli("data", "prepare", "--dataset", "cifar10_dvs", "--root", tree, "--time-steps", "4",
                              "--workers", workers, "--option", "expected_per_class=null", "--option",
                              f"cache_dir={mount}")
            lines = done.stderr.strip().splitlines()
            pattern = rf"spikeformers data: error: no space left on device while writing {re.escape(str(mount))}/\S+"
            whole = runner.run(["-c", CHECK_WHOLE, str(mount)])
            if TRACEBACK in done.stderr:
                runner.record("full disk", probe, "raw traceback", last_error(done.stderr))
            elif done.returncode != 0 and len(lines) == 1 and re.fullmatch(pattern, lines[0]) and \
                    whole.returncode == 0:
                runner.record("full disk", probe, "handled", f"{lines[0]}; {whole.stdout.strip()}")
            else:
                runner.record("full disk", probe, "wrong", f"exit {done.returncode}: {' / '.join(lines[-2:])}; "
                                                           f"{whole.stdout.strip()} {whole.stderr.strip()[-100:]}")
        finally:
            subprocess.run(["umount", str(mount)])
    mount = runner.work / "full_digits"
    probe = "digits recordings cache on a 64 KiB tmpfs"
    if not mount_tmpfs(mount, "64k"):
        runner.record("full disk", probe, "skipped", "cannot mount a tmpfs (needs root)")
        return
    try:
        done = runner.cli("data", "prepare", "--dataset", "dvs_digits", "--root", mount, "--time-steps", "4")
        lines = done.stderr.strip().splitlines()
        left = sorted(path.name for path in mount.iterdir())
        if TRACEBACK in done.stderr:
            runner.record("full disk", probe, "raw traceback", last_error(done.stderr))
        elif done.returncode != 0 and len(lines) == 1 and "no space left on device while writing" in lines[0] \
                and str(mount) in lines[0] and not left:
            runner.record("full disk", probe, "handled", lines[0] + "; nothing left on the disk")
        else:
            runner.record("full disk", probe, "wrong", f"exit {done.returncode}: {' / '.join(lines[-2:])}; "
                                                       f"left {left}")
    finally:
        subprocess.run(["umount", str(mount)])


# --------------------------------------------------------------------------- killed `data prepare`

def children(parent: int) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == parent and fields[0] != "Z":
            found.append((int(entry), fields[19]))
    return found


def alive(identity: tuple[int, str]) -> bool:
    try:
        with open(f"/proc/{identity[0]}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == identity[1]


def kill_probes(runner: Runner, tree: Path, kills: int) -> None:
    for attempt in range(kills):
        cache = tree / "spikeformers_frames"
        shutil.rmtree(cache, ignore_errors=True)
        prepare = subprocess.Popen([sys.executable, "-m", "spikeformers.cli", "data", "prepare", "--dataset",
                                    "cifar10_dvs", "--root", str(tree), "--time-steps", "4", "--workers", "2",
                                    "--option", "expected_per_class=null"], env=runner.env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers: list = []
        while not workers and prepare.poll() is None:
            workers = children(prepare.pid)
            time.sleep(0.01)
        time.sleep(0.1 * (attempt + 1))  # kill at different points of the build
        workers = children(prepare.pid) or workers
        prepare.send_signal(signal.SIGKILL)
        prepare.wait()
        time.sleep(3)
        left = [identity for identity in workers if alive(identity)]
        for pid, _ in left:  # the probe's own processes
            os.kill(pid, signal.SIGKILL)
        probe = f"SIGKILL during the build, try {attempt + 1}"
        if not workers:
            runner.record("killed prepare", probe, "skipped", "the build ended before its pool was seen")
        elif left:
            runner.record("killed prepare", probe, "wrong", f"{len(left)} of {len(workers)} workers alive 3 s later")
        else:
            runner.record("killed prepare", probe, "handled", f"all {len(workers)} workers gone within 3 s")


# --------------------------------------------------------------------------- report

def summary(outcomes: list[Outcome]) -> str:
    counts = {verdict: sum(o.verdict == verdict for o in outcomes)
              for verdict in ("clear", "accepted", "handled", "raw traceback", "wrong", "skipped")}
    return (f"{len(outcomes)} cases: {counts['clear']} clear one-line errors, {counts['accepted']} valid inputs "
            f"accepted as meant, {counts['handled']} damaged caches / full disks / kills handled, "
            f"{counts['raw traceback']} raw tracebacks, {counts['wrong']} wrong, {counts['skipped']} skipped")


def describe(src: Path) -> str:
    commit = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()[:80] or "not a git checkout"
    return f"`{src}` ({commit})"


def report(outcomes: list[Outcome], before: list[Outcome] | None, command: str, src: Path,
           before_src: Path | None, seconds: float) -> str:
    lines = [
        "# Hostile configs, damaged caches, full disks, killed `data prepare` (issue 16, items 6-8)",
        "",
        f"Command: `{command}`  ",
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at "
        f"the end; {seconds:.0f} s in all.",
        "",
        f"- **this source**, {describe(src)}: **{summary(outcomes)}**.",
    ]
    if before is not None:
        lines.append(f"- before, {describe(before_src)}: {summary(before)}.")
    lines += ["", "| group | probe | verdict | what was seen |" + (" before |" if before else ""),
              "|---|---|---|---|" + ("---|" if before else "")]
    previous = {(o.group, o.probe): o.verdict for o in before or []}
    for o in outcomes:
        lines.append(f"| {o.group} | {o.probe.replace('|', '/')} | {o.verdict} | "
                     f"{o.detail.replace('|', '/').replace('`', '')} |"
                     + (f" {previous.get((o.group, o.probe), '')} |" if before else ""))
    return "\n".join(lines) + "\n"


def make_tree(root: Path, per_class: int) -> None:
    """A CIFAR10-DVS folder of real AEDAT 2.0 bytes, written by the tests' writer (with this checkout's
    source on the path, whichever source is probed)."""
    subprocess.run([sys.executable, "-c", MAKE_TREE, str(root), str(per_class), str(ROOT / "tests")], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def probe_all(src: Path, memory_gib: float, kills: int) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="hostile_") as work:
        runner = Runner(src.resolve(), Path(work), memory_gib)
        tree = Path(work) / "cifar10dvs"
        make_tree(tree, 12)
        config_probes(runner)
        cache_probes(runner, tree)
        disk_full_probes(runner, tree)
        big = Path(work) / "big"  # 1,000 recordings: the pool runs a while
        make_tree(big, 100)
        kill_probes(runner, big, kills)
        return runner.outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to probe")
    parser.add_argument("--before-src", type=Path, help="also probe this source tree (say main's), for a column")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hostile_configs.md")
    parser.add_argument("--memory-gib", type=float, default=6.0, help="address-space cap of each probe")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of data prepare")
    args = parser.parse_args()
    started = time.perf_counter()
    before = None
    if args.before_src is not None:
        print(f"probing {args.before_src}", flush=True)
        before = probe_all(args.before_src, args.memory_gib, args.kills)
    print(f"probing {args.src}", flush=True)
    outcomes = probe_all(args.src, args.memory_gib, args.kills)
    command = "python benchmarks/hostile_configs.py" + "".join(f" {a}" for a in sys.argv[1:])
    text = report(outcomes, before, command, args.src.resolve(), args.before_src, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
