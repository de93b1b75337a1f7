"""Stateless multi-step spiking neurons: ``[T, ...]`` in, spikes ``[T, ...]`` out.

SpikingJelly's semantics (DESIGN.md, "Neuron semantics") without its hidden
state: every call starts from a membrane at rest, so there is no
``reset_net`` to forget, and a module can be called twice in one forward.

:class:`Neuron` holds what every recurrent neuron shares (threshold, reset,
surrogate, detach options) and runs the recurrence; a subclass supplies only
its dynamics. One whose charge the fused kernels know names it (``kind``, a
key of ``spec.FUSED_KINDS``) with its constants (:meth:`Neuron.charge_settings`)
and learned parameter (:meth:`Neuron.charge_parameter`); any other writes its
``charge(v, x)`` in PyTorch and runs unrolled over T. A neuron without a
recurrence (PSN) overrides ``forward``.
"""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any

import torch
from torch import nn

from .kernels import multistep
from .spec import FUSED_KINDS, NeuronSpec
from .surrogate import get_surrogate


class Neuron(nn.Module):
    """Base of the recurrent neurons: fire at ``h >= v_threshold``, then reset.

    A hard reset sets the membrane to ``v_reset``; ``v_reset=None`` is a soft
    reset, which subtracts the threshold. ``detach_reset`` stops the gradient
    through the spike used in the reset; ``detach_mem`` (BrainCog's
    ``mem_detach``) stops it through ``v[t-1]``, leaving no gradient across
    time. ``alpha=None`` takes the surrogate's own default (4.0 for
    ``sigmoid``, the value of Spikformer and its successors).

    The recurrence runs on the fastest kernel for the input's device (a fused
    C++ kernel on the CPU, Triton on CUDA; ``neurons/kernels``), or on the one
    named by ``SPIKEFORMERS_NEURON_BACKEND``, or unrolled in PyTorch operators
    (``with neurons.unrolled():``, for exporters); all give the same spikes.
    """

    kind: str | None = None  # the charge, as the spec names it
    source: str = ""  # where its equations come from (``spikeformers neurons`` lists it)
    inert: tuple[str, ...] = ()  # common settings it accepts and has no use for

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The fused kernels compute a known kind's charge from the spec, never from this method:
        # a subclass with a charge of its own must also name a kind of its own.
        if "charge" in vars(cls) and cls.kind in FUSED_KINDS:
            raise TypeError(f"{cls.__name__} defines charge() but keeps the kind {cls.kind!r}, whose charge the "
                            "fused kernels compute from the spec: give it a kind of its own.")

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = True,
        detach_mem: bool = False,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
    ):
        super().__init__()
        if self.kind is None:
            raise TypeError(f"{type(self).__name__} must name its charge: set the class attribute kind")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.detach_reset = bool(detach_reset)
        self.detach_mem = bool(detach_mem)
        self.surrogate = get_surrogate(surrogate).name
        self.alpha = float(get_surrogate(surrogate).default_alpha if alpha is None else alpha)

    def charge_settings(self) -> dict[str, Any]:
        """The spec's charge fields for this neuron: ``tau``, ``decay_input``, ``constants``."""
        return {"tau": math.inf, "decay_input": False}

    def charge_parameter(self) -> torch.Tensor | None:
        """The charge's learned parameter the kernels take (PLIF's ``w``), or None."""
        return None

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``h[t]`` from ``v[t-1]`` and ``x[t]`` in PyTorch: the spec's, for a kind the kernels know."""
        w = self.charge_parameter()
        spec = self.spec
        return spec.charge(v, x, None if w is None else spec.parameter_value(w, v.dtype))

    @property
    def spec(self) -> NeuronSpec:
        return NeuronSpec(
            kind=self.kind,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            detach_mem=self.detach_mem,
            surrogate=self.surrogate,
            alpha=self.alpha,
            **self.charge_settings(),
        )

    def check_input(self, x: torch.Tensor):
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} expects a sequence [T, ...] with T >= 1, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        spec = self.spec
        return multistep(x, self.charge_parameter(), spec, charge=None if spec.fused else self.charge)

    def charge_repr(self) -> list[str]:
        """The charge's settings, first in ``extra_repr``."""
        return []

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset}"
        parts = [*self.charge_repr(), f"v_threshold={self.v_threshold}", reset]
        parts += [f"detach_reset={self.detach_reset}", f"detach_mem={self.detach_mem}",
                  f"surrogate={self.surrogate}(alpha={self.alpha})"]
        return ", ".join(parts)


class LIF(Neuron):
    """Leaky integrate-and-fire neuron.

    Charge ``h = v + (x - (v - v_reset)) / tau`` (``decay_input=True``) or
    ``h = v - (v - v_reset) / tau + x``; with a soft reset (``v_reset=None``)
    the leak decays towards 0. Fire, reset and their options: :class:`Neuron`.
    """

    kind = "lif"
    source = "SpikingJelly LIFNode (decay_input=True); BrainCog's and STEP's LIFNode"

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = True,
        detach_mem: bool = False,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
    ):
        super().__init__(v_threshold, v_reset, detach_reset, detach_mem, surrogate, alpha)
        if not tau > 1.0:
            raise ValueError(f"{type(self).__name__}: tau must be > 1 (a leak factor 1/tau below 1), got {tau}")
        self.tau = float(tau)
        self.decay_input = bool(decay_input)

    def charge_settings(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input}

    def charge_repr(self) -> list[str]:
        return [f"tau={self.tau}", f"decay_input={self.decay_input}"]


