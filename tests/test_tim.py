"""TIM: the CIFAR10-DVS model computed exactly as the spec's layer table (`shared/specs/tim.md`,
sections 2-4) says, with the released code's thresholds and with the written ones; the quirk's
consequence for the TIM output; the parameter count; every neuron setting reaching every neuron; and
the authors' checkpoints (spec section 8's keys) converting, or refused whole."""

import pytest
import torch
import torch.nn.functional as F

import spikeformers.models.tim as tim_models  # registers the configurations
from spikeformers.layers import SpikingSelfAttention
from spikeformers.models.tim import TemporalInteraction
from spikeformers.models.checkpoints import CheckpointMismatchError, load_weights
from spikeformers.models.registry import count_parameters, create_model, list_models, model_entry
from spikeformers.neurons import IF, LIF, PLIF, neuron_factory


class SigmoidSpike(torch.autograd.Function):
    """braincog's heaviside forward (u >= 0) with its sigmoid surrogate, alpha 4."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        s = torch.sigmoid(4 * u)
        return g * 4 * s * (1 - s)


class MyNode:
    """braincog MyNode, one step per call (spec 2.2): membrane detached before every step
    (``mem_detach``; ``detach=False`` keeps the gradient through time), h = mem + (x - mem) / 2,
    spike when h - threshold >= 0, hard reset to 0 with the spike detached."""

    def __init__(self, threshold=1.0, detach=True):
        self.threshold, self.detach, self.mem = threshold, detach, 0.0  # n_reset: mem = 0.

    def __call__(self, x):
        if self.detach and torch.is_tensor(self.mem):
            self.mem = self.mem.detach()
        self.mem = self.mem + (x - self.mem) / 2.0
        s = SigmoidSpike.apply(self.mem - self.threshold)
        self.mem = self.mem * (1 - s.detach())
        return s


def node(x_flat, T, threshold=1.0):
    """A layer_by_layer MyNode with step=T on a T-major ``[(T*B), ...]`` tensor (spec 2.3)."""
    n = MyNode(threshold)
    xs = x_flat.reshape(T, -1, *x_flat.shape[1:])
    return torch.stack([n(xs[t]) for t in range(T)]).flatten(0, 1)


def authors_tim(q, interactor, th_in, th_out, alpha=0.5, detach=True):
    """Spec section 4: y0 = Q[0]; y_t = out_lif(a * in_lif(conv(y_{t-1})) + (1 - a) * Q[t])."""
    in_lif, out_lif = MyNode(th_in, detach), MyNode(th_out, detach)  # reset at entry
    T, B, H, N, D = q.shape
    ys = [q[0]]
    for t in range(1, T):
        z = F.conv1d(ys[-1].reshape(B * H, N, D), interactor.weight, interactor.bias, padding=2).reshape(B, H, N, D)
        ys.append(out_lif(alpha * in_lif(z) + (1 - alpha) * q[t]))
    return torch.stack(ys)


def batch_norm(x, bn, training):
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, training, 0.1, 1e-5)


def authors_tim_forward(model, x_btchw, training, quirks):
    """The spec's table (section 3) for `spikformer_dvs` of Fancyssc/TIM, step by step, on the model's weights."""
    th_attn, th_in, th_out = (1.0, 1.0, 1.0) if quirks else (0.5, 0.3, 0.5)  # spec section 5
    x = x_btchw.permute(1, 0, 2, 3, 4)  # step 1
    T, B = x.shape[:2]
    h = x.flatten(0, 1)
    for stage in model.patch_embed.stages:  # steps 2-5: Conv -> BN -> MyNode -> MaxPool
        conv, bn = stage.conv, stage.bn
        h = F.max_pool2d(node(batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training), T), 3, 2, 1)
    conv, bn = model.patch_embed.rpe.conv, model.patch_embed.rpe.bn  # step 6: RPE
    r = node(batch_norm(F.conv2d(h, conv.weight, padding=1), bn, training), T)
    x = (h + r).reshape(T, B, 256, 16)  # step 7

    def conv1d_bn_node(inp, lin_bn, bias=False):
        y = F.conv1d(inp, lin_bn.linear.weight.unsqueeze(-1), lin_bn.linear.bias if bias else None)
        return node(batch_norm(y, lin_bn.bn, training), T).reshape(T, B, -1, 16)

    for block in model.blocks:
        a = block.attn
        xf = x.flatten(0, 1)  # [TB, C, N]
        q, k, v = (conv1d_bn_node(xf, p).transpose(-2, -1).reshape(T, B, 16, 16, 16).permute(0, 1, 3, 2, 4)
                   for p in (a.q, a.k, a.v))  # steps 8-9: [T, B, head, token, d]
        q = authors_tim(q, a.q_mixer.interactor, th_in, th_out)  # step 10
        y = ((q @ k.transpose(-2, -1)) @ v) * 0.25  # step 11
        y = node(y.transpose(3, 4).reshape(T, B, 256, 16).flatten(0, 1), T, th_attn)  # step 12
        x = x + conv1d_bn_node(y, a.proj)  # steps 13-14: proj conv without bias
        m = conv1d_bn_node(x.flatten(0, 1), block.mlp.fc1, bias=True)  # step 15
        x = x + conv1d_bn_node(m.flatten(0, 1), block.mlp.fc2, bias=True)  # step 16
    return F.linear(x.mean(3).mean(0), model.head.fc.weight, model.head.fc.bias)  # step 17


def randomise(model, generator, x, training):
    """BN affine parameters strong enough that every layer fires, and an interactor large enough
    that TIM's input neuron fires at threshold 1 too. For eval mode the running statistics are
    those of one train-mode pass over ``x`` (means then shifted by up to 0.2 standard deviations),
    so that eval mode fires about as much as train mode (the Q, K, V spikes must be dense for the
    attention neuron to reach threshold 1 with the quirk)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(1.0, 2.5, generator=generator)
            bn.bias.uniform_(0.0, 1.0, generator=generator)
        for tim in [m for m in model.modules() if isinstance(m, TemporalInteraction)]:
            tim.interactor.weight.uniform_(-0.1, 0.3, generator=generator)
            tim.interactor.bias.uniform_(-0.2, 0.4, generator=generator)
        if not training:
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
            model.train()(x)
            for bn in bns:  # then moved off the batch's own, so that a constant (a bias) before BN shows
                bn.momentum = 0.1
                shift = torch.rand(bn.num_features, generator=generator, dtype=bn.running_mean.dtype) - 0.5
                bn.running_mean.add_(shift * 0.4 * bn.running_var.sqrt())
    model.train(training)


