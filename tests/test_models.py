"""Spikformer and the registry: the DVS model computed exactly as the spec's layer table
(`shared/specs/spikformer.md`, section 3.2) says, its parameter count, and every override
reaching the layers that use it."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.layers import SpikingSelfAttention
from spikeformers.models import count_parameters, create_model, list_models
from spikeformers.neurons import IF, LIF, PLIF
from spec_reference import batch_norm, lif


def authors_dvs_forward(model, x_btchw, training):
    """The spec's table for `cifar10dvs/model.py`, step by step, on the model's weights."""
    x = x_btchw.permute(1, 0, 2, 3, 4)  # step 0
    T, B = x.shape[:2]
    h = x.flatten(0, 1)
    for stage in model.patch_embed.stages:  # steps 2-8: Conv -> BN -> LIF -> MaxPool, four times
        conv, bn = stage.conv, stage.bn
        h = batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training)
        h = lif(h.reshape(T, B, *h.shape[1:])).flatten(0, 1)
        h = F.max_pool2d(h, 3, 2, 1)
    conv, bn = model.patch_embed.rpe.conv, model.patch_embed.rpe.bn  # step 9: RPE
    r = batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training)
    r = lif(r.reshape(T, B, *r.shape[1:])).flatten(0, 1)
    x = (h + r).reshape(T, B, 256, 64)  # step 10
    for block in model.blocks:
        a = block.attn
        xf = x.flatten(0, 1)  # [TB, C, N]

        def conv1d_bn_lif(inp, lin_bn, out_ch, threshold=1.0):
            y = F.conv1d(inp, lin_bn.linear.weight.unsqueeze(-1), lin_bn.linear.bias)
            return lif(batch_norm(y, lin_bn.bn, training).reshape(T, B, out_ch, 64), threshold)

        q, k, v = (conv1d_bn_lif(xf, p, 256).transpose(-1, -2).reshape(T, B, 64, 16, 16).permute(0, 1, 3, 2, 4)
                   for p in (a.q, a.k, a.v))  # steps 12-14
        y = ((q @ k.transpose(-2, -1)) @ v) * 0.25  # steps 15-16
        y = y.transpose(3, 4).reshape(T, B, 256, 64)  # step 17
        y = lif(y, 0.5).flatten(0, 1)  # step 18
        x = x + conv1d_bn_lif(y, a.proj, 256)  # steps 19-20
        m = conv1d_bn_lif(x.flatten(0, 1), block.mlp.fc1, 1024)  # step 21
        x = x + conv1d_bn_lif(m.flatten(0, 1), block.mlp.fc2, 256)  # steps 22-23
    return F.linear(x.mean(3).mean(0), model.head.fc.weight, model.head.fc.bias)  # steps 24-25


def randomise_batch_norms(model, generator):
    with torch.no_grad():
        for bn in [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]:
            # strong enough that every layer fires (5-25% in eval mode) rather than falling silent
            bn.weight.uniform_(1.0, 2.5, generator=generator)
            bn.bias.uniform_(0.0, 1.0, generator=generator)
            bn.running_mean.uniform_(-0.2, 0.2, generator=generator)
            bn.running_var.uniform_(0.3, 1.0, generator=generator)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_spikformer_dvs_matches_the_spec_layer_table_in_float64(training):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("spikformer_dvs", time_steps=4).double()
    randomise_batch_norms(model, g)
    model.train(training)
    x = (torch.rand(4, 2, 2, 128, 128, generator=g, dtype=torch.float64) * 4).floor()  # event counts 0..3
    x_lib = x.clone().requires_grad_()
    x_ref = x.transpose(0, 1).clone().requires_grad_()
    logits = model(x_lib)
    ref = authors_dvs_forward(model, x_ref, training)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    g_out = torch.randn(2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    grad_ref = x_ref.grad.transpose(0, 1)
    assert grad_ref.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, grad_ref, rtol=1e-6, atol=1e-6 * grad_ref.abs().max().item())


def test_spikformer_dvs_has_the_specs_effective_parameter_count():
    # 2,585,610 in the authors' model less 18,944 unused (pos_embed and five LayerNorms)
    assert count_parameters(create_model("spikformer_dvs")) == 2_566_666


def test_list_models_filters_by_pattern():
    assert "spikformer_dvs" in list_models()
    assert list_models("spikformer_dvs*") == ["spikformer_dvs", "spikformer_dvs_t10"]
    assert list_models("nothing*") == []


def test_unknown_model_name_lists_the_closest():
    with pytest.raises(ValueError, match="Unknown model 'spikformer_dsv'.*Closest: spikformer_dvs"):
        create_model("spikformer_dsv")


def test_unknown_override_names_the_closest_option():
    with pytest.raises(TypeError, match="no option 'embed_dims'.*Did you mean embed_dim"):
        create_model("spikformer_tiny", embed_dims=64)


def test_overrides_reach_the_layers_that_use_them():
    model = create_model("spikformer_tiny", time_steps=3, img_size=(20, 16), in_channels=1, num_classes=7,
                         embed_dim=48, depth=3, num_heads=6, mlp_ratio=2.0)
    assert model.time_steps == 3
    assert model.patch_embed.stages[0].conv.in_channels == 1
    assert model.patch_embed.grid_size == (5, 4)
    assert model.patch_embed.rpe.conv.out_channels == 48
    assert len(model.blocks) == 3
    assert all(b.attn.num_heads == 6 and b.mlp.fc1.linear.out_features == 96 for b in model.blocks)
    assert model.head.fc.out_features == 7
    assert model(torch.rand(3, 2, 1, 20, 16)).shape == (2, 7)


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("spikformer_tiny", neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="qgate", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 4 + 1 + 1 * (5 + 2)  # SPS stages, RPE, per block q/k/v/attn/proj + 2 MLP
    assert all(type(n) is cls and n.surrogate == "qgate" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    attn_neurons = {id(m.attn_neuron) for m in model.modules() if isinstance(m, SpikingSelfAttention)}
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in attn_neurons else 0.8)


def test_attention_threshold_is_its_own_override():
    model = create_model("spikformer_tiny", attn_threshold=0.25, neuron_kwargs=dict(tau=3.0))
    attn = model.blocks[0].attn
    assert attn.attn_neuron.v_threshold == 0.25 and attn.attn_neuron.tau == 3.0
    assert attn.q_neuron.v_threshold == 1.0


@pytest.mark.parametrize("shape", [(4, 2, 2, 32, 32), (4, 2, 3, 24, 24), (2, 3, 24, 24), (4, 2, 2, 24)])
def test_wrong_input_shape_names_the_expected_layout(shape):
    model = create_model("spikformer_tiny")
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=24, W=24"):
        model(torch.zeros(shape))


def test_static_images_are_repeated_over_time_steps():
    model = create_model("spikformer_tiny", in_channels=3, time_steps=2).eval()
    img = torch.rand(2, 3, 24, 24) * 3
    assert torch.equal(model(img), model(img.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


def test_weights_trained_at_one_number_of_time_steps_run_at_another():
    """The error for a wrong T says to rebuild the model with the new T and load the same weights: that works."""
    trained = create_model("spikformer_tiny")
    longer = create_model("spikformer_tiny", time_steps=7)
    longer.load_state_dict(trained.state_dict())
    assert longer(torch.rand(7, 2, 2, 24, 24)).shape == (2, 10)


def authors_cifar_forward(model, x_bchw, training, T=4):
    """The spec's section 4 (`cifar10/model.py`): the image repeated T times, SPS without the
    first two pools, nn.Linear projections on [T, B, N, C] with BatchNorm1d over the transposed
    tokens, and (Q K^T) * 0.125 before V."""
    x = x_bchw.unsqueeze(0).repeat(T, 1, 1, 1, 1)
    B = x.shape[1]
    h = x.flatten(0, 1)
    for stage in model.patch_embed.stages:
        conv, bn = stage.conv, stage.bn
        h = batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training)
        h = lif(h.reshape(T, B, *h.shape[1:])).flatten(0, 1)
        if stage.pool is not None:
            h = F.max_pool2d(h, 3, 2, 1)
    conv, bn = model.patch_embed.rpe.conv, model.patch_embed.rpe.bn
    r = lif(batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training).reshape(T, B, 384, 8, 8))
    x = (r + h.reshape(T, B, 384, 8, 8)).flatten(-2).transpose(-1, -2)  # [T, B, N, C]

    def linear_bn_lif(inp, lin_bn, threshold=1.0):
        y = F.linear(inp.flatten(0, 1), lin_bn.linear.weight, lin_bn.linear.bias)  # [TB, N, C']
        y = batch_norm(y.transpose(-1, -2), lin_bn.bn, training).transpose(-1, -2)
        return lif(y.reshape(T, B, 64, -1), threshold)

    for block in model.blocks:
        a = block.attn
        q, k, v = (linear_bn_lif(x, p).reshape(T, B, 64, 12, 32).permute(0, 1, 3, 2, 4) for p in (a.q, a.k, a.v))
        attn = (q @ k.transpose(-2, -1)) * 0.125
        y = (attn @ v).transpose(2, 3).reshape(T, B, 64, 384)
        x = x + linear_bn_lif(lif(y, 0.5), a.proj)
        x = x + linear_bn_lif(linear_bn_lif(x, block.mlp.fc1), block.mlp.fc2)
    return F.linear(x.mean(2).mean(0), model.head.fc.weight, model.head.fc.bias)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_spikformer_cifar10_matches_the_spec_in_float64(training):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = create_model("spikformer_cifar10", depth=2).double()
    randomise_batch_norms(model, g)
    model.train(training)
    x = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64)  # normalised images
    x_lib, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    logits, ref = model(x_lib), authors_cifar_forward(model, x_ref, training)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    logits.sum().backward()
    ref.sum().backward()
    assert x_ref.grad.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, x_ref.grad, rtol=1e-6, atol=1e-6 * x_ref.grad.abs().max().item())


def test_cifar_configuration_initialises_every_linear_like_timm():
    model = create_model("spikformer_cifar10")
    q = model.blocks[0].attn.q.linear
    assert q.bias is not None and torch.count_nonzero(q.bias) == 0
    assert abs(q.weight.std().item() - 0.02) < 0.002
    dvs_q = create_model("spikformer_dvs").blocks[0].attn.q.linear  # Conv1d default: kaiming-uniform
    assert dvs_q.bias is None and dvs_q.weight.abs().max() <= 1 / 256**0.5 + 1e-6


# The authors' counts as created, less the tensors their forward never uses (spec sections 3.6, 4.5, 5.4).
@pytest.mark.parametrize("name,as_created,unused", [
    ("spikformer_dvs", 2_585_610, 16_384 + 5 * 512),
    ("spikformer_dvs_t10", 2_585_610, 16_384 + 5 * 512),
    ("spikformer_gesture", 2_585_610 + 257, 16_384 + 5 * 512),  # an 11th output
    ("spikformer_cifar10", 9_330_874, 4 * 1_536),
    ("spikformer_cifar100", 9_365_524, 4 * 1_536),
    ("spikformer_imagenet_8_384", 16_828_312, 8 * 2 * 768),
    ("spikformer_imagenet_8_512", 29_705_768, 8 * 2 * 1_024),
    ("spikformer_imagenet_8_768", 66_363_208, 8 * 2 * 1_536),
])
def test_parameter_counts_equal_the_specs(name, as_created, unused):
    assert count_parameters(create_model(name)) == as_created - unused
