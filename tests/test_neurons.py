"""The neurons against a plain per-step loop written here from DESIGN.md's semantics.

The reference is what SpikingJelly's multi-step LIF computes, unrolled by
autograd step by step: spikes must be identical and gradients (input, and
PLIF's decay parameter) agree within 1e-6 in float32 and 1e-9 in float64,
for every combination of neuron, reset, decay_input, detach_reset,
detach_mem and surrogate.
"""

import itertools
import math
import zlib

import pytest
import torch

from spikeformers.neurons import IF, LIF, PLIF, Neuron, get_neuron_class, get_surrogate, list_surrogates, register_surrogate


def surrogate_derivative(name, u, alpha):
    """The surrogates' derivatives, written out independently of the library."""
    if name == "sigmoid":
        sg = 1 / (1 + torch.exp(-alpha * u))
        return alpha * sg * (1 - sg)
    if name == "atan":
        return alpha / 2 / (1 + (math.pi / 2 * alpha * u) ** 2)
    if name == "qgate":
        return torch.where(u.abs() <= 1 / alpha, alpha - alpha**2 * u.abs(), torch.zeros_like(u))
    if name == "gate":
        return torch.where(u.abs() < 1 / alpha, torch.ones_like(u), torch.zeros_like(u))
    raise AssertionError(name)


class Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, name, alpha):
        ctx.save_for_backward(u)
        ctx.name, ctx.alpha = name, alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * surrogate_derivative(ctx.name, u, ctx.alpha), None, None


def reference_neuron(x, kind, tau, v_threshold, v_reset, decay_input, detach_reset, detach_mem, surrogate, alpha, w=None):
    rest = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], rest)
    out = []
    for t in range(x.shape[0]):
        if detach_mem:
            v = v.detach()
        if kind == "if":
            h = v + x[t]
        elif kind == "lif":
            h = v + (x[t] - (v - rest)) / tau if decay_input else v - (v - rest) / tau + x[t]
        else:
            k = w.sigmoid()
            h = v + (x[t] - (v - rest)) * k if decay_input else v - (v - rest) * k + x[t]
        s = Heaviside.apply(h - v_threshold, surrogate, alpha)
        s_reset = s.detach() if detach_reset else s
        v = h - v_threshold * s_reset if v_reset is None else h * (1 - s_reset) + v_reset * s_reset
        out.append(s)
    return torch.stack(out)


SURROGATES = [("sigmoid", 4.0), ("atan", 2.0), ("qgate", 2.0), ("gate", 2.0)]
OPTIONS = list(itertools.product(
    ["lif", "plif", "if"], [0.0, -0.2, None], [True, False], [True, False], [True, False], SURROGATES,
))