def tim_io(model):
    """Hooks recording (input Q, output) of every TIM (the list fills on the next forward)."""
    seen = []
    for m in model.modules():
        if isinstance(m, TemporalInteraction):
            m.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].detach(), out.detach())))
    return seen


def spike_counts(model):
    """Forward hooks counting each neuron's spikes (the dict fills on the next forward)."""
    counts = {}
    for n in model.modules():
        if isinstance(n, LIF):
            n.register_forward_hook(lambda mod, inp, out: counts.update({mod: counts.get(mod, 0) + out.sum()}))
    return counts


@pytest.mark.parametrize("quirks", [True, False], ids=["official_quirks", "as_written"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_tim_dvs_matches_the_spec_layer_table_in_float64(training, quirks):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    T, B = 4, 2
    model = create_model("tim_dvs", time_steps=T, official_quirks=quirks).double()
    x = (torch.rand(T, B, 2, 64, 64, generator=g, dtype=torch.float64) * 4).floor()  # event counts 0..3
    randomise(model, g, x, training)
    counts = spike_counts(model)
    tims = tim_io(model)
    x_lib = x.clone().requires_grad_()
    x_ref = x.transpose(0, 1).clone().requires_grad_()
    logits = model(x_lib)
    ref = authors_tim_forward(model, x_ref, training, quirks)
    assert logits.shape == (B, 10)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-9)
    assert logits.std() > 0
    # not vacuous: every neuron fired except, with the quirk, TIM's output neuron (spec section 5)
    outs = {a.q_mixer.out_neuron for a in model.modules() if isinstance(a, SpikingSelfAttention)}
    assert len(counts) == 23
    assert all((counts[n] == 0) == (quirks and n in outs) for n in counts), counts
    assert len(tims) == 2
    for q, y in tims:  # spec section 5: with the quirk, TIM(Q) = Q[0], then zeros
        assert q[1:].sum() > 0 and torch.equal(y[0], q[0])
        assert torch.equal(y[1:], torch.zeros_like(y[1:])) == quirks

    g_out = torch.randn(B, 10, generator=g, dtype=torch.float64)
    interactors = [a.q_mixer.interactor.weight for a in model.modules() if isinstance(a, SpikingSelfAttention)]
    grads_lib = torch.autograd.grad(logits, [x_lib, *interactors], g_out)
    grads_ref = torch.autograd.grad(ref, [x_ref, *interactors], g_out)
    grads_ref = (grads_ref[0].transpose(0, 1), *grads_ref[1:])
    for got, want in zip(grads_lib, grads_ref):
        assert want.abs().max() > 0  # the surrogate reaches the input and TIM's conv, quirk or not
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * want.abs().max().item())


