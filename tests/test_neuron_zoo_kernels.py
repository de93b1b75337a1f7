"""The zoo's fused charges (EIF, QIF, KLIF, ILIF, NILIF) in every kernel against the reference loop.

The same comparison as test_neuron_kernels.py (``compare``): float64 spikes identical and
gradients (input, and KLIF's k) within 1e-9; float32 gradients within 1e-6 and spikes
identical but for a membrane within an ulp of the threshold. Also: the reference loop's
hand-written backward against autograd through the neurons' own PyTorch charge.
"""

import itertools
import zlib

import pytest
import torch

from spikeformers.neurons import EIF, ILIF, KLIF, NILIF, QIF
from spikeformers.neurons.kernels import multistep
from spikeformers.neurons.kernels import cpu as cpu_backend
from spikeformers.neurons.kernels import triton as triton_backend
from test_neuron_kernels import compare

needs_cpu_kernel = pytest.mark.skipif(not cpu_backend.available(), reason="the C++ neuron kernel cannot be built here")
needs_triton = pytest.mark.skipif(not triton_backend.available(), reason="triton is not installed")


def zoo_neurons():
    """Each fused zoo charge x reset x detach_reset x detach_mem, with surrogates in turn."""
    surrogates = [("sigmoid", 4.0), ("atan", 2.0), ("qgate", 2.0), ("gate", 2.0)]
    out = []
    for i, (kind, v_reset, detach_reset, detach_mem) in enumerate(
            itertools.product(["eif", "eif_sj", "qif", "klif", "klif_nodecay"], ["default", None],
                              [True, False], [True, False])):
        surrogate, alpha = surrogates[i % len(surrogates)]
        common = dict(detach_reset=detach_reset, detach_mem=detach_mem, surrogate=surrogate, alpha=alpha)
        if v_reset is None:
            common["v_reset"] = None
        if kind == "eif":
            if v_reset is None:
                continue  # STEP's EIF resets to its level
            neuron = EIF(theta_rh=0.6, **common)
        elif kind == "eif_sj":
            neuron = EIF(variant="spikingjelly", v_rest=0.1, **common)
        elif kind == "qif":
            neuron = QIF(v_c=0.5, **common)
        else:
            variant = "step" if (v_reset == "default" and kind == "klif") else "spikingjelly"
            neuron = KLIF(variant=variant, decay_input=kind == "klif", **common)
            with torch.no_grad():
                neuron.k.fill_(1.3)
        out.append((f"{kind} v_reset={v_reset} detach_reset={detach_reset} detach_mem={detach_mem} {surrogate}", neuron))
    for detach_mem in (True, False):  # integer spikes: no surrogate, no reset options
        out.append((f"ilif detach_mem={detach_mem}", ILIF(D=3, v_threshold=0.4, detach_mem=detach_mem)))
        out.append((f"nilif detach_mem={detach_mem}", NILIF(D=2, v_threshold=0.3, detach_mem=detach_mem)))
    return out


def check(backend, dtype, shape):
    for what, neuron in zoo_neurons():
        neuron = neuron.to(dtype)
        seed = zlib.crc32(what.encode())
        x = (torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.6 + 0.5).to(dtype)
        try:
            compare(backend, neuron, x, seed + 1)
        except AssertionError as err:
            raise AssertionError(f"{backend} {dtype} {what}: {err}")


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_kernel_matches_reference_for_zoo_charges(dtype):
    check("cpu", dtype, (8, 3, 50))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_unrolled_matches_reference_for_zoo_charges(dtype):
    check("unrolled", dtype, (8, 3, 50))


@needs_triton
def test_triton_kernel_matches_reference_for_zoo_charges_float64(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check("triton", torch.float64, (6, 40))


@needs_triton
def test_triton_kernel_matches_reference_for_zoo_charges_float32(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check("triton", torch.float32, (6, 40))


@needs_cpu_kernel
def test_zoo_neurons_pick_the_fused_kernel():
    for neuron in (EIF(), QIF(), KLIF(), ILIF(), NILIF()):
        assert neuron.spec.fused
        out = neuron(torch.randn(3, 5, requires_grad=True))
        assert type(out.grad_fn).__name__ == "GeneratedBackwardFor_spikeformers_neuron_cpu_defaultBackward"
    # SpikingJelly's scale_reset is not the spec's reset: that KLIF runs its own loop
    x = torch.randn(3, 5, requires_grad=True)
    assert "spikeformers_neuron" not in type(KLIF(variant="spikingjelly", scale_reset=True)(x).grad_fn).__name__
