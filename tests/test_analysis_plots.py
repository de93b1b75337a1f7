"""The profile's pictures say what they show: a legend beside the bars, a colour key, rates that are named."""

import pytest
import torch

from spikeformers.analysis import plots as plots_module
from spikeformers.analysis import plot_report, profile_model
from spikeformers.data import create_dataset
from spikeformers.models import create_model

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """Each picture's figure, kept open (keyed by file name) while the report is drawn."""
    torch.manual_seed(0)
    model = create_model("spikformer_tiny")
    data = create_dataset("dvs_digits", train=False, time_steps=model.time_steps)
    batch = torch.stack([data[i][0] for i in range(4)], dim=1)  # [T, B, C, H, W]
    report = profile_model(model, batch, keep_sample=True, batch_norm="batch")
    kept, save = {}, plots_module._save

    def keep(fig, path, **kwargs):
        fig.canvas.draw()
        kept[path.name] = fig
        return path

    plots_module._save = keep
    try:
        plot_report(report, tmp_path_factory.mktemp("plots"))
    finally:
        plots_module._save = save
    return kept, report


def test_the_energy_legend_sits_beside_the_bars(figures):
    """Inside the axes some model's bar always reaches the legend (the issue's case); beside them none can."""
    fig = figures[0]["energy.png"]
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())
    for bar in ax.patches:
        assert not legend.overlaps(bar.get_window_extent()), "the legend hides a bar"


def test_the_input_frames_have_a_colour_key(figures):
    fig = figures[0]["input_frames.png"]
    keys = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(keys) == 1 and "ON - OFF" in fig._suptitle.get_text()


def test_the_raster_names_its_rate_and_the_tables(figures):
    fig, report = figures[0]["spike_raster.png"], figures[1]
    rates = {r.name: r.rate for r in report.firing}
    titles = [ax.get_title() for ax in fig.axes]
    assert titles and all("in this sample" in t and "all neurons, all samples" in t for t in titles)
    for title in titles:
        name = title.split(":")[0]
        assert title.endswith(f"all neurons, all samples: {rates[name]:.3f}")