@pytest.mark.parametrize("detach_mem", [True, False])
def test_temporal_interaction_carries_its_membranes_across_steps(detach_mem):
    """The stateless neurons called on growing prefixes give a step-by-step neuron's values and
    gradients, with the gradient through the membrane too when it is not detached."""
    g = torch.Generator().manual_seed(3)
    tim = TemporalInteraction(16, neuron_factory("lif", detach_mem=detach_mem)).double()
    with torch.no_grad():
        tim.interactor.weight.uniform_(-0.05, 0.15, generator=g)
    q = (torch.rand(10, 2, 4, 16, 16, generator=g, dtype=torch.float64) < 0.3).double().requires_grad_()
    y = tim(q)
    ref = authors_tim(q, tim.interactor, 0.3, 0.5, detach=detach_mem)
    assert torch.equal(y, ref)
    assert 0 < y[1:].mean() < 1
    g_out = torch.randn(y.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(y, [q, tim.interactor.weight], g_out)
    want = torch.autograd.grad(ref, [q, tim.interactor.weight], g_out)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_official_quirks_make_tim_return_q0_then_zeros():
    """Spec section 5, for any weights: with every threshold 1 the output neuron never fires
    (T=10 steps, the registered T); with the written thresholds it does."""
    g = torch.Generator().manual_seed(1)
    q = (torch.rand(10, 2, 16, 16, 16, generator=g) < 0.5).float()
    for quirks in (True, False):
        tim = create_model("tim_dvs", official_quirks=quirks).blocks[0].attn.q_mixer
        for scale in (1.0, 50.0):  # PyTorch's init, and an interactor that drives in_neuron hard
            with torch.no_grad():
                tim.interactor.weight.uniform_(-0.1 * scale, 0.3 * scale, generator=g)
                y = tim(q)
            assert torch.equal(y[0], q[0])
            if quirks:
                assert torch.equal(y[1:], torch.zeros_like(y[1:]))
            else:
                assert y[1:].sum() > 0


def test_official_quirks_give_the_three_written_thresholds_the_default():
    written = create_model("tim_dvs").blocks[0].attn
    assert (written.attn_neuron.v_threshold, written.q_mixer.in_neuron.v_threshold,
            written.q_mixer.out_neuron.v_threshold) == (0.5, 0.3, 0.5)
    released = create_model("tim_dvs", official_quirks=True)
    assert all(n.v_threshold == 1.0 for n in released.modules() if isinstance(n, LIF))
    own = create_model("tim_dvs", official_quirks=True, attn_threshold=0.25, tim_in_threshold=0.2,
                       tim_out_threshold=0.7).blocks[1].attn  # an explicit value wins over the quirk
    assert (own.attn_neuron.v_threshold, own.q_mixer.in_neuron.v_threshold, own.q_mixer.out_neuron.v_threshold) == (
        0.25, 0.2, 0.7)
    assert own.q_neuron.v_threshold == 1.0


def test_tim_dvs_has_the_specs_parameter_count():
    # spec section 8: 2,570,844 as main.py prints it, less the 25 neurons' two scalar Parameters
    # (threshold, act_fun.alpha) and the unused norm1/norm2 LayerNorms (2 blocks x 2 x 512)
    assert count_parameters(create_model("tim_dvs")) == 2_570_844 - 25 * 2 - 2 * 2 * 512
    # of which the two TIM interactors: 2 x (16*16*5 + 16)
    tims = [m for m in create_model("tim_dvs").modules() if isinstance(m, TemporalInteraction)]
    assert sum(count_parameters(t) for t in tims) == 2 * 1_296
    proj = create_model("tim_dvs").blocks[0].attn.proj.linear
    assert proj.bias is None


def test_tim_dvs_is_registered_with_its_reported_accuracy():
    assert "tim_dvs" in list_models("tim*")
    fn = model_entry("tim_dvs")
    assert fn.model_class is tim_models.TIMSpikformer and fn.info.reported == "81.6"
    model = create_model("tim_dvs")
    assert (model.img_size, model.in_channels, model.num_classes, model.time_steps) == ((64, 64), 2, 10, 10)
    assert model.official_quirks is False


@pytest.mark.parametrize("neuron,cls", [("plif", PLIF), ("if", IF), (LIF, LIF)])
@pytest.mark.parametrize("quirks", [False, True])
def test_neuron_and_its_settings_reach_every_neuron(neuron, cls, quirks):
    model = create_model("tim_dvs", neuron=neuron, official_quirks=quirks,
                         neuron_kwargs=dict(v_threshold=0.8, surrogate="qgate", alpha=3.0, tau=3.0))
    neurons = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(neurons) == 4 + 1 + 2 * (5 + 2 + 2)  # SPS, RPE, per block q/k/v/attn/proj + TIM in/out + MLP
    assert all(type(n) is cls and n.surrogate == "qgate" and n.alpha == 3.0 and n.detach_mem for n in neurons)
    assert all(n.tau == 3.0 for n in neurons if cls is not IF)
    own = {}
    for a in model.modules():
        if isinstance(a, SpikingSelfAttention):
            own.update({id(a.attn_neuron): 0.5, id(a.q_mixer.in_neuron): 0.3, id(a.q_mixer.out_neuron): 0.5})
    for n in neurons:  # with the quirk the three take the other neurons' threshold, as in the released code
        assert n.v_threshold == (0.8 if quirks or id(n) not in own else own[id(n)])


def test_membrane_is_detached_by_default_and_can_be_attached():
    assert all(n.detach_mem for n in create_model("tim_dvs").modules() if isinstance(n, LIF))
    kept = create_model("tim_dvs", neuron_kwargs=dict(tau=3.0))  # other settings keep the default
    assert all(n.detach_mem and n.tau == 3.0 for n in kept.modules() if isinstance(n, LIF))
    bptt = create_model("tim_dvs", neuron_kwargs=dict(detach_mem=False))
    assert not any(n.detach_mem for n in bptt.modules() if isinstance(n, LIF))


def test_float32_forward_and_backward_reach_every_parameter():
    torch.manual_seed(0)
    model = create_model("tim_dvs", official_quirks=True).train()
    x = (torch.rand(10, 1, 2, 64, 64) * 4).floor()
    logits = model(x)
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("shape", [(10, 2, 2, 128, 128), (10, 2, 2, 48, 48), (2, 2, 32, 32)])
def test_wrong_input_size_names_the_supported_size(shape):
    model = create_model("tim_dvs")
    with pytest.raises(ValueError, match=r"C=2, H=64, W=64"):
        model(torch.zeros(shape))


def test_temporal_interaction_names_its_token_count():
    tim = TemporalInteraction(16, neuron_factory("lif"))
    with pytest.raises(ValueError, match="N=16 tokens"):
        tim(torch.zeros(4, 2, 16, 64, 16))
    with pytest.raises(ValueError, match="odd"):
        TemporalInteraction(16, neuron_factory("lif"), kernel_size=4)


def authors_state_dict_shapes():
    """Spec section 8: the authors' 170 state_dict entries and shapes, in registration order
    (every braincog neuron adds a scalar ``threshold`` and ``act_fun.alpha``)."""
    def bn(prefix, c):
        return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + \
            [(f"{prefix}.num_batches_tracked", ())]

    def neuron(name):
        return [(f"{name}.threshold", ()), (f"{name}.act_fun.alpha", ())]

    keys = []
    for suffix, c_in, c_out in [("", 2, 32), ("1", 32, 64), ("2", 64, 128), ("3", 128, 256)]:
        keys += [(f"patch_embed.proj_conv{suffix}.weight", (c_out, c_in, 3, 3))]
        keys += bn(f"patch_embed.proj_bn{suffix}", c_out) + neuron(f"patch_embed.proj_lif{suffix}")
    keys += [("patch_embed.rpe_conv.weight", (256, 256, 3, 3))] + bn("patch_embed.rpe_bn", 256)
    keys += neuron("patch_embed.rpe_lif")
    for j in range(2):
        a, m = f"block.{j}.attn", f"block.{j}.mlp"
        keys += [(f"block.{j}.norm1.weight", (256,)), (f"block.{j}.norm1.bias", (256,))]
        for p in "qkv":
            keys += [(f"{a}.{p}_conv.weight", (256, 256, 1))] + bn(f"{a}.{p}_bn", 256) + neuron(f"{a}.{p}_lif")
        keys += neuron(f"{a}.res_lif") + neuron(f"{a}.attn_lif")
        keys += [(f"{a}.proj_conv.weight", (256, 256, 1))] + bn(f"{a}.proj_bn", 256) + neuron(f"{a}.proj_lif")
        keys += [(f"{a}.TIM.interactor.weight", (16, 16, 5)), (f"{a}.TIM.interactor.bias", (16,))]
        keys += neuron(f"{a}.TIM.in_lif") + neuron(f"{a}.TIM.out_lif")
        keys += [(f"block.{j}.norm2.weight", (256,)), (f"block.{j}.norm2.bias", (256,))]
        keys += [(f"{m}.fc1_conv.weight", (1024, 256, 1)), (f"{m}.fc1_conv.bias", (1024,))] + bn(f"{m}.fc1_bn", 1024)
        keys += neuron(f"{m}.fc1_lif")
        keys += [(f"{m}.fc2_conv.weight", (256, 1024, 1)), (f"{m}.fc2_conv.bias", (256,))] + bn(f"{m}.fc2_bn", 256)
        keys += neuron(f"{m}.fc2_lif")
    keys += [("head.weight", (10, 256)), ("head.bias", (10,))]
    return keys


def authors_checkpoint():
    """Random tensors under the authors' names; the neurons' scalars as the released code stores them."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in authors_state_dict_shapes():
        if key.endswith(".threshold"):
            state[key] = torch.tensor(1.0)
        elif key.endswith(".act_fun.alpha"):
            state[key] = torch.tensor(4.0)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(123)
        else:
            state[key] = torch.randn(shape, generator=g)
    return state


def test_authors_state_dict_has_the_specs_170_entries_and_parameter_count():
    shapes = authors_state_dict_shapes()
    assert len(shapes) == 170
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert sum(torch.Size(s).numel() for k, s in shapes if not k.endswith(buffers)) == 2_570_844


def test_authors_checkpoint_converts_and_loads(tmp_path, recwarn):
    authors = authors_checkpoint()
    torch.save({"state_dict": {"module." + k: v for k, v in authors.items()}, "epoch": 3}, tmp_path / "tim.pth")
    model = create_model("tim_dvs", official_quirks=True, checkpoint_path=tmp_path / "tim.pth")  # every key checked
    assert not [w for w in recwarn if "thresholds" in str(w.message)]  # the released thresholds: no warning
    pairs = [
        (model.patch_embed.stages[0].conv.weight, "patch_embed.proj_conv.weight"),
        (model.patch_embed.stages[3].bn.running_var, "patch_embed.proj_bn3.running_var"),
        (model.patch_embed.rpe.bn.bias, "patch_embed.rpe_bn.bias"),
        (model.blocks[1].attn.q_mixer.interactor.weight, "block.1.attn.TIM.interactor.weight"),
        (model.blocks[0].attn.q_mixer.interactor.bias, "block.0.attn.TIM.interactor.bias"),
        (model.blocks[1].attn.proj.bn.num_batches_tracked, "block.1.attn.proj_bn.num_batches_tracked"),
        (model.blocks[0].mlp.fc2.linear.bias, "block.0.mlp.fc2_conv.bias"),
        (model.head.fc.weight, "head.weight"),
    ]
    for ours, theirs in pairs:
        assert torch.equal(ours, authors[theirs]), theirs
    # Conv1d kernels [out, in, 1] -> Linear weights
    assert torch.equal(model.blocks[0].attn.k.linear.weight, authors["block.0.attn.k_conv.weight"][..., 0])
    assert torch.equal(model.blocks[1].mlp.fc1.linear.weight, authors["block.1.mlp.fc1_conv.weight"][..., 0])


def test_authors_checkpoint_in_the_paper_model_warns_of_its_thresholds(tmp_path):
    torch.save(authors_checkpoint(), tmp_path / "tim.pth")
    with pytest.warns(UserWarning, match=r"block.0.attn.attn_lif.threshold = 1 \(model: 0.5\).*"
                                         r"block.0.attn.TIM.in_lif.threshold = 1 \(model: 0.3\).*official_quirks=True"):
        model = create_model("tim_dvs", checkpoint_path=tmp_path / "tim.pth")
    assert model.blocks[0].attn.attn_neuron.v_threshold == 0.5  # loaded, as built


def test_mismatched_authors_checkpoint_is_refused_whole(tmp_path):
    authors = authors_checkpoint()
    authors["block.1.attn.TIM.interactor.weight"] = torch.zeros(9, 9, 5)  # the 48x48 (9-token) interactor
    authors["block.0.attn.talking_heads.weight"] = torch.zeros(1)
    del authors["head.bias"]
    torch.save(authors, tmp_path / "bad.pth")
    model = create_model("tim_dvs", official_quirks=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(model, tmp_path / "bad.pth")
    message = str(err.value)
    assert "1 missing: head.fc.bias" in message
    assert "1 unexpected: block.0.attn.talking_heads.weight" in message
    assert "1 mis-shaped: blocks.1.attn.q_mixer.interactor.weight: checkpoint (9, 9, 5) vs model (16, 16, 5)" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
