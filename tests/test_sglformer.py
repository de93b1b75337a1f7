"""SGLFormer: the CIFAR10-DVS model computed exactly as the spec's layer tables
(`shared/specs/more_models.md`, section B) say, the LocalSSA's interleaved partition,
the T-dependent parameter counts, the authors' checkpoint keys, and every neuron
setting reaching every neuron."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.models.sglformer import SGLSelfAttention, integrate, partition
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights
from spikeformers.models.registry import count_parameters, create_model, list_models, model_entry
from spikeformers.neurons import IF, LIF, PLIF, neuron_factory
from spec_reference import lif, record_firing


def spec_partition(x, n=2):
    """B.2 step 2, literally: sub-image (b, hi, wi) takes pixels (n*i + hi, n*j + wi), batch index b*n*n + hi*n + wi."""
    T, B = x.shape[:2]
    return torch.stack([x[:, b, :, hi::n, wi::n] for b in range(B) for hi in range(n) for wi in range(n)], dim=1)


def spec_integrate(y, B, n=2):
    T, _, C, h, w = y.shape
    out = y.new_zeros(T, B, C, h * n, w * n)
    for b in range(B):
        for hi in range(n):
            for wi in range(n):
                out[:, b, :, hi::n, wi::n] = y[:, b * n * n + hi * n + wi]
    return out


def authors_dvs_forward(model, x_btchw, training, heads=16):
    """Spec B.1-B.3 step by step on the model's weights; ``x_btchw`` is the authors' [B, T, 2, 128, 128]."""
    B, T = x_btchw.shape[:2]
    x = x_btchw.transpose(0, 1)  # permuted to [T, B, 2, 128, 128]

    def bn(h, module):
        return F.batch_norm(h, module.running_mean.clone(), module.running_var.clone(), module.weight, module.bias,
                            training, 0.1, 1e-5)

    def unit(h, weight, norm, pool=False, groups=1):
        """The authors' Conv3x3 / DWConv3x3 / Conv1x1 on [T, B', ...]: conv -> BN -> [MaxPool] -> LIF."""
        Tn, Bn = h.shape[:2]
        y = bn(F.conv2d(h.flatten(0, 1), weight, padding=weight.shape[-1] // 2, groups=groups), norm)
        if pool:
            y = F.max_pool2d(y, 3, 2, 1)
        return lif(y.reshape(Tn, Bn, *y.shape[1:]))

    def conv_unit(h, u, pool=False):  # a ConvUnit of the model
        return unit(h, u.conv.weight, u.bn, pool)

    def dw_unit(h, u):
        return unit(h, u.conv.weight, u.bn, groups=h.shape[2])

    def lin_unit(h, lin_bn):  # Conv1x1 whose weight is the model's Linear weight
        return unit(h, lin_bn.linear.weight[:, :, None, None], lin_bn.bn)

    h = conv_unit(x, model.stem)  # B.1: [T, B, 42, 128, 128]
    for u in model.tokenizer:
        h = conv_unit(h, u, pool=True)
    assert h.shape == (T, B, 256, 8, 8)
    x = h

    def ssa(x, a, local):
        if local:
            x = spec_partition(x)  # [T, 4B, 256, 4, 4]
        Tn, Bn, C, hh, ww = x.shape
        N = hh * ww

        def to_heads(s):  # [T, B', C, h, w] -> [T, B', 16, N, 16], channel = head * 16 + j
            return s.flatten(3).transpose(-1, -2).reshape(Tn, Bn, N, heads, C // heads).permute(0, 1, 3, 2, 4)

        q, k, v = (to_heads(lin_unit(x, p)) for p in (a.q, a.k, a.v))
        y = ((q @ k.transpose(-2, -1)) @ v) * 0.125
        y = lif(y, threshold=0.5)  # attn_lif on [T, B', 16, N, 16]
        y = y.permute(0, 1, 2, 4, 3).reshape(Tn, Bn, C, hh, ww)
        y = lin_unit(y, a.proj)
        return spec_integrate(y, B) if local else y

    def mlp(x, m):
        return conv_unit(conv_unit(x, m.fc1), m.fc2)

    for block in model.blocks:  # B.2
        loc = block.local
        y = x + dw_unit(x, loc.dw)
        r = y
        y = conv_unit(dw_unit(conv_unit(y, loc.expand), loc.dw_hidden), loc.reduce)
        x = x + (y + r)  # x1 = 2 x0 + DW(x0) + F(x0 + DW(x0))
        for i, layer in enumerate(block.mixers):
            x = x + ssa(x, layer.attn, local=i == 0)
            x = x + mlp(x, layer.mlp)
    hd = model.head  # B.3
    z = x.flatten(3).permute(1, 2, 3, 0)  # [B, 256, 64, T]
    z = F.conv2d(z, hd.conv.weight, hd.conv.bias, groups=256)  # [B, 256, 1, 1]
    z = bn(z, hd.bn).reshape(B, 256)
    return F.linear(z, hd.fc.weight, hd.fc.bias)


def randomise_weights(model, generator):
    """Dense weights at a scale where spikes propagate and BN statistics varied per channel, so that every
    neuron fires (and none saturates) in eval and in train mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0, 1.5 / m.weight[0].numel() ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5, generator=generator)
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0, generator=generator)
                # dense Q, K, V so that the local attention (16 tokens) reaches its neuron's threshold
                m.bias.uniform_(*((0.0, 3.0) if name.endswith(("q.bn", "k.bn", "v.bn")) else (-1.0, 1.0)),
                                generator=generator)
                m.running_mean.uniform_(-0.2, 0.2, generator=generator)
                m.running_var.uniform_(0.3, 1.0, generator=generator)


