"""Every fused neuron kernel against the reference loop, and the choice between kernels.

For neuron x reset x detach_reset x detach_mem x surrogate (a registered one
included) x decay_input: in float64 the spikes are identical and the
gradients (input, and PLIF's decay parameter) agree within 1e-9; in float32
the gradients agree within 1e-6 and the spikes are identical except where the
reference's membrane lies within one ulp of the threshold, where a fused
multiply-add may round it across (a GPU's compiler may fuse; the CPU kernel
and Triton's interpreter do not). Those are counted and must stay below one
in a million neuron-steps.

The C++ kernel is built once per machine (about 40 s on 2 cores) into
``~/.cache/spikeformers/kernels``; later runs load it in a fraction of a second.
The Triton kernels run on the CPU under Triton's interpreter, which takes
~0.1 s per call: the default run covers every setting with a rotating
surrogate, the full product is marked slow.
"""

import itertools
import zlib

import pytest
import torch

from spikeformers import cpp_build
from spikeformers.neurons import IF, LIF, PLIF, register_surrogate
from spikeformers.neurons.kernels import BACKENDS, ENV_VAR, multistep, select_backend
from spikeformers.neurons.kernels import cpu as cpu_backend
from spikeformers.neurons.kernels import triton as triton_backend
from spikeformers.neurons.kernels.reference import _charge, _reset


@register_surrogate("test_kernels_triangle", 1.5)
def triangle(u, alpha):
    """A surrogate no kernel has built in: backends must evaluate this Python function."""
    return (alpha - alpha * alpha * u.abs()).clamp_min(0)


SURROGATES = [("sigmoid", 4.0), ("atan", 2.0), ("qgate", 2.0), ("gate", 2.0), ("test_kernels_triangle", 1.5)]
SETTINGS = list(itertools.product(["lif", "plif", "if"], [0.0, -0.2, None], [True, False], [True, False]))


def make_neuron(kind, v_reset, detach_reset, detach_mem, surrogate, decay_input, dtype):
    name, alpha = surrogate
    kwargs = dict(v_threshold=0.8, v_reset=v_reset, detach_reset=detach_reset, detach_mem=detach_mem,
                  surrogate=name, alpha=alpha)
    if kind == "lif":
        neuron = LIF(tau=1.7, decay_input=decay_input, **kwargs)
    elif kind == "plif":
        neuron = PLIF(init_tau=1.7, decay_input=decay_input, **kwargs)
    else:
        neuron = IF(**kwargs)
    return neuron.to(dtype)


def reference_membrane(x, w, spec):
    """The reference's pre-spike membrane h[t], to tell a rounding flip from a real disagreement."""
    k = w.detach().to(x.dtype).sigmoid() if w is not None else None
    v, hs = torch.full_like(x[0], spec.rest), []
    for t in range(x.shape[0]):
        h = _charge(spec, v, x[t], k)
        hs.append(h)
        v = _reset(spec, h, h >= spec.v_threshold)
    return torch.stack(hs)


def compare(backend, neuron, x, seed):
    """Run ``neuron`` on ``x`` with ``backend`` and with the reference; assert they agree.
    Returns (flipped neurons, neuron-steps compared)."""
    w = neuron.charge_parameter()
    grad_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    results = []
    for name in ("reference", backend):
        xg = x.clone().requires_grad_()
        if w is not None:
            w.grad = None
        out = multistep(xg, w, neuron.spec, backend=name)
        out.backward(grad_out)
        results.append((out.detach(), xg.grad, None if w is None else w.grad.clone()))
    (ref, ref_gx, ref_gw), (out, gx, gw) = results
    assert out.dtype == x.dtype and out.shape == x.shape
    assert 0 < ref.float().mean() < 1, "the input must make some neurons fire and some not"

    differ = out != ref
    flipped = 0
    if differ.any():
        assert x.dtype != torch.float64, f"{int(differ.sum())} float64 spikes differ"
        # Each neuron's first disagreement must be a membrane within an ulp of the threshold;
        # after it the two runs legitimately diverge, so that neuron is left out below.
        h = reference_membrane(x.cpu().to(torch.float32), None if w is None else w.cpu(), neuron.spec).to(x.device)
        first = differ.float().argmax(0, keepdim=True)
        h_first = h.gather(0, first)[0]
        neurons = differ.any(0)
        threshold = torch.tensor(neuron.spec.v_threshold, dtype=torch.float32)
        ulp = (torch.nextafter(threshold, threshold + 1) - threshold).item()
        far = neurons & ((h_first - neuron.spec.v_threshold).abs() > ulp)
        assert not far.any(), f"{int(far.sum())} neurons flip with a membrane farther than an ulp from threshold"
        flipped = int(neurons.sum())
        keep = ~neurons
        gx, ref_gx = gx[:, keep], ref_gx[:, keep]
        gw = ref_gw = None  # a flip changes the whole sum
    tol = 1e-9 if x.dtype == torch.float64 else 1e-6
    scale = ref_gx.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(gx, ref_gx, rtol=tol, atol=tol * scale)
    if gw is not None:
        # One sum over every neuron-step (see test_neurons.py): float32 agrees to ~sqrt(n) ulps.
        w_tol = 1e-9 if x.dtype == torch.float64 else 1e-5
        torch.testing.assert_close(gw, ref_gw, rtol=w_tol, atol=w_tol)
    return flipped, ref.numel()


