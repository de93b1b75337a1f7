"""QKFormer: the CIFAR10-DVS model computed exactly as the spec's layer tables
(`shared/specs/qkformer.md`, sections 2.3-2.7 and 6) say, with and without the SSA
batch leak; the spec's parameter counts; every neuron setting reaching every neuron."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.layers import SpikingSelfAttention, TokenQKAttention
from spikeformers.models import count_parameters, create_model
from spikeformers.models.checkpoints import CheckpointMismatchError
from spikeformers.neurons import IF, LIF, PLIF
from spec_reference import lif, record_firing


def authors_dvs_forward(model, x_btchw, training, batch_leak, heads=16):
    """The spec's tables for `cifar10-dvs/model.py`, step by step, on the model's weights.

    Sizes in the comments are the spec's (128x128 input); the code reads them from the
    tensors so that the same steps also run on a smaller input.
    """

    def bn(h, module):
        return F.batch_norm(h, module.running_mean.clone(), module.running_var.clone(), module.weight, module.bias,
                            training, 0.1, 1e-5)

    def conv_bn_pool_lif(h, unit, stride=1, padding=1, pool=False):  # [T*B, ...] in and out
        h = bn(F.conv2d(h, unit.conv.weight, stride=stride, padding=padding), unit.bn)
        if pool:
            h = F.max_pool2d(h, 3, 2, 1)
        return lif(h.reshape(T, B, *h.shape[1:])).flatten(0, 1)

    def conv1d_bn(h, lin_bn):  # the authors' Conv1d(k=1) + BatchNorm1d on [T*B, C, N]
        return bn(F.conv1d(h, lin_bn.linear.weight.unsqueeze(-1), lin_bn.linear.bias), lin_bn.bn)

    def mlp(x, m):  # Conv2d 1x1 (bias) -> BN2d -> LIF, twice, on [T, B, C, H, W]
        for lin_bn in (m.fc1, m.fc2):
            h = bn(F.conv2d(x.flatten(0, 1), lin_bn.linear.weight[:, :, None, None], lin_bn.linear.bias), lin_bn.bn)
            x = lif(h.reshape(T, B, *h.shape[1:]))
        return x

    x = x_btchw.permute(1, 0, 2, 3, 4)  # 2.2: [B, T, ...] -> [T, B, 2, 128, 128]
    T, B = x.shape[:2]
    # 2.3 PatchEmbedInit
    pe = model.patch_embeds[0]
    h = conv_bn_pool_lif(x.flatten(0, 1), pe.units[0])  # 1-2: 16 channels, 128x128
    x_feat = conv_bn_pool_lif(h, pe.units[1], pool=True)  # 3-4: 32 channels, 64x64
    h = conv_bn_pool_lif(x_feat, pe.units[2], pool=True)  # 5-6: 64 channels, 32x32
    h = conv_bn_pool_lif(h, pe.units[3], pool=True)  # 7-8: 128 channels, 16x16
    r = conv_bn_pool_lif(x_feat, pe.shortcut, stride=4, padding=0)  # 9: 1x1 stride 4 on x_feat
    x = (h + r).reshape(T, B, *h.shape[1:])  # 10: [T, B, 128, 16, 16]
    C, H, W = x.shape[2:]
    N, d = H * W, C // heads
    # 2.4 stage1.0: Token_QK_Attention, then MLP
    a = model.stages[0][0].attn
    xf = x.flatten(3).flatten(0, 1)  # 1: [T*B, 128, 256]
    q = lif(conv1d_bn(xf, a.q).reshape(T, B, C, N)).reshape(T, B, heads, d, N)  # 2-3
    k = lif(conv1d_bn(xf, a.k).reshape(T, B, C, N)).reshape(T, B, heads, d, N)  # 4
    mask = lif(q.sum(3, keepdim=True), 0.5)  # 5-6
    y = (mask * k).reshape(T, B, C, N).flatten(0, 1)  # 7-8
    x = x + lif(conv1d_bn(y, a.proj).reshape(T, B, C, H, W))  # 9-10, residual
    x = x + mlp(x, model.stages[0][0].mlp)
    # 2.5 PatchEmbeddingStage
    pe = model.patch_embeds[1]
    x_feat = x.flatten(0, 1)
    h = conv_bn_pool_lif(x_feat, pe.units[0])  # 1: 256 channels, 16x16
    h = conv_bn_pool_lif(h, pe.units[1], pool=True)  # 2: 8x8
    r = conv_bn_pool_lif(x_feat, pe.shortcut, stride=2, padding=0)  # 3: 1x1 stride 2 on the block output
    x = (h + r).reshape(T, B, *h.shape[1:])  # 4: [T, B, 256, 8, 8]
    C, H, W = x.shape[2:]
    N, d = H * W, C // heads
    # 2.6 stage2.0: Spiking_Self_Attention, then MLP
    a = model.stages[1][0].attn
    xf = x.flatten(3).flatten(0, 1)  # 1: [T*B, 256, 64]
    q, k, v = (lif(conv1d_bn(xf, p).reshape(T, B, C, N)).transpose(-1, -2).reshape(T, B, N, heads, d)
               .permute(0, 1, 3, 2, 4) for p in (a.q, a.k, a.v))  # 2-3
    y = (q @ (k.transpose(-2, -1) @ v)) * 0.125  # 4-5
    y = lif(y.transpose(3, 4).reshape(T, B, C, N), 0.5)  # 6-7
    p = conv1d_bn(y.flatten(0, 1), a.proj)  # 8: [T*B, 256, 64]
    if batch_leak:  # 9 / section 6: one LIF over the T*B axis
        s = lif(p)
    else:  # the fix of issues #14/#17: a LIF over T per sample
        s = lif(p.reshape(T, B, C, N))
    x = x + s.reshape(T, B, C, H, W)
    x = x + mlp(x, model.stages[1][0].mlp)
    # 2.7 head
    return F.linear(x.flatten(3).mean(3).mean(0), model.head.fc.weight, model.head.fc.bias)


def randomise_batch_norms(model, generator):
    with torch.no_grad():
        for m in [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]:
            # strong enough that every layer fires rather than falling silent
            m.weight.uniform_(1.0, 2.5, generator=generator)
            m.bias.uniform_(0.0, 1.0, generator=generator)
            m.running_mean.uniform_(-0.2, 0.2, generator=generator)
            m.running_var.uniform_(0.3, 1.0, generator=generator)


@pytest.mark.parametrize("img_size,training,batch_leak", [
    (128, False, True),  # the published configuration at its own size
    (64, False, True), (64, False, False), (64, True, True), (64, True, False),  # every mode, 4x cheaper
], ids=["128-eval-batch_leak", "64-eval-batch_leak", "64-eval-per_sample", "64-train-batch_leak",
        "64-train-per_sample"])
def test_qkformer_dvs_matches_the_spec_layer_tables_in_float64(img_size, training, batch_leak):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("qkformer_dvs", time_steps=2, img_size=img_size, ssa_batch_leak=batch_leak).double()
    randomise_batch_norms(model, g)
    model.train(training)
    rates = record_firing(model)
    x = (torch.rand(2, 2, 2, img_size, img_size, generator=g, dtype=torch.float64) * 4).floor()  # counts 0..3
    x_lib = x.clone().requires_grad_()
    x_ref = x.transpose(0, 1).clone().requires_grad_()
    logits = model(x_lib)
    ref = authors_dvs_forward(model, x_ref, training, batch_leak)
    assert logits.shape == (2, 10)
    assert len(rates) == 21 and all(0 < r < 1 for r in rates.values()), rates  # every neuron fires, none saturates
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    g_out = torch.randn(2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    grad_ref = x_ref.grad.transpose(0, 1)
    assert grad_ref.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, grad_ref, rtol=1e-6, atol=1e-6 * grad_ref.abs().max().item())


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_the_spec_reference_tells_the_batch_leak_from_its_fix(training):
    """The equivalence tests above could not pass with the wrong setting of the quirk."""
    g = torch.Generator().manual_seed(0)
    model = create_model("qkformer_dvs", time_steps=2, img_size=64).double()
    randomise_batch_norms(model, g)
    model.train(training)
    x = (torch.rand(2, 2, 2, 64, 64, generator=g, dtype=torch.float64) * 4).floor()
    with torch.no_grad():
        logits = model(x)
        assert (logits - authors_dvs_forward(model, x.transpose(0, 1), training, batch_leak=False)).abs().max() > 1e-3


def test_the_batch_leak_is_what_makes_outputs_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    leaky = create_model("qkformer_dvs", img_size=32, embed_dim=64, num_heads=4, time_steps=3).double()
    randomise_batch_norms(leaky, g)
    fixed = create_model("qkformer_dvs", img_size=32, embed_dim=64, num_heads=4, time_steps=3,
                         ssa_batch_leak=False).double()
    fixed.load_state_dict(leaky.state_dict())
    leaky.eval(), fixed.eval()
    x = (torch.rand(3, 4, 2, 32, 32, generator=g, dtype=torch.float64) * 4).floor()
    # per sample: sample 0 alone and in a batch agree; with the leak they differ (spec section 6)
    torch.testing.assert_close(fixed(x[:, :1]), fixed(x)[:1], rtol=0, atol=1e-12)
    assert not torch.allclose(leaky(x[:, :1]), leaky(x)[:1])
    # both agree on the first sample of a batch of one: the leak then only runs over T
    torch.testing.assert_close(leaky(x[:, :1]), fixed(x[:, :1]), rtol=0, atol=1e-12)


def test_ssa_batch_leak_is_on_by_default_and_only_in_the_ssa():
    model = create_model("qkformer_dvs")
    assert model.stages[1][0].attn.batch_leak
    assert type(model.stages[1][0].attn.proj_neuron).__name__ == "BatchLeakNeuron"
    assert isinstance(model.stages[0][0].attn.proj_neuron, LIF)
    assert isinstance(create_model("qkformer_dvs", ssa_batch_leak=False).stages[1][0].attn.proj_neuron, LIF)


@pytest.mark.parametrize("name,params", [
    ("qkformer_dvs", 1_504_138),  # spec 2.11, = the authors' log
    ("qkformer_cifar10", 6_706_234),  # spec 7, = the authors' log
    ("qkformer_cifar100", 6_706_234 + 90 * 385),  # the CIFAR10 model with a 100-way head
    ("qkformer_imagenet_10_384", 16_473_688),  # spec 8
    ("qkformer_imagenet_10_512", 29_079_336),
    ("qkformer_imagenet_10_768", 64_962_760),
])
def test_parameter_counts_equal_the_specs(name, params):
    with torch.device("meta"):  # counts only; no memory for the ImageNet models
        model = create_model(name)
    assert count_parameters(model) == params


def test_dvs_structure_and_tensor_counts_follow_the_spec():
    model = create_model("qkformer_dvs")
    assert len(model.state_dict()) == 122  # spec 2.10
    pe1, pe2 = model.patch_embeds
    assert [u.conv.out_channels for u in pe1.units] == [16, 32, 64, 128]
    assert [u.pool is not None for u in pe1.units] == [False, True, True, True]
    assert pe1.shortcut.conv.stride == (4, 4) and pe1.shortcut.conv.in_channels == 32
    assert [u.pool is not None for u in pe2.units] == [False, True] and pe2.shortcut.conv.stride == (2, 2)
    assert model.grid_sizes == [(16, 16), (8, 8)]
    tssa, ssa = model.stages[0][0].attn, model.stages[1][0].attn
    assert isinstance(tssa, TokenQKAttention) and tssa.num_heads == 16 and tssa.proj.linear.bias is not None
    assert ssa.num_heads == 16 and ssa.scale == 0.125 and ssa.q.linear.bias is None
    assert model.stages[1][0].mlp.fc1.linear.out_features == 256  # mlp_ratio 1


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("qkformer_dvs", img_size=32, embed_dim=64, num_heads=4, neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="qgate", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    # embed 1: 4 units + shortcut; QK block: q, k, mask, proj + 2 MLP; embed 2: 2 + shortcut; SSA block 5 + 2
    assert len(neurons) == 5 + 6 + 3 + 7
    assert all(type(n) is cls and n.surrogate == "qgate" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    own = {id(m.mask_neuron) for m in model.modules() if isinstance(m, TokenQKAttention)}
    own |= {id(m.attn_neuron) for m in model.modules() if isinstance(m, SpikingSelfAttention)}
    assert len(own) == 2
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in own else 0.8)


def test_attention_thresholds_are_their_own_overrides():
    model = create_model("qkformer_dvs", img_size=32, embed_dim=64, num_heads=4, attn_threshold=0.25,
                         qk_threshold=0.75, neuron_kwargs=dict(tau=3.0))
    tssa, ssa = model.stages[0][0].attn, model.stages[1][0].attn
    assert tssa.mask_neuron.v_threshold == 0.75 and tssa.mask_neuron.tau == 3.0
    assert ssa.attn_neuron.v_threshold == 0.25 and ssa.proj_neuron.neuron.tau == 3.0
    assert tssa.q_neuron.v_threshold == 1.0


def test_tiny_dvs_override_runs_forward_and_backward_in_float32():
    torch.manual_seed(0)
    model = create_model("qkformer_dvs", img_size=32, embed_dim=32, num_heads=2, time_steps=2, num_classes=5)
    x = (torch.rand(2, 3, 2, 32, 32) * 3).floor().requires_grad_()
    logits = model(x)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32
    logits.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


def test_cifar_and_imagenet_styles_run_at_small_sizes():
    torch.manual_seed(0)
    cifar = create_model("qkformer_cifar10", embed_dim=48, num_heads=2, time_steps=2, img_size=16)
    assert cifar.grid_sizes == [(16, 16), (8, 8), (4, 4)]
    assert cifar(torch.rand(2, 3, 16, 16)).shape == (2, 10)  # static images, repeated over T
    imnet = create_model("qkformer_imagenet_10_384", embed_dim=64, num_heads=2, depths=(1, 1, 1), num_classes=7,
                         time_steps=1, img_size=32)
    assert imnet.grid_sizes == [(8, 8), (4, 4), (2, 2)]
    assert imnet(torch.rand(1, 2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("shape", [(2, 2, 2, 64, 64), (2, 2, 3, 32, 32), (2, 3, 32, 32), (2, 2, 2, 32)])
def test_wrong_input_shape_names_the_expected_layout(shape):
    model = create_model("qkformer_dvs", img_size=32, embed_dim=32, num_heads=2)
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=32, W=32"):
        model(torch.zeros(shape))


def test_img_size_the_embeddings_cannot_divide_is_refused_naming_the_divisor():
    with pytest.raises(ValueError, match=r"img_size divisible by 16.*got 120x120"):
        create_model("qkformer_dvs", img_size=120)
    with pytest.raises(ValueError, match=r"img_size divisible by 4.*got 30x30"):
        create_model("qkformer_cifar10", img_size=30)


def bn_entries(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def authors_dvs_state_dict_shapes():
    """Spec 2.10: the 122 keys of the authors' CIFAR10-DVS model and their shapes, in order."""
    keys = {}
    for name, c_out, c_in, k in [("proj", 16, 2, 3), ("proj1", 32, 16, 3), ("proj2", 64, 32, 3),
                                 ("proj3", 128, 64, 3), ("proj_res", 128, 32, 1)]:
        keys[f"patch_embed1.{name}_conv.weight"] = (c_out, c_in, k, k)
        keys.update(bn_entries(f"patch_embed1.{name}_bn", c_out))
    for name in ("q", "k", "proj"):
        keys[f"stage1.0.tssa.{name}_conv.weight"] = (128, 128, 1)
        if name == "proj":
            keys["stage1.0.tssa.proj_conv.bias"] = (128,)
        keys.update(bn_entries(f"stage1.0.tssa.{name}_bn", 128))
    for n in (1, 2):
        keys[f"stage1.0.mlp.mlp{n}_conv.weight"], keys[f"stage1.0.mlp.mlp{n}_conv.bias"] = (128, 128, 1, 1), (128,)
        keys.update(bn_entries(f"stage1.0.mlp.mlp{n}_bn", 128))
    for name, c_out, c_in, k in [("proj", 256, 128, 3), ("proj4", 256, 256, 3), ("proj_res", 256, 128, 1)]:
        keys[f"patch_embed2.{name}_conv.weight"] = (c_out, c_in, k, k)
        keys.update(bn_entries(f"patch_embed2.{name}_bn", c_out))
    for name in ("q", "k", "v", "proj"):
        keys[f"stage2.0.ssa.{name}_conv.weight"] = (256, 256, 1)
        if name == "proj":
            keys["stage2.0.ssa.proj_conv.bias"] = (256,)
        keys.update(bn_entries(f"stage2.0.ssa.{name}_bn", 256))
    for n in (1, 2):
        keys[f"stage2.0.mlp.mlp{n}_conv.weight"], keys[f"stage2.0.mlp.mlp{n}_conv.bias"] = (256, 256, 1, 1), (256,)
        keys.update(bn_entries(f"stage2.0.mlp.mlp{n}_bn", 256))
    keys["head.weight"], keys["head.bias"] = (10, 256), (10,)
    return keys


