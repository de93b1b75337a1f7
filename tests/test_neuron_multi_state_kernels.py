"""The neurons with more state than one membrane (Izhikevich, CLIF, STEP's GLIF, HD-LIF) in their fused
kernels against their own PyTorch loops.

The loops are the references' operations in order (test_neuron_zoo.py holds them to STEP's and
SpikingJelly's outputs); the C++ and Triton kernels must give the same spikes (float64: all;
float32: all here, the inputs keep membranes off the threshold) and the same gradients to the
input (float64 within 1e-12 of the largest, float32 within 1e-5), for every reset, detach option,
variant and built-in surrogate; GLIF's also to each of its learned parameters (through its per-step
coefficients), HD-LIF's to its gate and PLIF expert's parameter. Also: which implementation runs when, and the refusals.
"""

import itertools
import zlib

import pytest
import torch

from spikeformers.neurons import CLIF, GLIF, HDLIF, Izhikevich, unrolled
from spikeformers.neurons.kernels import cpu as cpu_backend
from spikeformers.neurons.kernels import multi_state
from spikeformers.neurons.kernels import triton as triton_backend
from spikeformers.neurons.surrogate import register_surrogate

needs_cpu_kernel = pytest.mark.skipif(not cpu_backend.multi_state_available(),
                                      reason="the C++ neuron kernel cannot be built here")
needs_triton = pytest.mark.skipif(not triton_backend.available(), reason="triton is not installed")

SURROGATES = [("sigmoid", 4.0), ("atan", 2.0), ("qgate", 2.0), ("gate", 2.0)]


