"""Meta-SpikeFormer (Spike-driven Transformer V2): the model computed exactly as the spec's
sub-module list and layer table (`shared/specs/more_models.md`, section C) say, in eval and train
mode; RepConv's padded batch norm with and without the authors' quirk; the parameter counts and
state_dict of the authors' builders; their checkpoints; and every neuron setting reaching every
neuron."""

import pytest
import torch
import torch.nn.functional as F

import spikeformers.models.meta_spikeformer as meta  # registers the configurations
from spikeformers.models.meta_spikeformer import PaddedBatchNorm, RepConvSelfAttention
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights
from spikeformers.models.registry import count_parameters, create_model, list_models, model_entry
from spikeformers.neurons import IF, LIF, PLIF
from spec_reference import batch_norm, lif, record_firing

# A small model with the authors' layer list: every stage and block count as published, narrow.
SMALL = dict(embed_dims=(8, 16, 32, 40), time_steps=2, img_size=48, num_classes=10)
# Smaller still, for the tests that do not compare with the layer table: one block per stage.
TINY = dict(embed_dims=(8, 16, 32, 40), depths=(1, 1, 1, 1, 1), time_steps=2, img_size=48, num_classes=10)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: a second intra-op thread adds only synchronisation, and on a busy machine its
    barrier waits cost more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bn_and_pad(x, bn, training):
    """The authors' BNAndPadLayer: BN, then a 1-pixel border per channel of
    bias - running_mean * weight / sqrt(running_var + eps), read after the BN's own update of its
    running statistics (momentum 0.1, unbiased variance), weight and bias detached."""
    y = batch_norm(x, bn, training)
    mean, var = bn.running_mean, bn.running_var
    if training:  # the update of buffers: no gradient
        n, xd = x.numel() / x.shape[1], x.detach()
        mean = 0.9 * mean + 0.1 * xd.mean((0, 2, 3))
        var = 0.9 * var + 0.1 * xd.var((0, 2, 3), unbiased=False) * n / (n - 1)
    border = (bn.bias.detach() - mean * bn.weight.detach() / torch.sqrt(var + bn.eps)).view(1, -1, 1, 1)
    y = F.pad(y, [1, 1, 1, 1])
    y[:, :, :1, :] = border
    y[:, :, -1:, :] = border
    y[:, :, :, :1] = border
    y[:, :, :, -1:] = border
    return y


