"""Hostile runs: damaged and forged checkpoints fed to ``eval`` and ``train --resume``, and training
processes killed with SIGKILL at random moments, then resumed. Not a test: a probe to rerun and count.

1. Checkpoints. A short run is stopped in the middle of its second epoch; its ``last.pt`` is then
   damaged or forged in 48 ways (random bit flips in tensor data and anywhere in the file, truncations,
   NaN / inf weights and optimiser state with a matching checksum, missing entries, mis-shaped and
   unexpected tensors, a zip bomb, model overrides asking for a huge model, a planted plugin, foreign
   files). Each is given to ``spikeformers eval --checkpoint FILE`` and to ``spikeformers train --resume``
   of a copy of the run folder, through the command line's own entry point in this process (a console
   script runs exactly that). An outcome is *refused* (exit status 1 or 2 and one line on stderr naming the
   file), *loaded* (exit 0), or *raw* (an exception escaped, or an error that is not one line naming the
   file). A refused resume must leave the run folder as it was, byte for byte; no probe may import the
   planted plugin.
2. Kills. The same run is trained to its end once; then ``--kills`` times a fresh copy is started as a
   process (``--save-every 1``), killed with SIGKILL at a random step and a random moment within it
   (some land while a checkpoint is written), and resumed as a process to its end. A resume is *exact*
   when its final weights, weight average included, equal the uninterrupted run's bit for bit, its
   ``metrics.csv`` has one row per epoch, ``best.pt`` holds the recorded best accuracy, and no temporary
   file is left.

    python benchmarks/hostile_runs.py                # about 10 minutes on 2 cores
    python benchmarks/hostile_runs.py --kills 3      # a quicker look

Writes ``benchmarks/results/hostile_runs.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import torch

from spikeformers.cli import main as cli
from spikeformers.engine import train as train_module
from spikeformers.engine.checkpoint import FORMAT, checksum, load_checkpoint
from spikeformers.engine.config import load_config
from spikeformers.engine.stopping import TrainingInterrupted

RUN = {"epochs": 3, "time_steps": 1, "limit_samples": 64, "batch_size": 16, "seed": 1, "ema": True,
       "ema_decay": 0.9, "hflip": 0.5}  # 4 steps an epoch, 12 in all
FLAGS = ["--epochs", "3", "--time-steps", "1", "--limit-samples", "64", "--batch-size", "16", "--seed", "1",
         "--ema", "--ema-decay", "0.9", "--hflip", "0.5"]
PLUGIN = "hostile_planted_plugin"


def stopped_run(out: Path, step: int) -> None:
    """The run, stopped by a SIGTERM during ``step`` (in this process)."""
    real = train_module.step_generator

    def generator(seed, at):
        if at == step:
            signal.raise_signal(signal.SIGTERM)
        return real(seed, at)

    train_module.step_generator = generator
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            train_module.train(load_config(None, **RUN, out=str(out)))
    except TrainingInterrupted:
        pass
    finally:
        train_module.step_generator = real


def tensor_members(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of every tensor's bytes inside a torch.save zip archive."""
    raw = path.read_bytes()
    spans = []
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if "/data/" in member.filename and member.file_size:
                at = member.header_offset
                name, extra = (int.from_bytes(raw[at + i:at + i + 2], "little") for i in (26, 28))
                spans.append((at + 30 + name + extra, member.file_size))
    return spans


def forge(path: Path, state: dict) -> None:
    """Contents of one's choosing, with a checksum that matches them (as someone who read the format would)."""
    state = {k: v for k, v in state.items() if k not in ("format", "version", "checksum")}
    state = {"format": FORMAT, "version": 2, **state}
    torch.save({**state, "checksum": checksum(state)}, path)


# What each command must do with a variant: refuse it, or load it because the entry it damages is one
# that command does not read (eval needs no optimiser; a resume takes the model from config.yaml);
# "intact" for a flipped bit that may land outside the contents (zip headers' CRCs, alignment padding),
# where loading is right only if the contents are the original's.
REFUSED, LOADED, INTACT = "refused", "loaded", "refused, or loaded intact"


