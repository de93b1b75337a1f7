"""Every registered configuration builds at its published size, runs forward and backward on
the CPU, and names itself in the README's zoo table."""

import pytest
import torch

from spikeformers.models import create_model, list_models
from spikeformers.models.registry import model_entry
from spikeformers.neurons import LIF

from zoo_selection import zoo_params  # noqa: E402  (which configurations CI builds at full size)

ZOO = zoo_params(full_size=True)


@pytest.mark.parametrize("name", ZOO)
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


@pytest.mark.parametrize("name", ZOO)
def test_every_neuron_of_every_model_takes_the_neuron_and_its_settings(name):
    from spikeformers.neurons import PLIF

    model = create_model(name, neuron="plif", neuron_kwargs=dict(tau=3.0, surrogate="atan", alpha=2.5, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert neurons, name
    for n in neurons:
        assert isinstance(n, PLIF), f"{name}: {type(n).__name__} ignores neuron='plif'"
        assert (n.surrogate, n.alpha, n.detach_mem) == ("atan", 2.5, True), name


class WidthProbe(LIF):
    """A per-channel neuron (its constructor takes ``channels``): it keeps the width its part said it would
    see and the shape of every input it does see."""

    def __init__(self, channels: int, channel_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.channel_dim = channels, channel_dim
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return super().forward(x)


# One configuration of every family, shrunk, with the input side it needs.
ONE_PER_FAMILY = {
    "spikformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "tim_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "spikformer_v2_dvs": (32, dict(embed_dim=16, depth=1, num_heads=2)),
    "spikingformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "cml_spikformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "cml_spikingformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "spike_driven_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "qkformer_dvs": (32, dict(embed_dim=16, depths=(1, 1), num_heads=2)),
    "sglformer_dvs": (24, dict(embed_dim=16, depth=1, num_heads=2)),
    "e_spikeformer_s": (24, dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2)),
    "meta_spikformer_dvs": (24, dict(embed_dims=(8, 16, 16, 16), depths=(1, 1, 1, 1, 1), num_heads=2, kd=True)),
    "spikingresformer_dvs": (24, dict(dims=(8, 16, 24), depths=(1, 1, 1), num_heads=(1, 2, 3), group_size=8)),
    "spikformer_semm_cifar10": (24, dict(embed_dim=16, depth=1, expert_dim=8)),
    "swt_dvs": (32, dict(embed_dim=16, depth=1)),
}


def test_width_check_covers_every_family():
    families = {model_entry(name).model_class for name in list_models()}
    assert families == {model_entry(name).model_class for name in ONE_PER_FAMILY}


@pytest.mark.parametrize("name", sorted(ONE_PER_FAMILY))
def test_every_neuron_is_built_for_the_width_it_sees(name):
    """A neuron that takes ``channels`` gets, from every part, the channel count of its input and the axis
    of that count (QKFormer's batch-leak neuron sees [T*B, N, C]; TIM's see [t, B, heads, N, d])."""
    side, sizes = ONE_PER_FAMILY[name]
    torch.manual_seed(0)
    model = create_model(name, img_size=side, in_channels=2, num_classes=10, time_steps=2, neuron=WidthProbe,
                         **sizes).train()
    model((torch.rand(2, 2, 2, side, side) * 3).floor())
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, LIF)}
    assert neurons and all(isinstance(m, WidthProbe) for m in neurons.values())
    for where, neuron in neurons.items():
        assert neuron.seen, f"{where} never ran"
        for shape in neuron.seen:
            assert shape[neuron.channel_dim] == neuron.channels, (
                f"{where} was built for {neuron.channels} channels on axis {neuron.channel_dim}, saw {shape}")
