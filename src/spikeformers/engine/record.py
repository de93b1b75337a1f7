"""What a run leaves behind to be read: its provenance, per-epoch metrics, TensorBoard logs.

``run.json`` records how the run was made (command, package version and git
commit, torch and Python versions, device, processes); ``metrics.csv`` has
one row per epoch; TensorBoard event files are written too when the
``tensorboard`` extra is installed.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..atomic import atomic_write

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc1", "test_loss", "test_acc1", "test_acc5",
                  "ema_test_acc1", "samples_per_s", "epoch_s"]


def git_commit(folder: Path) -> str | None:
    """The commit of the source checkout the package runs from, marked ``+dirty`` when modified."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) if commit else None


def run_info(device: torch.device, world_size: int) -> dict[str, Any]:
    return {
        "command": list(sys.orig_argv),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "spikeformers": __version__,
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "processes": world_size,
        "threads": torch.get_num_threads(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


class MetricsLog:
    """``metrics.csv`` (and TensorBoard when installed): one row per epoch.

    The file is rewritten whole, atomically, at every epoch (it is small), so
    a kill never leaves half a row. On resume the rows after the checkpoint's
    epoch are dropped, so the file matches the run as if it had never stopped.
    """

    def __init__(self, folder: Path, resume_after_epoch: int | None = None, tensorboard: bool = True):
        self.path = folder / "metrics.csv"
        self.rows: list[list[str]] = []
        if resume_after_epoch is not None and self.path.is_file():
            with self.path.open(newline="") as file:
                rows = [row for row in csv.reader(file) if row and row[0] != "epoch"]
            self.rows = [row for row in rows if int(row[0]) <= resume_after_epoch]
        self._rewrite()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the optional extra is not installed
                pass
            else:
                self.writer = SummaryWriter(str(folder / "tensorboard"))

    def _rewrite(self) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([METRIC_COLUMNS, *self.rows])
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))

    def add(self, row: dict[str, Any]) -> None:
        values = [row.get(k, "") for k in METRIC_COLUMNS]
        self.rows.append([f"{v:.6g}" if isinstance(v, float) else str(v) for v in values])
        self._rewrite()
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> dict[str, list[float]]:
    """``metrics.csv`` as columns of numbers (empty cells are NaN)."""
    rows = list(csv.DictReader(path.open()))
    return {key: [float(r[key]) if r.get(key) not in ("", None) else float("nan") for r in rows]
            for key in (rows[0].keys() if rows else METRIC_COLUMNS)}