@register_surrogate("test_two_state_triangle", 1.0)
def _triangle(u: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.clamp(1 - alpha * u.abs(), min=0)


def two_state_neurons():
    """Izhikevich over reset x detach_reset x detach_mem (with a recovery that acts: a, b nonzero), and
    CLIF over both variants, reset levels, decay_input and detach_mem; surrogates in turn."""
    out = []
    for i, (v_reset, detach_reset, detach_mem) in enumerate(itertools.product([0.0, -0.2, None], [False, True],
                                                                             [False, True])):
        surrogate, alpha = SURROGATES[i % 4]
        neuron = Izhikevich(v_reset=v_reset, detach_reset=detach_reset, detach_mem=detach_mem, a=0.4, b=0.15,
                            tau_w=3.0, v_c=0.6, surrogate=surrogate, alpha=alpha)
        out.append((f"izhikevich v_reset={v_reset} detach_reset={detach_reset} detach_mem={detach_mem} {surrogate}",
                    neuron))
    configs = [dict(variant="step", v_reset=v_reset, decay_input=decay_input, detach_mem=detach_mem)
               for v_reset, decay_input, detach_mem in itertools.product([None, 0.0, -0.2], [False, True],
                                                                         [False, True])]
    configs += [dict(variant="spikingjelly", detach_mem=detach_mem) for detach_mem in (False, True)]
    for i, config in enumerate(configs):
        surrogate, alpha = SURROGATES[i % 4]
        out.append((f"clif {config} {surrogate}", CLIF(**config, surrogate=surrogate, alpha=alpha)))
    return out


def compare(neuron, backend, x, seed):
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    x_loop, x_kernel = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected = neuron.loop(x_loop)
    expected.backward(grad_out)
    spikes = multi_state.OPS["pair"][backend](x_kernel, neuron.spec.encode())[0]
    spikes.backward(grad_out)
    assert spikes.dtype == x.dtype and spikes.shape == x.shape
    assert 0 < expected.float().mean() < 1, "the input must make some neurons fire and some not"
    assert torch.equal(spikes, expected), f"{int((spikes != expected).sum())} spikes differ"
    scale = x_loop.grad.abs().max()
    assert scale > 0
    tolerance = 1e-12 if x.dtype == torch.float64 else 1e-5
    error = ((x_kernel.grad - x_loop.grad).abs().max() / scale).item()
    assert error <= tolerance, f"input gradient off by {error:.2e} of its largest value"


def check(backend, dtype, shape):
    for what, neuron in two_state_neurons():
        seed = zlib.crc32(what.encode())
        x = (torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.7 + 0.5)
        try:
            compare(neuron, backend, x.to(dtype), seed + 1)
        except AssertionError as err:
            raise AssertionError(f"{backend} {dtype} {what}: {err}")


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_kernel_matches_the_neurons_loops(dtype):
    check("cpu", dtype, (7, 3, 50))


@needs_cpu_kernel
def test_cpu_kernel_spans_several_chunks_and_threads():
    # 3 x 5000 neurons: chunks of 4096 in forward, smaller in backward, split across threads
    neuron = CLIF(surrogate="sigmoid", alpha=4.0)
    x = torch.randn(4, 3, 5000, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.5
    compare(neuron, "cpu", x, 4)
    compare(Izhikevich(a=0.3, b=0.1), "cpu", x, 5)


@needs_cpu_kernel
def test_cpu_kernel_takes_bfloat16_in_float32():
    neuron = Izhikevich(a=0.3, b=0.1)
    x = (torch.randn(5, 2, 64, generator=torch.Generator().manual_seed(6)) + 0.5).to(torch.bfloat16)
    spikes = multi_state.OPS["pair"]["cpu"](x, neuron.spec.encode())[0]
    assert spikes.dtype == torch.bfloat16
    assert torch.equal(spikes, neuron.loop(x))


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_kernel_matches_the_neurons_loops(monkeypatch, dtype):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check("triton", dtype, (5, 40))


@needs_cpu_kernel
def test_neurons_run_the_fused_kernel_on_the_cpu_and_their_loop_where_asked(monkeypatch):
    x = torch.randn(4, 2, 8, requires_grad=True)
    for neuron in (Izhikevich(), CLIF(), CLIF(variant="spikingjelly")):
        assert "spikeformers_pair_cpu" in type(neuron(x).grad_fn).__name__
        with unrolled():  # exporters: standard operators only
            assert "spikeformers" not in type(neuron(x).grad_fn).__name__
        monkeypatch.setenv("SPIKEFORMERS_NEURON_BACKEND", "reference")
        assert "spikeformers" not in type(neuron(x).grad_fn).__name__
        monkeypatch.delenv("SPIKEFORMERS_NEURON_BACKEND")


def test_a_users_surrogate_runs_the_loop_and_forcing_a_kernel_on_it_is_refused(monkeypatch):
    neuron = Izhikevich(surrogate="test_two_state_triangle")
    x = torch.randn(4, 2, 8, requires_grad=True)
    out = neuron(x)
    assert "spikeformers" not in type(out.grad_fn).__name__
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    monkeypatch.setenv("SPIKEFORMERS_NEURON_BACKEND", "cpu")
    with pytest.raises(ValueError, match="built-in surrogates only"):
        neuron(x)


@needs_cpu_kernel
def test_fused_neuron_takes_any_layout():
    # a [T, B, C, H, W] map, non-contiguous (a transposed view): same spikes as the loop
    neuron = CLIF(decay_input=True, v_reset=-0.1)
    x = torch.randn(4, 2, 6, 5, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x = (x + 1).transpose(3, 4)
    assert not x.is_contiguous()
    assert torch.equal(neuron(x), neuron.loop(x))


def glif_neurons():
    """STEP's GLIF: static and learned gates, per-step and shared parameters, detach_mem, surrogates."""
    out = []
    for i, (static_gate, time_wise, detach_mem) in enumerate(itertools.product([True, False], [True, False],
                                                                              [False, True])):
        surrogate, alpha = SURROGATES[(i + 3) % 4]
        out.append((f"glif static_gate={static_gate} time_wise={time_wise} detach_mem={detach_mem} {surrogate}",
                    GLIF(T=6, static_gate=static_gate, time_wise=time_wise, detach_mem=detach_mem, surrogate=surrogate,
                         alpha=alpha)))
    return out


def compare_glif(neuron, backend, x, seed):
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    results = []
    for run in ("loop", backend):
        neuron.zero_grad()
        xg = x.clone().requires_grad_()
        coeffs = neuron.step_coefficients(x.shape[0], x.dtype)
        if run == "loop":
            spikes = neuron.loop(xg, coeffs)
        else:
            spikes = multi_state.OPS["glif"][backend](xg, coeffs, neuron.spec.encode())[0]
        spikes.backward(grad_out)
        grads = {name: p.grad.clone() for name, p in neuron.named_parameters() if p.grad is not None}
        results.append((spikes.detach(), xg.grad, grads))
    (expected, expected_gx, expected_gp), (spikes, gx, gp) = results
    assert 0 < expected.float().mean() < 1, "the input must make some neurons fire and some not"
    assert torch.equal(spikes, expected), f"{int((spikes != expected).sum())} spikes differ"
    assert sorted(gp) == sorted(expected_gp) and len(gp) >= 5, "the same parameters must get gradients"
    tolerance = 1e-12 if x.dtype == torch.float64 else 1e-5
    for name, grad, reference in [("input", gx, expected_gx)] + [(k, gp[k], expected_gp[k]) for k in sorted(gp)]:
        scale = reference.abs().max()
        error = ((grad - reference).abs().max() / scale).item() if scale > 0 else grad.abs().max().item()
        assert error <= tolerance, f"gradient to {name} off by {error:.2e} of its largest value"


def check_glif(backend, dtype):
    for what, neuron in glif_neurons():
        neuron = neuron.to(dtype)
        seed = zlib.crc32(what.encode())
        x = (torch.randn(6, 3, 40, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.8 + 0.4)
        try:
            compare_glif(neuron, backend, x.to(dtype), seed + 1)
        except AssertionError as err:
            raise AssertionError(f"{backend} {dtype} {what}: {err}")


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_glif_cpu_kernel_matches_steps_loop_and_its_parameter_gradients(dtype):
    check_glif("cpu", dtype)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_glif_triton_kernel_matches_steps_loop_and_its_parameter_gradients(monkeypatch, dtype):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check_glif("triton", dtype)


@needs_cpu_kernel
def test_glif_runs_fused_for_step_and_its_loop_for_spikingjelly_and_fewer_steps():
    x = torch.randn(4, 2, 8, requires_grad=True)
    assert "spikeformers_glif_cpu" in type(GLIF(T=4)(x).grad_fn).__name__
    assert "spikeformers" not in type(GLIF(T=4, variant="spikingjelly")(x).grad_fn).__name__
    # TIM's temporal interaction calls its neuron on the steps so far: fused too, same spikes as the loop
    neuron = GLIF(T=6)
    with torch.no_grad():
        assert torch.equal(neuron(x[:3]), neuron.loop(x[:3], neuron.step_coefficients(3, x.dtype)))


def graph_names(out: torch.Tensor) -> set[str]:
    """The names of the autograd nodes behind ``out``."""
    names, pending, seen = set(), [out.grad_fn], set()
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return names


def hdlif_neurons():
    return [("hdlif", HDLIF(channels=6, T=5)), ("hdlif detach_mem", HDLIF(channels=6, T=5, detach_mem=True)),
            ("hdlif settings", HDLIF(channels=6, T=5, tau=3.0, v_threshold=0.6, k_MoE=2.0, v_th_MoE=0.3))]


def check_hdlif(backend, dtype, shape=(5, 3, 6, 20)):
    T, B, C, N = shape
    for what, neuron in hdlif_neurons():
        neuron = neuron.to(dtype)
        seed = zlib.crc32(what.encode())
        generator = torch.Generator().manual_seed(seed)
        x = (torch.randn(shape, generator=generator, dtype=torch.float64) * 0.5 + 0.3).to(dtype)
        grad_out = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
        gate = torch.softmax(torch.randn(B, 4, N, generator=generator, dtype=torch.float64), 1).to(dtype)
        results = []
        for run in ("loop", backend):
            neuron.zero_grad()
            xg, gg = x.clone().requires_grad_(), gate.clone().requires_grad_()
            if run == "loop":
                spikes = neuron.loop(xg, gg)
            else:
                k = neuron.w.to(dtype).sigmoid()
                spikes = multi_state.OPS["hdlif"][backend](xg, gg, k, neuron.spec.encode())[0]
            spikes.backward(grad_out)
            results.append((spikes.detach(), {"input": xg.grad, "gate": gg.grad, "w": neuron.w.grad.clone()}))
        (expected, expected_grads), (spikes, grads) = results
        assert 0 < expected.float().mean() < 1, f"{what}: the input must make some neurons fire and some not"
        differ = int((spikes != expected).sum())
        assert differ == 0, f"{backend} {dtype} {what}: {differ} spikes differ"
        for name in ("input", "gate", "w"):
            # w's gradient is one sum over every neuron and step: the loop's float32 sum rounds further
            tolerance = 1e-12 if dtype == torch.float64 else (1e-4 if name == "w" else 1e-5)
            error = ((grads[name] - expected_grads[name]).abs().max() / expected_grads[name].abs().max()).item()
            assert error <= tolerance, f"{backend} {dtype} {what}: gradient to {name} off by {error:.2e}"


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hdlif_cpu_kernel_matches_steps_loop_and_its_gate_and_parameter_gradients(dtype):
    check_hdlif("cpu", dtype)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hdlif_triton_kernel_matches_steps_loop_and_its_gate_and_parameter_gradients(monkeypatch, dtype):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check_hdlif("triton", dtype)


@needs_cpu_kernel
@pytest.mark.parametrize("channel_dim, shape", [(2, (4, 2, 6, 3, 5)), (-1, (4, 2, 10, 6))])
def test_hdlif_module_fused_equals_its_loop_in_training_and_eval(monkeypatch, channel_dim, shape):
    # the whole module (its gate's convolution, softmax or eval's top two, the layout moves) both ways
    neuron = HDLIF(channels=6, T=4, channel_dim=channel_dim).double()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64) * 0.5 + 0.3
    for training in (True, False):
        neuron.train(training)
        outs = []
        for backend in (None, "reference"):
            if backend:
                monkeypatch.setenv("SPIKEFORMERS_NEURON_BACKEND", backend)
            neuron.zero_grad()
            xg = x.clone().requires_grad_()
            out = neuron(xg)
            out.sum().backward()
            outs.append((out.detach(), xg.grad, neuron.gate.weight.grad.clone(), graph_names(out)))
            monkeypatch.delenv("SPIKEFORMERS_NEURON_BACKEND", raising=False)
        (fused, gx_fused, gw_fused, fused_graph), (loop, gx_loop, gw_loop, loop_graph) = outs
        assert any("spikeformers_hdlif_cpu" in name for name in fused_graph)
        assert not any("spikeformers" in name for name in loop_graph)
        assert 0 < loop.mean() < 1
        assert torch.equal(fused, loop)
        torch.testing.assert_close(gx_fused, gx_loop, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(gw_fused, gw_loop, rtol=1e-12, atol=1e-14)


@needs_cpu_kernel
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # raised inside torch.compile
@pytest.mark.parametrize("make", [Izhikevich, CLIF, lambda: GLIF(T=4), lambda: HDLIF(channels=6, T=4)],
                         ids=["izhikevich", "clif", "glif", "hdlif"])
def test_fused_neuron_compiles_whole_and_gives_eager_spikes_and_gradients(make):
    # torch.compile keeps each fused operator as one node (fullgraph: no break around it)
    neuron = make()
    x = torch.randn(4, 2, 6, 5, generator=torch.Generator().manual_seed(2))
    x_eager, x_compiled = x.clone().requires_grad_(), x.clone().requires_grad_()
    eager = neuron(x_eager)
    eager.sum().backward()
    compiled = torch.compile(neuron, fullgraph=True)(x_compiled)
    compiled.sum().backward()
    assert torch.equal(compiled, eager)
    torch.testing.assert_close(x_compiled.grad, x_eager.grad)


@needs_cpu_kernel
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (4, 0, 4, 5), (3, 2, 4)], ids=["one_step", "empty_batch", "tokens"])
def test_fused_neurons_take_one_step_an_empty_batch_and_three_axes(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4)) + 0.5
    for neuron in (Izhikevich(a=0.3, b=0.1), CLIF(), GLIF(T=shape[0]), HDLIF(channels=4, T=shape[0])):
        xg = x.clone().requires_grad_()
        spikes = neuron(xg)
        spikes.sum().backward()
        assert spikes.shape == x.shape and xg.grad.shape == x.shape
        if isinstance(neuron, GLIF):
            expected = neuron.loop(x, neuron.step_coefficients(shape[0], x.dtype))
        elif isinstance(neuron, HDLIF):
            continue  # its loop takes the gate the module computes; test_hdlif_module_... compares whole modules
        else:
            expected = neuron.loop(x)
        assert torch.equal(spikes.detach(), expected.detach())
