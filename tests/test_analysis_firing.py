"""The firing-rate monitor counts the spikes of every neuron layer, per time step too, and leaves no trace."""

import pytest
import torch
from torch import nn

from spikeformers.analysis import FiringRateMonitor, neuron_layers
from spikeformers.layers import BatchLeakNeuron
from spikeformers.models import create_model
from spikeformers.neurons import IF, LIF


class Fire(nn.Module):
    """One neuron on [T, B, C, H, W]: with IF (threshold 1) an input of 1 spikes at once, 0.5 every other step."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron(x)


def test_rates_of_a_known_spike_pattern_overall_and_per_step():
    # sample 0: input 1 everywhere (spikes every step); sample 1: 0.5 (spikes at t = 1, 3); half the pixels 0.
    x = torch.zeros(4, 2, 1, 2, 2)
    x[:, 0, 0, 0] = 1.0
    x[:, 1, 0, 0] = 0.5
    model = Fire(IF())
    with FiringRateMonitor(model) as monitor:
        model(x)
    (rate,) = monitor.results()
    assert rate.name == "neuron" and rate.neurons == 4  # one sample, one step: 1 x 2 x 2
    # per step: sample 0 has 2 of 4 firing every step, sample 1 has 2 of 4 at t = 1 and 3
    assert rate.rate_per_step == pytest.approx([2 / 8, 4 / 8, 2 / 8, 4 / 8])
    assert rate.rate == pytest.approx(12 / 32)
    assert monitor.samples_seen == 2


def test_rates_accumulate_over_batches():
    model = Fire(IF())
    ones, zeros = torch.ones(2, 3, 1, 1, 2), torch.zeros(2, 1, 1, 1, 2)
    with FiringRateMonitor(model) as monitor:
        model(ones)
        model(zeros)
    assert monitor.rates() == {"neuron": pytest.approx(12 / 16)}
    assert monitor.samples_seen == 4


def test_folded_batch_leak_neuron_is_unfolded_time_major():
    # The neuron runs over [T*B, ...] ordered t*B + b; per-step rates must come out per t, not per b.
    x = torch.zeros(4, 2, 1, 1, 1)
    x[0::2, 0] = 1.0  # sample 0 fires at t = 0, 2
    x[:, 1] = 1.0  # sample 1 fires every step
    model = Fire(BatchLeakNeuron(IF()))
    with FiringRateMonitor(model) as monitor:
        model(x)
    (rate,) = monitor.results()
    assert rate.name == "neuron.neuron"
    assert rate.rate_per_step == pytest.approx([1.0, 0.5, 1.0, 0.5])


def test_kept_sample_is_the_first_sample_of_the_first_batch():
    x = torch.zeros(3, 2, 1, 1, 3)
    x[1, 0, 0, 0, 2] = 1.0
    model = Fire(IF())
    with FiringRateMonitor(model, keep_sample=True) as monitor:
        model(x)
        model(torch.ones_like(x))
    kept = monitor.samples()["neuron"]
    assert kept.dtype == torch.bool and kept.shape == (3, 1, 1, 3)
    assert torch.equal(kept, x[:, 0].bool())


def test_kept_sample_of_a_folded_neuron_is_unfolded_too():
    x = torch.zeros(2, 3, 1, 2)
    x[1, 0, 0, 1] = 1.0  # sample 0 fires at t = 1, neuron 1
    x[:, 2] = 1.0  # sample 2 fires everywhere
    model = Fire(BatchLeakNeuron(IF()))
    with FiringRateMonitor(model, keep_sample=True) as monitor:
        model(x)
    assert torch.equal(monitor.samples()["neuron.neuron"], x[:, 0].bool())


def test_finds_every_neuron_of_a_model():
    model = create_model("spikformer_tiny")
    found = neuron_layers(model)
    assert found and all(isinstance(m, LIF) for m in found.values())
    assert len(found) == sum(isinstance(m, LIF) for m in model.modules())


def test_detached_monitor_leaves_no_hooks_and_outputs_are_identical():
    torch.manual_seed(0)
    model = create_model("spikformer_tiny").eval()
    x = (torch.rand(model.time_steps, 2, model.in_channels, *model.img_size) * 3).floor()
    with torch.no_grad():
        before = model(x)
        monitor = FiringRateMonitor(model).attach()
        with pytest.raises(RuntimeError, match="already attached"):
            monitor.attach()
        during = model(x)
        monitor.remove()
        after = model(x)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert monitor.rates() and not monitor.attached
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_checkpointed_training_step_is_counted_once():
    """Activation checkpointing runs each unit's forward again during backward; the monitor and the
    operation counter must count the step as the plain model's."""
    from spikeformers.analysis import OpCounter
    from spikeformers.memory import enable_activation_checkpointing

    counts = {}
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = create_model("spikformer_tiny").train()
        x = (torch.rand(model.time_steps, 2, model.in_channels, *model.img_size,
                        generator=torch.Generator().manual_seed(0)) * 3).floor()
        if checkpointed:
            enable_activation_checkpointing(model)
        with FiringRateMonitor(model) as monitor, OpCounter(model) as counter:
            model(x).sum().backward()
        tallies = {key: (t.flops, t.macs, t.acs) for key, t in counter.tallies.items()}
        counts[checkpointed] = (monitor.rates(), {n: t.elements for n, t in monitor.tallies.items()}, tallies)
    assert counts[True] == counts[False]
    assert sum(counts[False][1].values()) > 0 and counts[False][2]