def variants(good: Path, folder: Path, rng: random.Random, marker: Path) -> list[tuple[str, Path, str, str]]:
    """48 damaged or forged copies of ``good``: (what was done, file, what eval must do, what a resume
    must do); code planted in them would create ``marker``."""
    made = []
    raw = good.read_bytes()
    spans = tensor_members(good)

    def add(name: str, write, on_eval: str = REFUSED, on_resume: str = REFUSED) -> None:
        path = folder / f"{len(made):02d}.pt"
        write(path)
        made.append((name, path, on_eval, on_resume))

    def flipped(offset: int):
        data = bytearray(raw)
        data[offset] ^= 1 << rng.randrange(8)
        return lambda p: p.write_bytes(bytes(data))

    for _ in range(16):
        start, size = rng.choice(spans)
        offset = start + rng.randrange(size)
        add(f"one bit flipped in tensor data (byte {offset})", flipped(offset))
    for _ in range(8):
        offset = rng.randrange(len(raw))
        add(f"one bit flipped anywhere (byte {offset} of {len(raw)})", flipped(offset), INTACT, INTACT)
    for cut in (0, 10, 100, 1000, len(raw) // 2, len(raw) - 1):
        add(f"truncated to {cut} bytes", lambda p, cut=cut: p.write_bytes(raw[:cut]))

    state = load_checkpoint(good)

    def edited(change):
        def write(path):
            copy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
            change(copy)
            forge(path, copy)
        return write

    def all_nan(s):
        s["model"] = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in s["model"].items()}

    def one_inf(s):
        name = next(k for k, v in s["model"].items() if v.is_floating_point())
        s["model"][name] = s["model"][name].clone().fill_(float("inf"))

    def optimiser_nan(s):
        optimizer = {"state": {k: dict(v) for k, v in s["optimizer"]["state"].items()},
                     "param_groups": s["optimizer"]["param_groups"]}
        first = next(iter(optimizer["state"]))
        optimizer["state"][first]["exp_avg_sq"] = optimizer["state"][first]["exp_avg_sq"].clone().fill_(float("nan"))
        s["optimizer"] = optimizer

    add("all weights NaN, checksum matching", edited(all_nan))
    add("one weight tensor inf, checksum matching", edited(one_inf))
    add("optimiser state NaN, checksum matching", edited(optimiser_nan))
    for key, on_eval, on_resume in (("model", REFUSED, REFUSED), ("model_name", REFUSED, LOADED),
                                    ("optimizer", LOADED, REFUSED), ("run", LOADED, REFUSED), ("rng", LOADED, REFUSED)):
        add(f"entry {key!r} missing, checksum matching", edited(lambda s, key=key: s.pop(key)), on_eval, on_resume)

    def misshaped(s):
        s["model"]["head.fc.weight"] = torch.zeros(11, s["model"]["head.fc.weight"].shape[1])

    def unexpected(s):
        s["model"]["blocks.9.extra.weight"] = torch.zeros(3)

    def wrong_dtype(s):
        s["model"] = {k: v.double() if v.is_floating_point() else v for k, v in s["model"].items()}

    add("a mis-shaped tensor, checksum matching", edited(misshaped))
    add("an unexpected tensor, checksum matching", edited(unexpected))
    add("weights in float64, checksum matching (cast on load)", edited(wrong_dtype), LOADED, LOADED)

    def bomb(path):
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
            archive.writestr("bomb/data/0", bytes(256 << 20))

    add("zip bomb: 256 MiB of deflated zeros", bomb)
    add("model overrides asking for a 10-billion-parameter model",
        edited(lambda s: s.update(model_overrides={**s["model_overrides"], "embed_dim": 4096, "depth": 48})),
        REFUSED, LOADED)
    add("config naming a plugin to import (loads; the plugin must not)",
        edited(lambda s: s.update(config={**s["config"], "plugin": PLUGIN})), LOADED, LOADED)
    add("an unregistered model name", edited(lambda s: s.update(model_name="a_model_nobody_registered")),
        REFUSED, LOADED)

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    add("a pickle that runs code", lambda p: p.write_bytes(pickle.dumps(Payload(), protocol=2)))
    add("an empty file", lambda p: p.write_bytes(b""))
    add("a text file", lambda p: p.write_text("# README\nnot a checkpoint\n"))
    return made


