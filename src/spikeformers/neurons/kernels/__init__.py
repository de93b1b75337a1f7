"""Kernels of the multi-step neuron, and which one runs.

Four backends compute the same recurrence (``spec.py``) and give the same spikes:

- ``reference``: a Python loop over T in PyTorch ops with a hand-written
  backward; the cross-check, and the fallback on any device.
- ``cpu``: a fused C++/OpenMP kernel, compiled on first use and cached.
- ``triton``: fused Triton kernels for CUDA tensors (on CPU tensors only under
  Triton's interpreter, ``TRITON_INTERPRET=1``, which the tests use).
- ``unrolled``: the loop in differentiable PyTorch ops, autograd deriving the
  backward; no custom operator, so ``torch.export`` sees standard aten ops.

The first three are custom operators (``ops.py``), which ``torch.compile`` and
``torch.export`` keep as single opaque nodes. The choice is automatic:
``triton`` for CUDA tensors where Triton imports, ``cpu`` for CPU tensors where
the extension builds, otherwise ``reference``; a neuron whose charge no fused
kernel knows always runs ``unrolled``. Every backend takes every dtype and
every surrogate, registered ones included, so the choice never depends on the
other settings. Set ``SPIKEFORMERS_NEURON_BACKEND=reference|cpu|triton|unrolled``
to force one, for example to cross-check a result; forcing one that cannot run
the given tensor is an error, never a silent fallback. ``with unrolled():``
(or the ``unrolled`` backend) also turns the C++ max-pool into PyTorch's, so a
model exported inside it is made of standard operators only.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from ..spec import NeuronSpec
from . import unrolled as unrolled_backend
from .ops import OPS

BACKENDS = ("reference", "cpu", "triton", "unrolled")
ENV_VAR = "SPIKEFORMERS_NEURON_BACKEND"

_unrolled_depth = 0  # open ``unrolled()`` blocks; a plain global, which torch.compile can read


def forced_backend() -> str | None:
    """The backend named by ``SPIKEFORMERS_NEURON_BACKEND``, or None when it is unset or empty."""
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if not name:
        return None
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a neuron backend; choose one of {', '.join(BACKENDS)}.")
    return name


@contextlib.contextmanager
def unrolled() -> Iterator[None]:
    """Within this block every neuron runs unrolled over T in standard PyTorch operators, and the
    max-pool is PyTorch's: what an exporter needs (``torch.export``, then ONNX). Same results.
    Export under ``torch.no_grad()`` too for an inference graph: where a gradient is wanted, each
    spike carries the surrogate's term (zero in value, see ``kernels/unrolled.py``)."""
    global _unrolled_depth
    _unrolled_depth += 1
    try:
        yield
    finally:
        _unrolled_depth -= 1


def unrolling() -> bool:
    """True inside :func:`unrolled` or with ``SPIKEFORMERS_NEURON_BACKEND=unrolled``: no custom operator runs."""
    return _unrolled_depth > 0 or forced_backend() == "unrolled"


def _triton_usable(x: torch.Tensor) -> bool:
    from . import triton as triton_backend

    return triton_backend.available() and (x.is_cuda or (x.device.type == "cpu" and triton_backend.interpreting()))


def select_backend(x: torch.Tensor, spec: NeuronSpec | None = None) -> str:
    """The backend that will run neurons ``spec`` on ``x``: unrolled where asked or where no fused kernel
    knows the charge, else the forced one, else the fastest that can."""
    if unrolling() or (spec is not None and not spec.fused):
        return "unrolled"
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


def multistep(x: torch.Tensor, w: torch.Tensor | None, spec: NeuronSpec, backend: str | None = None,
              charge: unrolled_backend.Charge | None = None) -> torch.Tensor:
    """Spikes of the neurons ``spec`` driven by ``x`` ``[T, ...]``, by ``backend`` or the selected one.

    ``w`` is the charge's learned parameter (PLIF's), or None; ``charge(v, x_t)``, a neuron's own
    PyTorch charge, is what the ``unrolled`` backend runs (by default the spec's).
    """
    name = backend or select_backend(x, spec)
    if name == "unrolled":
        return unrolled_backend.multistep(x, w, spec, charge)
    if name not in BACKENDS:
        raise ValueError(f"Unknown neuron backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    if name == "cpu" and x.device.type != "cpu":
        raise ValueError(f"The 'cpu' neuron backend runs CPU tensors only, got one on {x.device}.")
    if name == "triton" and not _triton_usable(x):
        raise ValueError(
            f"The 'triton' neuron backend needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 for a CPU "
            f"tensor); got a tensor on {x.device}" + ("" if _triton_importable() else " and Triton does not import") + "."
        )
    spec.require_fused()  # named here, not from inside an operator
    return OPS[name](x, w, spec.encode())[0]


def _triton_importable() -> bool:
    from . import triton as triton_backend

    return triton_backend.available()


__all__ = ["BACKENDS", "ENV_VAR", "forced_backend", "multistep", "select_backend", "unrolled", "unrolling"]