def authors_forward(model, img, T, training):
    """Spec C.1 and its sub-module list, step by step, on the model's weights."""
    x = img.unsqueeze(0).repeat(T, 1, 1, 1, 1)
    B = x.shape[1]

    def folded(fn, h):
        y = fn(h.flatten(0, 1))
        return y.reshape(T, B, *y.shape[1:])

    def downsample(h, m, stride, padding, first=False):  # MS_DownSampling
        if not first:
            h = lif(h)
        return folded(lambda s: batch_norm(F.conv2d(s, m.conv.weight, m.conv.bias, stride, padding), m.bn, training), h)

    def conv_block(h, m):  # MS_ConvBlock with its SepConv
        sep, C = m.sep, h.shape[2]
        y = folded(lambda s: batch_norm(F.conv2d(s, sep.pwconv1.weight), sep.bn1, training), lif(h))
        y = folded(lambda s: F.conv2d(s, sep.dwconv.weight, padding=3, groups=2 * C), lif(y))
        y = folded(lambda s: batch_norm(F.conv2d(s, sep.pwconv2.weight), sep.bn2, training), y)
        h = y + h
        y = folded(lambda s: batch_norm(F.conv2d(s, m.conv1.weight, padding=1), m.bn1, training), lif(h))
        y = folded(lambda s: batch_norm(F.conv2d(s, m.conv2.weight, padding=1), m.bn2, training), lif(y))
        return h + y

    def rep_conv_bn(h, m):  # Sequential(RepConv, BatchNorm2d)
        r = m.rep

        def fn(s):
            y = bn_and_pad(F.conv2d(s, r.conv1x1.weight), r.bn_pad.bn, training)
            y = F.conv2d(y, r.dwconv.weight, groups=y.shape[1])  # padding 0
            return batch_norm(batch_norm(F.conv2d(y, r.pwconv.weight), r.bn, training), m.bn, training)
        return folded(fn, h)

    def attention(h, a):  # MS_Attention_RepConv_qkv_id
        _, _, C, H, W = h.shape
        N, heads = H * W, 8
        s = lif(h)
        q, k, v = (lif(rep_conv_bn(s, p)).flatten(3).transpose(-1, -2).reshape(T, B, N, heads, C // heads)
                   .permute(0, 1, 3, 2, 4) for p in (a.q, a.k, a.v))
        y = (q @ (k.transpose(-2, -1) @ v)) * 0.125
        y = lif(y.transpose(3, 4).reshape(T, B, C, N), 0.5).reshape(T, B, C, H, W)
        return rep_conv_bn(y, a.proj)

    def mlp(h, m):  # MS_MLP: Conv1d + BatchNorm1d on [T*B, C, N]
        _, _, C, H, W = h.shape
        y = lif(h.flatten(3)).flatten(0, 1)
        y = batch_norm(F.conv1d(y, m.fc1.conv.weight[..., 0], m.fc1.conv.bias), m.fc1.bn, training)
        y = lif(y.reshape(T, B, -1, H * W)).flatten(0, 1)
        y = batch_norm(F.conv1d(y, m.fc2.conv.weight[..., 0], m.fc2.conv.bias), m.fc2.bn, training)
        return y.reshape(T, B, C, H, W)

    st = model.stages
    x = conv_block(downsample(x, st[0][0], 2, 3, first=True), st[0][1])  # downsample1_1, ConvBlock1_1
    x = conv_block(downsample(x, st[1][0], 2, 1), st[1][1])  # downsample1_2, ConvBlock1_2
    x = downsample(x, st[2][0], 2, 1)  # downsample2
    x = conv_block(conv_block(x, st[2][1]), st[2][2])  # ConvBlock2_1, ConvBlock2_2
    x = downsample(x, st[3][0], 2, 1)  # downsample3
    for j in range(6):
        x = x + attention(x, st[3][j + 1].attn)
        x = x + mlp(x, st[3][j + 1].mlp)
    x = downsample(x, st[4][0], 1, 1)  # downsample4: stride 1
    for j in range(2):
        x = x + attention(x, st[4][j + 1].attn)
        x = x + mlp(x, st[4][j + 1].mlp)
    s = lif(x.flatten(3).mean(3))  # head: tokens mean -> lif -> Linear -> mean over T
    return F.linear(s, model.head.fc.weight, model.head.fc.bias).mean(0)


def randomise(model, generator, x=None):
    """BN affine parameters that keep every layer firing, neither silent nor saturated (q, k and v
    dense enough for the attention neuron to reach 0.5). With an input ``x``, the running statistics
    are those of one train-mode pass over it, means then shifted by up to 0.2 standard deviations,
    so that eval mode fires about as much as train mode."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5, generator=generator)
            bn.bias.uniform_(-0.2, 0.6, generator=generator)
        for attn in [m for m in model.modules() if isinstance(m, RepConvSelfAttention)]:
            for qkv in (attn.q, attn.k, attn.v):
                qkv.bn.bias.uniform_(1.0, 1.8, generator=generator)
        if x is not None:
            training = model.training
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
            model.train()(x)
            for bn in bns:
                bn.momentum = 0.1
                shift = torch.rand(bn.num_features, generator=generator, dtype=bn.running_mean.dtype) - 0.5
                bn.running_mean.add_(shift * 0.4 * bn.running_var.sqrt())
            model.train(training)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_meta_spikeformer_matches_the_spec_layer_table_in_float64(training):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("meta_spikformer_imagenet_8_384", **SMALL).double()
    img = torch.randn(2, 3, 48, 48, generator=g, dtype=torch.float64)
    randomise(model, g, img)
    model.train(training)
    x_lib, x_ref = img.clone().requires_grad_(), img.clone().requires_grad_()
    ref = authors_forward(model, x_ref, 2, training)  # first: the model's forward updates running stats
    rates = record_firing(model)
    logits = model(x_lib)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    assert len(rates) == 77 and all(0 < r < 1 for r in rates.values()), rates  # no layer silent or saturated
    g_out = torch.randn(2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    assert x_ref.grad.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, x_ref.grad, rtol=1e-6, atol=1e-6 * x_ref.grad.abs().max().item())


def test_padded_batch_norm_border_is_the_running_response_to_zero_with_the_quirk():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64) * 2 + 1
    quirk, fixed = PaddedBatchNorm(3).double(), PaddedBatchNorm(3, official_quirks=False).double()
    torch.nn.init.uniform_(quirk.bn.weight, 0.5, 1.5)
    torch.nn.init.uniform_(quirk.bn.bias, -0.5, 0.5)
    fixed.load_state_dict(quirk.state_dict())
    yq, yf = quirk.train()(x), fixed.train()(x)
    assert yq.shape == (4, 3, 7, 7)
    torch.testing.assert_close(yq[:, :, 1:-1, 1:-1], yf[:, :, 1:-1, 1:-1], rtol=0, atol=0)  # interior: plain BN
    bn = quirk.bn  # the border reads the running statistics after this forward's update
    running = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    batch = bn.bias - mean * bn.weight / torch.sqrt(var + bn.eps)
    for y, border in ((yq, running), (yf, batch)):
        for edge in (y[:, :, 0, :], y[:, :, -1, :], y[:, :, :, 0], y[:, :, :, -1]):
            torch.testing.assert_close(edge, border.detach().view(1, 3, 1).expand_as(edge), rtol=0, atol=1e-12)
    assert not torch.allclose(running, batch)
    # gradients: the quirk's border is a constant; the fixed one reaches weight and bias
    yq[:, :, 0, 0].sum().backward()
    yf[:, :, 0, 0].sum().backward()
    assert quirk.bn.bias.grad is None or quirk.bn.bias.grad.abs().sum() == 0
    assert torch.equal(fixed.bn.bias.grad, torch.full((3,), 4.0, dtype=torch.float64))
    # eval: both pad with the running response to zero
    torch.testing.assert_close(quirk.eval()(x), fixed.eval()(x), rtol=0, atol=1e-12)


def test_official_quirks_change_train_mode_outputs_only():
    g = torch.Generator().manual_seed(1)
    quirk = create_model("meta_spikformer_imagenet_8_384", **TINY).double()
    randomise(quirk, g)
    fixed = create_model("meta_spikformer_imagenet_8_384", official_quirks=False, **TINY).double()
    fixed.load_state_dict(quirk.state_dict())
    img = torch.randn(2, 3, 48, 48, generator=g, dtype=torch.float64)
    torch.testing.assert_close(quirk.eval()(img), fixed.eval()(img), rtol=0, atol=1e-9)
    assert not torch.allclose(quirk.train()(img), fixed.train()(img))
    assert all(m.official_quirks is False for m in fixed.modules() if isinstance(m, PaddedBatchNorm))


@pytest.mark.parametrize("name,kd,count", [
    ("meta_spikformer_imagenet_8_384", False, 31_333_864),
    ("meta_spikformer_imagenet_8_384", True, 31_814_864),
    ("meta_spikformer_imagenet_8_512", False, 55_350_248),
    ("meta_spikformer_imagenet_8_512", True, 55_991_248),
])
def test_parameter_counts_are_the_specs(name, kd, count):
    assert count_parameters(create_model(name, kd=kd)) == count


def test_registered_configurations():
    assert list_models("meta_spikformer*") == ["meta_spikformer_dvs", "meta_spikformer_imagenet_8_384",
                                               "meta_spikformer_imagenet_8_512"]
    assert all(model_entry(n).model_class is meta.MetaSpikeFormer for n in list_models("meta_spikformer*"))
    model = create_model("meta_spikformer_imagenet_8_384")
    assert (model.img_size, model.in_channels, model.num_classes, model.time_steps) == ((224, 224), 3, 1000, 4)
    assert model.embed_dims == (96, 192, 384, 480) and model.depths == (1, 1, 2, 6, 2)
    assert model_entry("meta_spikformer_imagenet_8_512").info.reported == "80.0"
    dvs = create_model("meta_spikformer_dvs", embed_dims=(16, 32, 64, 80))
    assert (dvs.img_size, dvs.in_channels, dvs.num_classes, dvs.time_steps) == ((128, 128), 2, 10, 16)
    assert "ours" in model_entry("meta_spikformer_dvs").info.source


def test_feature_map_sizes_follow_the_spec_strides():
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), depths=(0,) * 5,
                         time_steps=1, img_size=64)
    x = torch.zeros(1, 1, 3, 64, 64)
    sizes = []
    for stage in model.stages:
        x = stage(x)
        sizes.append(tuple(x.shape[2:]))
    assert sizes == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4), (80, 4, 4)]  # 224: 112, 56, 28, 14, 14


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="qgate", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    # the authors' 77 MultiStepLIFNodes: 4 downsamples, 4 per conv block (x4), 7 per transformer block (x8), head
    assert len(neurons) == 4 + 4 * 4 + 7 * 8 + 1
    assert all(type(n) is cls and n.surrogate == "qgate" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    attn = {id(m.attn_neuron) for m in model.modules() if isinstance(m, RepConvSelfAttention)}
    assert len(attn) == 8
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in attn else 0.8)


def test_attention_threshold_is_its_own_override():
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), attn_threshold=0.25)
    attn = model.stages[3][1].attn
    assert attn.attn_neuron.v_threshold == 0.25 and attn.q_neuron.v_threshold == 1.0


def test_kd_head_returns_the_pair_in_training_and_their_mean_in_eval():
    torch.manual_seed(0)
    model = create_model("meta_spikformer_imagenet_8_384", kd=True, **TINY)
    with torch.no_grad():
        model.head.fc_kd.bias.fill_(1.0)  # make the two heads differ
    img = torch.randn(2, 3, 48, 48)
    logits, logits_kd = model.train()(img)
    assert logits.shape == logits_kd.shape == (2, 10) and not torch.allclose(logits, logits_kd)
    model.eval()
    head = model.head
    spikes = head.neuron(model.forward_features(model.check_input(img)).flatten(3).mean(-1))
    expected = (head.fc(spikes).mean(0) + head.fc_kd(spikes).mean(0)) / 2
    torch.testing.assert_close(model(img), expected, rtol=0, atol=1e-6)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="embed_dims must be 4 stage widths"):
        create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64))
    with pytest.raises(ValueError, match="depths must be 5 block counts"):
        create_model("meta_spikformer_imagenet_8_384", depths=(1, 1, 2, 6))
    with pytest.raises(ValueError, match="dim 80 is not divisible by num_heads 3"):
        create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 66, 80), num_heads=3)


@pytest.mark.parametrize("shape", [(4, 2, 3, 64, 64), (2, 3, 32, 32), (4, 2, 2, 224, 224)])
def test_wrong_input_shape_names_the_expected_layout_and_size(shape):
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80))
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=3, H=224, W=224"):
        model(torch.zeros(shape))


def authors_state_dict_shapes(dims=(96, 192, 384, 480), kd=False, classes=1000):
    """Spec C.2's key patterns for ``metaspikformer_8_384``, every key with its shape."""
    def bn(prefix, c):
        return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + \
            [(f"{prefix}.num_batches_tracked", ())]

    D0, D1, D2, D3 = dims
    keys = []
    for name, c_in, c_out, k in [("downsample1_1", 3, D0 // 2, 7), ("downsample1_2", D0 // 2, D0, 3),
                                 ("downsample2", D0, D1, 3), ("downsample3", D1, D2, 3), ("downsample4", D2, D3, 3)]:
        keys += [(f"{name}.encode_conv.weight", (c_out, c_in, k, k)), (f"{name}.encode_conv.bias", (c_out,))]
        keys += bn(f"{name}.encode_bn", c_out)
    for name, c in [("ConvBlock1_1", D0 // 2), ("ConvBlock1_2", D0), ("ConvBlock2_1", D1), ("ConvBlock2_2", D1)]:
        p = f"{name}.0"
        keys += [(f"{p}.Conv.pwconv1.weight", (2 * c, c, 1, 1))] + bn(f"{p}.Conv.bn1", 2 * c)
        keys += [(f"{p}.Conv.dwconv.weight", (2 * c, 1, 7, 7)), (f"{p}.Conv.pwconv2.weight", (c, 2 * c, 1, 1))]
        keys += bn(f"{p}.Conv.bn2", c)
        keys += [(f"{p}.conv1.weight", (4 * c, c, 3, 3))] + bn(f"{p}.bn1", 4 * c)
        keys += [(f"{p}.conv2.weight", (c, 4 * c, 3, 3))] + bn(f"{p}.bn2", c)
    for name, c, n in [("block3", D2, 6), ("block4", D3, 2)]:
        for i in range(n):
            for proj in ("q", "k", "v", "proj"):
                p = f"{name}.{i}.attn.{proj}_conv"
                keys += [(f"{p}.0.body.0.weight", (c, c, 1, 1))] + bn(f"{p}.0.body.1.bn", c)
                keys += [(f"{p}.0.body.2.0.weight", (c, 1, 3, 3)), (f"{p}.0.body.2.1.weight", (c, c, 1, 1))]
                keys += bn(f"{p}.0.body.2.2", c) + bn(f"{p}.1", c)
            p = f"{name}.{i}.mlp"
            keys += [(f"{p}.fc1_conv.weight", (4 * c, c, 1)), (f"{p}.fc1_conv.bias", (4 * c,))]
            keys += bn(f"{p}.fc1_bn", 4 * c)
            keys += [(f"{p}.fc2_conv.weight", (c, 4 * c, 1)), (f"{p}.fc2_conv.bias", (c,))] + bn(f"{p}.fc2_bn", c)
    for head in ("head", "head_kd") if kd else ("head",):
        keys += [(f"{head}.weight", (classes, D3)), (f"{head}.bias", (classes,))]
    return keys


def test_authors_state_dict_has_the_specs_825_entries_and_parameters():
    shapes = authors_state_dict_shapes()
    assert len(shapes) == 825
    params = sum(torch.Size(s).numel() for k, s in shapes if not k.rsplit(".", 1)[-1].startswith(("running", "num_")))
    assert params == 31_333_864


def small_authors_checkpoint(kd=False):
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=g) if s else torch.tensor(7)
            for k, s in authors_state_dict_shapes((16, 32, 64, 80), kd=kd, classes=10)}


@pytest.mark.parametrize("kd", [False, True])
def test_authors_checkpoint_converts_and_loads(tmp_path, kd):
    authors = small_authors_checkpoint(kd)
    torch.save({"model": {"module." + k: v for k, v in authors.items()}}, tmp_path / "ckpt.pth")
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), num_classes=10, kd=kd,
                         checkpoint_path=tmp_path / "ckpt.pth")  # every key checked
    st = model.stages
    pairs = [
        (st[0][0].conv.bias, "downsample1_1.encode_conv.bias"),
        (st[2][2].sep.dwconv.weight, "ConvBlock2_2.0.Conv.dwconv.weight"),
        (st[1][1].bn2.running_var, "ConvBlock1_2.0.bn2.running_var"),
        (st[4][0].bn.weight, "downsample4.encode_bn.weight"),
        (st[3][6].attn.v.rep.bn_pad.bn.running_mean, "block3.5.attn.v_conv.0.body.1.bn.running_mean"),
        (st[3][1].attn.proj.rep.dwconv.weight, "block3.0.attn.proj_conv.0.body.2.0.weight"),
        (st[4][2].attn.q.rep.bn.bias, "block4.1.attn.q_conv.0.body.2.2.bias"),
        (st[4][2].attn.k.bn.weight, "block4.1.attn.k_conv.1.weight"),
        (st[4][1].mlp.fc2.bn.num_batches_tracked, "block4.0.mlp.fc2_bn.num_batches_tracked"),
        (model.head.fc.weight, "head.weight"),
    ]
    for ours, theirs in pairs:
        assert torch.equal(ours, authors[theirs]), theirs
    fc1 = authors["block3.2.mlp.fc1_conv.weight"]  # Conv1d [4C, C, 1] -> our 1x1 Conv2d
    assert torch.equal(st[3][3].mlp.fc1.conv.weight, fc1.unsqueeze(-1))
    if kd:
        assert torch.equal(model.head.fc_kd.bias, authors["head_kd.bias"])