def dvs_model_and_input(dtype=torch.float64, T=2, B=2):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("sglformer_dvs", time_steps=T).to(dtype)  # the head (and the reference) built for T=2
    randomise_weights(model, g)
    model.requires_grad_(False)  # input gradients are compared; weight gradients would only double the cost
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
    assert len(rates) == 30 and all(0 < r < 1 for r in rates.values()), rates  # no layer silent or saturated
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    g_out = torch.randn(2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    grad_ref = x_ref.grad.transpose(0, 1)
    assert grad_ref.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, grad_ref, rtol=1e-6, atol=1e-6 * grad_ref.abs().max().item())


def test_partition_is_the_interleaved_split_and_integrate_inverts_it():
    x = torch.arange(2 * 3 * 3 * 8 * 8).reshape(2, 3, 3, 8, 8)  # [T, B, C, H, W]
    p = partition(x, 2)
    assert p.shape == (2, 12, 3, 4, 4)
    assert torch.equal(p, spec_partition(x))
    assert torch.equal(p[:, 0], x[:, 0, :, 0::2, 0::2])  # window 0: even rows, even columns (spec B.2)
    assert torch.equal(p[:, 4 + 2 + 1], x[:, 1, :, 1::2, 1::2])  # b=1, hi=1, wi=1
    assert torch.equal(integrate(p, 2), x)


def test_local_attention_differs_from_global():
    torch.manual_seed(0)
    attn = SGLSelfAttention(16, 2, neuron_factory(LIF), partition=2).eval()
    randomise_weights(attn, torch.Generator().manual_seed(1))
    x = (torch.rand(2, 2, 16, 4, 4) < 0.5).float()
    local = attn(x)
    attn.partition = 1
    assert not torch.equal(local, attn(x))


@pytest.mark.parametrize("name,T", [("sglformer_dvs_t10", 10), ("sglformer_dvs", 16)])
def test_parameter_counts_are_the_specs(name, T):
    spec = {10: 4_066_130, 16: 4_164_434}[T]  # spec B.4; nothing of the authors' is unused
    with torch.device("meta"):  # shapes only: no memory, no init
        model = create_model(name)
    assert count_parameters(model) == spec
    assert count_parameters(model.head.conv) == 256 * 64 * T + 256  # the T-dependent part: +98,304 from 10 to 16
    assert 4_164_434 - 4_066_130 == 256 * 64 * 6


def test_registered_configurations():
    assert list_models("sglformer*") == ["sglformer_cifar10", "sglformer_cifar100", "sglformer_dvs",
                                         "sglformer_dvs_t10", "sglformer_gesture", "sglformer_gesture_t10"]
    with torch.device("meta"):
        dvs, t10 = create_model("sglformer_dvs"), create_model("sglformer_dvs_t10")
    assert dvs.time_steps == 16 and t10.time_steps == 10 and t10.head.time_steps == 10
    assert dvs.img_size == (128, 128) and dvs.grid_size == (8, 8) and dvs.stem.conv.out_channels == 42
    assert [m.attn.partition for m in dvs.blocks[0].mixers] == [2, 1, 1] and len(dvs.blocks) == 1
    assert model_entry("sglformer_dvs").info.reported == "82.6"
    assert model_entry("sglformer_dvs_t10").info.reported == "82.9"


TINY = dict(img_size=32, embed_dim=32, num_heads=4, time_steps=2, num_classes=5)


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("sglformer_dvs", **TINY, neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="atan", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 1 + 4 + 4 + 3 * (5 + 2)  # stem, tokenizer, LocalBlock, 3 x (SSA q/k/v/attn/proj + MLP)
    assert all(type(n) is cls and n.surrogate == "atan" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    attn = {id(m.attn_neuron) for m in model.modules() if isinstance(m, SGLSelfAttention)}
    assert len(attn) == 3
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in attn else 0.8)


def test_default_neurons_and_attn_threshold_override():
    model = create_model("sglformer_dvs", **TINY)
    assert all(n.tau == 2.0 and n.detach_reset for n in model.modules() if isinstance(n, LIF))
    model = create_model("sglformer_dvs", **TINY, attn_threshold=0.25, neuron_kwargs=dict(tau=3.0))
    attn = model.blocks[0].mixers[1].attn
    assert attn.attn_neuron.v_threshold == 0.25 and attn.attn_neuron.tau == 3.0 and attn.q_neuron.v_threshold == 1.0


def test_tiny_model_trains_in_float32():
    model = create_model("sglformer_dvs", **TINY)
    x = (torch.rand(2, 3, 2, 32, 32) * 3).requires_grad_()
    logits = model(x)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32
    F.cross_entropy(logits, torch.tensor([0, 1, 4])).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(16, 2, 2, 64, 64), (16, 2, 3, 128, 128), (2, 3, 128, 128), (16, 2, 2, 128)])
def test_wrong_input_shape_names_the_supported_size(shape):
    with torch.device("meta"):
        model = create_model("sglformer_dvs")
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=128, W=128"):
        model(torch.zeros(shape, device="meta"))


def test_wrong_number_of_time_steps_is_refused():
    with torch.device("meta"):
        model = create_model("sglformer_dvs_t10")
    with pytest.raises(ValueError, match=r"built for T=10 but got T=16.*weights are tied to T"):
        model(torch.zeros(16, 1, 2, 128, 128, device="meta"))


def test_training_with_a_batch_of_one_is_refused_and_eval_works():
    model = create_model("sglformer_dvs", **TINY)
    x = torch.rand(2, 1, 2, 32, 32) * 3
    with pytest.raises(ValueError, match="training needs a batch of at least 2.*got B=1"):
        model(x)
    assert model.eval()(x).shape == (1, 5)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="not divisible by local_partition 3"):
        create_model("sglformer_dvs", **TINY, local_partition=3)


def test_static_images_are_repeated_over_time_steps():
    model = create_model("sglformer_dvs", **TINY).eval()
    img = torch.rand(2, 2, 32, 32) * 3
    assert torch.equal(model(img), model(img.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


def bn(prefix, c):
    return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + \
        [(f"{prefix}.num_batches_tracked", ())]


def authors_dvs_state_dict_shapes(T=10):
    """Spec B.4: the official DVS model's 171 keys and shapes."""
    keys = [("stem.conv.conv3x3.weight", (42, 2, 3, 3))] + bn("stem.conv.bn", 42)
    for i, (c_in, c_out) in enumerate([(42, 64), (64, 128), (128, 256), (256, 256)], start=1):
        keys += [(f"tokenizer.conv{i}.conv3x3.weight", (c_out, c_in, 3, 3))] + bn(f"tokenizer.conv{i}.bn", c_out)
    b = "blocks.0"
    keys += [(f"{b}.loc.conv.conv3x3.weight", (256, 1, 3, 3))] + bn(f"{b}.loc.conv.bn", 256)
    keys += [(f"{b}.loc.conv1x1_1.conv1x1.weight", (1024, 256, 1, 1))] + bn(f"{b}.loc.conv1x1_1.bn", 1024)
    keys += [(f"{b}.loc.dwconv3x3.conv3x3.weight", (1024, 1, 3, 3))] + bn(f"{b}.loc.dwconv3x3.bn", 1024)
    keys += [(f"{b}.loc.conv1x1_2.conv1x1.weight", (256, 1024, 1, 1))] + bn(f"{b}.loc.conv1x1_2.bn", 256)
    for n in (1, 2, 3):
        for p in ("q", "k", "v", "proj"):
            keys += [(f"{b}.ssa{n}.{p}_conv.conv1x1.weight", (256, 256, 1, 1))] + bn(f"{b}.ssa{n}.{p}_conv.bn", 256)
        keys += [(f"{b}.mlp{n}.mlp1.conv1x1.weight", (1024, 256, 1, 1))] + bn(f"{b}.mlp{n}.mlp1.bn", 1024)
        keys += [(f"{b}.mlp{n}.mlp2.conv1x1.weight", (256, 1024, 1, 1))] + bn(f"{b}.mlp{n}.mlp2.bn", 256)
    keys += [("full_size_conv.weight", (256, 1, 64, T)), ("full_size_conv.bias", (256,))] + bn("bn", 256)
    keys += [("head.weight", (10, 256)), ("head.bias", (10,))]
    return keys


def authors_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked")
            else torch.randn(s, generator=g) for k, s in authors_dvs_state_dict_shapes()}


def test_authors_checkpoint_converts_and_loads(tmp_path):
    authors = authors_state()
    assert len(authors) == 171
    torch.save({"model": {"module." + k: v for k, v in authors.items()}}, tmp_path / "ckpt.pth")
    model = create_model("sglformer_dvs_t10", checkpoint_path=tmp_path / "ckpt.pth")  # every key checked
    ours = model.state_dict()
    assert len(ours) == 171
    pairs = {
        "stem.conv.weight": "stem.conv.conv3x3.weight",
        "stem.bn.running_mean": "stem.conv.bn.running_mean",
        "tokenizer.0.conv.weight": "tokenizer.conv1.conv3x3.weight",
        "tokenizer.3.bn.running_var": "tokenizer.conv4.bn.running_var",
        "blocks.0.local.dw.conv.weight": "blocks.0.loc.conv.conv3x3.weight",
        "blocks.0.local.expand.bn.bias": "blocks.0.loc.conv1x1_1.bn.bias",
        "blocks.0.local.dw_hidden.conv.weight": "blocks.0.loc.dwconv3x3.conv3x3.weight",
        "blocks.0.local.reduce.conv.weight": "blocks.0.loc.conv1x1_2.conv1x1.weight",
        "blocks.0.mixers.0.attn.q.linear.weight": "blocks.0.ssa1.q_conv.conv1x1.weight",
        "blocks.0.mixers.2.attn.proj.bn.num_batches_tracked": "blocks.0.ssa3.proj_conv.bn.num_batches_tracked",
        "blocks.0.mixers.1.mlp.fc2.conv.weight": "blocks.0.mlp2.mlp2.conv1x1.weight",
        "blocks.0.mixers.2.mlp.fc1.bn.weight": "blocks.0.mlp3.mlp1.bn.weight",
        "head.conv.weight": "full_size_conv.weight",
        "head.bn.running_mean": "bn.running_mean",
        "head.fc.weight": "head.weight",
    }
    for own_key, their_key in pairs.items():
        assert torch.equal(ours[own_key], authors[their_key].reshape(ours[own_key].shape)), own_key
    # every tensor landed somewhere, none twice
    assert sorted(float(v.double().sum()) for v in authors.values()) == \
        sorted(float(v.double().sum()) for v in ours.values())


def test_authors_checkpoint_for_another_T_is_refused(tmp_path):
    torch.save(authors_state(), tmp_path / "t10.pth")
    with pytest.raises(CheckpointMismatchError, match=r"head.conv.weight: checkpoint \(256, 1, 64, 10\) vs model "
                                                      r"\(256, 1, 64, 16\)"):
        load_weights(create_model("sglformer_dvs"), tmp_path / "t10.pth")
