"""The field's other neurons, each exact to the code it comes from: STEP's ``node.py`` or SpikingJelly 2.0.

Every neuron here is stateless and multi-step, like :class:`~.neuron.Neuron`:
``[T, ...]`` in, spikes ``[T, ...]`` out. Common settings keep this library's
names (``v_threshold``, ``v_reset``, ``tau``, ``detach_reset``, ``detach_mem``,
``surrogate``, ``alpha``); a neuron's own parameters keep its reference's names
and defaults. Where STEP and SpikingJelly define a neuron differently,
``variant='step'`` (the default) follows STEP and ``variant='spikingjelly'``
the other; docs/neurons.md lists the differences.

EIF, QIF, KLIF, ILIF and NILIF are :class:`~.neuron.Neuron` subclasses: their
charge is in the spec, and their recurrence runs in the fused kernels. The others
have state a single membrane cannot hold (CLIF's memory, Izhikevich's recovery,
GLIF's previous spike and per-step parameters, HD-LIF's four membranes) or no
recurrence at all (PSN). Each writes its own loop in PyTorch operators (``loop``),
operation for operation as its reference writes it, so that float64 results agree
with it; Izhikevich, CLIF, STEP's GLIF and HD-LIF also run in fused kernels of
their own (``kernels/multi_state.py``), which match that
loop.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import multi_state
from .neuron import Neuron, register_neuron
from .spec import NeuronSpec
from .surrogate import get_surrogate

VARIANTS = ("step", "spikingjelly")


def _variant(cls_name: str, variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"{cls_name}: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant


class _Fire(torch.autograd.Function):
    """The step in forward, the surrogate in backward only (computing it in forward would double the
    cost of PSN's forward pass)."""

    @staticmethod
    def forward(ctx, u, surrogate: str, alpha: float):
        ctx.save_for_backward(u)
        ctx.surrogate, ctx.alpha = surrogate, alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * get_surrogate(ctx.surrogate).grad(u, ctx.alpha), None, None


def fire(u: torch.Tensor, surrogate: str, alpha: float) -> torch.Tensor:
    """Spikes ``u >= 0`` (0 or 1); backward: the surrogate's derivative at ``u``. Without a gradient
    (inference, export), plain PyTorch operators."""
    if u.requires_grad:
        return _Fire.apply(u, surrogate, alpha)
    return (u >= 0).to(u.dtype)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # Half-precision inputs are integrated in float32, as by every neuron kernel.
    return torch.promote_types(x.dtype, torch.float32)


class ZooNeuron(nn.Module):
    """Shared by the neurons with a loop of their own: the common settings, input check and repr.

    ``inert``: common settings a neuron accepts but has no use for (a model's
    ``tau`` reaches every neuron it builds, PSN's included); ``spikeformers
    neurons`` lists them.
    """

    source: ClassVar[str] = ""
    inert: ClassVar[tuple[str, ...]] = ()
    runs_as: ClassVar[str] = "PyTorch loop"  # how it runs (``spikeformers neurons`` lists it)

    def __init__(self, v_threshold: float, surrogate: str, alpha: float | None):
        super().__init__()
        self.v_threshold = float(v_threshold)
        self.surrogate = get_surrogate(surrogate).name
        self.alpha = float(get_surrogate(surrogate).default_alpha if alpha is None else alpha)

    def check_input(self, x: torch.Tensor):
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} expects a sequence [T, ...] with T >= 1, "
                             f"got shape {tuple(x.shape)}")

    def _check_steps(self, x: torch.Tensor, T: int, causal: bool = False):
        """``causal``: a neuron whose step t reads only steps 0..t also runs the first steps alone (TIM's
        temporal interaction calls its neurons on the steps so far); one that mixes all T steps cannot."""
        self.check_input(x)
        if x.shape[0] == T or (causal and x.shape[0] < T):
            return
        if x.shape[0] < T:
            step_wise = (" It mixes all T steps at once, so it cannot run in a part that calls its neuron on the "
                         "steps so far (TIM's temporal interaction).")
        else:
            step_wise = (" A part that folds the batch into time gives it T*B steps (QKFormer's ssa_batch_leak, "
                         "the authors' quirk: build that model with ssa_batch_leak=False).")
        raise ValueError(f"{type(self).__name__} was built for T={T} (its weights are per step) but got "
                         f"T={x.shape[0]} in {tuple(x.shape)}.{step_wise}")

    def fire(self, u: torch.Tensor) -> torch.Tensor:
        return fire(u, self.surrogate, self.alpha)


def _require_T(cls_name: str, T: int | None) -> int:
    if T is None:
        raise TypeError(f"{cls_name} needs T, the number of time steps (its weights are per step): give "
                        "neuron_kwargs={'T': ...} (the training recipes pass the model's time_steps)")
    if int(T) != T or T < 1:
        raise ValueError(f"{cls_name}: T must be a positive integer, got {T!r}")
    return int(T)


# Nonlinear integrate-and-fire: the spec's charges, fused.


