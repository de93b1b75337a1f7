"""Operation counts on constructed cases whose answers are known by hand, and the energy formula."""

import pytest
import torch
from torch import nn

from spikeformers.analysis import EnergyModel, OpCounter, classify, profile_model
from spikeformers.layers import SpikingSelfAttention
from spikeformers.models import create_model
from spikeformers.neurons import IF, MultiSpike, neuron_factory


class SpikeConv(nn.Module):
    """An IF neuron (an input of 0/1 gives exactly those spikes) feeding one 3x3 convolution.

    ``feed``: 'spikes' as they are, 'counts' (spikes + spikes: 0 or 2), 'real' (0.3 s + 0.1).
    """

    def __init__(self, feed: str = "spikes", neuron: bool = True):
        super().__init__()
        self.neuron = IF() if neuron else nn.Identity()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.feed = feed

    def forward(self, x):
        s = self.neuron(x).flatten(0, 1)
        s = {"spikes": s, "counts": s + s, "real": s * 0.3 + 0.1}[self.feed]
        return self.conv(s)


def spike_pattern(T=2, B=1, C=2, H=4, W=4, ones=((0, 0, 0, 1, 1), (0, 0, 1, 2, 3), (1, 0, 0, 0, 0),
                                                  (1, 0, 1, 3, 3), (1, 0, 1, 2, 2))):
    x = torch.zeros(T, B, C, H, W)
    for index in ones:
        x[index] = 1.0
    return x


CONV_FLOPS = 3 * 4 * 4 * (2 * 3 * 3)  # outputs x (C_in k k) per time step and sample: 864


def test_spiking_conv_fed_a_known_pattern_counts_rate_times_flops_accumulates():
    x = spike_pattern()  # 5 spikes in 2 x 1 x 2 x 4 x 4 = 64 inputs
    report = profile_model(SpikeConv(), x)
    row = report.layer("conv")
    assert row.op == "conv2d" and row.inputs == "spike" and row.counted_as == "AC"
    assert row.flops_per_step == CONV_FLOPS
    assert row.acs_per_step == pytest.approx(CONV_FLOPS * 5 / 64) and row.macs_per_step == 0
    assert row.rate == pytest.approx(5 / 64)
    assert row.params == 3 * 2 * 3 * 3
    # the papers' SOPs = fr x T x FLOPs, per sample
    assert row.acs_per_step * report.time_steps == pytest.approx(5 / 64 * 2 * CONV_FLOPS)
    assert row.energy_mj == pytest.approx(0.9e-9 * 5 / 64 * 2 * CONV_FLOPS)


def test_a_layer_before_any_neuron_is_the_encoding_layer_counted_as_macs_even_on_binary_input():
    report = profile_model(SpikeConv(neuron=False), spike_pattern())
    row = report.layer("conv")
    assert row.inputs == "input" and row.counted_as == "MAC"
    assert row.macs_per_step == CONV_FLOPS and row.acs_per_step == 0
    assert row.energy_mj == pytest.approx(4.6e-9 * 2 * CONV_FLOPS)


def test_spike_sums_count_one_accumulate_per_spike_or_macs_on_request():
    x = spike_pattern()
    as_ac = profile_model(SpikeConv("counts"), x).layer("conv")
    assert as_ac.inputs == "count" and as_ac.counted_as == "AC"
    assert as_ac.acs_per_step == pytest.approx(CONV_FLOPS * 2 * 5 / 64)  # inputs of 2: two accumulates each
    as_mac = profile_model(SpikeConv("counts"), x, nonbinary_as_mac=True).layer("conv")
    assert as_mac.counted_as == "MAC" and as_mac.macs_per_step == CONV_FLOPS and as_mac.acs_per_step == 0
    spikes = profile_model(SpikeConv("spikes"), x, nonbinary_as_mac=True).layer("conv")
    assert spikes.counted_as == "AC", "binary inputs stay accumulates whatever nonbinary_as_mac says"


def test_real_valued_inputs_are_macs_and_scalar_scales_are_not_counted():
    report = profile_model(SpikeConv("real"), spike_pattern())
    assert [(r.layer, r.op, r.inputs, r.counted_as) for r in report.layers] == [("conv", "conv2d", "real", "MAC")]
    assert report.layer("conv").macs_per_step == CONV_FLOPS


