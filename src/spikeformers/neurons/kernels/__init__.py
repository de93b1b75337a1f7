"""Kernels of the multi-step neuron, and which one runs.

Three backends compute the same recurrence (``multistep.py``) with the same
autograd contract, ``Function.apply(x, w, spec) -> spikes``:

- ``reference``: a Python loop over T in PyTorch ops; the cross-check, and the
  fallback on any device.
- ``cpu``: a fused C++/OpenMP kernel, compiled on first use and cached.
- ``triton``: fused Triton kernels for CUDA tensors (on CPU tensors only under
  Triton's interpreter, ``TRITON_INTERPRET=1``, which the tests use).

The choice is automatic: ``triton`` for CUDA tensors where Triton imports,
``cpu`` for CPU tensors where the extension builds, otherwise ``reference``.
Every backend takes every dtype and every surrogate, registered ones included,
so the choice never depends on the neuron's settings. Set
``SPIKEFORMERS_NEURON_BACKEND=reference|cpu|triton`` to force one, for example
to cross-check a result; forcing one that cannot run the given tensor is an
error, never a silent fallback.
"""

from __future__ import annotations

import os

import torch

from ..multistep import NeuronSpec

BACKENDS = ("reference", "cpu", "triton")
ENV_VAR = "SPIKEFORMERS_NEURON_BACKEND"


def forced_backend() -> str | None:
    """The backend named by ``SPIKEFORMERS_NEURON_BACKEND``, or None when it is unset or empty."""
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if not name:
        return None
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a neuron backend; choose one of {', '.join(BACKENDS)}.")
    return name


def _triton_usable(x: torch.Tensor) -> bool:
    from . import triton as triton_backend

    return triton_backend.available() and (x.is_cuda or (x.device.type == "cpu" and triton_backend.interpreting()))


def select_backend(x: torch.Tensor) -> str:
    """The backend that will run neurons on ``x``: the forced one, else the fastest that can."""
    forced = forced_backend()
    if forced is not None:
        return forced
    if x.is_cuda and _triton_usable(x):
        return "triton"
    if x.device.type == "cpu":
        from . import cpu

        if cpu.available():
            return "cpu"
    return "reference"


def backend_function(name: str) -> type[torch.autograd.Function]:
    """The autograd Function of backend ``name``."""
    if name == "reference":
        from .reference import ReferenceNeuron

        return ReferenceNeuron
    if name == "cpu":
        from .cpu import CpuNeuron

        return CpuNeuron
    if name == "triton":
        from .triton import TritonNeuron

        return TritonNeuron
    raise ValueError(f"Unknown neuron backend {name!r}; choose one of {', '.join(BACKENDS)}.")


def multistep(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec, backend: str | None = None) -> torch.Tensor:
    """Spikes of the neurons ``spec`` driven by ``x`` ``[T, ...]``, by ``backend`` or the selected one."""
    name = backend or select_backend(x)
    if name == "cpu" and x.device.type != "cpu":
        raise ValueError(f"The 'cpu' neuron backend runs CPU tensors only, got one on {x.device}.")
    if name == "triton" and not _triton_usable(x):
        raise ValueError(
            f"The 'triton' neuron backend needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 for a CPU "
            f"tensor); got a tensor on {x.device}" + ("" if _triton_importable() else " and Triton does not import") + "."
        )
    return backend_function(name).apply(x, w, spec)


def _triton_importable() -> bool:
    from . import triton as triton_backend

    return triton_backend.available()


__all__ = ["BACKENDS", "ENV_VAR", "backend_function", "forced_backend", "multistep", "select_backend"]
