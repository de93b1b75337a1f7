"""``torch.compile`` and ``torch.export`` through the neuron and max-pool kernels (custom operators).

Every family's model, at a small size, exports with its fused kernels as
opaque operators, and inside ``neurons.unrolled()`` as standard aten operators
only (what an ONNX export needs); both give the eager logits bit for bit.
``torch.compile`` (aot_eager, which runs the fake implementations and the
autograd rule) gives the eager logits and gradients bit for bit. Compiling a
whole model takes 5 to 15 s on 2 cores, so one family runs by default and the
rest with ``-m slow``; inductor's code generation takes minutes there, slow too.
"""

import contextlib
import copy
import os
import subprocess
import sys

import pytest
import torch
from torch.export import Dim

from spikeformers import neurons
from spikeformers.layers.pooling import MaxPool2d, _max_pool2d, kernel_available
from spikeformers.models import create_model
from spikeformers.neurons import IF, LIF, PLIF, register_surrogate
from spikeformers.neurons.kernels import ENV_VAR
from spikeformers.neurons.kernels import cpu as cpu_backend
from spikeformers.neurons.kernels import triton as triton_backend
from spikeformers.neurons.kernels.ops import OPS

# One model of every family, small: 2 time steps, 32x32 input, one block per stage.
FAMILIES = {
    "spikformer_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "spikformer_v2_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "tim_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "spike_driven_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "spikingformer_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "qkformer_dvs": dict(embed_dim=32, depths=(1, 1), num_heads=2),
    "sglformer_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "meta_spikformer_dvs": dict(embed_dims=(8, 16, 32, 32), depths=(0, 0, 0, 1, 0), num_heads=2),
    "cml_spikingformer_dvs": dict(embed_dim=32, depth=1, num_heads=2),
    "e_spikeformer_hardvs": dict(embed_dims=(8, 16, 32, 32), depths=(0, 0, 0, 1, 0), num_heads=2),
}
FAST_COMPILE = {"spikformer_dvs"}  # stem max-pool and neurons; the others with -m slow
COMPILE = [name if name in FAST_COMPILE else pytest.param(name, marks=pytest.mark.slow) for name in FAMILIES]


def small_model(name, **overrides):
    torch.manual_seed(0)
    return create_model(name, img_size=32, time_steps=2, **FAMILIES[name], **overrides)


def model_input(model, batch=2):
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(model.time_steps, batch, model.in_channels, *model.img_size, generator=gen) * 2).floor()


def custom_ops(program) -> set[str]:
    return {str(node.target) for node in program.graph.nodes
            if node.op == "call_function" and str(node.target).startswith("spikeformers.")}


def foreign_ops(program) -> set[str]:
    """Operators that are neither aten's nor Python's item access: what an ONNX exporter could not map."""
    return {str(node.target) for node in program.graph.nodes if node.op == "call_function"
            and not str(node.target).startswith("aten.") and node.target.__name__ != "getitem"}


