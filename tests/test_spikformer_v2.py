"""Spikformer V2: parameter counts equal the spec's figures (`shared/specs/spikformer_v2.md`, sections 2
and 6); the SCS stem computed step by step as section 6 describes it, in float64, on the module's own
weights; token counts; every neuron setting reaching every neuron; training; input checks."""

import pytest
import torch
import torch.nn.functional as F

import spikeformers.models.spikformer_v2 as v2_models  # registers the configurations
from spikeformers.models.spikformer_v2 import SpikingConvolutionalStem
from spikeformers.layers import SpikingSelfAttention
from spikeformers.models.registry import count_parameters, create_model, list_models, model_entry
from spikeformers.neurons import IF, LIF, PLIF, neuron_factory
from spec_reference import batch_norm, lif

NAMES = ["spikformer_v2_dvs", "spikformer_v2_imagenet_8_384", "spikformer_v2_imagenet_8_512"]


def tiny(name="spikformer_v2_dvs", **overrides):
    """A narrow, shallow override of a registered configuration (same stem structure, cheap on a CPU)."""
    return create_model(name, **{**dict(embed_dim=32, num_heads=2, depth=1, time_steps=2), **overrides})


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name,expected", [
    ("spikformer_v2_imagenet_8_384", 29_111_272),  # spec section 6 (third-party 29.11M)
    ("spikformer_v2_imagenet_8_512", 51_545_064),  # spec section 6 (third-party 51.55M)
    ("spikformer_v2_dvs", 8_032_650),  # inferred 2-256 configuration, 2 input channels, 10 classes
])
def test_parameter_counts_equal_the_specs_figures(name, expected):
    assert count_parameters(create_model(name)) == expected


def test_sixteen_layer_768_wide_model_has_the_papers_172m():
    with torch.device("meta"):  # 172M parameters: count without allocating them
        model = v2_models.SpikformerV2(embed_dim=768, depth=16, num_heads=12, img_size=224, in_channels=3, num_classes=1000)
    assert count_parameters(model) == 172_278_760  # spec section 6: 172.28M, the abstract's "172M"


def test_everything_after_the_stem_is_spikformer_v1():
    """The V2 extra sits in the stem only (spec section 3): blocks + head count as V1's at the same L-D."""
    with torch.device("meta"):  # V1 is registered by the package import above
        for d in (384, 512):
            v1 = create_model(f"spikformer_imagenet_8_{d}")
            v2 = create_model(f"spikformer_v2_imagenet_8_{d}")
            assert (count_parameters(v2) - count_parameters(v2.patch_embed)
                    == count_parameters(v1) - count_parameters(v1.patch_embed))
            assert 98.2 < count_parameters(v2.patch_embed) / d ** 2 < 98.4  # spec section 6: about 98.3 D^2


def test_registrations_name_the_paper_and_reported_numbers():
    assert list_models("spikformer_v2*") == sorted(NAMES)
    info = {name: model_entry(name).info for name in NAMES}
    assert info["spikformer_v2_imagenet_8_384"].reported == "78.80"
    assert info["spikformer_v2_imagenet_8_512"].reported == "80.38"
    assert info["spikformer_v2_dvs"].reported == ""  # no readable V2 CIFAR10-DVS result
    assert all("2401.02020" in i.paper and i.source for i in info.values())


# ---------------------------------------------------------------- the stem, step by step


def reference_stem(stem, x, training, mid_neuron, residual, rates, out_neuron="every"):
    """Spec section 6, on [T, B, C, H, W]: per stage a 2x2 stride-2 conv (no bias) -> BN -> LIF, then
    3x3 conv C -> 4C -> BN [-> LIF] -> 3x3 conv 4C -> C -> BN [+ the stage's spikes]; conv and BN act on
    the T-major folded [T*B, ...] view; finally [T, B, D, h, w] -> tokens [T, B, h*w, D]."""
    T, B = x.shape[:2]
    for stage in stem.stages:
        y = batch_norm(F.conv2d(x.flatten(0, 1), stage.down.weight, stride=2), stage.down_bn, training)
        s = lif(y.reshape(T, B, *y.shape[1:]))
        rates.append(s.mean().item())
        y = batch_norm(F.conv2d(s.flatten(0, 1), stage.expand.conv.weight, padding=1), stage.expand.bn, training)
        if mid_neuron:
            y = lif(y.reshape(T, B, *y.shape[1:])).flatten(0, 1)
            rates.append(y.mean().item())
        y = batch_norm(F.conv2d(y, stage.reduce.conv.weight, padding=1), stage.reduce.bn, training)
        y = y.reshape(T, B, *y.shape[1:])
        x = s + y if residual else y
        if out_neuron == "every" or (out_neuron == "last" and stage is stem.stages[-1]):
            x = lif(x)
            rates.append(x.mean().item())
    return x.flatten(3).transpose(2, 3)