def authors_cifar10_state_dict_shapes():
    """Spec 7: the 200 keys of the authors' CIFAR10 model (HST-4-384)."""
    keys = {}
    for name, c_out, c_in, k in [("proj", 48, 3, 3), ("proj1", 96, 48, 3), ("proj_res", 96, 48, 1)]:
        keys[f"patch_embed1.{name}_conv.weight"] = (c_out, c_in, k, k)
        keys.update(bn_entries(f"patch_embed1.{name}_bn", c_out))
    for e, c in ((2, 192), (3, 384)):
        for name, c_in, k in [("proj3", c // 2, 3), ("proj4", c, 3), ("proj_res", c // 2, 1)]:
            keys[f"patch_embed{e}.{name}_conv.weight"] = (c, c_in, k, k)
            keys.update(bn_entries(f"patch_embed{e}.{name}_bn", c))
    for stage, blocks, attn, names, c in [(1, 1, "tssa", "q k proj", 96), (2, 1, "tssa", "q k proj", 192),
                                          (3, 2, "ssa", "q k v proj", 384)]:
        for i in range(blocks):
            for name in names.split():
                keys[f"stage{stage}.{i}.{attn}.{name}_conv.weight"] = (c, c, 1)
                if name == "proj":
                    keys[f"stage{stage}.{i}.{attn}.proj_conv.bias"] = (c,)
                keys.update(bn_entries(f"stage{stage}.{i}.{attn}.{name}_bn", c))
            for n, (c_out, c_in) in ((1, (4 * c, c)), (2, (c, 4 * c))):
                keys[f"stage{stage}.{i}.mlp.mlp{n}_conv.weight"] = (c_out, c_in, 1, 1)
                keys[f"stage{stage}.{i}.mlp.mlp{n}_conv.bias"] = (c_out,)
                keys.update(bn_entries(f"stage{stage}.{i}.mlp.mlp{n}_bn", c_out))
    keys["head.weight"], keys["head.bias"] = (10, 384), (10,)
    return keys


@pytest.mark.parametrize("name,shapes,count", [("qkformer_dvs", authors_dvs_state_dict_shapes, 122),
                                                ("qkformer_cifar10", authors_cifar10_state_dict_shapes, 200)])
def test_authors_state_dicts_load_through_the_converter(name, shapes, count, tmp_path):
    g = torch.Generator().manual_seed(0)
    shapes = shapes()
    assert len(shapes) == count
    official = {k: (torch.randn(s, generator=g) if s else torch.tensor(7)) for k, s in shapes.items()}
    path = tmp_path / "official.pth"
    torch.save({"model": official}, path)
    model = create_model(name, checkpoint_path=str(path))
    own = model.state_dict()
    assert len(own) == count
    pairs = {  # ours <- authors' (spec 2.10 / 7), including the renamed embedding units and 1x1 kernels
        "qkformer_dvs": [("stages.1.0.attn.v.linear.weight", "stage2.0.ssa.v_conv.weight"),
                         ("patch_embeds.1.units.0.conv.weight", "patch_embed2.proj_conv.weight"),
                         ("patch_embeds.1.units.1.conv.weight", "patch_embed2.proj4_conv.weight"),
                         ("patch_embeds.0.units.3.bn.running_var", "patch_embed1.proj3_bn.running_var"),
                         ("patch_embeds.0.shortcut.conv.weight", "patch_embed1.proj_res_conv.weight"),
                         ("stages.0.0.attn.proj.linear.bias", "stage1.0.tssa.proj_conv.bias"),
                         ("stages.0.0.mlp.fc2.linear.weight", "stage1.0.mlp.mlp2_conv.weight")],
        "qkformer_cifar10": [("patch_embeds.0.units.1.conv.weight", "patch_embed1.proj1_conv.weight"),
                             ("patch_embeds.2.units.0.conv.weight", "patch_embed3.proj3_conv.weight"),
                             ("stages.2.1.attn.proj.linear.bias", "stage3.1.ssa.proj_conv.bias"),
                             ("stages.1.0.attn.k.linear.weight", "stage2.0.tssa.k_conv.weight")],
    }[name]
    for ours, theirs in pairs:
        torch.testing.assert_close(own[ours], official[theirs].reshape(own[ours].shape), rtol=0, atol=0)
    del official["head.bias"]
    torch.save(official, path)
    with pytest.raises(CheckpointMismatchError, match="missing: head.fc.bias"):
        create_model(name, checkpoint_path=str(path))