class SpikingAttention(nn.Module):
    """An input neuron then SSA (one head, d = 4) whose Q, K, V copy chosen input channels.

    Input channels: 0 always on, 1 on at even tokens, 2 at tokens 0 mod 4, 3 never: rate 7/16.
    Q = x (rate 7/16), K = channel 1 in every channel (1/2), V = channel 2 (1/4).
    """

    def __init__(self):
        super().__init__()
        self.neuron = IF()
        self.attn = SpikingSelfAttention(4, 1, neuron_factory("if"))
        eye = torch.eye(4)
        with torch.no_grad():
            self.attn.q.linear.weight.copy_(3 * eye)  # 3 / sqrt(1 + eps) >= 1: a spike exactly where x is 1
            self.attn.k.linear.weight.copy_(3 * eye[[1, 1, 1, 1]])
            self.attn.v.linear.weight.copy_(3 * eye[[2, 2, 2, 2]])

    def forward(self, x):
        return self.attn(self.neuron(x))


def tokens(T, N):
    x = torch.zeros(T, 1, N, 4)
    n = torch.arange(N)
    x[..., 0] = 1.0
    x[:, :, n % 2 == 0, 1] = 1.0
    x[:, :, n % 4 == 0, 2] = 1.0
    return x


def profile_attention(T, N):
    model = SpikingAttention().eval()
    report = profile_model(model, tokens(T, N))
    rates = {r.name: r.rate for r in report.firing}
    assert rates["attn.q_neuron"] == pytest.approx(7 / 16)
    assert rates["attn.k_neuron"] == pytest.approx(1 / 2)
    assert rates["attn.v_neuron"] == pytest.approx(1 / 4)
    return report, rates


def test_spiking_self_attention_with_known_qkv_firing_counts_q_kt_v_products():
    report, rates = profile_attention(T=2, N=8)  # N > d: the block computes Q (K^T V)
    for part in "qkv":
        row = report.layer(f"attn.{part}.linear")
        assert row.flops_per_step == 8 * 4 * 4 and row.acs_per_step == pytest.approx(128 * 7 / 16)
    kt_v, q_kv = report.layer("attn:matmul#0"), report.layer("attn:matmul#1")
    assert kt_v.flops_per_step == 4 * 4 * 8  # [d, N] @ [N, d]
    assert kt_v.inputs == "spike" and kt_v.acs_per_step == pytest.approx(128 * min(1 / 2, 1 / 4))
    assert q_kv.flops_per_step == 8 * 4 * 4  # [N, d] @ [d, d]
    assert q_kv.inputs == "spike/count" and q_kv.acs_per_step == pytest.approx(128 * 7 / 16)
    proj = report.layer("attn.proj.linear")
    assert proj.acs_per_step == pytest.approx(128 * rates["attn.attn_neuron"])
    assert not [r for r in report.layers if r.op == "mul"], "the attention scale is a scalar, not a product"


def test_spiking_self_attention_in_the_other_order_counts_q_kt_then_times_v():
    report, _ = profile_attention(T=2, N=4)  # N <= d: (Q K^T) V
    q_kt, qkt_v = report.layer("attn:matmul#0"), report.layer("attn:matmul#1")
    assert q_kt.flops_per_step == 4 * 4 * 4 and q_kt.acs_per_step == pytest.approx(64 * 7 / 16)
    assert qkt_v.inputs == "spike/count" and qkt_v.acs_per_step == pytest.approx(64 * 1 / 4)