def check_all(backend, settings, dtype, shape, device="cpu"):
    flipped = total = 0
    for kind, v_reset, detach_reset, detach_mem, surrogate, decay_input in settings:
        if kind == "if" and not decay_input:
            continue  # IF has no decay_input: the same neuron as decay_input=True
        neuron = make_neuron(kind, v_reset, detach_reset, detach_mem, surrogate, decay_input, dtype).to(device)
        seed = zlib.crc32(repr((kind, v_reset, detach_reset, detach_mem, surrogate[0], decay_input)).encode())
        x = (torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.2 + 0.9)
        try:
            f, n = compare(backend, neuron, x.to(dtype).to(device), seed + 1)
        except AssertionError as err:
            raise AssertionError(f"{backend} {dtype} {kind} v_reset={v_reset} detach_reset={detach_reset} "
                                 f"detach_mem={detach_mem} surrogate={surrogate[0]} decay_input={decay_input}: {err}")
        flipped, total = flipped + f, total + n
    assert flipped <= 1e-6 * total, f"{flipped} of {total} spikes flipped at the threshold"
    return flipped, total


def full_product():
    return [(*s, sur, di) for s in SETTINGS for sur in SURROGATES for di in (True, False)]


def rotating_surrogate():
    """Every neuron x reset x detach_reset x detach_mem, each with one surrogate, taken in turn,
    and decay_input alternating: every surrogate and every setting appears, in 36 runs."""
    return [(*s, SURROGATES[i % len(SURROGATES)], i % 2 == 0) for i, s in enumerate(SETTINGS)]


needs_cpu_kernel = pytest.mark.skipif(not cpu_backend.available(), reason="the C++ neuron kernel cannot be built here")
needs_triton = pytest.mark.skipif(not triton_backend.available(), reason="triton is not installed")


@pytest.fixture
def triton_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_kernel_matches_reference_for_every_setting(dtype):
    check_all("cpu", full_product(), dtype, (8, 3, 50))


@needs_cpu_kernel
def test_cpu_kernel_float32_spikes_identical_on_a_million_neuron_steps():
    # Enough neuron-steps for "fewer than one in a million flips" to mean something; the CPU
    # kernel is built without fused multiply-adds, so there are none at all.
    flipped, total = check_all("cpu", [("lif", 0.0, True, False, ("sigmoid", 4.0), True),
                                       ("plif", None, False, False, ("atan", 2.0), False)],
                               torch.float32, (16, 65536))
    assert total >= 1_000_000 and flipped == 0


