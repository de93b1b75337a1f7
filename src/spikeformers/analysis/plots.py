"""Pictures of a :class:`~spikeformers.analysis.report.ProfileReport`, written as PNG files.

- ``firing_rates.png``: mean firing rate per neuron layer (bars);
- ``energy.png``: energy per sample per counted layer, MAC and AC parts;
- with a kept sample (``profile_model(..., keep_sample=True)``):
  ``input_frames.png`` (the sample's frames, one per time step),
  ``spike_raster.png`` (spikes of some neurons of a few layers over time) and
  ``attention_<layer>.png`` (``Q K^T`` per head, summed over time).

matplotlib draws off screen (the Agg backend); it is imported here only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_write
from .report import ProfileReport

RASTER_LAYERS = 6  # layers shown in the raster, evenly spread from the first to the last
RASTER_NEURONS = 200  # neurons shown per layer


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: ProfileReport, out_dir: str | Path) -> list[Path]:
    """Write every picture the report has data for into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_firing_rates(report, out / "firing_rates.png"), plot_energy(report, out / "energy.png")]
    if report.input_sample is not None:
        paths.append(plot_input_frames(report.input_sample, out / "input_frames.png"))
    if report.spike_samples:
        layer_rates = {r.name: r.rate for r in report.firing}
        paths.append(plot_raster(report.spike_samples, out / "spike_raster.png", layer_rates))
    for layer, maps in report.attention_maps.items():
        paths.append(plot_attention(layer, maps, out / f"attention_{layer.replace('.', '_')}.png"))
    return paths


def plot_firing_rates(report: ProfileReport, path: Path) -> Path:
    plt = _pyplot()
    names = [r.name for r in report.firing]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(names) + 1.5))
    ax.barh(range(len(names)), [r.rate for r in report.firing], color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("firing rate (spikes per neuron per time step)")
    ax.set_title(f"{report.model}: firing rate per neuron layer (mean {report.mean_firing_rate:.4f})", fontsize=9)
    return _save(fig, path)


def plot_energy(report: ProfileReport, path: Path) -> Path:
    plt = _pyplot()
    rows = report.layers
    T, model = report.time_steps, report.energy_model
    mac = [model.millijoules(r.macs_per_step * T, 0) for r in rows]
    ac = [model.millijoules(0, r.acs_per_step * T) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(rows) + 1.8))
    ax.barh(range(len(rows)), mac, color="tab:red", label=f"MAC ({model.e_mac_pj:g} pJ)")
    ax.barh(range(len(rows)), ac, left=mac, color="tab:green", label=f"AC ({model.e_ac_pj:g} pJ)")
    ax.set_yticks(range(len(rows)), [r.layer for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("energy per sample (mJ)")
    ax.set_title(f"{report.model}: {report.energy_mj:.4f} mJ per sample, T={T}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars, over none
    return _save(fig, path)


def plot_input_frames(frames: torch.Tensor, path: Path) -> Path:
    """``[T, C, H, W]`` frames; two channels (OFF, ON events) are drawn as ON - OFF, with a colour key."""
    plt = _pyplot()
    frames = frames.float()
    if frames.shape[1] == 2:
        images, cmap, key = frames[:, 1] - frames[:, 0], "coolwarm", "ON - OFF events per pixel"
    elif frames.shape[1] == 3:
        images, cmap, key = frames.permute(0, 2, 3, 1), None, None
        images = (images - images.min()) / (images.max() - images.min()).clamp_min(1e-12)
    else:
        images, cmap, key = frames.sum(1), "gray", "sum over channels"
    T = frames.shape[0]
    fig, axes = plt.subplots(1, T, figsize=(1.3 * T + 0.9, 1.7), squeeze=False)
    limit = float(images.abs().max()) or 1.0
    bounds = dict(vmin=-limit, vmax=limit) if cmap == "coolwarm" else {}  # 0 is white: no event, or as many ON as OFF
    for t, ax in enumerate(axes[0]):
        shown = ax.imshow(images[t].numpy(), cmap=cmap, **bounds)
        ax.set_title(f"t={t}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"input sample ({'RGB' if key is None else key})", fontsize=9)
    fig.tight_layout()
    if key is not None:
        fig.colorbar(shown, ax=axes[0].tolist(), fraction=0.02, pad=0.01).ax.tick_params(labelsize=6)
    return _save(fig, path, layout=False)


def plot_raster(samples: dict[str, torch.Tensor], path: Path, layer_rates: dict[str, float] | None = None) -> Path:
    """Spikes (time x neuron) of the first ``RASTER_NEURONS`` neurons of a few layers, in one sample.

    Each panel's rate is that of the neurons shown, in that sample; the profile table's rate (given in
    ``layer_rates``, named "all") is the layer's mean over all its neurons and every sample profiled.
    """
    plt = _pyplot()
    names = list(samples)
    if len(names) > RASTER_LAYERS:
        step = (len(names) - 1) / (RASTER_LAYERS - 1)
        names = [names[round(i * step)] for i in range(RASTER_LAYERS)]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        spikes = samples[name].reshape(samples[name].shape[0], -1)[:, :RASTER_NEURONS]  # [T, n]
        ax.imshow(spikes.float().numpy(), cmap="Greys", aspect="auto", interpolation="nearest", vmin=0, vmax=1)
        ax.set_ylabel("t", fontsize=7)
        overall = f"; all neurons, all samples: {layer_rates[name]:.3f}" if layer_rates and name in layer_rates else ""
        ax.set_title(f"{name}: rate of the first {spikes.shape[1]} neurons in this sample "
                     f"{spikes.float().mean():.3f}{overall}", fontsize=8)
    axes[-1, 0].set_xlabel("neuron (black: spike)")
    return _save(fig, path)


def plot_attention(layer: str, maps: torch.Tensor, path: Path) -> Path:
    """``[heads, N, N]`` maps, one panel per head."""
    plt = _pyplot()
    heads = maps.shape[0]
    cols = min(heads, 8)
    rows = (heads + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows + 0.4), squeeze=False)
    for h, ax in enumerate(axes.flat):
        ax.axis("off")
        if h < heads:
            ax.imshow(maps[h].numpy(), cmap="viridis")
            ax.set_title(f"head {h}", fontsize=7)
    fig.suptitle(f"{layer}: Q K^T per head (tokens x tokens, summed over time)", fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path, layout: bool = True) -> Path:
    if layout:
        fig.tight_layout()
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path
