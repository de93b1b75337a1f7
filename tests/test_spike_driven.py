"""Spike-driven Transformer V1: the CIFAR10-DVS model computed exactly as the spec's layer tables
(`shared/specs/spike_driven_transformer.md`, sections 3 and 5) say, its parameter counts, the
erode's neighbourhoods, and every option reaching the layers that use it."""

import pytest
import torch
import torch.nn.functional as F

import spikeformers.models.spike_driven as sdt  # registers the configurations
from spikeformers.engine.losses import tet_loss
from spikeformers.layers.spike_driven import SpikeDrivenSelfAttention, erode_heads, erode_map
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights
from spikeformers.models.registry import count_parameters, create_model, list_models
from spikeformers.neurons import IF, LIF, PLIF, neuron_factory
from spec_reference import batch_norm, lif, record_firing


def authors_erode(x):
    """The authors' Erode: nn.MaxPool3d((1, 3, 3), stride 1, padding (0, 1, 1)) on any 5-D tensor."""
    return F.max_pool3d(x, (1, 3, 3), (1, 1, 1), (0, 1, 1))


def authors_dvs_forward(model, x_bt_128, training, heads=8):
    """Sections 3 and 5 of the spec, step by step, on the model's weights; returns per-step logits [T,B,10]."""
    B, T = x_bt_128.shape[:2]
    x = F.avg_pool2d(x_bt_128.flatten(0, 1), 2).reshape(B, T, 2, 64, 64)  # section 3: Resize(64), per sample
    x = x.transpose(0, 1)  # model entry: [T, B, 2, 64, 64]

    def conv_bn(h, cb, padding):  # on [T*B, ...]
        return batch_norm(F.conv2d(h, cb.conv.weight, cb.conv.bias, padding=padding), cb.bn, training)

    def lif_tb(h, threshold=1.0):  # LIF on a [T*B, ...] tensor viewed as [T, B, ...]
        return lif(h.reshape(T, B, *h.shape[1:]), threshold).flatten(0, 1)

    pe = model.patch_embed  # 5.1: MS_SPS, pooling_stat "0011"
    h = x.flatten(0, 1)
    h = lif_tb(conv_bn(h, pe.stages[0], 1))  # steps 1-2
    h = lif_tb(conv_bn(h, pe.stages[1], 1))  # steps 3-4
    h = F.max_pool2d(lif_tb(conv_bn(h, pe.stages[2], 1)), 3, 2, 1)  # steps 5-7
    x_feat = F.max_pool2d(conv_bn(h, pe.last, 1), 3, 2, 1)  # steps 8-9
    x = (conv_bn(lif_tb(x_feat), pe.rpe, 1) + x_feat).reshape(T, B, 256, 16, 16)  # steps 10-12

    def to_heads(m):  # 5.2 step 4
        return m.flatten(3).transpose(-1, -2).reshape(T, B, 256, heads, 32).permute(0, 1, 3, 2, 4)

    for block in model.blocks:
        a, mlp = block.attn, block.mlp
        identity = x  # 5.2
        s = lif_tb(x.flatten(0, 1))
        q = lif_tb(conv_bn(s, a.q, 0)).reshape(T, B, 256, 16, 16)
        k = authors_erode(lif_tb(conv_bn(s, a.k, 0)).reshape(T, B, 256, 16, 16))
        v = authors_erode(lif_tb(conv_bn(s, a.v, 0)).reshape(T, B, 256, 16, 16))
        q, k, v = to_heads(q), to_heads(k), to_heads(v)
        kv = authors_erode(k * v).sum(dim=-2, keepdim=True)  # steps 7-9
        kv = lif(kv, 0.5)  # step 10: talking_heads_lif
        y = authors_erode(q * kv)  # steps 11-12
        y = y.transpose(3, 4).reshape(T * B, 256, 16, 16)  # step 13
        x = conv_bn(y, a.proj, 0).reshape(T, B, 256, 16, 16) + identity  # steps 14-15
        identity = x  # 5.4
        m = conv_bn(lif_tb(x.flatten(0, 1)), mlp.fc1, 0)
        m = conv_bn(lif_tb(m), mlp.fc2, 0)
        x = m.reshape(T, B, 256, 16, 16) + identity
    z = lif(x.flatten(3).mean(3))  # 5.5
    return F.linear(z, model.head.fc.weight, model.head.fc.bias)