def calibrate_batch_norms(stem, x, generator):
    """Running statistics of realistic size (those of a calibration batch, slightly perturbed) and random
    affine parameters, so that in eval mode as in training mode every neuron fires somewhere but not everywhere."""
    bns = [m for m in stem.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 1.0
    stem.train()
    with torch.no_grad():
        stem(x)
    for m in bns:
        c = m.num_features
        m.momentum = 0.1
        m.weight.data = 1.0 + 0.5 * torch.rand(c, generator=generator, dtype=torch.float64)
        m.bias.data = 0.5 + 0.3 * torch.randn(c, generator=generator, dtype=torch.float64)
        m.running_mean += 0.1 * torch.randn(c, generator=generator, dtype=torch.float64)
        m.running_var *= 1.0 + 0.2 * torch.rand(c, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("mid_neuron,residual,out_neuron", [
    (True, False, "every"), (False, False, "every"), (True, True, "every"), (False, True, "every"),
    (True, False, "last"), (True, False, "none"), (False, True, "none")])
@pytest.mark.parametrize("training", [False, True])
def test_stem_matches_the_specs_description_in_float64(training, mid_neuron, residual, out_neuron):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    stem = SpikingConvolutionalStem(3, 32, neuron_factory("lif"), img_size=(32, 48),
                                    mid_neuron=mid_neuron, residual=residual, out_neuron=out_neuron).double()
    calibrate_batch_norms(stem, 3 * torch.rand(3, 2, 3, 32, 48, generator=g, dtype=torch.float64), g)
    stem.train(training)
    x = 3 * torch.rand(3, 2, 3, 32, 48, generator=g, dtype=torch.float64)
    rates = []
    expected = reference_stem(stem, x, training, mid_neuron, residual, rates, out_neuron)
    got = stem(x)
    assert got.shape == (3, 2, 2 * 3, 32)  # 32x48 / 16 = 2x3 tokens of D = 32
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)
    assert all(0.0 < r < 1.0 for r in rates), rates  # every neuron both fired and stayed silent somewhere
    assert len(rates) == 4 * (2 if mid_neuron else 1) + {"every": 4, "last": 1, "none": 0}[out_neuron]


def test_stem_widths_and_the_down_sampling_by_16():
    stem = tiny("spikformer_v2_imagenet_8_384").patch_embed
    assert [s.down.out_channels for s in stem.stages] == [4, 8, 16, 32]  # D/8, D/4, D/2, D
    assert [s.expand.conv.out_channels for s in stem.stages] == [16, 32, 64, 128]  # expansion 4
    assert all(s.down.kernel_size == (2, 2) and s.down.stride == (2, 2) and s.down.bias is None
               for s in stem.stages)
    assert all(s.expand.conv.bias is None and s.reduce.conv.bias is None for s in stem.stages)


@pytest.mark.parametrize("name,size,grid", [
    ("spikformer_v2_imagenet_8_384", 224, (14, 14)),  # spec section 6: 14x14 tokens at 224x224
    ("spikformer_v2_imagenet_8_512", 224, (14, 14)),
    ("spikformer_v2_dvs", 128, (8, 8)),
])
def test_token_grid_and_stage_shapes(name, size, grid):
    model = tiny(name, time_steps=1).eval()
    assert model.img_size == (size, size) and model.patch_embed.grid_size == grid
    assert model.patch_embed.num_tokens == grid[0] * grid[1]
    x = torch.rand(1, 1, model.in_channels, size, size)
    shapes = []
    for stage in model.patch_embed.stages:
        x = stage(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(1, 1, 32 // 2 ** (3 - i), size // 2 ** (i + 1), size // 2 ** (i + 1)) for i in range(4)]
    tokens = model.patch_embed(torch.rand(1, 1, model.in_channels, size, size))
    assert tokens.shape == (1, 1, grid[0] * grid[1], 32)


def test_registered_configurations_keep_the_specs_hyper_parameters():
    m = create_model("spikformer_v2_imagenet_8_512", depth=1)  # depth cut only to build fast
    assert (m.time_steps, m.img_size, m.in_channels, m.num_classes) == (4, (224, 224), 3, 1000)
    attn = m.blocks[0].attn
    assert attn.num_heads == 8 and attn.scale == 0.125 and m.blocks[0].mlp.fc1.linear.out_features == 2048
    dvs = create_model("spikformer_v2_dvs")
    assert (dvs.time_steps, dvs.img_size, dvs.in_channels, len(dvs.blocks)) == (16, (128, 128), 2, 2)
    assert dvs.blocks[0].attn.num_heads == 16 and dvs.blocks[0].attn.scale == 0.25


# ---------------------------------------------------------------- neurons


@pytest.mark.parametrize("mid_neuron", [True, False])
@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls, mid_neuron):
    model = tiny(depth=2, neuron=neuron, scs_mid_neuron=mid_neuron,
                 neuron_kwargs=dict(v_threshold=0.8, surrogate="atan", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    # stem (down, mid, out per stage); per block q/k/v/attn/proj + MLP
    assert len(neurons) == 4 * (3 if mid_neuron else 2) + 2 * (5 + 2)
    assert all(type(n) is cls and n.surrogate == "atan" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    attn_neurons = {id(m.attn_neuron) for m in model.modules() if isinstance(m, SpikingSelfAttention)}
    assert len(attn_neurons) == 2
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in attn_neurons else 0.8)


def test_attention_threshold_is_its_own_override():
    model = tiny(attn_threshold=0.25, neuron_kwargs=dict(tau=3.0))
    attn = model.blocks[0].attn
    assert attn.attn_neuron.v_threshold == 0.25 and attn.attn_neuron.tau == 3.0
    assert attn.q_neuron.v_threshold == 1.0
    assert model.patch_embed.stages[0].down_neuron.tau == 3.0


# ---------------------------------------------------------------- training and input checks


@pytest.mark.parametrize("residual", [False, True])
def test_float32_forward_and_backward(residual):
    torch.manual_seed(0)
    model = tiny(img_size=32, scs_residual=residual)
    x = 4 * torch.rand(2, 3, 2, 32, 32)
    out = model(x)
    assert out.shape == (3, 10) and out.dtype == torch.float32
    F.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.patch_embed.stages[0].down.weight.grad.abs().sum() > 0  # surrogate gradients reach the stem


def test_static_images_are_repeated_over_time_steps():
    model = tiny("spikformer_v2_imagenet_8_384", img_size=32).eval()
    img = torch.rand(2, 3, 32, 32) * 3
    assert torch.equal(model(img), model(img.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


@pytest.mark.parametrize("shape", [(4, 1, 2, 64, 64), (4, 1, 3, 128, 128), (1, 3, 128, 128), (4, 1, 2, 128)])
def test_wrong_input_shape_names_the_supported_size(shape):
    model = create_model("spikformer_v2_dvs")
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=128, W=128"):
        model(torch.zeros(shape))


def test_stem_alone_rejects_a_wrong_size_naming_its_own():
    stem = SpikingConvolutionalStem(3, 32, neuron_factory(), img_size=(224, 224))
    with pytest.raises(ValueError, match=r"built for 224x224 input.*\(1, 1, 3, 112, 112\)"):
        stem(torch.zeros(1, 1, 3, 112, 112))


@pytest.mark.parametrize("size", [100, (128, 120)])
def test_size_not_divisible_by_16_is_refused_at_construction(size):
    with pytest.raises(ValueError, match="must be divisible by 2\\^num_stages = 16"):
        create_model("spikformer_v2_dvs", img_size=size)


# ---------------------------------------------------------------- the stem's output neurons (docs/models.md)


def mac_layers(**options):
    """The layers that multiply real values (MACs) in a shrunk V2, profiled on batch statistics."""
    from spikeformers.analysis.profile import profile_model

    torch.manual_seed(0)
    model = tiny("spikformer_v2_imagenet_8_384", img_size=32, **options)
    x = (torch.rand(2, 2, 3, 32, 32) * 2 - 1)
    report = profile_model(model, x, batch_norm="batch")
    return {r.layer for r in report.layers if r.macs_per_step > 0}


def test_with_spiking_stem_outputs_only_the_first_convolution_multiplies():
    """The adopted reading: every stage ends in a neuron, so only the encoding conv and the classifier read
    real values, which is what the published 4.69 / 9.36 mJ allow."""
    assert mac_layers() == {"patch_embed.stages.0.down", "head.fc"}


def test_a_real_valued_stem_output_makes_every_block_multiply():
    """The former reading (no neuron after the stages' last BN): the residual stream carries the stem's real
    values through every block, so every projection multiplies (33 mJ of MACs at 8-384, over 4.69 mJ)."""
    macs = mac_layers(scs_out_neuron="none")
    assert {"patch_embed.stages.1.down", "blocks.0.attn.q.linear", "blocks.0.mlp.fc1.linear"} <= macs
    last = mac_layers(scs_out_neuron="last")
    assert "patch_embed.stages.1.down" in last and "blocks.0.attn.q.linear" not in last


def test_out_neuron_option_is_checked():
    with pytest.raises(ValueError, match="out_neuron"):
        tiny(scs_out_neuron="first")
