"""CML Spikformer and CML Spikingformer: the stem's pools take the BN output before the neuron, the rest is
the base family's; parameter counts are the authors' (their training logs and READMEs)."""

import pytest
import torch

from spikeformers.layers import SpikingPatchSplitting
from spikeformers.models import CMLSpikformer, CMLSpikingformer, Spikformer, Spikingformer, count_parameters, create_model
from spikeformers.neurons import neuron_factory


def unit_orders(stem: SpikingPatchSplitting) -> list[str]:
    units = ([stem.first] if stem.stream == "pre_activation" else []) + list(stem.stages)
    return [" ".join(u.order) for u in units]


def test_cml_stem_pools_the_batch_norm_output_before_the_neuron():
    neuron = neuron_factory("lif")
    spikes = SpikingPatchSplitting(2, 32, neuron, img_size=(32, 32), pool_stages=(2, 3), cml=True)
    assert unit_orders(spikes) == ["conv bn neuron", "conv bn neuron", "conv bn pool neuron", "conv bn pool neuron"]
    pre = SpikingPatchSplitting(2, 32, neuron, img_size=(32, 32), num_stages=5, pool_stages=(0, 1, 2, 3),
                                widths=[4, 8, 16, 32, 32], stream="pre_activation", rpe=False, cml=True)
    assert unit_orders(pre) == ["conv bn pool", "neuron conv bn pool", "neuron conv bn pool", "neuron conv bn pool",
                                "neuron conv bn"]
    plain = SpikingPatchSplitting(2, 32, neuron, img_size=(32, 32), num_stages=5, pool_stages=(0, 1, 2, 3),
                                  widths=[4, 8, 16, 32, 32], stream="pre_activation", rpe=False)
    assert unit_orders(plain) == ["conv bn", "neuron pool conv bn", "neuron pool conv bn", "neuron pool conv bn",
                                  "neuron pool conv bn"]
    assert pre.grid_size == plain.grid_size == (2, 2)


@pytest.mark.parametrize("cml_name, base_name", [("cml_spikformer_dvs", "spikformer_dvs"),
                                                 ("cml_spikingformer_dvs", "spikingformer_dvs"),
                                                 ("cml_spikformer_cifar10", "spikformer_cifar10")])
def test_cml_model_takes_its_base_familys_weights_and_differs_only_in_the_stem(cml_name, base_name):
    torch.manual_seed(0)
    cml = create_model(cml_name, embed_dim=32, num_heads=2, depth=1)
    base = create_model(base_name, embed_dim=32, num_heads=2, depth=1)
    with torch.no_grad():  # batch norms that let the untrained stem fire
        for m in cml.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(0.5, 1.5)
    assert list(cml.state_dict()) == list(base.state_dict())
    base.load_state_dict(cml.state_dict())
    cml.eval(), base.eval()
    x = (torch.rand(cml.time_steps, 2, cml.in_channels, *cml.img_size, generator=torch.Generator().manual_seed(0))
         * 3).floor()
    with torch.no_grad():
        same = torch.equal(cml(x), base(x))
    assert not same  # the stem's order changes the computation
    base_tau = 1.5 if isinstance(base, Spikingformer) else 2.0
    assert {n.tau for n in base.modules() if hasattr(n, "tau")} == {base_tau}


def test_cml_spikingformer_fires_with_the_authors_time_constants():
    def taus(name):
        return {float(n.tau) for n in create_model(name, embed_dim=32, num_heads=2, depth=1).modules()
                if hasattr(n, "tau")}

    assert taus("cml_spikingformer_dvs") == taus("cml_spikingformer_gesture") == {1.75}
    assert taus("cml_spikingformer_cifar10") == taus("cml_spikingformer_imagenet_8_384") == {2.0}
    assert taus("cml_spikformer_dvs") == {2.0}


def test_cml_classes_default_to_the_cml_stem_and_take_the_option():
    assert CMLSpikformer(embed_dim=32, num_heads=2, depth=1).patch_embed.cml
    assert not CMLSpikformer(embed_dim=32, num_heads=2, depth=1, cml=False).patch_embed.cml
    assert CMLSpikingformer(embed_dim=32, num_heads=2, depth=1).patch_embed.cml
    assert not Spikformer(embed_dim=32, num_heads=2, depth=1).patch_embed.cml


# The authors' counts as created (their training logs, "param count"; the DVS and Gesture ones from the
# CIFAR10-DVS log and the 11th output), less the LayerNorms their forward never uses (2 x 2D per block).
@pytest.mark.parametrize("name, as_created, depth, dim", [
    ("cml_spikingformer_dvs", 2_568_714, 2, 256),
    ("cml_spikingformer_dvs_t10", 2_568_714, 2, 256),
    ("cml_spikingformer_gesture", 2_568_714 + 257, 2, 256),
    ("cml_spikformer_dvs", 2_568_714, 2, 256),
    ("cml_spikformer_gesture", 2_568_714 + 257, 2, 256),
    ("cml_spikformer_cifar10", 9_330_874, 4, 384),
    ("cml_spikformer_cifar100", 9_330_874 + 90 * 385, 4, 384),
    ("cml_spikingformer_cifar10", 9_326_266, 4, 384),
    ("cml_spikingformer_cifar100", 9_360_916, 4, 384),
    pytest.param("cml_spikingformer_imagenet_8_384", 16_828_312, 8, 384, marks=pytest.mark.slow),
    pytest.param("cml_spikingformer_imagenet_8_512", 29_705_768, 8, 512, marks=pytest.mark.slow),
    pytest.param("cml_spikingformer_imagenet_8_768", 66_363_208, 8, 768, marks=pytest.mark.slow),
    pytest.param("cml_spikformer_imagenet_8_768", 66_363_208, 8, 768, marks=pytest.mark.slow),
])
def test_parameter_counts_equal_the_authors_logs(name, as_created, depth, dim):
    assert count_parameters(create_model(name)) == as_created - depth * 4 * dim