@pytest.fixture(autouse=True)
def automatic_backend(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_exports_with_its_kernels_and_matches_eager(name):
    model = small_model(name).eval()
    x = model_input(model)
    program = torch.export.export(model, (x,))
    # the fused kernel is an opaque node, not traced into (E-SpikeFormer's MultiSpike is stateless: no kernel)
    if cpu_backend.available() and any(isinstance(m, LIF) for m in model.modules()):
        assert "spikeformers.neuron_cpu.default" in custom_ops(program)
    assert torch.equal(program.module()(x), model(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_exports_unrolled_to_standard_operators_and_matches_eager(name):
    model = small_model(name).eval()
    x = model_input(model)
    with neurons.unrolled(), torch.no_grad():  # an inference graph, as a deployment exports it
        program = torch.export.export(model, (x,))
    assert not foreign_ops(program), f"not standard operators: {sorted(foreign_ops(program))}"
    # The same spikes as the fused kernels: the logits are the eager ones, bit for bit.
    assert torch.equal(program.module()(x), model(x))


def test_export_keeps_the_batch_dynamic():
    """What a deployed model needs: one export, any batch size, with the kernels or unrolled."""
    model = small_model("spikformer_dvs").eval()
    for unrolled in (False, True):
        with neurons.unrolled() if unrolled else contextlib.nullcontext():
            program = torch.export.export(model, (model_input(model, 2),), dynamic_shapes=({1: Dim("batch")},))
        x = model_input(model, 5)
        assert torch.equal(program.module()(x), model(x)), f"unrolled={unrolled}"


def compiled_and_eager(module, x, backend="aot_eager"):
    """(outputs, input gradient, parameter gradients) of ``module`` compiled and of a copy run eagerly."""
    results = []
    for compiled in (True, False):
        m = copy.deepcopy(module)
        run = torch.compile(m, backend=backend, fullgraph=True) if compiled else m
        xg = x.clone().requires_grad_()
        out = run(xg)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(2)))
        results.append((out.detach(), xg.grad, [p.grad for p in m.parameters()]))
    return results


@pytest.mark.parametrize("name", COMPILE)
def test_compiled_model_gives_eager_logits_and_gradients(name):
    torch._dynamo.reset()
    model = small_model(name, neuron="plif").train()  # PLIF: the learned leak's gradient crosses the op too
    (out, grad_x, grads), (ref, ref_grad_x, ref_grads) = compiled_and_eager(model, model_input(model))
    assert torch.equal(out, ref)
    assert torch.equal(grad_x, ref_grad_x)
    assert len(grads) == len(ref_grads) and all(
        (a is None and b is None) or torch.equal(a, b) for a, b in zip(grads, ref_grads))


@pytest.mark.slow
def test_inductor_compiled_model_gives_eager_logits():
    torch._dynamo.reset()
    model = small_model("spikformer_dvs").train()
    (out, grad_x, _), (ref, ref_grad_x, _) = compiled_and_eager(model, model_input(model), backend="inductor")
    assert torch.equal(out, ref)  # spikes are exact; the head's sums may only reorder
    torch.testing.assert_close(grad_x, ref_grad_x, rtol=1e-5, atol=1e-6)


def neuron_backends():
    """Every backend that runs here; Triton's on the CPU under its interpreter."""
    return (["reference", "unrolled"] + (["cpu"] if cpu_backend.available() else [])
            + (["triton"] if triton_backend.available() else []))


@pytest.mark.parametrize("backend", neuron_backends())
@pytest.mark.parametrize("make", [lambda: LIF(tau=1.7, v_threshold=0.8),
                                  lambda: PLIF(init_tau=1.7, v_reset=None, detach_reset=False, surrogate="atan"),
                                  lambda: IF(v_threshold=0.8, detach_mem=True, surrogate="qgate")],
                         ids=["lif", "plif-soft", "if"])
def test_compiled_neuron_gives_eager_spikes_and_gradients(backend, make, monkeypatch):
    monkeypatch.setenv(ENV_VAR, backend)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    torch._dynamo.reset()
    x = torch.randn(6, 4, 50, generator=torch.Generator().manual_seed(3)) * 1.2 + 0.9
    (out, grad_x, grads), (ref, ref_grad_x, ref_grads) = compiled_and_eager(make(), x)
    assert torch.equal(out, ref) and 0 < ref.mean() < 1
    assert torch.equal(grad_x, ref_grad_x)
    assert all(torch.equal(a, b) for a, b in zip(grads, ref_grads))


@register_surrogate("test_compile_triangle", 1.5)
def triangle(u, alpha):
    """A surrogate no kernel has built in: a Python function in the autograd rule."""
    return (alpha - alpha * alpha * u.abs()).clamp_min(0)


def test_a_user_surrogate_compiles_and_exports():
    """A registered surrogate is a Python function: the kernels run it through the autograd rule (so
    compile traces it into the backward) and export, which keeps only forward, never needs it."""
    torch._dynamo.reset()
    neuron = PLIF(init_tau=1.7, surrogate="test_compile_triangle")
    x = torch.randn(6, 4, 50, generator=torch.Generator().manual_seed(4)) * 1.2 + 0.9
    (out, grad_x, grads), (ref, ref_grad_x, ref_grads) = compiled_and_eager(neuron, x)
    assert torch.equal(out, ref) and torch.equal(grad_x, ref_grad_x) and torch.equal(grads[0], ref_grads[0])
    assert grad_x.abs().sum() > 0
    with neurons.unrolled():
        program = torch.export.export(neuron, (x,))
    assert not foreign_ops(program) and torch.equal(program.module()(x), ref)
    if cpu_backend.available():
        program = torch.export.export(neuron, (x,))
        assert custom_ops(program) == {"spikeformers.neuron_cpu.default"}
        assert torch.equal(program.module()(x), ref)


def opcheck_cases():
    cases = []
    for backend in ["reference"] + (["cpu"] if cpu_backend.available() else []):
        for neuron, dtype in [(LIF(), torch.float64), (PLIF(v_reset=None, detach_reset=False), torch.float64),
                              (PLIF(surrogate="test_compile_triangle"), torch.float32),
                              (LIF(surrogate="atan"), torch.bfloat16)]:
            cases.append(pytest.param(backend, neuron.to(dtype), dtype,
                                      id=f"{backend}-{neuron.kind}-{neuron.surrogate}-{dtype}".replace("torch.", "")))
    return cases


@pytest.mark.parametrize("backend,neuron,dtype", opcheck_cases())
def test_neuron_operators_pass_pytorchs_custom_op_checks(backend, neuron, dtype):
    """Schema (no hidden mutation or aliasing), fake implementation against the real one, the autograd
    rule, and AOT dispatch with dynamic shapes: ``torch.library.opcheck``."""
    x = (torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.9).to(dtype)
    x.requires_grad_()
    results = torch.library.opcheck(OPS[backend], (x, neuron.charge_parameter(), neuron.spec.encode()))
    assert set(results.values()) == {"SUCCESS"}, results


@pytest.mark.skipif(not kernel_available(), reason="the C++ max-pool cannot be built here")
def test_max_pool_operator_passes_pytorchs_custom_op_checks():
    x = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    results = torch.library.opcheck(_max_pool2d, (x.requires_grad_(), 3, 3, 2, 2, 1, 1))
    assert set(results.values()) == {"SUCCESS"}, results


class NeuronAndPool(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.neuron, self.pool = PLIF(), MaxPool2d(3, 2, 1)

    def forward(self, x):
        s = self.neuron(x)
        return self.pool(s.flatten(0, 1)).sum()


def test_the_unrolled_backend_variable_also_unrolls_neurons_and_pool(monkeypatch):
    module, x = NeuronAndPool(), torch.rand(3, 2, 4, 9, 9) * 2
    monkeypatch.setenv(ENV_VAR, "unrolled")
    program = torch.export.export(module, (x,))
    assert not foreign_ops(program)
    monkeypatch.delenv(ENV_VAR)
    assert torch.equal(program.module()(x), module(x))
    if cpu_backend.available() and kernel_available():
        assert custom_ops(torch.export.export(module, (x,))) == {
            "spikeformers.neuron_cpu.default", "spikeformers.max_pool2d.default"}


def test_an_exported_program_with_the_kernels_loads_in_a_fresh_process(tmp_path):
    """The operators are registered by importing spikeformers, so a saved program runs wherever it imports."""
    module, x = NeuronAndPool(), torch.rand(3, 2, 4, 9, 9) * 2
    torch.export.save(torch.export.export(module, (x,)), tmp_path / "program.pt2")
    torch.save({"x": x, "out": module(x)}, tmp_path / "io.pt")
    probe = ("import sys, torch, spikeformers.neurons, spikeformers.layers.pooling\n"
             "io = torch.load(sys.argv[2])\n"
             "assert torch.equal(torch.export.load(sys.argv[1]).module()(io['x']), io['out'])\n")
    # a generous timeout: only a hung process should reach it
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "program.pt2"), str(tmp_path / "io.pt")],
                            capture_output=True, text=True, timeout=600, env={**os.environ})
    assert result.returncode == 0, result.stderr[-2000:]