def randomise_weights(model, generator):
    """Conv weights at a scale where spikes propagate, BN statistics and biases varied per channel: every
    neuron fires (2-65%) in eval and train mode, and k, v have many silent channels so the kv sums vary."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 1.5 / m.weight[0].numel() ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5, generator=generator)
        for name, bn in model.named_modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.weight.uniform_(0.5, 2.0, generator=generator)
                bn.bias.uniform_(-3.0 if name.endswith(("k.bn", "v.bn")) else -1.0, 1.0, generator=generator)
                bn.running_mean.uniform_(-0.2, 0.2, generator=generator)
                bn.running_var.uniform_(0.3, 1.0, generator=generator)


def dvs_model_and_input(dtype=torch.float64, T=2, B=2):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("spike_driven_dvs_t10", time_steps=T, tet=True).to(dtype)
    randomise_weights(model, g)
    x = (torch.rand(B, T, 2, 128, 128, generator=g, dtype=torch.float64) * 4).floor().to(dtype)  # counts 0..3
    return model, x, g


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_dvs_model_matches_the_spec_layer_tables_in_float64(training):
    model, x, g = dvs_model_and_input()
    model.train(training)
    x_lib = x.transpose(0, 1).clone().requires_grad_()
    x_ref = x.clone().requires_grad_()
    rates = record_firing(model)
    logits = model(x_lib)
    ref = authors_dvs_forward(model, x_ref, training)
    assert len(rates) == 19 and all(0 < r < 1 for r in rates.values()), rates  # no layer silent or saturated
    assert logits.shape == (2, 2, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    g_out = torch.randn(2, 2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    grad_ref = x_ref.grad.transpose(0, 1)
    assert grad_ref.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, grad_ref, rtol=1e-6, atol=1e-6 * grad_ref.abs().max().item())


def test_mean_output_is_the_mean_of_the_tet_output():
    model = create_model("spike_driven_dvs", **TINY, tet=True).eval()
    randomise_weights(model, torch.Generator().manual_seed(0))
    x = (torch.rand(2, 3, 2, 32, 32) * 4).floor()
    per_step = model(x)
    model.head.per_step = False
    torch.testing.assert_close(model(x), per_step.mean(0), rtol=0, atol=0)


def test_erode_heads_neighbours_are_flattened_tokens_and_in_head_channels():
    x = torch.zeros(1, 1, 4, 4, 4)  # [T, B, C=4, H=4, W=4], 2 heads of d=2
    x[0, 0, 1, 0, 3] = 1  # channel 1 (head 0, j=1), token (0, 3) = n 3
    y = erode_heads(x, num_heads=2)[0, 0]
    assert y[1, 1, 0] == 1  # token (1, 0) = n 4 is a neighbour of n 3 in the flattened order
    assert y[1, 1, 3] == 0  # the vertical neighbour (1, 3) = n 7 is not
    assert y[0, 0, 2] == 1 and y[0, 0, 3] == 1  # channel j=0 of the same head
    assert y[2].sum() == 0  # channel 2 is in head 1: no crossing between heads
    assert erode_map(x)[0, 0, 1, 1, 3] == 1 and erode_map(x)[0, 0, 0].sum() == 0  # spatial: per channel


@pytest.mark.parametrize("name,count", [
    # the spec's figures (sections 6 and 10) less the unused talking_heads Conv1d, 64 per block
    ("spike_driven_dvs", 2_566_794 - 128),
    ("spike_driven_dvs_t10", 2_566_794 - 128),
    ("spike_driven_cifar10", 10_233_546 - 128),
    ("spike_driven_cifar10_2_256", 2_567_082 - 128),
    # the spec gives no count for CIFAR100: its 2-512 CIFAR10 count plus 90 more classes
    ("spike_driven_cifar100", 10_233_546 - 128 + 90 * 513),
])
def test_parameter_counts_are_the_specs(name, count):
    with torch.device("meta"):  # shapes only: no memory, no init
        assert count_parameters(create_model(name)) == count


def test_registered_configurations():
    torch.set_default_device("meta")
    try:
        check_registered_configurations()
    finally:
        torch.set_default_device(None)


def check_registered_configurations():
    assert list_models("spike_driven*") == ["spike_driven_cifar10", "spike_driven_cifar100",
                                           "spike_driven_cifar10_2_256", "spike_driven_dvs", "spike_driven_dvs_t10",
                                           "spike_driven_gesture", "spike_driven_gesture_t10"]
    dvs = create_model("spike_driven_dvs")
    assert dvs.time_steps == 16 and create_model("spike_driven_dvs_t10").time_steps == 10
    assert dvs.img_size == (128, 128) and dvs.input_pool == 2 and dvs.patch_embed.grid_size == (16, 16)
    assert all(b.attn.erode == "authors" and b.attn.num_heads == 8 for b in dvs.blocks)
    c10 = create_model("spike_driven_cifar10")
    assert c10.patch_embed.grid_size == (8, 8) and c10.time_steps == 4 and c10.in_channels == 3
    assert all(b.attn.erode is None and b.mlp.fc1.conv.out_channels == 2048 for b in c10.blocks)


TINY = dict(img_size=32, embed_dim=32, num_heads=4, time_steps=2, num_classes=5)


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("spike_driven_dvs", **TINY, neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="atan", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 4 + 2 * (5 + 2) + 1  # stem (3 stages + RPE), per block SDSA 5 + MLP 2, head
    assert all(type(n) is cls and n.surrogate == "atan" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    kv = {id(m.kv_neuron) for m in model.modules() if isinstance(m, SpikeDrivenSelfAttention)}
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in kv else 0.8)


def test_kv_threshold_is_its_own_override():
    model = create_model("spike_driven_dvs", **TINY, kv_threshold=0.25, neuron_kwargs=dict(tau=3.0))
    attn = model.blocks[0].attn
    assert attn.kv_neuron.v_threshold == 0.25 and attn.kv_neuron.tau == 3.0
    assert attn.q_neuron.v_threshold == 1.0


@pytest.mark.parametrize("erode", ["authors", "spatial", None])
@pytest.mark.parametrize("tet", [False, True])
def test_tiny_dvs_model_trains_in_float32(erode, tet):
    model = create_model("spike_driven_dvs", **TINY, erode=erode, tet=tet)
    x = torch.rand(2, 3, 2, 32, 32, requires_grad=True) * 3
    logits = model(x)
    assert logits.shape == ((2, 3, 5) if tet else (3, 5)) and logits.dtype == torch.float32
    labels = torch.tensor([0, 1, 4])
    loss = tet_loss(logits, labels) if tet else F.cross_entropy(logits, labels)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_each_erode_mode_computes_something_different():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 16, 8, 8) * 2  # membrane [T, B, C, H, W]
    outs = []
    for erode in ["authors", "spatial", None]:
        torch.manual_seed(1)
        attn = SpikeDrivenSelfAttention(16, 4, neuron_factory(LIF), erode=erode).eval()
        for conv in (attn.q.conv, attn.k.conv, attn.v.conv):
            torch.nn.init.normal_(conv.weight, std=0.3, generator=torch.Generator().manual_seed(2))
        outs.append(attn(x))
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert not torch.equal(outs[1], outs[2])


def test_mlp_ratio_1_adds_the_authors_inner_membrane_shortcut():
    model = create_model("spike_driven_dvs", **TINY, mlp_ratio=1.0, depth=1).eval()
    randomise_weights(model, torch.Generator().manual_seed(0))
    mlp = model.blocks[0].mlp
    x = torch.randn(2, 1, 32, 4, 4) * 2
    f1 = mlp.fc1(mlp.fc1_neuron(x))
    torch.testing.assert_close(mlp(x), f1 + mlp.fc2(mlp.fc2_neuron(x + f1)), rtol=0, atol=0)
    assert create_model("spike_driven_dvs", **TINY).blocks[0].mlp.inner_shortcut is False


def test_tet_loss_is_the_authors_formula():
    logits, labels = torch.randn(3, 4, 5), torch.tensor([0, 1, 2, 3])
    ce = sum(F.cross_entropy(z, labels, label_smoothing=0.1) for z in logits) / 3
    expected = 0.999 * ce + 0.001 * ((logits - 1.0) ** 2).mean()
    torch.testing.assert_close(tet_loss(logits, labels), expected)
    with pytest.raises(ValueError, match=r"per-step logits \[T, B, classes\]"):
        tet_loss(logits.mean(0), labels)


def test_input_pool_is_a_2x2_average_of_the_frames():
    model = create_model("spike_driven_dvs", **TINY).eval()
    pre = create_model("spike_driven_dvs", **dict(TINY, img_size=16), input_pool=1).eval()
    pre.load_state_dict(model.state_dict())
    x = (torch.rand(2, 2, 2, 32, 32) * 4).floor()
    small = F.avg_pool2d(x.flatten(0, 1), 2).reshape(2, 2, 2, 16, 16)
    torch.testing.assert_close(model(x), pre(small), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(4, 2, 2, 64, 64), (4, 2, 3, 128, 128), (2, 3, 128, 128), (4, 2, 2, 128)])
def test_wrong_input_shape_names_the_expected_layout_and_size(shape):
    model = create_model("spike_driven_dvs", embed_dim=32, num_heads=4, depth=1)
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=128, W=128.*"
                                         r"img_size=64, input_pool=1"):
        model(torch.zeros(shape))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="erode must be one of"):
        create_model("spike_driven_dvs", erode="dilate")
    with pytest.raises(ValueError, match="divisible by input_pool 2"):
        create_model("spike_driven_dvs", img_size=33)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        create_model("spike_driven_dvs", embed_dim=48, num_heads=5)


def test_static_images_are_repeated_over_time_steps():
    model = create_model("spike_driven_cifar10", embed_dim=32, num_heads=4, time_steps=2).eval()
    img = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(img), model(img.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


def authors_dvs_state_dict_shapes():
    """Spec section 9: the official DVS model's 112 keys and shapes, in registration order."""
    def bn(prefix, c):
        return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + \
            [(f"{prefix}.num_batches_tracked", ())]
    keys = []
    for suffix, c_in, c_out in [("", 2, 32), ("1", 32, 64), ("2", 64, 128), ("3", 128, 256)]:
        keys += [(f"patch_embed.proj_conv{suffix}.weight", (c_out, c_in, 3, 3))]
        keys += bn(f"patch_embed.proj_bn{suffix}", c_out)
    keys += [("patch_embed.rpe_conv.weight", (256, 256, 3, 3))] + bn("patch_embed.rpe_bn", 256)
    for j in range(2):
        a, m = f"block.{j}.attn", f"block.{j}.mlp"
        for p in "qkv":
            keys += [(f"{a}.{p}_conv.weight", (256, 256, 1, 1))] + bn(f"{a}.{p}_bn", 256)
        keys += [(f"{a}.talking_heads.weight", (8, 8, 1))]
        keys += [(f"{a}.proj_conv.weight", (256, 256, 1, 1)), (f"{a}.proj_conv.bias", (256,))] + bn(f"{a}.proj_bn", 256)
        keys += [(f"{m}.fc1_conv.weight", (1024, 256, 1, 1)), (f"{m}.fc1_conv.bias", (1024,))] + bn(f"{m}.fc1_bn", 1024)
        keys += [(f"{m}.fc2_conv.weight", (256, 1024, 1, 1)), (f"{m}.fc2_conv.bias", (256,))] + bn(f"{m}.fc2_bn", 256)
    keys += [("head.weight", (10, 256)), ("head.bias", (10,))]
    return keys


def test_authors_checkpoint_converts_and_loads(tmp_path):
    shapes = authors_dvs_state_dict_shapes()
    assert len(shapes) == 112
    g = torch.Generator().manual_seed(0)
    authors = {k: torch.randn(s, generator=g) for k, s in shapes}
    torch.save({"model": {"module." + k: v for k, v in authors.items()}}, tmp_path / "ckpt.pth")
    model = load_weights(create_model("spike_driven_dvs_t10"), tmp_path / "ckpt.pth")  # every key checked
    assert torch.equal(model.blocks[1].mlp.fc2.conv.bias, authors["block.1.mlp.fc2_conv.bias"])
    assert torch.equal(model.patch_embed.stages[0].conv.weight, authors["patch_embed.proj_conv.weight"])
    assert torch.equal(model.patch_embed.last.bn.running_var, authors["patch_embed.proj_bn3.running_var"])
    assert torch.equal(model.head.fc.weight, authors["head.weight"])
    authors["block.0.attn.attn_scale.weight"] = torch.zeros(1)
    torch.save(authors, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError, match="1 unexpected: block.0.attn.attn_scale.weight"):
        load_weights(create_model("spike_driven_dvs_t10"), tmp_path / "bad.pth")
