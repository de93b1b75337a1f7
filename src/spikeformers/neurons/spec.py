"""The neuron recurrence and its settings: one :class:`NeuronSpec` that every kernel reads.

Every recurrent neuron is one loop over T, per element, from ``v[-1] = rest``
(``v_reset``, or 0 with a soft reset)::

    h[t] = charge(v[t-1], x[t])                     # the neuron's own dynamics
    s[t] = 1 if h[t] >= v_threshold else 0          # fire; backward: the surrogate
    v[t] = h[t] * (1 - s[t]) + v_reset * s[t]       # hard reset
    v[t] = h[t] - v_threshold * s[t]                # soft reset (v_reset=None)

``detach_reset`` stops the gradient through the ``s[t]`` of the reset,
``detach_mem`` the one through ``v[t-1]``. Half-precision inputs are integrated
in float32 everywhere: a bf16 membrane rounds away small inputs and flips spikes.

The spec holds these settings and derives, once, what each kernel needs: the
charge in PyTorch (:meth:`NeuronSpec.charge`, the reference every fused kernel
matches), the constants of the fused kernels' single charge/reset expression
(:meth:`NeuronSpec.kernel_constants`), and the surrogate's kernel code. The
charges the fused kernels know are :data:`FUSED_KINDS`; a neuron of any other
kind runs its own PyTorch charge, unrolled over T (``kernels/unrolled.py``).
Fusing a new charge means a code in :data:`FUSED_KINDS`, its formula in
:meth:`NeuronSpec.charge`, its constants in :meth:`NeuronSpec.kernel_constants`,
and that code's case in the kernels (``CHARGE`` in ``cpu_kernel.cpp`` and
``triton.py``; the derivatives in their backward and in ``reference.py``'s).
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

from . import surrogate as surrogates

# The charges of the fused kernels (reference, C++, Triton), and the code each kernel knows it by.
# LIF, PLIF and IF are one kernel charge: a linear leak towards rest, by 1/tau or by PLIF's learned k.
# EXP: EIF (STEP's, and SpikingJelly's with its v_rest); QUAD: QIF; SCALED: KLIF's relu(k * LIF charge).
# INTEGER: ILIF's and NILIF's LIF charge with integer spikes round(clamp(h / v_threshold, 0, D) / divisor)
# and the reset h - spikes * v_threshold (constants (D, divisor): divisor 1 for ILIF, D for NILIF).
LINEAR, EXP, QUAD, SCALED, INTEGER = 0, 1, 2, 3, 4
FUSED_KINDS = {"lif": LINEAR, "plif": LINEAR, "if": LINEAR, "eif": EXP, "eif_sj": EXP, "qif": QUAD, "klif": SCALED,
               "ilif": INTEGER, "nilif": INTEGER}
# Neurons with a second state beside the membrane, in kernels of their own (``kernels/multi_state.py``):
# Izhikevich's recovery (constants a0, v_rest, v_c, w_rest, tau_w, a, b), STEP's and SpikingJelly's CLIF memory.
TWO_STATE_KINDS = {"izhikevich": 0, "clif": 1, "clif_sj": 2}
LEARNED_LEAK = ("plif",)  # kinds whose leak factor k = sigmoid(w) is a learned parameter
LEARNED_SCALE = ("klif",)  # kinds whose learned parameter k is used as it is (KLIF's scale)
# STEP's EIF starts from, and leaks towards, 0 whatever its reset level (BrainCog's membrane starts at 0).
ZERO_REST = ("eif",)


class KernelConstants(NamedTuple):
    """The numbers a fused kernel's one charge/reset expression takes (all floats).

    With ``decay_input`` the charge is ``h = v + ((x - (v - rest)) * mul) / div``,
    without it ``h = (v - ((v - rest) * mul) / div) + x``: LIF is ``mul`` 1, ``div``
    tau; PLIF ``mul`` k, ``div`` 1; IF, without decay_input, ``mul`` 0. Multiplying or
    dividing by 1 and adding 0 are exact, so each kind rounds exactly as its own
    textbook formula (:meth:`NeuronSpec.charge`). The reset is ``v = h * keep - sub``
    where the neuron fired, else ``h``: soft ``keep`` 1, ``sub`` threshold; hard ``keep``
    0, ``sub`` -v_reset.

    The nonlinear charges: EXP ``h = v + (((x + p2) - v) + p0 exp((v - p1) / p0)) / div``,
    QUAD ``h = v + (x + p0 (v - p1)(v - p2)) / div``, whose ``dh[t+1]/dv[t]`` the kernels
    evaluate at each step (``decay`` is then 1, or 0 with detach_mem); SCALED ``h =
    max(scale * linear(v, x), 0)``, with LINEAR's constants for the inner charge.
    """

    mul: float
    div: float
    rest: float
    threshold: float
    keep: float
    sub: float
    decay: float  # dh[t+1]/dv[t], the leak's share of the membrane; 0 with detach_mem
    reset_grad: float  # weight of the spike's path through the reset: 1, or 0 with detach_reset
    v_reset: float  # the hard reset's level (rest for a soft reset)
    x_mul: float  # dh[t]/dx[t] = x_mul / x_div
    x_div: float
    alpha: float  # the surrogate's
    scale: float  # SCALED's learned k (1 for the other charges)
    p0: float  # the charge's own constants: EXP (delta_T, theta_rh, v_rest), QUAD (a0, v_rest, v_c)
    p1: float
    p2: float


@dataclass(frozen=True)
class NeuronSpec:
    """The static settings of one neuron: plain values (the surrogate by its registered name), so the
    spec is hashable, kernels cache by it, and custom operators take it as their arguments."""

    kind: str  # the charge: one of FUSED_KINDS, or a neuron's own (run unrolled, by its PyTorch charge)
    tau: float  # the leak's time constant (inf: no leak)
    v_threshold: float
    v_reset: float | None  # None: soft reset (subtract the threshold)
    decay_input: bool
    detach_reset: bool
    detach_mem: bool
    surrogate: str  # a registered surrogate's name
    alpha: float
    constants: tuple[float, ...] = ()  # the charge's further constants, for kinds that need them

    @property
    def rest(self) -> float:
        """The membrane's start ``v[-1]``: the reset level, or 0 (a soft reset, or STEP's EIF)."""
        return 0.0 if self.v_reset is None or self.kind in ZERO_REST else self.v_reset

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    @property
    def fused(self) -> bool:
        """True when the fused kernels know this charge (else the neuron runs unrolled)."""
        return self.kind in FUSED_KINDS

    @property
    def learned_leak(self) -> bool:
        """True when the leak factor is ``sigmoid(w)`` of a learned parameter ``w`` (PLIF)."""
        return self.kind in LEARNED_LEAK

    @property
    def integer_spikes(self) -> bool:
        """True when spikes are integers 0..D with a straight-through gradient (ILIF, NILIF)."""
        return FUSED_KINDS.get(self.kind) == INTEGER

    def integer_spike_values(self, h: torch.Tensor) -> torch.Tensor:
        """ILIF's spikes ``round(clamp(h / v_threshold, 0, D) / divisor)``, as STEP computes them."""
        D, divisor = self.constants
        u = torch.clamp(h / self.v_threshold, min=0, max=D)
        return torch.round(u / divisor if divisor != 1.0 else u)

    @property
    def learned_scale(self) -> bool:
        """True when the learned parameter is a scale used as it is (KLIF's ``k``)."""
        return self.kind in LEARNED_SCALE

    @property
    def charge_code(self) -> int:
        """The fused kernels' code for this charge."""
        self.require_fused()
        return FUSED_KINDS[self.kind]

    def require_fused(self):
        """Raise, naming the charge, when no fused kernel knows it."""
        if not self.fused:
            raise ValueError(f"No fused neuron kernel knows the charge {self.kind!r} (known: "
                             f"{', '.join(FUSED_KINDS)}); it runs unrolled, by the neuron's own charge.")

    @property
    def input_decays(self) -> bool:
        """decay_input as the kernels see it: IF has no leak, so its charge is ``v + x`` either way."""
        return self.decay_input and self.kind != "if"

    @property
    def surrogate_fn(self) -> surrogates.SurrogateFn:
        return surrogates.get_surrogate(self.surrogate).grad

    @property
    def surrogate_code(self) -> int:
        """The kernels' code of a built-in surrogate, or :data:`surrogate.GIVEN` for a user's."""
        return surrogates.kernel_code(self.surrogate)

    # PyTorch definitions: the reference every fused kernel matches, value for value.

    def charge(self, v: torch.Tensor, x: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        """h[t] from v[t-1] and x[t] (``k``: the learned leak); written as SpikingJelly writes it, so
        values agree bit for bit."""
        if self.kind == "if":
            return v + x
        if self.kind == "lif":
            if self.decay_input:
                return v + (x - (v - self.rest)) / self.tau
            return v - (v - self.rest) / self.tau + x
        if self.kind == "plif":
            if self.decay_input:
                return v + (x - (v - self.rest)) * k
            return v - (v - self.rest) * k + x
        if self.kind in ("eif", "eif_sj"):  # constants (delta_T, theta_rh, v_rest)
            # SpikingJelly's EIFNode; STEP's has no v_rest and writes x - v, which x + 0 - v equals exactly
            delta_T, theta_rh, v_rest = self.constants
            return v + (x + v_rest - v + delta_T * torch.exp((v - theta_rh) / delta_T)) / self.tau
        if self.kind in ("ilif", "nilif"):  # STEP's mem + (x - mem) / tau (v - 0.0 is v exactly)
            return v + (x - (v - self.rest)) / self.tau
        if self.kind == "klif":  # relu(k * LIF's charge)
            if self.decay_input:
                return torch.relu(k * (v + (x - (v - self.rest)) / self.tau))
            return torch.relu(k * (v - (v - self.rest) / self.tau + x))
        if self.kind == "qif":  # SpikingJelly's QIFNode; constants (a0, v_rest, v_c)
            a0, v_rest, v_c = self.constants
            return v + (x + a0 * (v - v_rest) * (v - v_c)) / self.tau
        raise ValueError(f"The spec has no PyTorch charge for {self.kind!r}: the neuron's own charge() runs it.")

    def reset(self, h: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
        """v[t] from h[t] and the boolean spikes. Equal, value for value, to the textbook
        ``h * (1 - s) + v_reset * s`` and ``h - v_threshold * s`` (up to the sign of a zero),
        in one operation instead of four."""
        if self.v_reset is None:
            return torch.where(fired, h - self.v_threshold, h)
        return h.masked_fill(fired, self.v_reset)

    def charge_grad_k(self, x: torch.Tensor, v_prev: torch.Tensor) -> torch.Tensor:
        """dh[t]/dk of a learned leak, with v[t-1] held fixed."""
        leak = v_prev - self.rest
        return x - leak if self.decay_input else -leak

    def parameter_value(self, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The charge's ``k`` from its learned parameter ``w``: PLIF's ``sigmoid(w)``, KLIF's ``w``."""
        return w.to(dtype) if self.learned_scale else self.leak_factor(w, dtype)

    def parameter_grad(self, grad_k: torch.Tensor, k: torch.Tensor | float, w: torch.Tensor) -> torch.Tensor:
        """dL/dw from dL/dk (a float64 sum)."""
        if self.learned_scale:
            return grad_k.to(w.dtype).reshape(w.shape)
        return self.leak_grad(grad_k, k, w)

    @staticmethod
    def leak_factor(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The learned leak ``k = sigmoid(w)``, rounded in the compute dtype as every kernel rounds it."""
        return w.to(dtype).sigmoid()

    @staticmethod
    def leak_grad(grad_k: torch.Tensor, k: torch.Tensor | float, w: torch.Tensor) -> torch.Tensor:
        """dL/dw from dL/dk (a float64 sum): ``dk/dw = k (1 - k)``, in float64."""
        k64 = torch.as_tensor(k, dtype=torch.float64, device=grad_k.device)
        return (grad_k.to(torch.float64) * k64 * (1.0 - k64)).to(w.dtype).reshape(w.shape)

    # What the fused kernels read.

    def kernel_constants(self, k: float = 0.0) -> KernelConstants:
        """The constants of the kernels' charge/reset expression (see :class:`KernelConstants`),
        for the learned leak ``k`` (PLIF; ignored by the other kinds)."""
        self.require_fused()
        code = self.charge_code
        scale, p = 1.0, (0.0, 0.0, 0.0)
        if self.kind == "if":
            mul, div, factor = 0.0, 1.0, 0.0  # no leak
        elif self.learned_leak:
            mul, div, factor = k, 1.0, k
        else:
            mul, div, factor = 1.0, self.tau, 1.0 / self.tau
        if code in (EXP, QUAD):
            factor, p = 0.0, tuple(self.constants)  # dh[t+1]/dv[t] is evaluated per step: decay is a switch
        if code == INTEGER:
            p = (*self.constants, 0.0)
        if code == SCALED:
            scale = k
        if self.soft_reset:
            keep, sub = 1.0, self.v_threshold
        else:
            keep, sub = 0.0, -self.v_reset
        x_mul, x_div = (mul, div) if self.input_decays else (1.0, 1.0)
        return KernelConstants(
            mul=mul, div=div, rest=self.rest, threshold=self.v_threshold, keep=keep, sub=sub,
            decay=0.0 if self.detach_mem else 1.0 - factor, reset_grad=0.0 if self.detach_reset else 1.0,
            v_reset=self.rest if self.v_reset is None else self.v_reset, x_mul=x_mul, x_div=x_div, alpha=self.alpha,
            scale=scale, p0=p[0], p1=p[1], p2=p[2],
        )

    @property
    def two_state(self) -> bool:
        """True for a neuron with a second state (Izhikevich, CLIF), run by the two-state kernels."""
        return self.kind in TWO_STATE_KINDS

    def two_state_constants(self) -> list[float]:
        """The two-state kernels' 16 constants: tau, threshold, v_reset, soft, v_init, alpha, reset_grad,
        carry (0 with detach_mem), then the kind's own 8 (Izhikevich: a0, v_rest, v_c, w_rest, tau_w, a, b;
        STEP's CLIF: 1 - 1/tau, v_reset / tau, whether that term is added, decay_input), each the very value
        the neuron's PyTorch loop uses."""
        if self.kind == "izhikevich":
            own = list(self.constants)
        elif self.kind == "clif":
            with_reset = self.v_reset is not None and self.v_reset != 0
            own = [1 - 1.0 / self.tau, self.v_reset / self.tau if with_reset else 0.0, float(with_reset),
                   float(self.decay_input)]
        elif self.kind == "clif_sj":
            own = []
        else:
            raise ValueError(f"{self.kind!r} is not a two-state neuron (known: {', '.join(TWO_STATE_KINDS)})")
        own += [0.0] * (8 - len(own))
        return [self.tau, self.v_threshold, self.rest if self.v_reset is None else self.v_reset,
                float(self.soft_reset), self.rest, self.alpha, 0.0 if self.detach_reset else 1.0,
                0.0 if self.detach_mem else 1.0, *own]

    def hdlif_constants(self, k: float = 0.0) -> list[float]:
        """HD-LIF's kernels' constants: v_threshold, tau, its PLIF expert's leak ``k``, k_MoE, v_th_MoE, and
        the carry (0 with detach_mem); ``constants`` holds (k_MoE, v_th_MoE)."""
        k_moe, v_th_moe = self.constants
        return [self.v_threshold, self.tau, k, k_moe, v_th_moe, 0.0 if self.detach_mem else 1.0]

    def kernel_constants_affine(self) -> tuple[KernelConstants, KernelConstants]:
        """``(c0, c1)`` with ``kernel_constants(k) == c0 + c1 * k``, every field: the constants are affine in
        the learned leak, so a kernel whose ``k`` stays on the device (Triton) forms them there."""
        c0, c1 = self.kernel_constants(0.0), self.kernel_constants(1.0)
        return c0, KernelConstants(*(b - a for a, b in zip(c0, c1)))

    # As a custom operator's argument: one string, the spec's repr. One argument, not ten: PyTorch's
    # autograd wrapper of a custom operator spends time per argument on every call.

    def encode(self) -> str:
        """``NeuronSpec(kind='lif', tau=2.0, ...)``: readable in an exported graph, exact (a float's repr
        round-trips), and built by operations torch.compile traces."""
        return "NeuronSpec(" + ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in fields(self)) + ")"

    @staticmethod
    def decode(text: str) -> NeuronSpec:
        """The spec :meth:`encode` wrote (literals only: nothing in the text is run)."""
        return _decode(text)

    def __post_init__(self):
        if not isinstance(self.surrogate, str):
            raise TypeError(f"NeuronSpec.surrogate is a registered surrogate's name, got {self.surrogate!r}")


@functools.lru_cache(maxsize=1024)  # every operator call decodes its spec, and a model has few
def _decode(text: str) -> NeuronSpec:
    call = ast.parse(text, mode="eval").body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "NeuronSpec"
            and not call.args):
        raise ValueError(f"Not an encoded NeuronSpec: {text!r}")
    return NeuronSpec(**{keyword.arg: _literal(keyword.value, text) for keyword in call.keywords})


def _literal(node: ast.expr, text: str):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in ("inf", "nan"):  # how repr() writes those floats
        return float(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand, text)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(element, text) for element in node.elts)
    raise ValueError(f"Not an encoded NeuronSpec: {text!r}")
