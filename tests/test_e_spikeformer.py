"""E-SpikeFormer (Spike-driven Transformer V3): the integer spiking neuron, the head's unnormalised counts,
the attention's geometry and the published sizes."""

import pytest
import torch

from spikeformers.models import ESpikeFormer, count_parameters, create_model
from spikeformers.models.e_spikeformer import LinearSpikingAttention, MultiSpike
from spikeformers.neurons import neuron_factory


def test_multispike_fires_integer_counts_over_its_maximum_with_a_straight_through_gradient():
    x = torch.tensor([-1.0, 0.0, 0.4, 0.6, 1.5, 2.5, 3.9, 4.0, 7.0], requires_grad=True)
    y = MultiSpike(max_value=4)(x)
    # round half to even, as torch.round: 0.4 -> 0, 0.6 -> 1, 1.5 -> 2, 2.5 -> 2
    assert y.tolist() == [0, 0, 0, 0.25, 0.5, 0.5, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0]  # zero only outside [0, 4]


def test_multispike_refuses_a_maximum_below_one():
    with pytest.raises(ValueError, match="max_value"):
        MultiSpike(max_value=0)


def test_head_fires_counts_not_divided_by_the_maximum():
    model = create_model("e_spikeformer_t", embed_dims=(8, 8, 8, 16), num_heads=2, img_size=32, num_classes=3).eval()
    head = model.head
    assert head.gain == 4
    feats = torch.full((1, 1, 16, 2, 2), 2.2)
    expected = head.fc(torch.full((1, 16), 2.0))  # round(2.2) = 2 counts, the authors' MultiSpike(Norm=1)
    assert torch.allclose(head(feats), expected)


def test_another_neuron_replaces_multispike_everywhere_and_the_head_gain_is_one():
    model = create_model("e_spikeformer_t", embed_dims=(8, 8, 8, 16), num_heads=2, img_size=32, neuron="lif")
    assert not any(isinstance(m, MultiSpike) for m in model.modules())
    assert model.head.gain == 1.0


def test_attention_value_is_wider_and_the_scale_is_twice_the_inverse_root_head_width():
    attn = LinearSpikingAttention(16, 2, neuron_factory("multispike"))
    assert attn.v.conv.out_channels == 64 and attn.proj.conv.in_channels == 64
    assert attn.scale == pytest.approx(2 / 8 ** 0.5)
    x = torch.rand(1, 2, 16, 3, 3) * 3
    assert attn(x).shape == x.shape


def test_both_product_orders_give_the_same_attention():
    torch.manual_seed(0)
    attn = LinearSpikingAttention(16, 2, neuron_factory("multispike")).double().eval()
    q, k, v = (torch.randint(0, 5, (1, 2, 2, n, d)).double() / 4 for n, d in ((9, 8), (9, 8), (9, 32)))
    assert torch.equal(q @ (k.transpose(-2, -1) @ v), (q @ k.transpose(-2, -1)) @ v)


@pytest.mark.parametrize("name, authors", [
    # the authors' builders' comments: 19.0M, 10.0M, 5.1M (their counts as created; every tensor is used)
    ("e_spikeformer_l", 18_987_504),
    ("e_spikeformer_m", 10_023_112),
    ("e_spikeformer_s", 5_105_608),
    ("e_spikeformer_t", 2_702_048),
    ("e_spikeformer_hardvs", 18_740_004),  # Efficient_Spiking_Transformer_scaling_8_19M, built from their file
])
def test_parameter_counts(name, authors):
    assert count_parameters(create_model(name)) == authors


def test_configurations_run_static_images_at_one_time_step():
    with torch.device("meta"):
        model = create_model("e_spikeformer_s")
    assert isinstance(model, ESpikeFormer) and model.time_steps == 1 and model.img_size == (224, 224)
    assert model.depths == (1, 1, 2, 6, 2)


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="embed_dims"):
        ESpikeFormer(embed_dims=(8, 16, 16))
    with pytest.raises(ValueError, match="depths"):
        ESpikeFormer(depths=(1, 1, 1))
    with pytest.raises(ValueError, match="mlp_ratio"):
        ESpikeFormer(mlp_ratio=2.5)


def test_hardvs_model_fires_undivided_counts_and_scales_its_branches():
    with torch.device("meta"):
        model = create_model("e_spikeformer_hardvs")
    assert (model.time_steps, model.in_channels, model.num_classes) == (8, 2, 300)
    neurons = [m for m in model.modules() if isinstance(m, MultiSpike)]
    assert neurons and all(n.norm == 1 and n.max_value == 4 for n in neurons)
    assert model.head.gain == 1
    block = model.stages[3][1]
    assert block.scaled and block.layer_scale1.shape == (256,)


def test_layer_scale_multiplies_each_branch_per_channel():
    torch.manual_seed(0)
    model = create_model("e_spikeformer_t", embed_dims=(8, 8, 8, 16), num_heads=2, img_size=32,
                         layer_scale=0.0).eval()
    block = model.stages[3][1]
    x = torch.rand(1, 2, 8, 2, 2) * 3
    assert torch.equal(block(x), x)  # every branch scaled to nothing


def test_spike_norm_sets_multispike_and_leaves_another_neuron_alone():
    lif = create_model("e_spikeformer_hardvs", embed_dims=(8, 8, 8, 16), num_heads=2, img_size=32, neuron="lif")
    assert not any(isinstance(m, MultiSpike) for m in lif.modules()) and lif.head.gain == 1.0
    counts = create_model("e_spikeformer_t", embed_dims=(8, 8, 8, 16), num_heads=2, img_size=32, spike_norm=2)
    assert {m.norm for m in counts.modules() if isinstance(m, MultiSpike)} == {2.0} and counts.head.gain == 2.0