def attempt(argv: list[str], path: Path) -> tuple[str, str]:
    """Run the command line in this process: (outcome, what it said on stderr, first line)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli(argv)
    except BaseException:  # noqa: BLE001  (anything that escapes is what a user would see as a traceback)
        return "raw", traceback.format_exc().strip().splitlines()[-1][:200]
    said = err.getvalue().strip()
    lines = [line for line in said.splitlines() if not line.startswith("warning:")]
    if code == 0:
        return "loaded", lines[0][:200] if lines else ""
    one_line = len(lines) == 1 and (str(path) in lines[0] or str(path.parent) in lines[0])
    return ("refused" if one_line and "Traceback" not in said else "raw"), (lines[0][:200] if lines else "")


def attempt_load(path: Path) -> str | None:
    """The checksum of what ``path`` holds when it loads, else None."""
    try:
        return checksum(load_checkpoint(path))
    except (OSError, ValueError):
        return None


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def probe_checkpoints(work: Path, rng: random.Random) -> list[dict]:
    base = work / "stopped"
    stopped_run(base, 6)  # mid-epoch 2
    marker = work / "code_ran"
    (work / f"{PLUGIN}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    sys.path.insert(0, str(work))
    (work / "variants").mkdir()
    rows = []
    original = checksum(load_checkpoint(base / "last.pt"))
    for i, (name, path, on_eval, on_resume) in enumerate(variants(base / "last.pt", work / "variants", rng, marker)):
        intact = path.stat().st_size > 0 and attempt_load(path) == original
        eval_outcome, eval_said = attempt(["eval", "--checkpoint", str(path), "--out", str(work / "eval")], path)
        folder = work / f"resume{i:02d}"
        shutil.copytree(base, folder)
        shutil.copyfile(path, folder / "last.pt")
        before = snapshot(folder)
        resume_outcome, resume_said = attempt(["train", "--resume", str(folder)], folder / "last.pt")
        kept = resume_outcome != "refused" or snapshot(folder) == before
        as_expected = [outcome == wanted or wanted == INTACT and (outcome == REFUSED or outcome == LOADED and intact)
                       for outcome, wanted in ((eval_outcome, on_eval), (resume_outcome, on_resume))]
        eval_said, resume_said = (said.replace(str(work), "WORK") for said in (eval_said, resume_said))
        rows.append({"variant": name, "eval": eval_outcome, "eval_said": eval_said, "resume": resume_outcome,
                     "eval_expected": on_eval, "resume_expected": on_resume, "as_expected": as_expected,
                     "resume_said": resume_said, "folder_kept": kept, "code_ran": marker.exists()})
        shutil.rmtree(folder)
        print(f"{i + 1:2d}/48 {name}: eval {eval_outcome}, resume {resume_outcome}", flush=True)
    return rows


def spikeformers(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spikeformers", "train", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def step_of(path: Path) -> int:
    try:
        return load_checkpoint(path)["run"]["step"]
    except (OSError, ValueError):
        return -1


def probe_kills(work: Path, kills: int, rng: random.Random) -> list[dict]:
    reference = work / "uninterrupted"
    proc = spikeformers(*FLAGS, "--out", str(reference))
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    expected = load_checkpoint(reference / "last.pt")
    rows = []
    for i in range(kills):
        out = work / f"killed{i:02d}"
        target, delay = rng.randrange(1, 11), rng.uniform(0.0, 0.4)
        proc = spikeformers(*FLAGS, "--save-every", "1", "--out", str(out))
        while proc.poll() is None and step_of(out / "last.pt") < target:
            time.sleep(0.02)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
        at = step_of(out / "last.pt")
        leftovers = sorted(p.name for p in out.glob(".*.tmp"))
        proc = spikeformers("--resume", str(out))
        _, err = proc.communicate()
        ours = load_checkpoint(out / "last.pt") if proc.returncode == 0 else None
        summary = json.loads((out / "summary.json").read_text()) if proc.returncode == 0 else {}
        exact = bool(ours) and all(
            all(torch.equal(ours[part][k], expected[part][k]) for k in expected[part]) for part in ("model", "ema"))
        rows_in_metrics = [line.split(",")[0] for line in (out / "metrics.csv").read_text().splitlines()[1:]]
        best = load_checkpoint(out / "best.pt")["run"]["test_acc1"] if (out / "best.pt").is_file() else None
        rows.append({"kill": i + 1, "after_step": at, "mid_run": 0 <= at < 12, "tmp_left_by_kill": leftovers, "resume_exit": proc.returncode,
                     "exact": exact, "metrics_epochs": rows_in_metrics, "best_matches": best == summary.get("best_test_acc1"),
                     "tmp_after_resume": sorted(p.name for p in out.glob(".*.tmp")), "traceback": "Traceback" in err})
        print(f"kill {i + 1}/{kills} at step {at}: resume exit {proc.returncode}, exact {exact}", flush=True)
        shutil.rmtree(out)
    return rows


def report(checkpoints: list[dict], kills: list[dict], command: str, seconds: float) -> str:
    count = lambda rows, key, value: sum(1 for r in rows if r[key] == value)  # noqa: E731
    lines = ["# Hostile runs", "", f"Command: `{command}` ({seconds / 60:.1f} min; load average at the end: "
             f"{os.getloadavg()[0]:.2f}; torch {torch.__version__}).", "",
             "## Damaged and forged checkpoints", "",
             "A command may load a variant only when the entry damaged is one it does not read (eval needs no "
             "optimiser, run position or random state; a resume takes the model's name and overrides from the "
             "run's config.yaml), or when a flipped bit left the contents intact.", "",
             "| command | tried | refused, one line naming the file | loaded | raw error | as expected |",
             "|---|---|---|---|---|---|"]
    for i, command_name in enumerate(("eval", "resume")):
        lines.append(f"| `{'eval' if command_name == 'eval' else 'train --resume'}` | {len(checkpoints)} | "
                     f"{count(checkpoints, command_name, 'refused')} | {count(checkpoints, command_name, 'loaded')} | "
                     f"{count(checkpoints, command_name, 'raw')} | {sum(r['as_expected'][i] for r in checkpoints)} |")
    lines += ["", f"Run folders left byte for byte as they were by a refused resume: "
              f"{sum(r['folder_kept'] for r in checkpoints)} of {len(checkpoints)}; planted code (plugin, pickle) "
              f"run: {'YES' if any(r['code_ran'] for r in checkpoints) else 'never'}.", "",
              "| variant | eval | resume | what was said (eval's line, else the resume's) |", "|---|---|---|---|"]
    for r in checkpoints:
        marks = ["" if ok else " (UNEXPECTED)" for ok in r["as_expected"]]
        said = (r["eval_said"] or r["resume_said"]).replace("|", "/")
        lines.append(f"| {r['variant']} | {r['eval']}{marks[0]} | {r['resume']}{marks[1]} | {said} |")
    exact = sum(r["exact"] for r in kills)
    lines += ["", "## SIGKILL mid-run, then `--resume`", "",
              f"{len(kills)} kills ({sum(r['mid_run'] for r in kills)} before the run's last step); {exact} resumed to the uninterrupted run's weights and weight average bit for bit; "
              f"{sum(r['best_matches'] for r in kills)} with best.pt holding the recorded best; "
              f"{sum(r['metrics_epochs'] == ['1', '2', '3'] for r in kills)} with one metrics row per epoch; "
              f"{sum(not r['tmp_after_resume'] for r in kills)} with no temporary file left after the resume; "
              f"{sum(r['traceback'] for r in kills)} tracebacks.", "",
              "| kill | after step | temporary files the kill left | resume exit | exact |", "|---|---|---|---|---|"]
    for r in kills:
        lines.append(f"| {r['kill']} | {r['after_step']} | {', '.join(r['tmp_left_by_kill']) or '-'} | "
                     f"{r['resume_exit']} | {'yes' if r['exact'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=13)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hostile_runs.md"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    began = time.perf_counter()
    command = "python benchmarks/hostile_runs.py" + "".join(
        f" --{k} {v}" for k, v in (("kills", args.kills), ("seed", args.seed)) if v != parser.get_default(k))
    with tempfile.TemporaryDirectory(prefix="hostile-") as work:
        checkpoints = probe_checkpoints(Path(work) / "checkpoints", rng)
        kills = probe_kills(Path(work), args.kills, rng)
    text = report(checkpoints, kills, command, time.perf_counter() - began)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
