"""Surrogate gradients: smooth stand-ins for the derivative of the spike step.

A spike is the Heaviside step ``H(u)`` of ``u = h - v_threshold``. Its true
derivative is zero almost everywhere, so training replaces ``H'(u)`` with a
surrogate ``g(u, alpha)``. Each surrogate here is a plain function of ``u``
and ``alpha`` returning that derivative; the forward pass is always the exact
step (a spike when ``h >= v_threshold``).

Register your own with :func:`register_surrogate`::

    @register_surrogate("triangle", default_alpha=1.0)
    def triangle(u, alpha):
        return (alpha - alpha * alpha * u.abs()).clamp_min(0)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

import torch

SurrogateFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative and the ``alpha`` its authors use by default."""

    name: str
    grad: SurrogateFn
    default_alpha: float


_SURROGATES: dict[str, Surrogate] = {}


def register_surrogate(name: str, default_alpha: float, *aliases: str):
    """Decorator: register ``fn(u, alpha) -> dH/du`` under ``name`` (and aliases)."""

    def decorator(fn: SurrogateFn) -> SurrogateFn:
        entry = Surrogate(name, fn, float(default_alpha))
        for key in (name, *aliases):
            _SURROGATES[key.lower()] = entry
        return fn

    return decorator


def get_surrogate(name: str) -> Surrogate:
    """Look up a surrogate by name; an unknown name lists the closest ones."""
    key = name.lower()
    if key not in _SURROGATES:
        close = difflib.get_close_matches(key, _SURROGATES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown surrogate {name!r}.{hint} Known: {', '.join(sorted(_SURROGATES))}. "
            "Add your own with spikeformers.neurons.register_surrogate."
        )
    return _SURROGATES[key]


def list_surrogates() -> list[str]:
    return sorted(_SURROGATES)


@register_surrogate("sigmoid", 4.0)
def sigmoid(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """SpikingJelly's Sigmoid: alpha * sig(alpha u) * (1 - sig(alpha u)); alpha 4 in
    Spikformer and its successors."""
    sg = torch.sigmoid(alpha * u)
    return alpha * sg * (1.0 - sg)


@register_surrogate("atan", 2.0, "arctan")
def atan(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """SpikingJelly's ATan: derivative of arctan(pi/2 alpha u) / pi + 1/2."""
    return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * u) ** 2)


@register_surrogate("qgate", 2.0, "quadratic_gate")
def qgate(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """BrainCog's QGateGrad: alpha - alpha^2 |u| inside |u| <= 1/alpha, else 0."""
    grad = alpha - alpha * alpha * u.abs()
    return grad.masked_fill(u.abs() > 1.0 / alpha, 0.0)


@register_surrogate("gate", 2.0, "rectangle", "rect")
def gate(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """BrainCog's GateGrad, the rectangular window: 1 inside |u| < 1/alpha, else 0."""
    return (u.abs() < 1.0 / alpha).to(u.dtype)


# The fused kernels' codes for the built-in surrogates, matched by function identity: a user who
# registers a new function under an old name gets their function, not ours.
_KERNEL_CODES = {sigmoid: 0, atan: 1, qgate: 2, gate: 3}
GIVEN = 4  # any other surrogate: its PyTorch function runs, and the kernels read its values


def kernel_code(name: str) -> int:
    """The fused kernels' code for the surrogate registered as ``name``."""
    return _KERNEL_CODES.get(get_surrogate(name).grad, GIVEN)