@needs_cpu_kernel
@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_cpu_kernel_bfloat16_integrates_in_float32(kind):
    neuron = make_neuron(kind, 0.0, True, False, ("sigmoid", 4.0), True, torch.float32)
    x = (torch.randn(16, 4000, generator=torch.Generator().manual_seed(3)) * 1.2 + 0.9).to(torch.bfloat16)
    grad = torch.randn(16, 4000, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    outs = []
    for backend in ("reference", "cpu"):
        xg = x.clone().requires_grad_()
        out = multistep(xg, neuron.charge_parameter(), neuron.spec, backend=backend)
        out.backward(grad)
        outs.append((out, xg.grad))
    (ref, ref_grad), (out, out_grad) = outs
    assert out.dtype == torch.bfloat16 and out_grad.dtype == torch.bfloat16
    assert torch.equal(out, ref)
    # Both accumulate in float32 and round once to bfloat16: at most one bfloat16 ulp apart.
    torch.testing.assert_close(out_grad, ref_grad, rtol=2**-7, atol=0)


@needs_cpu_kernel
def test_cpu_kernel_takes_non_contiguous_input_and_any_rank():
    neuron = LIF(tau=1.7, v_threshold=0.8)
    x = (torch.randn(5, 7, 6, 4, generator=torch.Generator().manual_seed(5)) + 0.9).transpose(1, 3)
    assert not x.is_contiguous()
    ref = multistep(x, None, neuron.spec, backend="reference")
    assert torch.equal(multistep(x, None, neuron.spec, backend="cpu"), ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_unrolled_backend_matches_reference_for_every_setting(dtype):
    """The loop in plain PyTorch ops that exporters trace: the same spikes, autograd's own gradients."""
    check_all("unrolled", full_product(), dtype, (8, 3, 50))


@needs_triton
def test_triton_kernel_matches_reference_float64(triton_interpreter):
    check_all("triton", rotating_surrogate(), torch.float64, (6, 40))


@needs_triton
def test_triton_kernel_matches_reference_float32(triton_interpreter):
    check_all("triton", rotating_surrogate()[::3], torch.float32, (6, 40))


@needs_triton
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_kernel_matches_reference_for_every_setting(triton_interpreter, dtype):
    check_all("triton", full_product(), dtype, (6, 40))


@needs_triton
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_kernel_on_gpu_matches_reference(dtype):
    check_all("triton", full_product(), dtype, (16, 8192), device="cuda")


def test_backend_is_chosen_by_device_and_can_be_forced(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    x = torch.zeros(2, 3)
    assert select_backend(x) == ("cpu" if cpu_backend.available() else "reference")
    for name in BACKENDS:
        monkeypatch.setenv(ENV_VAR, name.upper())
        assert select_backend(x) == name


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "cuda")
    with pytest.raises(ValueError, match=r"SPIKEFORMERS_NEURON_BACKEND='cuda' is not a neuron backend.*reference, cpu, triton"):
        LIF()(torch.zeros(2, 3))


def test_forcing_triton_on_a_cpu_tensor_without_interpreter_is_an_error(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="'triton' neuron backend needs"):
        LIF()(torch.zeros(2, 3))


@needs_cpu_kernel
def test_neuron_modules_run_on_the_forced_backend(monkeypatch):
    # The modules reach the dispatch: forcing the reference changes the kernel, not the result.
    x = torch.rand(6, 500, generator=torch.Generator().manual_seed(7)) * 2
    outs = {}
    for name in ("reference", "cpu"):
        monkeypatch.setenv(ENV_VAR, name)
        xg = x.clone().requires_grad_()
        neuron = PLIF(init_tau=1.7, v_reset=None)
        out = neuron(xg)
        out.sum().backward()
        outs[name] = (out, xg.grad, neuron.w.grad)
        assert type(out.grad_fn).__name__ == f"GeneratedBackwardFor_spikeformers_neuron_{name}_defaultBackward"
    torch.testing.assert_close(outs["cpu"], outs["reference"], rtol=1e-6, atol=1e-6)


def test_kernel_cache_folder_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEFORMERS_CACHE", str(tmp_path))
    assert cpp_build.cache_dir() == tmp_path / "kernels"


def test_a_build_killed_midway_does_not_leave_later_processes_waiting(tmp_path):
    """torch's build lock is a plain file that a killed build leaves behind; the next process must not hang."""
    import os
    import shutil
    import subprocess
    import sys

    from spikeformers.neurons.kernels import cpu

    if not cpu.available():
        pytest.skip("the CPU kernel cannot be built here")
    built = cpp_build.cache_dir() / f"cpu-{cpu._build_key()}"
    copy = tmp_path / "kernels" / built.name
    shutil.copytree(built, copy, ignore=shutil.ignore_patterns("lock", "*.flock"))
    (copy / "lock").touch()  # what a build killed midway leaves
    probe = "from spikeformers.neurons.kernels import cpu; print(cpu.available())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SPIKEFORMERS_CACHE": str(tmp_path)})
    assert result.stdout.strip() == "True", result.stderr[-2000:]


def cpu_kernel_results():
    """Spikes and gradients of the C++ kernel for LIF and PLIF in three dtypes (also run by the probe)."""
    results = []
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        for neuron in (LIF(tau=1.7, v_reset=None), PLIF(init_tau=1.7, detach_reset=True, surrogate="atan")):
            neuron = neuron.to(dtype)
            x = (torch.randn(8, 3000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.9).to(dtype)
            x.requires_grad_()
            w = neuron.charge_parameter()
            out = multistep(x, w, neuron.spec, backend="cpu")
            out.backward(torch.ones_like(out))
            results.append((f"{dtype} {neuron.spec.kind}", out.detach(), x.grad, None if w is None else w.grad))
    return results


PORTABLE_BUILD_PROBE = """
import sys, torch
sys.path.insert(0, sys.argv[2])
from spikeformers import cpp_build
from test_neuron_kernels import cpu_kernel_results
assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
assert not any(flag.startswith("-mavx") for flag in cpp_build.build_flags())
torch.save(cpu_kernel_results(), sys.argv[1])
"""


@pytest.mark.slow  # a second build of the kernel (~30 s on 2 cores): -m slow
@needs_cpu_kernel
def test_kernel_built_without_vector_extensions_gives_identical_results(tmp_path):
    """The binary is built for the vector instructions PyTorch uses on this CPU (AVX2, AVX-512): a CPU
    without them gets a plain build, whose every bit must match (same operations, same order, no FMA)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU already runs the plain build")
    saved = tmp_path / "plain.pt"
    result = subprocess.run([sys.executable, "-c", PORTABLE_BUILD_PROBE, str(saved), str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SPIKEFORMERS_CACHE": str(tmp_path), "ATEN_CPU_CAPABILITY": "default"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "kernels").is_dir() and any((tmp_path / "kernels").iterdir()), "the plain build was not made apart"
    plain = torch.load(saved)
    here = cpu_kernel_results()
    assert len(here) == len(plain) == 6
    for (what, out, grad_x, grad_w), (_, p_out, p_gx, p_gw) in zip(here, plain):
        assert torch.equal(out, p_out) and torch.equal(grad_x, p_gx), what
        assert (grad_w is None and p_gw is None) or torch.equal(grad_w, p_gw), what