def test_mismatched_authors_checkpoint_is_refused_whole(tmp_path):
    authors = small_authors_checkpoint(kd=True)
    torch.save(authors, tmp_path / "kd.pth")
    with pytest.raises(CheckpointMismatchError, match="2 unexpected: head.fc_kd.weight, head.fc_kd.bias"):
        load_weights(create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), num_classes=10),
                     tmp_path / "kd.pth")
    del authors["head_kd.weight"], authors["head_kd.bias"]
    authors["block3.0.attn.q_conv.0.body.0.weight"] = torch.zeros(64, 64, 3, 3)
    torch.save(authors, tmp_path / "bad.pth")
    model = create_model("meta_spikformer_imagenet_8_384", embed_dims=(16, 32, 64, 80), num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r"1 mis-shaped: stages.3.1.attn.q.rep.conv1x1.weight"):
        load_weights(model, tmp_path / "bad.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_float32_forward_and_backward_reach_every_parameter():
    torch.manual_seed(0)
    model = create_model("meta_spikformer_dvs", embed_dims=(16, 32, 64, 80), time_steps=2, img_size=32)  # all blocks
    randomise(model, torch.Generator().manual_seed(0))
    x = (torch.rand(2, 2, 2, 32, 32) * 3).floor()
    F.cross_entropy(model(x), torch.tensor([1, 2])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing
