"""Spikingformer: the CIFAR10-DVS model computed exactly as the spec's layer tables
(`shared/specs/more_models.md`, section A) say, its parameter counts, the authors'
checkpoint keys, and every neuron setting reaching every neuron (tau 1.5 by default)."""

import pytest
import torch
import torch.nn.functional as F

from spikeformers.layers import SpikingSelfAttention
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights
from spikeformers.models.registry import count_parameters, create_model, list_models, model_entry
from spikeformers.neurons import IF, LIF, PLIF
from spec_reference import lif as spec_lif, record_firing


def lif(x, threshold=1.0, tau=1.5):
    """The authors' LIF with Spikingformer's module constant tau_thr = 1.5."""
    return spec_lif(x, threshold, tau)


def authors_dvs_forward(model, x_btchw, training, heads=16):
    """Spec A.1-A.2 step by step on the model's weights; ``x_btchw`` is the authors' [B, T, 2, 128, 128]."""
    B, T = x_btchw.shape[:2]
    x = x_btchw.transpose(0, 1)  # permuted to [T, B, 2, 128, 128]

    def bn(h, module):
        return F.batch_norm(h, module.running_mean.clone(), module.running_var.clone(), module.weight, module.bias,
                            training, 0.1, 1e-5)

    def lif_tb(h, threshold=1.0):  # LIF on a [T*B, ...] tensor viewed as [T, B, ...]
        return lif(h.reshape(T, B, *h.shape[1:]), threshold).flatten(0, 1)

    pe = model.patch_embed
    h = bn(F.conv2d(x.flatten(0, 1), pe.first.conv.weight, padding=1), pe.first.bn)  # 1: [TB, 32, 128, 128]
    for stage in pe.stages:  # 2-5: LIF -> MaxPool on spikes -> Conv -> BN
        h = F.max_pool2d(lif_tb(h), 3, 2, 1)
        h = bn(F.conv2d(h, stage.conv.weight, padding=1), stage.bn)
    assert h.shape == (T * B, 256, 8, 8)
    x = h.reshape(T, B, 256, 8, 8)

    def conv1d_bn(h, lin_bn):  # Conv1d(k=1) + BN1d on [T*B, C, N]
        return bn(F.conv1d(h, lin_bn.linear.weight.unsqueeze(-1), lin_bn.linear.bias), lin_bn.bn)

    def to_heads(h):  # [T*B, 256, 64] -> [T, B, 16, 64, 16], channel = head * 16 + j
        return h.reshape(T, B, 256, 64).transpose(-1, -2).reshape(T, B, 64, heads, 16).permute(0, 1, 3, 2, 4)

    for block in model.blocks:
        a, m = block.attn, block.mlp
        s = lif(x).flatten(3).flatten(0, 1)  # attn 1: proj_lif, [T*B, 256, 64]
        q = to_heads(lif_tb(conv1d_bn(s, a.q)))  # 2
        k = to_heads(lif_tb(conv1d_bn(s, a.k)))
        v = to_heads(lif_tb(conv1d_bn(s, a.v)))
        y = ((q @ k.transpose(-2, -1)) @ v) * 0.125  # 3: [T, B, 16, 64, 16]
        y = y.transpose(3, 4).reshape(T, B, 256, 64)  # 4
        y = lif(y, threshold=0.5)
        y = conv1d_bn(y.flatten(0, 1), a.proj).reshape(T, B, 256, 8, 8)  # 5: no LIF
        x = x + y
        h = bn(F.conv2d(lif(x).flatten(0, 1), m.fc1.conv.weight, m.fc1.conv.bias), m.fc1.bn)  # mlp
        h = bn(F.conv2d(lif_tb(h), m.fc2.conv.weight, m.fc2.conv.bias), m.fc2.bn)
        x = x + h.reshape(T, B, 256, 8, 8)
    z = x.flatten(3).mean(3).mean(0)  # head: token mean, T mean, Linear
    return F.linear(z, model.head.fc.weight, model.head.fc.bias)


def randomise_weights(model, generator):
    """Dense weights at a scale where spikes propagate and BN statistics varied per channel, so that every
    neuron fires (and none saturates) in eval and in train mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0, 1.5 / m.weight[0].numel() ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5, generator=generator)
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0, generator=generator)
                m.bias.uniform_(-1.0, 1.0, generator=generator)
                m.running_mean.uniform_(-0.2, 0.2, generator=generator)
                m.running_var.uniform_(0.3, 1.0, generator=generator)


def dvs_model_and_input(dtype=torch.float64, T=2, B=2):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = create_model("spikingformer_dvs", time_steps=T).to(dtype)
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
    assert len(rates) == 4 + 2 * (5 + 2) and all(0 < r < 1 for r in rates.values()), rates  # none silent/saturated
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    g_out = torch.randn(2, 10, generator=g, dtype=torch.float64)
    logits.backward(g_out)
    ref.backward(g_out)
    grad_ref = x_ref.grad.transpose(0, 1)
    assert grad_ref.abs().max() > 0
    torch.testing.assert_close(x_lib.grad, grad_ref, rtol=1e-6, atol=1e-6 * grad_ref.abs().max().item())


def test_tau_changes_the_output():
    """The equivalence above can fail on tau: the same weights with tau 2 give other logits."""
    g = torch.Generator().manual_seed(0)
    model = create_model("spikingformer_dvs", **TINY).to(torch.float64).eval()
    randomise_weights(model, g)
    tau2 = create_model("spikingformer_dvs", **TINY, neuron_kwargs=dict(tau=2.0)).to(torch.float64).eval()
    tau2.load_state_dict(model.state_dict())
    x = (torch.rand(2, 2, 2, 32, 32, generator=g, dtype=torch.float64) * 4).floor()
    with torch.no_grad():
        assert (model(x) - tau2(x)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["spikingformer_dvs", "spikingformer_dvs_t10"])
def test_parameter_counts_are_the_specs(name):
    # spec A.3: 2,568,714 with the two blocks' unused LayerNorms norm1, norm2 (2 x 2 x (256 + 256) = 2,048)
    with torch.device("meta"):  # shapes only: no memory, no init
        assert count_parameters(create_model(name)) == 2_568_714 - 2 * 2 * (256 + 256) == 2_566_666


def test_registered_configurations():
    assert list_models("spikingformer*") == [
        "spikingformer_cifar10", "spikingformer_cifar100", "spikingformer_cifar100_2_384", "spikingformer_cifar100_4_256",
        "spikingformer_cifar10_2_384", "spikingformer_cifar10_4_256", "spikingformer_dvs", "spikingformer_dvs_t10",
        "spikingformer_gesture", "spikingformer_gesture_t10", "spikingformer_imagenet_8_384",
        "spikingformer_imagenet_8_512", "spikingformer_imagenet_8_768"]
    with torch.device("meta"):
        dvs, t10 = create_model("spikingformer_dvs"), create_model("spikingformer_dvs_t10")
    assert dvs.time_steps == 16 and t10.time_steps == 10
    assert dvs.img_size == (128, 128) and dvs.in_channels == 2 and dvs.patch_embed.grid_size == (8, 8)
    assert all(b.attn.num_heads == 16 and b.attn.scale == 0.125 for b in dvs.blocks)
    assert model_entry("spikingformer_dvs").info.reported == "81.3"
    assert model_entry("spikingformer_dvs_t10").info.reported == "79.9"
    with torch.device("meta"):
        cifar, imagenet = create_model("spikingformer_cifar10"), create_model("spikingformer_imagenet_8_384")
    # the CIFAR file pools after its third and fourth convolutions only: 32 -> 8
    assert cifar.patch_embed.grid_size == (8, 8) and imagenet.patch_embed.grid_size == (14, 14)
    assert {float(m.tau) for m in cifar.modules() if hasattr(m, "tau")} == {2.0}  # the CIFAR and ImageNet files' tau


TINY = dict(img_size=32, embed_dim=32, num_heads=4, time_steps=2, num_classes=5)


def test_default_neurons_are_the_authors_tau_1_5():
    model = create_model("spikingformer_dvs", **TINY)
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 4 + 2 * (5 + 2)
    attn = {id(m.attn_neuron) for m in model.modules() if isinstance(m, SpikingSelfAttention)}
    assert all(type(n) is LIF and n.tau == 1.5 and n.detach_reset and n.v_reset == 0.0 and n.surrogate == "sigmoid"
               and n.alpha == 4.0 and n.v_threshold == (0.5 if id(n) in attn else 1.0) for n in neurons)


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls):
    model = create_model("spikingformer_dvs", **TINY, neuron=neuron,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="atan", alpha=3.0, detach_mem=True))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 4 + 2 * (5 + 2)  # tokenizer 4, per block SSA 5 (input, q, k, v, attn) + MLP 2
    assert all(type(n) is cls and n.surrogate == "atan" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    if cls is not IF:
        assert all(n.tau == 1.5 for n in neurons)  # the family's default survives other settings
    attn = {id(m.attn_neuron) for m in model.modules() if isinstance(m, SpikingSelfAttention)}
    assert len(attn) == 2
    for n in neurons:
        assert n.v_threshold == (0.5 if id(n) in attn else 0.8)


def test_tau_and_attn_threshold_are_overridable():
    model = create_model("spikingformer_dvs", **TINY, attn_threshold=0.25, neuron_kwargs=dict(tau=3.0))
    attn = model.blocks[0].attn
    assert attn.attn_neuron.v_threshold == 0.25 and attn.attn_neuron.tau == 3.0
    assert attn.q_neuron.v_threshold == 1.0
    assert all(n.tau == 3.0 for n in model.modules() if isinstance(n, LIF))


def test_mlp_has_no_inner_shortcut_at_ratio_1():
    model = create_model("spikingformer_dvs", **TINY, mlp_ratio=1.0, depth=1).eval()
    randomise_weights(model, torch.Generator().manual_seed(0))
    mlp = model.blocks[0].mlp
    x = torch.randn(2, 1, 32, 4, 4) * 2
    torch.testing.assert_close(mlp(x), mlp.fc2(mlp.fc2_neuron(mlp.fc1(mlp.fc1_neuron(x)))), rtol=0, atol=0)


def test_tiny_model_trains_in_float32():
    model = create_model("spikingformer_dvs", **TINY)
    x = (torch.rand(2, 3, 2, 32, 32) * 3).requires_grad_()
    logits = model(x)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32
    F.cross_entropy(logits, torch.tensor([0, 1, 4])).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", [(4, 2, 2, 64, 64), (4, 2, 3, 128, 128), (2, 3, 128, 128), (4, 2, 2, 128)])
def test_wrong_input_shape_names_the_supported_size(shape):
    with torch.device("meta"):
        model = create_model("spikingformer_dvs")
    with pytest.raises(ValueError, match=r"expects input \[T, B, C, H, W\] with C=2, H=128, W=128"):
        model(torch.zeros(shape, device="meta"))


def test_static_images_are_repeated_over_time_steps():
    model = create_model("spikingformer_dvs", **TINY).eval()
    img = torch.rand(2, 2, 32, 32) * 3
    assert torch.equal(model(img), model(img.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


def bn(prefix, c):
    return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + \
        [(f"{prefix}.num_batches_tracked", ())]


def authors_dvs_state_dict_shapes():
    """Spec A.3: the official DVS model's 118 keys and shapes."""
    keys = [("patch_embed.proj_conv.weight", (32, 2, 3, 3))] + bn("patch_embed.proj_bn", 32)
    for i, (c_in, c_out) in enumerate([(32, 64), (64, 128), (128, 256), (256, 256)], start=1):
        keys += [(f"patch_embed.proj{i}_conv.weight", (c_out, c_in, 3, 3))] + bn(f"patch_embed.proj{i}_bn", c_out)
    for j in range(2):
        b = f"block.{j}"
        keys += [(f"{b}.norm1.weight", (256,)), (f"{b}.norm1.bias", (256,))]
        for p in "qkv":
            keys += [(f"{b}.attn.{p}_conv.weight", (256, 256, 1))] + bn(f"{b}.attn.{p}_bn", 256)
        keys += [(f"{b}.attn.proj_conv.weight", (256, 256, 1)), (f"{b}.attn.proj_conv.bias", (256,))]
        keys += bn(f"{b}.attn.proj_bn", 256)
        keys += [(f"{b}.norm2.weight", (256,)), (f"{b}.norm2.bias", (256,))]
        keys += [(f"{b}.mlp.mlp1_conv.weight", (1024, 256, 1, 1)), (f"{b}.mlp.mlp1_conv.bias", (1024,))]
        keys += bn(f"{b}.mlp.mlp1_bn", 1024)
        keys += [(f"{b}.mlp.mlp2_conv.weight", (256, 1024, 1, 1)), (f"{b}.mlp.mlp2_conv.bias", (256,))]
        keys += bn(f"{b}.mlp.mlp2_bn", 256)
    keys += [("head.weight", (10, 256)), ("head.bias", (10,))]
    return keys


def authors_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked")
            else torch.randn(s, generator=g) for k, s in authors_dvs_state_dict_shapes()}


def test_authors_checkpoint_converts_and_loads(tmp_path):
    authors = authors_state()
    assert len(authors) == 118
    torch.save({"model": {"module." + k: v for k, v in authors.items()}}, tmp_path / "ckpt.pth")
    model = create_model("spikingformer_dvs", checkpoint_path=tmp_path / "ckpt.pth")  # every key checked
    ours = model.state_dict()
    assert len(ours) == 118 - 8  # the two blocks' norm1/norm2 weight and bias are not built
    pairs = {
        "patch_embed.first.conv.weight": "patch_embed.proj_conv.weight",
        "patch_embed.first.bn.running_mean": "patch_embed.proj_bn.running_mean",
        "patch_embed.stages.0.conv.weight": "patch_embed.proj1_conv.weight",
        "patch_embed.stages.3.bn.running_var": "patch_embed.proj4_bn.running_var",
        "blocks.1.attn.k.linear.weight": "block.1.attn.k_conv.weight",
        "blocks.0.attn.proj.linear.bias": "block.0.attn.proj_conv.bias",
        "blocks.0.attn.v.bn.num_batches_tracked": "block.0.attn.v_bn.num_batches_tracked",
        "blocks.1.mlp.fc2.conv.weight": "block.1.mlp.mlp2_conv.weight",
        "blocks.0.mlp.fc1.bn.bias": "block.0.mlp.mlp1_bn.bias",
        "head.fc.weight": "head.weight",
    }
    for own_key, their_key in pairs.items():
        assert torch.equal(ours[own_key], authors[their_key].reshape(ours[own_key].shape)), own_key
    # every used tensor landed somewhere, none twice
    used = [v for k, v in authors.items() if ".norm" not in k]
    assert sorted(float(v.double().sum()) for v in used) == sorted(float(v.double().sum()) for v in ours.values())


def test_authors_checkpoint_with_an_extra_key_is_refused(tmp_path):
    authors = authors_state()
    authors["block.0.attn.attn_scale.weight"] = torch.zeros(1)
    torch.save(authors, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError, match="1 unexpected: block.0.attn.attn_scale.weight"):
        load_weights(create_model("spikingformer_dvs_t10"), tmp_path / "bad.pth")