class Hadamard(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = IF(), IF()

    def forward(self, x):
        mask = self.a(x[:, :, :1]) * self.b(x)  # [T, B, 1, N] * [T, B, C, N]: broadcast mask
        return mask.sum(-1) * 0.5


def test_masks_and_hadamard_products_count_one_accumulate_per_spike_of_the_sparser_operand():
    x = torch.zeros(2, 1, 3, 4)
    x[:, :, 0, :2] = 1.0  # operand a: channel 0, half the tokens: rate 1/2
    x[0, :, 1, 0] = 1.0  # operand b: 2 + 2 + 1 ones of 24: rate 5/24
    report = profile_model(Hadamard(), x)
    (row,) = report.layers
    assert row.op == "mul" and row.inputs == "spike"
    assert row.flops_per_step == 3 * 4 and row.acs_per_step == pytest.approx(12 * 5 / 24)


class Einsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.neuron = IF()

    def forward(self, x):
        s = self.neuron(x)
        return torch.einsum("tbij,tbjk->tbik", s, s)


def test_a_product_the_counter_cannot_size_is_reported_not_dropped():
    report = profile_model(Einsum(), torch.ones(2, 1, 3, 3))
    assert report.uncounted == ["einsum in (model)"]
    assert "NOT sized" in report.summary()


def test_spikformer_dvs_encoding_layer_macs_per_step_follow_from_its_shape():
    model = create_model("spikformer_dvs", time_steps=1)
    report = profile_model(model, batch_norm="batch")  # untrained: batch statistics, so that neurons fire
    first = report.layers[0]
    assert first.layer == "patch_embed.stages.0.conv"
    assert first.inputs == "input" and first.counted_as == "MAC"
    assert first.macs_per_step == 128 * 128 * 32 * (2 * 3 * 3) == 9_437_184  # H W C_out (C_in k k)
    assert first.params == 32 * 2 * 3 * 3
    # every other convolution and linear reads spikes or spike sums, except the classifier (a mean)
    rest = {r.layer: r.counted_as for r in report.layers[1:]}
    assert rest.pop("head.fc") == "MAC"
    assert set(rest.values()) == {"AC"}


def test_normalised_multi_spikes_count_as_their_integer_spikes():
    # E-SpikeFormer's neuron: round(clamp(x, 0, 4)) / 4, values k / 4 feeding a linear layer
    model = nn.Sequential(nn.Linear(8, 16), MultiSpike(max_value=4), nn.Linear(16, 3, bias=False))
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        multi = model[1](model[0](x))
    counts = (multi * 4).round()
    assert torch.equal(counts / 4, multi) and counts.max() > 1 and not torch.equal(counts, multi)
    row = profile_model(model, x).layer("2")
    assert row.inputs == "count" and row.counted_as == "AC"
    flops = 2 * 5 * 3 * 16
    assert row.acs_per_step * 2 * 5 == pytest.approx(flops * float(counts.mean()))
    # without the neuron's norm the same values are real-valued
    assert classify(multi)[0] == "real" and classify(multi, (4.0,)) == ("count", pytest.approx(float(counts.mean())))


def test_classify_names_spikes_counts_and_reals():
    assert classify(torch.tensor([0.0, 1.0, 1.0, 0.0])) == ("spike", 0.5)
    assert classify(torch.tensor([0.0, 2.0, 1.0, 1.0])) == ("count", 1.0)
    assert classify(torch.tensor([0.0, 0.5])) == ("real", 1.0)
    assert classify(torch.tensor([-1.0, 1.0])) == ("real", 1.0)


def test_energy_is_e_mac_times_macs_plus_e_ac_times_acs_in_millijoules():
    assert EnergyModel().millijoules(1e9, 0) == pytest.approx(4.6)
    assert EnergyModel().millijoules(0, 1e9) == pytest.approx(0.9)
    assert EnergyModel(e_mac_pj=3.1, e_ac_pj=0.1).millijoules(2e9, 1e9) == pytest.approx(6.3)
    with pytest.raises(ValueError, match="e_ac_pj"):
        EnergyModel(e_ac_pj=-1)


def test_report_energy_is_the_sum_of_its_layers_with_the_given_constants():
    model = SpikeConv()
    energy = EnergyModel(e_mac_pj=2.0, e_ac_pj=0.5)
    report = profile_model(nn.Sequential(model), spike_pattern(), energy=energy)
    T = report.time_steps
    assert report.energy_mj == pytest.approx(energy.millijoules(report.macs_per_step * T, report.acs_per_step * T))
    assert report.energy_mj == pytest.approx(sum(r.energy_mj for r in report.layers))
    assert "E_MAC = 2 pJ" in report.summary() and "E_AC = 0.5 pJ" in report.summary()


def test_op_counter_leaves_no_hooks_behind():
    model = SpikeConv()
    with OpCounter(model) as counter:
        model(spike_pattern())
    assert counter.per_sample_step()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class FoldedScale(nn.Module):
    """A per-channel scale computed from buffers alone (like a folded batch norm), then applied to spikes."""

    def __init__(self):
        super().__init__()
        self.neuron = IF()
        self.register_buffer("gain", torch.tensor([1.0, 2.0, 3.0]))
        self.register_buffer("shift", torch.tensor([0.5, 0.5, 0.5]))

    def forward(self, x):
        scale = self.gain * self.shift  # weights only: once per model, not per sample
        return self.neuron(x) * scale.view(1, 1, 3, 1)


def test_products_of_weights_alone_are_not_counted_and_weights_do_not_set_the_class():
    x = torch.zeros(2, 1, 3, 4)
    x[0, 0, 0, :3] = 1.0  # 3 spikes of 24
    (row,) = profile_model(FoldedScale(), x).layers
    assert row.layer == "(model):mul#0" and row.inputs == "spike"
    assert row.flops_per_step == 12 and row.acs_per_step == pytest.approx(12 * 3 / 24)


def test_a_batch_with_time_second_is_named_not_counted():
    model = create_model("spikformer_tiny")
    x = torch.rand(3, model.time_steps, model.in_channels, *model.img_size)  # [B, T, C, H, W]
    with pytest.raises(ValueError, match="time_first=False"):
        profile_model(model, x)
    assert profile_model(model, x, time_first=False).samples == 3