@register_neuron("eif")
class EIF(Neuron):
    """Exponential integrate-and-fire (STEP's ``EIFNode``; SpikingJelly's ``EIFNode`` with ``variant``).

    STEP: ``h = v + (x - v + delta_T exp((v - theta_rh) / delta_T)) / tau`` from
    ``v = 0``, hard reset to ``v_reset`` (-0.1) with a detached spike.
    SpikingJelly: ``h = v + (x + v_rest - v + delta_T exp(...)) / tau`` from
    ``v = v_reset``, the reset's spike not detached.
    """

    kind = "eif"
    source = "STEP's EIFNode; SpikingJelly 2.0 EIFNode (variant='spikingjelly')"

    def __init__(self, tau: float = 2.0, delta_T: float = 1.0, theta_rh: float = 0.8, v_threshold: float = 1.0,
                 v_reset: float | None = -0.1, v_rest: float = 0.0, detach_reset: bool | None = None,
                 detach_mem: bool = False, surrogate: str = "sigmoid", alpha: float | None = None,
                 variant: str = "step"):
        self.variant = _variant("EIF", variant)
        if detach_reset is None:
            detach_reset = variant == "step"
        if variant == "step" and v_rest != 0.0:
            raise ValueError("EIF: STEP's EIF has no v_rest (it leaks towards 0); v_rest is variant='spikingjelly''s")
        super().__init__(v_threshold, v_reset, detach_reset, detach_mem, surrogate, alpha)
        if not tau > 1.0 or not delta_T > 0:
            raise ValueError(f"EIF: tau must be > 1 and delta_T > 0, got tau={tau}, delta_T={delta_T}")
        self.tau, self.delta_T, self.theta_rh, self.v_rest = float(tau), float(delta_T), float(theta_rh), float(v_rest)
        if variant == "spikingjelly":
            self.kind = "eif_sj"

    def charge_settings(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": True, "constants": (self.delta_T, self.theta_rh, self.v_rest)}

    def charge_repr(self) -> list[str]:
        return [f"variant={self.variant}", f"tau={self.tau}", f"delta_T={self.delta_T}", f"theta_rh={self.theta_rh}"]


@register_neuron("qif")
class QIF(Neuron):
    """Quadratic integrate-and-fire (SpikingJelly 2.0 ``QIFNode``):
    ``h = v + (x + a0 (v - v_rest)(v - v_c)) / tau``, from ``v = v_reset``."""

    kind = "qif"
    source = "SpikingJelly 2.0 QIFNode"

    def __init__(self, tau: float = 2.0, v_c: float = 0.8, a0: float = 1.0, v_threshold: float = 1.0,
                 v_rest: float = 0.0, v_reset: float | None = -0.1, detach_reset: bool = False,
                 detach_mem: bool = False, surrogate: str = "sigmoid", alpha: float | None = None):
        super().__init__(v_threshold, v_reset, detach_reset, detach_mem, surrogate, alpha)
        if not tau > 1.0 or not a0 > 0:
            raise ValueError(f"QIF: tau must be > 1 and a0 > 0, got tau={tau}, a0={a0}")
        self.tau, self.v_c, self.a0, self.v_rest = float(tau), float(v_c), float(a0), float(v_rest)

    def charge_settings(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": True, "constants": (self.a0, self.v_rest, self.v_c)}

    def charge_repr(self) -> list[str]:
        return [f"tau={self.tau}", f"v_c={self.v_c}", f"a0={self.a0}", f"v_rest={self.v_rest}"]


@register_neuron("izhikevich")
class Izhikevich(ZooNeuron):
    """Izhikevich neuron, SpikingJelly 2.0's ``IzhikevichNode``: QIF's membrane with a recovery ``w``,
    ``h = v + (x + a0 (v - v_rest)(v - v_c) - w) / tau``, ``w += (a (h - v_rest) - w) / tau_w + b s``."""

    source = "SpikingJelly 2.0 IzhikevichNode"
    runs_as = "fused kernels (two states)"

    def __init__(self, tau: float = 2.0, v_c: float = 0.8, a0: float = 1.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, v_rest: float = -0.1, w_rest: float = 0.0, tau_w: float = 2.0,
                 a: float = 0.0, b: float = 0.0, detach_reset: bool = False, detach_mem: bool = False,
                 surrogate: str = "sigmoid", alpha: float | None = None):
        super().__init__(v_threshold, surrogate, alpha)
        if not tau > 1.0 or not a0 > 0:
            raise ValueError(f"Izhikevich: tau must be > 1 and a0 > 0, got tau={tau}, a0={a0}")
        self.tau, self.v_c, self.a0, self.v_rest = float(tau), float(v_c), float(a0), float(v_rest)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.w_rest, self.tau_w, self.a, self.b = float(w_rest), float(tau_w), float(a), float(b)
        self.detach_reset, self.detach_mem = bool(detach_reset), bool(detach_mem)

    @property
    def spec(self) -> NeuronSpec:
        """The settings the fused two-state kernels read (``kernels/multi_state.py``)."""
        return NeuronSpec(kind="izhikevich", tau=self.tau, v_threshold=self.v_threshold, v_reset=self.v_reset,
                          decay_input=True, detach_reset=self.detach_reset, detach_mem=self.detach_mem,
                          surrogate=self.surrogate, alpha=self.alpha,
                          constants=(self.a0, self.v_rest, self.v_c, self.w_rest, self.tau_w, self.a, self.b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return multi_state.spikes("pair", (x,), self.spec, lambda: self.loop(x))

    def loop(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrence in PyTorch operators, as SpikingJelly writes it: the reference the kernels match."""
        xc = x.to(_compute_dtype(x))
        v = torch.full_like(xc[0], 0.0 if self.v_reset is None else self.v_reset)
        w = torch.full_like(xc[0], self.w_rest)
        spikes = []
        for x_t in xc:
            if self.detach_mem:
                v, w = v.detach(), w.detach()
            h = v + (x_t + self.a0 * (v - self.v_rest) * (v - self.v_c) - w) / self.tau
            s = self.fire(h - self.v_threshold)
            w = w + (self.a * (h - self.v_rest) - w) / self.tau_w + self.b * s
            r = s.detach() if self.detach_reset else s
            v = h - r * self.v_threshold if self.v_reset is None else r * self.v_reset + (1.0 - r) * h
            spikes.append(s)
        return torch.stack(spikes).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, v_c={self.v_c}, a0={self.a0}, v_rest={self.v_rest}, tau_w={self.tau_w}, a={self.a}, "
                f"b={self.b}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, surrogate={self.surrogate}"
                f"(alpha={self.alpha})")


# Integer spikes (STEP).


@register_neuron("ilif")
class ILIF(Neuron):
    """Integer LIF (STEP's ``ILIFNode``): LIF's charge, spikes ``round(clamp(v / v_threshold, 0, D))``
    (integers 0..D) with a straight-through gradient, reset ``v -= spikes * v_threshold``.

    STEP adds the straight-through term as ``hard - u + u``, which can land an ulp off the integer;
    here the spikes are the integers themselves, with the same gradient. Runs in the fused kernels.
    """

    kind = "ilif"
    source = "STEP's ILIFNode"
    inert = ("v_reset", "detach_reset", "surrogate", "alpha")

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, D: int = 2, detach_mem: bool = False,
                 v_reset: float | None = None, detach_reset: bool = True, surrogate: str = "sigmoid",
                 alpha: float | None = None):
        # the spikes' gradient is straight-through and the reset's spikes carry none: no surrogate, no reset level
        super().__init__(v_threshold, None, True, detach_mem, "sigmoid", None)
        if not tau > 1.0 or int(D) != D or D < 1:
            raise ValueError(f"{type(self).__name__}: tau must be > 1 and D a positive integer, got tau={tau}, D={D}")
        self.tau, self.D = float(tau), int(D)

    def charge_settings(self) -> dict[str, Any]:
        divisor = float(self.D) if self.kind == "nilif" else 1.0
        return {"tau": self.tau, "decay_input": True, "constants": (float(self.D), divisor)}

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_threshold={self.v_threshold}, D={self.D}, detach_mem={self.detach_mem}"


@register_neuron("nilif")
class NILIF(ILIF):
    """Normalised integer LIF (STEP's ``NILIFNode``): ILIF with the clamped membrane divided by D
    before rounding, so spikes are 0 or 1, and the reset subtracts ``spikes * v_threshold``."""

    kind = "nilif"
    source = "STEP's NILIFNode"


# Learned-scale and gated LIFs.


@register_neuron("klif")
class KLIF(Neuron):
    """KLIF (Jiang & Zhang 2023): LIF's charge scaled by a learned ``k`` and rectified,
    ``h = relu(k * lif(v, x))``; ``k`` starts at 1.

    STEP (default): hard reset to 0 with a detached spike, from ``v = 0``. SpikingJelly:
    ``decay_input``, ``v_reset`` (None: soft), ``scale_reset`` (reset ``h / k`` against
    ``v_threshold / k``), the reset's spike not detached. All but ``scale_reset`` run in
    the fused kernels.
    """

    kind = "klif"
    source = "STEP's KLIFNode; SpikingJelly 2.0 KLIFNode (variant='spikingjelly')"

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 decay_input: bool = True, scale_reset: bool = False, detach_reset: bool | None = None,
                 detach_mem: bool = False, surrogate: str = "sigmoid", alpha: float | None = None,
                 variant: str = "step"):
        self.variant = _variant("KLIF", variant)
        if variant == "step" and (scale_reset or not decay_input or v_reset != 0.0):
            raise ValueError("KLIF: scale_reset, decay_input=False and v_reset other than 0 are "
                             "variant='spikingjelly''s; STEP's KLIF resets to 0")
        super().__init__(v_threshold, v_reset, (variant == "step") if detach_reset is None else detach_reset,
                         detach_mem, surrogate, alpha)
        if not tau > 1.0:
            raise ValueError(f"KLIF: tau must be > 1, got {tau}")
        self.tau, self.decay_input, self.scale_reset = float(tau), bool(decay_input), bool(scale_reset)
        self.k = nn.Parameter(torch.tensor(1.0))

    def charge_settings(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input}

    def charge_parameter(self) -> torch.Tensor:
        return self.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.scale_reset:
            return super().forward(x)
        # SpikingJelly's scale_reset resets h / k against v_threshold / k: not the spec's reset, so its own loop
        self.check_input(x)
        dtype = _compute_dtype(x)
        xc, k, spec = x.to(dtype), self.k.to(dtype), self.spec
        v = torch.full_like(xc[0], spec.rest)
        spikes = []
        for x_t in xc:
            if self.detach_mem:
                v = v.detach()
            h = spec.charge(v, x_t, k)
            s = fire(h - self.v_threshold, self.surrogate, self.alpha)
            r = s.detach() if self.detach_reset else s
            level, threshold = h / k, self.v_threshold / k
            v = level - r * threshold if self.v_reset is None else r * self.v_reset + (1.0 - r) * level
            spikes.append(s)
        return torch.stack(spikes).to(x.dtype)

    def charge_repr(self) -> list[str]:
        return [f"variant={self.variant}", f"tau={self.tau}", f"k={self.k.item():.4g} (learned)",
                f"scale_reset={self.scale_reset}"]


@register_neuron("clif")
class CLIF(ZooNeuron):
    """Complementary LIF (Huang et al. 2024): a complementary memory ``m`` decays by
    ``sigmoid(v / tau)``, gains each spike, and deepens the reset by ``sigmoid(m)``.

    STEP (default): ``v = v (1 - 1/tau) + x``, soft reset ``v -= s * v_threshold`` then
    ``v -= s * sigmoid(m)``, ``decay_input`` and ``v_reset`` as in its code. SpikingJelly:
    ``h = v - v / tau + x``, ``v = h - s (v_threshold + sigmoid(m))``. Both: the rectangular
    surrogate of width 1 (``gate``, alpha 2).
    """

    source = ("STEP's ComplementaryLIFNeuron; SpikingJelly 2.0 ComplementaryLIFNode "
              "(variant='spikingjelly')")
    inert = ("detach_reset",)
    runs_as = "fused kernels (two states)"

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = None,
                 decay_input: bool = False, detach_mem: bool = False, detach_reset: bool = False,
                 surrogate: str = "gate", alpha: float | None = None, variant: str = "step"):
        super().__init__(v_threshold, surrogate, alpha)
        self.variant = _variant("CLIF", variant)
        if variant == "spikingjelly" and (v_reset is not None or decay_input):
            raise ValueError("CLIF: SpikingJelly's CLIF has a soft reset and no decay_input; v_reset and "
                             "decay_input are variant='step''s")
        if not tau > 1.0:
            raise ValueError(f"CLIF: tau must be > 1, got {tau}")
        self.tau, self.decay_input, self.detach_mem = float(tau), bool(decay_input), bool(detach_mem)
        self.v_reset = None if v_reset is None else float(v_reset)

    @property
    def spec(self) -> NeuronSpec:
        """The settings the fused two-state kernels read (``kernels/multi_state.py``)."""
        return NeuronSpec(kind="clif" if self.variant == "step" else "clif_sj", tau=self.tau,
                          v_threshold=self.v_threshold, v_reset=self.v_reset, decay_input=self.decay_input,
                          detach_reset=False, detach_mem=self.detach_mem, surrogate=self.surrogate, alpha=self.alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return multi_state.spikes("pair", (x,), self.spec, lambda: self.loop(x))

    def loop(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrence in PyTorch operators, as its reference writes it: what the kernels match."""
        xc = x.to(_compute_dtype(x))
        tau, threshold, v_reset = self.tau, self.v_threshold, self.v_reset
        v = torch.full_like(xc[0], v_reset if v_reset else 0.0)  # STEP starts from v_reset only when it is truthy
        m = torch.zeros_like(xc[0])
        spikes = []
        for x_t in xc:
            if self.detach_mem:
                v, m = v.detach(), m.detach()
            if self.variant == "spikingjelly":
                h = v - (v - 0.0) / tau + x_t
                m = m * torch.sigmoid(h / tau)
                s = self.fire(h - threshold)
                m = m + s
                v = h - s * (threshold + torch.sigmoid(m))
            else:
                if self.decay_input:
                    x_t = x_t / tau
                if v_reset is None or v_reset == 0:
                    v = v * (1 - 1.0 / tau) + x_t
                else:
                    v = v * (1 - 1.0 / tau) + v_reset / tau + x_t
                m = m * torch.sigmoid(v / tau)
                s = self.fire(v - threshold)
                m = m + s
                v = v - s * threshold if v_reset is None else (1.0 - s) * v + s * v_reset
                v = v - s * torch.sigmoid(m)
            spikes.append(s)
        return torch.stack(spikes).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"variant={self.variant}, tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
                f"surrogate={self.surrogate}(alpha={self.alpha})")


def _logit(p: float) -> float:
    return -math.log(1 / p - 1)


@register_neuron("glif")
class GLIF(ZooNeuron):
    """Gated LIF (Yao et al., NeurIPS 2022): learned gates mix leaks, input conductance and resets.

    STEP's ``GLIFTorch`` (default): per-step learned ``tau``, ``Vth``, ``leak``,
    ``conduct``, ``reVth`` (``time_wise``), gates ``alpha``, ``beta``, ``gamma`` fixed
    to 0/1 by their sign (``static_gate``), spikes ``u > Vth`` with a rectangular
    surrogate of width 1. SpikingJelly's ``GatedLIFNode``: sigmoid gates, one value
    per channel, ``conduct`` per step, the sigmoid surrogate. ``T`` is required
    (the parameters are per step; step t reads only step t's, so the first steps also run
    alone); ``gate`` and ``param`` are STEP's initial values.
    """

    source = "STEP's GLIFTorch; SpikingJelly 2.0 GatedLIFNode (variant='spikingjelly')"
    runs_as = "fused kernels (STEP's; SpikingJelly's: PyTorch loop)"
    inert = ("tau", "v_threshold", "v_reset", "detach_reset")

    def __init__(self, T: int | None = None, channels: int | None = None, channel_dim: int | None = None,
                 variant: str = "step", static_gate: bool = True, time_wise: bool = True,
                 gate: tuple[float, float, float] = (0.6, 0.8, 0.6),
                 param: tuple[float, float, float, float] = (0.25, 0.5, -1.0, 0.5),
                 v_threshold: float | None = None, tau: float | None = None, v_reset: float | None = None,
                 detach_reset: bool = False, detach_mem: bool = False, surrogate: str | None = None,
                 alpha: float | None = None):
        self.variant = _variant("GLIF", variant)
        # The threshold is learned (sigmoid(Vth), in (0, 1)), starting at param[1]: a model's v_threshold is inert.
        super().__init__(param[1], surrogate or ("sigmoid" if variant == "spikingjelly" else "gate"),
                         alpha if alpha is not None or variant == "spikingjelly" else 2.0)
        self.T = _require_T("GLIF", T)
        self.detach_mem, self.static_gate, self.time_wise = bool(detach_mem), bool(static_gate), bool(time_wise)
        init_tau, init_vth, _, init_conduct = param
        leak = init_vth / (self.T * 2)  # STEP's linear decay: Vth / 2T
        if variant == "step":
            shape = (self.T,) if time_wise else ()
            self.alpha_gate, self.beta_gate, self.gamma_gate = (
                nn.Parameter(torch.tensor(math.log(1 / ((g - 0.5) * 0.5 + 0.5) - 1), dtype=torch.float)) for g in gate)
            self.channel_dim = None
        else:
            shape = () if channels is None else (int(channels),)
            self.alpha_gate, self.beta_gate, self.gamma_gate = (
                nn.Parameter(0.2 * (torch.rand(shape) - 0.5)) for _ in range(3))
            self.channel_dim = channel_dim
        self.tau = nn.Parameter(torch.full(shape, _logit(init_tau)))
        self.Vth = nn.Parameter(torch.full(shape, _logit(init_vth)))
        self.leak = nn.Parameter(torch.full(shape, _logit(leak)))
        self.reVth = nn.Parameter(torch.full(shape, _logit(init_vth)))
        conduct_shape = (self.T, *(shape if variant == "spikingjelly" else ()))
        self.conduct = nn.Parameter(torch.full(conduct_shape, _logit(init_conduct)))

    def _per_channel(self, p: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        if p.dim() == 0 or self.channel_dim is None:
            return p
        axis = self.channel_dim - 1 if self.channel_dim > 0 else self.channel_dim  # x_t has no T axis
        shape = [1] * x_t.dim()
        shape[axis] = -1
        return p.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_steps(x, self.T, causal=True)
        dtype = _compute_dtype(x)
        xc = x.to(dtype)
        return (self._forward_step(xc) if self.variant == "step" else self._forward_sj(xc)).to(x.dtype)

    @property
    def spec(self) -> NeuronSpec:
        """The settings STEP's GLIF kernels read (``kernels/multi_state.py``); its numbers are the per-step
        coefficients."""
        return NeuronSpec(kind="glif", tau=math.inf, v_threshold=0.0, v_reset=None, decay_input=False,
                          detach_reset=False, detach_mem=self.detach_mem, surrogate=self.surrogate, alpha=self.alpha)

    def step_coefficients(self, steps: int, dtype: torch.dtype) -> torch.Tensor:
        """STEP's per-step numbers ``[6, steps]``: ``A = 1 - alpha (1 - tau)``, ``B = (1 - alpha) leak``,
        ``C = (1 - gamma) reVth``, ``c = 1 - beta (1 - conduct)``, ``vth``, ``G = gamma`` (the parameters through
        their sigmoids), each by STEP's own operations on its 0-dim values, so they round as STEP's loop rounds
        them. The recurrence reads nothing else of the parameters."""
        if self.static_gate:
            al, be, ga = (g.detach().gt(0.0).to(dtype) for g in (self.alpha_gate, self.beta_gate, self.gamma_gate))
        else:
            al, be, ga = (g.to(dtype).sigmoid() for g in (self.alpha_gate, self.beta_gate, self.gamma_gate))
        columns = []
        for t in range(steps):
            at = (lambda p: p[t]) if self.time_wise else (lambda p: p)
            tau, vth, leak, rev = (at(p).to(dtype).sigmoid() for p in (self.tau, self.Vth, self.leak, self.reVth))
            conduct = self.conduct[t].to(dtype).sigmoid()
            columns.append(torch.stack([1 - al * (1 - tau), (1 - al) * leak, (1 - ga) * rev, 1 - be * (1 - conduct),
                                        vth, ga]))
        return torch.stack(columns, dim=1)

    def _forward_step(self, xc: torch.Tensor) -> torch.Tensor:
        coeffs = self.step_coefficients(xc.shape[0], xc.dtype)
        return multi_state.spikes("glif", (xc, coeffs), self.spec, lambda: self.loop(xc, coeffs))

    def loop(self, xc: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """STEP's recurrence in PyTorch operators, in its order: the reference the kernels match."""
        u = torch.zeros_like(xc[0])
        o = torch.zeros_like(xc[0])
        spikes = []
        for t in range(xc.shape[0]):
            A, B, C, c, vth, G = coeffs[:, t]
            if self.detach_mem:
                u = u.detach()
            u = ((A * u) * (1 - G * o) - B) + xc[t] * c - C * o
            # STEP's SpikeAct_extended: u > Vth, gradient 1 inside |u - Vth| < 0.5 (the surrogate's window)
            d = u - vth
            o = (d > 0).to(xc.dtype)
            if d.requires_grad:
                o = o + (d - d.detach()) * get_surrogate(self.surrogate).grad(d.detach(), self.alpha)
            spikes.append(o)
        return torch.stack(spikes)

    def _forward_sj(self, xc: torch.Tensor) -> torch.Tensor:
        dtype = xc.dtype
        ch = lambda p: self._per_channel(p.to(dtype).sigmoid(), xc[0])  # noqa: E731
        al, be, ga = ch(self.alpha_gate), ch(self.beta_gate), ch(self.gamma_gate)
        tau, vth, leak, rev = ch(self.tau), ch(self.Vth), ch(self.leak), ch(self.reVth)
        v = torch.zeros_like(xc[0])
        s = torch.zeros_like(xc[0])
        spikes = []
        for t in range(xc.shape[0]):
            if self.detach_mem:
                v = v.detach()
            current = xc[t] * (1 - be * (1 - ch(self.conduct[t])))
            v_next = (1 - al * (1 - tau)) * v - (1 - al) * leak + current
            v_next = v_next - (1 - al * (1 - tau)) * v * ga * s - (1 - ga) * rev * s
            s = self.fire(v_next - vth)
            v = v_next
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"variant={self.variant}, T={self.T}, static_gate={self.static_gate}, time_wise={self.time_wise}"


# Parallel spiking neurons: no recurrence, one matrix product over T.


class _PSNBase(ZooNeuron):
    inert = ("tau", "v_reset", "detach_reset", "detach_mem")
    runs_as = "one matrix product over T"

    def _spikes(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(x)
        x2 = x.reshape(x.shape[0], -1).to(dtype)
        h = torch.addmm(bias.to(dtype).reshape(-1, 1).expand(x.shape[0], 1), weight.to(dtype), x2)
        return self.fire(h).reshape(x.shape).to(x.dtype)


@register_neuron("psn")
class PSN(_PSNBase):
    """Parallel spiking neuron (Fang et al., NeurIPS 2023): ``h = W x + b`` over the T steps at once,
    spikes ``h >= 0``. ``W`` [T, T] starts as ``nn.Linear``'s, ``b`` at ``-v_threshold`` (-1).

    STEP's ``PSNTorch`` (default) uses the sigmoid surrogate with alpha 2; SpikingJelly's ``PSN``
    the atan one, alpha 2 (``variant='spikingjelly'``); the forward is the same.
    """

    source = "STEP's PSNTorch; SpikingJelly 2.0 PSN (variant='spikingjelly')"

    def __init__(self, T: int | None = None, v_threshold: float = 1.0, surrogate: str | None = None,
                 alpha: float | None = None, variant: str = "step", tau: float | None = None,
                 v_reset: float | None = None, detach_reset: bool = False, detach_mem: bool = False):
        self.variant = _variant("PSN", variant)
        super().__init__(v_threshold, surrogate or ("sigmoid" if variant == "step" else "atan"),
                         2.0 if alpha is None else alpha)
        self.T = _require_T("PSN", T)
        self.weight = nn.Parameter(torch.empty(self.T, self.T))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.full((self.T,), -self.v_threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_steps(x, self.T)
        return self._spikes(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"T={self.T}, variant={self.variant}, surrogate={self.surrogate}(alpha={self.alpha})"


@register_neuron("masked_psn")
class MaskedPSN(_PSNBase):
    """SpikingJelly 2.0's ``MaskedPSN``: PSN whose weight is blended, by ``lambda_`` (a buffer a
    schedule raises from ``lambda_init`` to 1), towards its ``k``-order band (step t sees t-k+1..t)."""

    source = "SpikingJelly 2.0 MaskedPSN"

    def __init__(self, T: int | None = None, k: int = 2, lambda_init: float = 0.0, v_threshold: float = 1.0,
                 surrogate: str = "atan", alpha: float | None = None, tau: float | None = None,
                 v_reset: float | None = None, detach_reset: bool = False, detach_mem: bool = False):
        super().__init__(v_threshold, surrogate, 2.0 if alpha is None else alpha)
        self.T = _require_T("MaskedPSN", T)
        if int(k) != k or k < 1:
            raise ValueError(f"MaskedPSN: k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.weight = nn.Parameter(torch.empty(self.T, self.T))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.full((self.T,), -self.v_threshold))
        self.register_buffer("lambda_", torch.as_tensor(float(lambda_init)))
        ones = torch.ones(self.T, self.T)
        self.register_buffer("mask", torch.tril(ones) * torch.triu(ones, -(self.k - 1)), persistent=False)

    def masked_weight(self) -> torch.Tensor:
        # SpikingJelly's (lambda * mask0 + (1 - lambda) * mask1) * W with mask1 all ones: the same values.
        if self.lambda_ >= 1.0:
            return self.weight * self.mask
        return (self.lambda_ * self.mask + (1.0 - self.lambda_)) * self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_steps(x, self.T)
        return self._spikes(x, self.masked_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"T={self.T}, k={self.k}, lambda_={float(self.lambda_)}, surrogate={self.surrogate}(alpha={self.alpha})"


@register_neuron("sliding_psn")
class SlidingPSN(_PSNBase):
    """SpikingJelly 2.0's ``SlidingPSN``: ``h[t] = sum_i w[i] x[t - k + 1 + i] + b``, one ``k``-tap
    filter shared by all steps (so any T runs); ``exp_init`` starts ``w`` at 1/2^(k-1), ..., 1/2, 1."""

    source = "SpikingJelly 2.0 SlidingPSN"

    def __init__(self, k: int = 2, exp_init: bool = True, v_threshold: float = 1.0, surrogate: str = "atan",
                 alpha: float | None = None, tau: float | None = None, v_reset: float | None = None,
                 detach_reset: bool = False, detach_mem: bool = False):
        super().__init__(v_threshold, surrogate, 2.0 if alpha is None else alpha)
        if int(k) != k or k < 1:
            raise ValueError(f"SlidingPSN: k must be a positive integer, got {k!r}")
        self.k = int(k)
        if exp_init:
            weight = torch.tensor([0.5 ** (self.k - 1 - i) for i in range(self.k)])
        else:
            weight = torch.ones(1, self.k)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            weight = weight[0]
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.as_tensor(-self.v_threshold))

    def gemm_weight(self, T: int) -> torch.Tensor:
        """The [T, T] banded matrix: row t holds w's last min(t + 1, k) taps ending on the diagonal."""
        lag = torch.arange(T).view(-1, 1) - torch.arange(T).view(1, -1)  # t - j
        inside = (lag >= 0) & (lag < self.k)
        taps = torch.cat([self.weight, self.weight.new_zeros(1)])  # index k: a zero outside the band
        index = torch.where(inside, self.k - 1 - lag, torch.full_like(lag, self.k)).to(self.weight.device)
        return taps[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self._spikes(x, self.gemm_weight(x.shape[0]), self.bias.expand(x.shape[0]))

    def extra_repr(self) -> str:
        return f"k={self.k}, surrogate={self.surrogate}(alpha={self.alpha})"


# A learned mixture of membranes (STEP).


class HeavisideParametricSigmoid(torch.autograd.Function):
    """``u >= v_threshold``; backward ``k sig(k (u - v_threshold)) (1 - sig(...))`` (STEP's, for HD-LIF)."""

    @staticmethod
    def forward(ctx, u, k: float, v_threshold: float):
        ctx.save_for_backward(u)
        ctx.k, ctx.v_threshold = k, v_threshold
        return (u >= v_threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.k * (u - ctx.v_threshold))
        return grad * (ctx.k * sig * (1 - sig)), None, None


@register_neuron("hdlif")
class HDLIF(ZooNeuron):
    """HD-LIF, the MoE neuron of Spiking Point Transformer (AAAI 2025), STEP's ``HDLIFNode``.

    Four experts, IF, LIF, PLIF and EIF (``v_reset`` -0.1, ``delta_T`` 1, ``theta_rh`` 0.8),
    integrate the same input; a 1x1 convolution over the whole sequence's channels
    gives each position a softmax over the experts (in eval, over the top two), which
    mixes their post-reset membranes (a zero membrane counts as ``v_threshold``);
    spikes are ``mixture >= v_th_MoE`` (0.2), with a sigmoid surrogate of slope ``k_MoE``
    (4). Needs the channel count and T: the factory passes ``channels`` and
    ``channel_dim``, the training recipes T.

    ``step_gate_rows=True`` reproduces a quirk of STEP's code: it reads its ``(T B)``-ordered
    rows as ``(B T)`` when it forms the gate's input, so a sample's gate sees rows of other
    samples (unless B is 1). The default gives each sample the gate of its own T steps.
    """

    source = "STEP's HDLIFNode"
    runs_as = "fused kernels (four membranes and their mixture)"
    inert = ("v_reset", "detach_reset", "surrogate", "alpha")
    experts = ("if", "lif", "plif", "eif")

    def __init__(self, channels: int, T: int | None = None, channel_dim: int | None = 2, tau: float = 2.0,
                 v_threshold: float = 0.5, detach_mem: bool = False, k_MoE: float = 4.0, v_th_MoE: float = 0.2,
                 step_gate_rows: bool = False, v_reset: float | None = None, detach_reset: bool = True,
                 surrogate: str = "sigmoid", alpha: float | None = None):
        super().__init__(v_threshold, surrogate, alpha)
        self.T = _require_T("HDLIF", T)
        self.step_gate_rows = bool(step_gate_rows)
        self.channels, self.channel_dim = int(channels), 2 if channel_dim is None else int(channel_dim)
        self.tau, self.detach_mem = float(tau), bool(detach_mem)
        self.k_MoE, self.v_th_MoE = float(k_MoE), float(v_th_MoE)
        self.w = nn.Parameter(torch.tensor(-math.log(self.tau - 1.0)))  # the PLIF expert's leak
        self.gate = nn.Conv1d(self.channels * self.T, len(self.experts), 1)

    def _membranes(self, x: torch.Tensor) -> torch.Tensor:
        """[T, E, ...]: each expert's membrane after its reset, STEP's ``mem_collect``."""
        th, tau = self.v_threshold, self.tau
        plif_k = self.w.to(x.dtype).sigmoid()
        mems = [torch.zeros_like(x[0]) for _ in self.experts]
        out = []
        for x_t in x:
            if self.detach_mem:
                mems = [m.detach() for m in mems]
            m_if, m_lif, m_plif, m_eif = mems
            m_if = m_if + x_t * 1.0
            m_lif = m_lif + (x_t - m_lif) / tau
            m_plif = m_plif + ((x_t - m_plif) * plif_k) * 1.0
            m_eif = m_eif + (x_t - m_eif + 1.0 * torch.exp((m_eif - 0.8) / 1.0)) / tau
            m_if = m_if * (1 - (m_if >= th).to(x.dtype))
            m_lif = m_lif * (1 - (m_lif >= th).to(x.dtype))
            m_plif = m_plif * (1 - (m_plif >= th).to(x.dtype))
            s = (m_eif >= th).to(x.dtype)
            m_eif = m_eif * (1 - s) + s * -0.1
            mems = [m_if, m_lif, m_plif, m_eif]
            out.append(torch.stack(mems, dim=1))
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_steps(x, self.T)
        if x.dim() < 3 or x.shape[self.channel_dim] != self.channels:
            raise ValueError(f"HDLIF was built for {self.channels} channels on axis {self.channel_dim} but got "
                             f"shape {tuple(x.shape)}")
        dtype = _compute_dtype(x)
        T, B = x.shape[:2]
        xm = x.to(dtype).movedim(self.channel_dim, 2)  # [T, B, C, ...]
        moved_shape = xm.shape
        N = math.prod(moved_shape[3:])  # 1 for [T, B, C]; named, so that an empty batch reshapes too
        xm = xm.reshape(T, B, self.channels, N)  # [T, B, C, N]
        if self.step_gate_rows:  # STEP's x.view(-1, step, ...) of (T B)-ordered rows
            z = xm.reshape(B, T * self.channels, N)
        else:  # each sample's own T steps: [B, T*C, N]
            z = xm.permute(1, 0, 2, 3).reshape(B, T * self.channels, N)
        logits = F.conv1d(z, self.gate.weight.to(dtype), self.gate.bias.to(dtype))  # [B, E, N]
        if self.training:
            gate = F.softmax(logits, dim=-2)
        else:
            top_values, top_indices = torch.topk(logits, 2, dim=-2)
            kept = torch.zeros_like(logits).scatter(-2, top_indices, top_values)
            gate = F.softmax(kept.masked_fill(kept == 0, float("-inf")), dim=-2)
        xm = xm.contiguous()
        spikes = multi_state.spikes("hdlif", (xm, gate, self.w.to(dtype).sigmoid()), self.spec,
                                    lambda: self.loop(xm, gate))
        return spikes.reshape(moved_shape).movedim(2, self.channel_dim).to(x.dtype)

    @property
    def spec(self) -> NeuronSpec:
        """The settings HD-LIF's fused kernels read (``kernels/multi_state.py``)."""
        return NeuronSpec(kind="hdlif", tau=self.tau, v_threshold=self.v_threshold, v_reset=None, decay_input=True,
                          detach_reset=True, detach_mem=self.detach_mem, surrogate="sigmoid", alpha=self.k_MoE,
                          constants=(self.k_MoE, self.v_th_MoE))

    def loop(self, xm: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Spikes for ``xm`` ``[T, B, C, N]`` and the gate ``[B, 4, N]`` by STEP's operations in PyTorch: the
        reference the kernels match."""
        mems = self._membranes(xm)  # [T, B, E, C, N]
        mems = torch.where(mems == 0.0, torch.full_like(mems, self.v_threshold), mems)
        mixture = torch.sum(gate.unsqueeze(0).unsqueeze(3) * mems, dim=2)
        return HeavisideParametricSigmoid.apply(mixture, self.k_MoE, self.v_th_MoE)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, T={self.T}, tau={self.tau}, v_threshold={self.v_threshold}, "
                f"step_gate_rows={self.step_gate_rows}")


# Stateless integer spikes.


class _Quantise(torch.autograd.Function):
    """``round(clamp(x, lo, hi))`` with the gradient passed where ``lo <= x <= hi`` (zero outside)."""

    @staticmethod
    def forward(ctx, x, lo: float, hi: float):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return torch.round(torch.clamp(x, lo, hi))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.masked_fill((x < ctx.lo) | (x > ctx.hi), 0), None, None


@register_neuron("multispike")
class MultiSpike(nn.Module):
    """E-SpikeFormer's integer spiking neuron: ``round(clamp(x, 0, max_value)) / norm`` per element and
    time step, no state. The gradient is the identity inside ``[0, max_value]`` and zero outside (the
    authors' straight-through estimator). ``max_value`` is the paper's D (4); ``norm`` (default D) divides
    the count, 1 in the authors' HARDVS model (their ``D_Norm``)."""

    source = "BICLab/Spike-Driven-Transformer-V3 (E-SpikeFormer's multi-spike neuron)"
    runs_as = "elementwise (no state)"

    # It has no membrane, threshold or surrogate: a model's common neuron settings reach it unused.
    inert: ClassVar[tuple[str, ...]] = ("tau", "v_threshold", "v_reset", "detach_reset", "detach_mem", "surrogate",
                                        "alpha")

    def __init__(self, max_value: int = 4, norm: float | None = None, *, tau: float | None = None,
                 v_threshold: float | None = None, v_reset: float | None = None, detach_reset: bool = False,
                 detach_mem: bool = False, surrogate: str | None = None, alpha: float | None = None):
        super().__init__()
        if max_value < 1:
            raise ValueError(f"max_value must be >= 1, got {max_value}")
        self.max_value = int(max_value)
        self.norm = float(self.max_value if norm is None else norm)
        if not self.norm > 0:
            raise ValueError(f"norm must be positive, got {norm}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Quantise.apply(x, 0.0, float(self.max_value)) / self.norm

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, norm={self.norm:g}"
