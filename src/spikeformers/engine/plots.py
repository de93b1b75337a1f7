"""Pictures of a run: training curves and the confusion matrix (matplotlib, drawn off-screen), and the
per-class accuracy table; each file written atomically, so a kill or a full disk never leaves half of one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from ..atomic import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on a training server
    import matplotlib.pyplot as plt

    return plt


def plot_curves(metrics: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Loss, accuracy and learning rate per epoch, side by side."""
    plt = _pyplot()
    epochs = metrics["epoch"]
    fig, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(13, 3.6))
    loss_ax.plot(epochs, metrics["train_loss"], label="train")
    loss_ax.plot(epochs, metrics["test_loss"], label="test")
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.plot(epochs, metrics["train_acc1"], label="train")
    acc_ax.plot(epochs, metrics["test_acc1"], label="test top-1")
    acc_ax.plot(epochs, metrics["test_acc5"], label="test top-5", linestyle=":")
    if not all(math.isnan(v) for v in metrics.get("ema_test_acc1", [math.nan])):
        acc_ax.plot(epochs, metrics["ema_test_acc1"], label="EMA test top-1", linestyle="--")
    acc_ax.set(title="accuracy", xlabel="epoch", ylim=(0, 1))
    lr_ax.plot(epochs, metrics["lr"])
    lr_ax.set(title="learning rate", xlabel="epoch")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for ax in (loss_ax, acc_ax):
        ax.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax, lr_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)


def plot_confusion(confusion: torch.Tensor, path: Path, class_names: Sequence[str] | None = None,
                   title: str = "") -> None:
    """The confusion matrix, rows normalised to each true class; counts written in small matrices."""
    plt = _pyplot()
    k = confusion.shape[0]
    names = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    counts = confusion.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    size = min(16.0, max(4.5, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 30:
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    _save(plt, fig, path)


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)


def write_per_class(result, path: Path, class_names: Sequence[str] | None = None) -> None:
    """``class,name,samples,correct,accuracy`` per class."""
    confusion = result.confusion
    k = confusion.shape[0]
    names = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    lines = ["class,name,samples,correct,accuracy"]
    for i in range(k):
        samples, correct = int(confusion[i].sum()), int(confusion[i, i])
        lines.append(f"{i},{names[i]},{samples},{correct},{correct / samples if samples else float('nan'):.6g}")
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
