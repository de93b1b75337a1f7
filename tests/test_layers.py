"""The parts: shapes in the [T, B, ...] layout, the arithmetic each one promises, and the
neuron they are given."""


import pytest
import torch
from torch import nn

from spikeformers.layers import Block, ClassifierHead, SpikingMLP, SpikingPatchSplitting, SpikingSelfAttention
from spikeformers.neurons import IF, LIF, PLIF, neuron_factory

T, B = 3, 2


def neurons_in(module):
    return [m for m in module.modules() if isinstance(m, LIF)]


def test_sps_makes_tokens_of_the_pooled_grid_with_values_0_1_2():
    torch.manual_seed(0)
    sps = SpikingPatchSplitting(2, 32, neuron_factory("lif"), img_size=(20, 24), pool_stages=(1, 3))
    x = torch.rand(T, B, 2, 20, 24) * 4
    tokens = sps(x)
    # two stride-2 pools: 20 -> 10 -> 5, 24 -> 12 -> 6
    assert sps.grid_size == (5, 6)
    assert tokens.shape == (T, B, 30, 32)
    assert set(tokens.unique().tolist()) <= {0.0, 1.0, 2.0}
    assert [s.conv.out_channels for s in sps.stages] == [4, 8, 16, 32]
    assert [s.pool is not None for s in sps.stages] == [False, True, False, True]


def test_sps_tokens_are_row_major_positions_of_the_feature_map():
    sps = SpikingPatchSplitting(1, 8, neuron_factory("lif"), img_size=(8, 8), num_stages=1, pool_stages=(), rpe=False)
    with torch.no_grad():
        sps.stages[0].conv.weight.zero_()
        sps.stages[0].conv.weight[:, 0, 1, 1] = 1.0  # identity conv on every channel
    sps.eval()  # BN at its initial running stats: identity up to eps
    x = torch.zeros(1, 1, 1, 8, 8)
    x[..., 2, 5] = 10.0  # one strong pixel at row 2, column 5 -> token 2 * 8 + 5
    tokens = sps(x)
    assert tokens[0, 0].sum(1).nonzero().flatten().tolist() == [21]


def test_sps_rejects_widths_that_do_not_halve():
    with pytest.raises(ValueError, match="divisible"):
        SpikingPatchSplitting(2, 36, neuron_factory("lif"), num_stages=4)


def test_sps_takes_explicit_stage_widths():
    sps = SpikingPatchSplitting(2, 36, neuron_factory("lif"), img_size=(8, 8), num_stages=3, widths=(12, 20, 36),
                                pool_stages=(2,))
    assert [s.conv.out_channels for s in sps.stages] == [12, 20, 36]
    assert sps(torch.rand(T, B, 2, 8, 8)).shape == (T, B, 16, 36)
    with pytest.raises(ValueError, match="ending in embed_dim 36"):
        SpikingPatchSplitting(2, 36, neuron_factory("lif"), num_stages=3, widths=(12, 20, 40))


def ssa_by_hand(attn, x, order):
    """Q K^T V * scale written per head with einsum, from the module's own projections."""
    q, k, v = (n(p(x)) for p, n in ((attn.q, attn.q_neuron), (attn.k, attn.k_neuron), (attn.v, attn.v_neuron)))
    Tn, Bn, N, C = x.shape
    h = attn.num_heads
    q, k, v = (t.reshape(Tn, Bn, N, h, C // h) for t in (q, k, v))
    if order == "qk_first":
        y = torch.einsum("tbnhd,tbmhd->tbhnm", q, k)
        y = torch.einsum("tbhnm,tbmhd->tbnhd", y, v)
    else:
        kv = torch.einsum("tbmhd,tbmhe->tbhde", k, v)
        y = torch.einsum("tbnhd,tbhde->tbnhe", q, kv)
    y = (y * attn.scale).reshape(Tn, Bn, N, C)
    return attn.proj_neuron(attn.proj(attn.attn_neuron(y)))


@pytest.mark.parametrize("tokens", [4, 40])  # N < head_dim and N > head_dim take different product orders
def test_ssa_is_q_kt_v_times_scale_per_head(tokens):
    torch.manual_seed(1)
    attn = SpikingSelfAttention(32, 4, neuron_factory("lif"), scale=0.25).eval()
    for bn in (attn.q.bn, attn.k.bn, attn.v.bn, attn.proj.bn):  # make Q, K, V fire about half the time
        bn.running_var.fill_(0.05)
    x = (torch.rand(T, B, tokens, 32) < 0.5).float() * 2
    out = attn(x)
    assert out.shape == x.shape
    assert torch.equal(out, ssa_by_hand(attn, x, "qk_first"))
    assert torch.equal(out, ssa_by_hand(attn, x, "kv_first"))  # integer products: exact in any order
    assert 0 < out.mean() < 1


def test_ssa_attention_neuron_keeps_its_threshold_while_others_follow_the_factory():
    attn = SpikingSelfAttention(16, 2, neuron_factory("lif", v_threshold=0.7, tau=3.0), attn_threshold=0.5)
    assert attn.attn_neuron.v_threshold == 0.5 and attn.attn_neuron.tau == 3.0
    others = [n for n in neurons_in(attn) if n is not attn.attn_neuron]
    assert len(others) == 4 and all(n.v_threshold == 0.7 for n in others)


def test_mlp_ratio_sets_the_hidden_width():
    mlp = SpikingMLP(16, neuron_factory("lif"), mlp_ratio=3)
    assert mlp.fc1.linear.out_features == 48
    assert mlp(torch.rand(T, B, 5, 16)).shape == (T, B, 5, 16)


class AddConstant(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return torch.full_like(x, self.c)


def test_block_adds_each_branch_to_the_stream_in_order():
    # x + attn(x) = x + 1; then + mlp(.) = + 2: the stream is not binary
    block = Block(AddConstant(1.0), AddConstant(2.0))
    x = torch.zeros(T, B, 4, 8)
    assert torch.equal(block(x), torch.full_like(x, 3.0))


def test_head_averages_tokens_then_time_then_projects():
    head = ClassifierHead(8, 3)
    x = torch.rand(T, B, 5, 8)
    assert torch.allclose(head(x), head.fc(x.mean(dim=(0, 2))), atol=1e-6)
    assert head(x).shape == (B, 3)


@pytest.mark.parametrize("cls", [PLIF, IF])
def test_parts_build_every_neuron_from_the_factory_they_are_given(cls):
    factory = neuron_factory(cls, surrogate="atan")
    parts = [
        SpikingPatchSplitting(2, 16, factory, img_size=(16, 16)),
        SpikingSelfAttention(16, 2, factory),
        SpikingMLP(16, factory),
    ]
    for part in parts:
        found = neurons_in(part)
        assert found and all(type(n) is cls and n.surrogate == "atan" for n in found)


def test_neuron_factory_rejects_unknown_settings():
    with pytest.raises(TypeError, match=r"neuron LIF takes no keyword 'taux' \(did you mean 'tau'\?\); its keywords: tau, "):
        neuron_factory("lif", taux=2.0)