class PLIF(LIF):
    """Parametric LIF (Fang et al., ICCV 2021): ``1/tau = sigmoid(w)`` is learned.

    ``w`` starts at ``-log(init_tau - 1)`` so that ``tau = init_tau``; one
    ``w`` per neuron layer, as in the paper. A ``tau`` given instead (as a
    model's ``neuron_kwargs`` give it to every neuron) is the initial value.
    """

    kind = "plif"
    source = "SpikingJelly ParametricLIFNode (Fang et al., ICCV 2021); STEP's PLIFNode"

    def __init__(self, init_tau: float = 2.0, **kwargs):
        kwargs.setdefault("tau", init_tau)
        super().__init__(**kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(self.tau - 1.0)))

    def charge_parameter(self) -> torch.Tensor:
        return self.w

    def charge_repr(self) -> list[str]:
        return [f"tau={1.0 / torch.sigmoid(self.w.detach()).item():.4g} (learned)", f"decay_input={self.decay_input}"]


class IF(LIF):
    """Integrate-and-fire: ``h = v + x``, LIF without leak (``tau`` and ``decay_input`` are ignored)."""

    kind = "if"
    source = "SpikingJelly IFNode; STEP's IFNode"
    inert = ("tau", "decay_input")

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, **kwargs):
        kwargs.pop("tau", None)
        kwargs.pop("decay_input", None)
        super().__init__(tau=math.inf, v_threshold=v_threshold, v_reset=v_reset, decay_input=False, **kwargs)

    def charge_repr(self) -> list[str]:
        return []


_NEURONS: dict[str, type[nn.Module]] = {"lif": LIF, "plif": PLIF, "if": IF}


def register_neuron(name: str):
    """Class decorator: make a neuron selectable by name (``neuron='name'``)."""

    def decorator(cls):
        _NEURONS[name.lower()] = cls
        return cls

    return decorator


def list_neurons() -> list[str]:
    return sorted(_NEURONS)


def get_neuron_class(neuron: str | type[nn.Module]) -> type[nn.Module]:
    """A neuron class from a name (``'lif'``, ``'plif'``, ``'if'``, or registered) or a class."""
    if isinstance(neuron, type) and issubclass(neuron, nn.Module):
        return neuron
    if isinstance(neuron, str) and neuron.lower() in _NEURONS:
        return _NEURONS[neuron.lower()]
    close = difflib.get_close_matches(str(neuron).lower(), _NEURONS, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"Unknown neuron {neuron!r}.{hint} Known: {', '.join(list_neurons())}.")


def neuron_keywords(cls: type[nn.Module]) -> list[str] | None:
    """The keywords ``cls``'s constructor takes, following ``**kwargs`` up to the base classes;
    None when it takes any keyword at all."""
    keywords: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass in (nn.Module, object):
            return None
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        keywords += [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                     and p.name not in keywords]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return keywords
    return keywords


def neuron_defaults(cls: type[nn.Module]) -> dict[str, Any]:
    """Each keyword of ``cls``'s constructor with its default (``inspect.Parameter.empty``: required)."""
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass in (nn.Module, object):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in defaults:
                defaults[p.name] = p.default
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return defaults


def check_keywords(cls: type[nn.Module], given) -> None:
    """Raise a TypeError naming the neuron and its keywords when ``given`` holds one it does not take."""
    known = neuron_keywords(cls)
    if known is None:
        return
    bad = [k for k in given if k not in known]
    if bad:
        close = difflib.get_close_matches(bad[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        shown = [k for k in known if k not in ("channels", "channel_dim")]
        raise TypeError(f"neuron {cls.__name__} takes no keyword {', '.join(map(repr, bad))}{hint}; its keywords: "
                        f"{', '.join(shown)}")


class NeuronFactory:
    """Builds a part's neurons: ``factory()``, ``factory(v_threshold=0.5)``, ``factory(channels=C, channel_dim=2)``.

    Parts take a factory rather than a neuron so that each builds its own
    neurons; keyword arguments given at the call override those given here,
    which is how a part sets what is its own (the attention threshold).

    Every part states the width of what its neurons see: ``channels`` (C) and
    ``channel_dim``, the axis of C in the neuron's input (2 in ``[T, B, C, H,
    W]`` maps, -1 in ``[T, B, N, C]`` tokens). A neuron class whose constructor
    takes ``channels`` (one with per-channel state or gates) receives both; for
    every other neuron they are dropped, so no part needs to know which neurons
    want them.
    """

    def __init__(self, neuron: str | type[nn.Module] = "lif", **neuron_kwargs: Any):
        self.neuron_class = get_neuron_class(neuron)
        self.neuron_kwargs = neuron_kwargs
        self.takes_width = "channels" in inspect.signature(self.neuron_class).parameters
        check_keywords(self.neuron_class, neuron_kwargs)
        try:  # fail now, naming the bad setting, rather than deep inside a model
            self(channels=1, channel_dim=-1)
        except TypeError as err:
            raise TypeError(f"Bad neuron_kwargs for {self.neuron_class.__name__}: {err}") from None

    def __call__(self, *, channels: int | None = None, channel_dim: int | None = None, **overrides: Any) -> nn.Module:
        kwargs = {**self.neuron_kwargs, **overrides}
        if self.takes_width:
            if channels is None:
                raise TypeError(f"{self.neuron_class.__name__} needs the channel count of the part that builds it: "
                                "call the factory with channels=C, channel_dim=AXIS")
            kwargs.update(channels=channels, channel_dim=channel_dim)
        return self.neuron_class(**kwargs)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.neuron_kwargs.items())
        return f"NeuronFactory({self.neuron_class.__name__}{', ' + settings if settings else ''})"


def neuron_factory(neuron: str | type[nn.Module] = "lif", **neuron_kwargs: Any) -> NeuronFactory:
    """A :class:`NeuronFactory` for ``neuron`` (a name or a class) with ``neuron_kwargs``."""
    return NeuronFactory(neuron, **neuron_kwargs)