def make_input(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    # Values around the threshold so that spikes, resets and every surrogate window are exercised.
    return (torch.randn(8, 3, 50, generator=g, dtype=torch.float64) * 1.2 + 0.9).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,v_reset,decay_input,detach_reset,detach_mem,surrogate", OPTIONS)
def test_neuron_matches_per_step_reference(dtype, kind, v_reset, decay_input, detach_reset, detach_mem, surrogate):
    name, alpha = surrogate
    tau, v_threshold = 1.7, 0.8
    kwargs = dict(v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset,
                  detach_mem=detach_mem, surrogate=name, alpha=alpha)
    if kind == "lif":
        neuron = LIF(tau=tau, decay_input=decay_input, **kwargs)
    elif kind == "plif":
        neuron = PLIF(init_tau=tau, decay_input=decay_input, **kwargs)
    else:
        neuron = IF(**kwargs)
    neuron = neuron.to(dtype)
    seed = zlib.crc32(repr((kind, v_reset, decay_input, detach_reset, detach_mem, name)).encode())
    x = make_input(dtype, seed)
    x_ref = x.clone().requires_grad_()
    x_lib = x.clone().requires_grad_()
    w_ref = neuron.w.detach().clone().requires_grad_() if kind == "plif" else None

    ref = reference_neuron(x_ref, kind, tau, v_threshold, v_reset, decay_input, detach_reset, detach_mem, name, alpha, w_ref)
    out = neuron(x_lib)
    assert out.dtype == dtype
    assert torch.equal(out, ref), f"{int((out != ref).sum())} spikes differ"
    assert 0 < out.mean() < 1, "the test input must make some neurons fire and some not"

    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    ref.backward(grad_out)
    out.backward(grad_out)
    # Within 1e-6 of the gradient's scale in float32: the reference's own float32
    # rounding is of that order (the surrogate's vectorised and scalar code paths
    # already round differently), so a tighter bound would test PyTorch, not us.
    # Float64 leaves no such excuse: 1e-9.
    tol = 1e-9 if dtype == torch.float64 else 1e-6
    scale = x_ref.grad.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(x_lib.grad, x_ref.grad, rtol=tol, atol=tol * scale)
    if kind == "plif":
        # The decay gradient is one sum over all 1,200 neuron-steps of terms that
        # carry their own float32 rounding (~1e-7 each), so in float32 it can only
        # agree to ~sqrt(1200) * 1e-7; elementwise gradients are held to 1e-6.
        w_tol = 1e-9 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(neuron.w.grad, w_ref.grad, rtol=w_tol, atol=w_tol)


def test_spike_fires_exactly_at_threshold():
    # tau=2, x=2 gives h = 1.0 exactly: ">=" fires, ">" would not.
    out = LIF(tau=2.0)(torch.tensor([[2.0], [0.0]]))
    assert out.flatten().tolist() == [1.0, 0.0]


def test_neuron_keeps_no_state_between_calls():
    neuron = LIF()
    x = torch.rand(6, 4, 10) * 3
    first = neuron(x)
    second = neuron(x)
    assert torch.equal(first, second)
    assert not any(isinstance(b, torch.Tensor) for b in vars(neuron).values())


def test_spikformer_lif_constant_input_below_threshold_never_fires():
    # With tau=2 the membrane converges to a constant input from below.
    assert LIF()(torch.full((50, 10), 0.999)).sum() == 0


def test_half_precision_input_integrates_in_float32():
    x = torch.rand(16, 1000) * 1.5
    ref = LIF()(x)
    out = LIF()(x.to(torch.bfloat16).float())  # same values, representable in bf16
    out_bf16 = LIF()(x.to(torch.bfloat16))
    assert out_bf16.dtype == torch.bfloat16
    assert torch.equal(out_bf16.float(), out)
    assert ref.shape == out.shape


def test_plif_learns_its_time_constant():
    neuron = PLIF(init_tau=2.0)
    assert abs(1 / torch.sigmoid(neuron.w).item() - 2.0) < 1e-6
    out = neuron(torch.rand(5, 3) * 2)
    out.sum().backward()
    assert neuron.w.grad is not None and neuron.w.grad.abs() > 0


def test_custom_surrogate_can_be_registered_and_used():
    @register_surrogate("test_triangle", 1.0)
    def triangle(u, alpha):
        return (alpha - alpha * alpha * u.abs()).clamp_min(0)

    assert "test_triangle" in list_surrogates()
    x = torch.full((1, 1), 1.8, requires_grad=True)  # h = 0.9, u = -0.1
    LIF(surrogate="test_triangle")(x).sum().backward()
    assert x.grad.item() == pytest.approx(0.9 / 2.0)


def test_surrogate_aliases_and_defaults():
    assert get_surrogate("rectangle") is get_surrogate("gate")
    assert LIF().alpha == 4.0
    assert LIF(surrogate="atan").alpha == 2.0


@pytest.mark.parametrize("bad,match", [
    (lambda: LIF(surrogate="sigmod"), "Did you mean 'sigmoid'"),
    (lambda: get_neuron_class("lfi"), "Unknown neuron 'lfi'"),
    (lambda: LIF(tau=0.5), "tau must be > 1"),
    (lambda: LIF()(torch.zeros(0, 3)), r"\[T, \.\.\.\]"),
])
def test_bad_neuron_settings_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_the_factory_hands_a_parts_width_only_to_neurons_that_take_it():
    from torch import nn

    from spikeformers.neurons import neuron_factory

    class PerChannel(nn.Module):
        def __init__(self, channels: int, channel_dim: int, v_threshold: float = 1.0):
            super().__init__()
            self.channels, self.channel_dim, self.v_threshold = channels, channel_dim, v_threshold

    lif = neuron_factory("lif", tau=3.0)(channels=64, channel_dim=2, v_threshold=0.5)
    assert (lif.tau, lif.v_threshold) == (3.0, 0.5)
    wide = neuron_factory(PerChannel, v_threshold=0.25)
    built = wide(channels=64, channel_dim=-1)
    assert (built.channels, built.channel_dim, built.v_threshold) == (64, -1, 0.25)
    with pytest.raises(TypeError, match="PerChannel needs the channel count of the part that builds it"):
        wide()


class QuadraticIF(Neuron):
    """A neuron no fused kernel knows, defined by its charge alone: h = v + x + c * v^2."""

    kind = "test_quadratic"

    def __init__(self, c: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.c = c

    def charge(self, v, x):
        return v + x + self.c * v * v


@pytest.mark.parametrize("forced", [None, "cpu", "reference"])
def test_a_neuron_defined_by_its_charge_alone_runs_unrolled_and_learns(forced, monkeypatch):
    """The base class supplies threshold, reset, surrogate and detach options; a forced fused backend
    does not apply to a charge that no kernel knows."""
    from spikeformers.neurons.kernels import ENV_VAR, select_backend

    if forced is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, forced)
    neuron = QuadraticIF(v_threshold=0.8, v_reset=None, detach_reset=False, surrogate="atan", alpha=2.0)
    assert select_backend(torch.zeros(1), neuron.spec) == "unrolled"
    x = make_input(torch.float64, 11)
    x_ref, x_lib = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = neuron(x_lib)

    v, expected = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):  # the same neuron written out: charge, fire with atan, soft reset
        h = v + x_ref[t] + 0.25 * v * v
        s = Heaviside.apply(h - 0.8, "atan", 2.0)
        v = h - 0.8 * s
        expected.append(s)
    expected = torch.stack(expected)
    assert torch.equal(out, expected) and 0 < out.mean() < 1
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x_lib.grad, x_ref.grad, rtol=1e-12, atol=1e-12)


