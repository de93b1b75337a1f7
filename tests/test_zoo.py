"""Every registered configuration builds at its published size, runs forward and backward on
the CPU, and names itself in the README's zoo table."""

import pytest
import torch

from spikeformers.models import create_model, list_models
from spikeformers.models.registry import model_entry

# Full-size ImageNet models (and Meta-SpikeFormer's 31M-parameter DVS one) take seconds to a
# minute each on 2 cores: run them with -m slow.
HEAVY = {n for n in list_models() if "imagenet" in n} | {"meta_spikformer_dvs"}
FAST = [n for n in list_models() if n not in HEAVY]
SLOW = [pytest.param(n, marks=pytest.mark.slow) for n in sorted(HEAVY)]


@pytest.mark.parametrize("name", FAST + SLOW)
def test_registered_model_runs_forward_and_backward_at_its_size(name):
    torch.manual_seed(0)
    model = create_model(name)
    # two samples: batch-norm layers that see one value per channel (SGLFormer's head) need a batch
    x = (torch.rand(model.time_steps, 2, model.in_channels, *model.img_size) * 3).floor()
    x.requires_grad_()
    logits = model(x)
    assert logits.shape == (2, model.num_classes) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_registered_model_says_what_it_is(name):
    fn = model_entry(name)
    assert fn.__doc__ and fn.info.paper and fn.info.dataset, f"{name} needs a docstring, paper and data set"


@pytest.mark.parametrize("name", FAST + SLOW)
def test_every_neuron_of_every_model_takes_the_neuron_and_its_settings(name):
    from spikeformers.neurons import LIF, PLIF

    model = create_model(name, neuron="plif", neuron_kwargs=dict(tau=3.0, surrogate="atan", alpha=2.5, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert neurons, name
    for n in neurons:
        assert isinstance(n, PLIF), f"{name}: {type(n).__name__} ignores neuron='plif'"
        assert (n.surrogate, n.alpha, n.detach_mem) == ("atan", 2.5, True), name
