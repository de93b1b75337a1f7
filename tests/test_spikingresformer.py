"""SpikingResformer: parameter counts of every configuration equal to the authors' code's, DSSA's running
firing rates (updated in training before use, left alone in evaluation), the polarity-sum input channel,
and the sizes the stages cannot divide refused with the reason."""

import pytest
import torch

from spikeformers.models import count_parameters, create_model
from spikeformers.models.spikingresformer import DualSpikeSelfAttention
from spikeformers.neurons import PLIF, neuron_factory

# The authors' factories (xyshi2000/SpikingResformer models/spikingresformer.py) built with the same
# classes, image size and T, counted with sum(p.numel() for p in model.parameters()).
AUTHORS_PARAMETERS = {
    "spikingresformer_imagenet_ti": 11_180_992,
    "spikingresformer_imagenet_s": 17_813_824,
    "spikingresformer_imagenet_m": 35_601_472,
    "spikingresformer_imagenet_l": 60_375_680,
    "spikingresformer_cifar10": 10_793_152,
    "spikingresformer_cifar100": 10_827_712,
    "spikingresformer_dvs": 10_793_152,
    "spikingresformer_gesture": 2_709_830,
}
TINY = dict(dims=(8, 16, 24), num_heads=(1, 2, 3), group_size=8, img_size=16, time_steps=2)


@pytest.mark.parametrize("name, params", sorted(AUTHORS_PARAMETERS.items()))
def test_parameter_counts_equal_the_authors_code(name, params):
    with torch.device("meta"):  # shapes only: the ImageNet models take seconds to initialise
        model = create_model(name)
    assert count_parameters(model) == params


def test_gesture_configuration_uses_plif_with_the_arctan_surrogate():
    with torch.device("meta"):
        model = create_model("spikingresformer_gesture")
    neurons = [m for m in model.modules() if isinstance(m, PLIF)]
    assert len(neurons) == 38 and all(n.surrogate == "atan" and n.alpha == 2.0 for n in neurons)


def dssa(training: bool) -> tuple[DualSpikeSelfAttention, torch.Tensor]:
    torch.manual_seed(0)
    module = DualSpikeSelfAttention(8, 2, patch_size=2, num_patches=16, neuron=neuron_factory("lif", surrogate="atan"))
    return module.train(training), torch.randn(2, 3, 8, 8, 8) * 2 + 1


def test_dssa_sets_its_running_rates_from_the_first_training_batch_then_averages():
    module, x = dssa(training=True)
    module(x)
    first = module.firing_rate_x.clone()
    spikes = module.in_neuron(x).reshape(2, 3, 2, 4, 64)
    assert torch.allclose(first, spikes.mean((0, 1, 3, 4), keepdim=True))
    module(x * 0.5)  # fewer spikes: the rate moves by 1 / 1000 of the difference
    later = module.in_neuron(x * 0.5).reshape(2, 3, 2, 4, 64).mean((0, 1, 3, 4), keepdim=True)
    assert torch.allclose(module.firing_rate_x, first * 0.999 + later * 0.001)
    assert (module.firing_rate_attn > 0).all()


def test_dssa_leaves_its_running_rates_alone_in_evaluation():
    module, x = dssa(training=True)
    module(x)
    rates = (module.firing_rate_x.clone(), module.firing_rate_attn.clone())
    module.eval()(x * 0.5)
    assert torch.equal(module.firing_rate_x, rates[0]) and torch.equal(module.firing_rate_attn, rates[1])


def test_an_untrained_model_evaluates_with_the_batch_rates_instead_of_dividing_by_zero():
    module, x = dssa(training=False)
    out = module(x)
    assert torch.isfinite(out).all() and not module.firing_rate_x.any()


def test_sum_channel_adds_the_polarity_sum_as_a_third_input_channel():
    model = create_model("spikingresformer_dvs", **TINY)
    assert model.stem.conv.in_channels == 3
    x = (torch.rand(2, 2, 2, 16, 16) * 3).floor()
    seen = []
    model.stem.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model(x)
    assert torch.equal(seen[0], torch.cat([x, x.sum(2, keepdim=True)], 2))


def test_sizes_the_stages_cannot_divide_are_refused_naming_the_patch_size():
    with pytest.raises(ValueError, match="DSSA patch size 4"):
        create_model("spikingresformer_dvs", **{**TINY, "img_size": 18})
    with pytest.raises(ValueError, match="group_size 64"):
        create_model("spikingresformer_dvs", dims=(8, 16, 24), num_heads=(1, 2, 3))