def test_a_fused_kernel_is_never_asked_for_a_charge_it_does_not_know():
    from spikeformers.neurons import multistep

    with pytest.raises(ValueError, match="No fused neuron kernel knows the charge 'test_quadratic'"):
        multistep(torch.ones(2, 3), None, QuadraticIF().spec, backend="reference")


def test_a_subclass_that_changes_a_fused_neurons_charge_must_name_its_own_kind():
    """The kernels compute LIF's charge from the spec: a LIF subclass whose charge() says otherwise would
    be silently ignored by them, so it is refused when the class is made."""
    with pytest.raises(TypeError, match="LeakyTwice defines charge\\(\\) but keeps the kind 'lif'"):
        class LeakyTwice(LIF):
            def charge(self, v, x):
                return v + x / 2

    class Renamed(LIF):
        kind = "test_leaky_twice"

        def charge(self, v, x):
            return v + x / 2

    assert Renamed().spec.kind == "test_leaky_twice" and not Renamed().spec.fused


def test_the_spec_travels_through_an_operator_argument_and_back():
    from spikeformers.neurons import NeuronSpec

    for spec in (PLIF(init_tau=1.7, v_reset=None, surrogate="atan", alpha=2.5, detach_mem=True).spec, IF().spec,
                 NeuronSpec("test_kind", 3.0, 0.5, -0.1, False, False, True, "gate", 2.0, (0.25, -1.5))):
        encoded = spec.encode()
        assert isinstance(encoded, str) and NeuronSpec.decode(encoded) == spec
    with pytest.raises(ValueError, match="Not an encoded NeuronSpec"):  # literals only, never run
        NeuronSpec.decode("NeuronSpec(kind=__import__('os').getcwd())")
    with pytest.raises(TypeError, match="registered surrogate's name"):
        NeuronSpec("lif", 2.0, 1.0, 0.0, True, True, False, get_surrogate("sigmoid").grad, 4.0)


@pytest.mark.parametrize("kind,v_reset,decay_input,detach_reset,detach_mem,surrogate", OPTIONS[::7])
def test_kernel_constants_are_affine_in_the_learned_leak(kind, v_reset, decay_input, detach_reset, detach_mem,
                                                         surrogate):
    """Triton forms the constants on the device as c0 + c1 * k; every kernel relies on them meaning
    what kernel_constants(k) says."""
    kwargs = dict(v_reset=v_reset, detach_reset=detach_reset, detach_mem=detach_mem, surrogate=surrogate[0])
    neuron = {"lif": lambda: LIF(tau=1.7, decay_input=decay_input, **kwargs),
              "plif": lambda: PLIF(init_tau=1.7, decay_input=decay_input, **kwargs), "if": lambda: IF(**kwargs)}[kind]()
    spec = neuron.spec
    c0, c1 = spec.kernel_constants_affine()
    for k in (0.0, 0.3125, 0.7):
        assert spec.kernel_constants(k) == tuple(a + b * k for a, b in zip(c0, c1))
    if kind == "plif":
        assert c1.mul == 1.0 and c1.decay == (0.0 if detach_mem else -1.0)
    else:
        assert all(b == 0.0 for b in c1)
