"""Operation counts per layer: dense FLOPs, and how many of them are accumulates (ACs) or multiply-accumulates (MACs).

Every product a model computes is seen as it runs, from the tensors
themselves, so no model needs code of its own here: a ``TorchFunctionMode``
intercepts convolutions, linears, matrix products (``@``, ``matmul``, ``mm``,
``bmm``) and elementwise products of two tensors (masks, Hadamard products),
and forward hooks on every module say which layer computed it. Work inside a
neuron (its membrane update) is not counted, nor are batch norm (folded into
the weights at inference), pooling, sums and additions, as in the papers.

FLOPs are the multiply-accumulates of the dense operation (``C_in k_h k_w``
per output of a convolution, ``K`` per output of an ``[M, K] @ [K, N]``
product, one per output of an elementwise product). What each one costs
depends on what feeds it, read from the operand's values:

``input``
    the encoding layer: computed before any neuron of this forward has run
    (it reads the data themselves). Counted as MACs, always.
``spike``
    an operand of zeros and ones. Counted as ACs: ``FLOPs x rate``, the
    rate being its fraction of ones (the papers' ``SOPs = fr x T x FLOPs``).
``count``
    non-negative integers that are not all 0/1: sums of spikes, as after
    Spikformer's and QKFormer's spike residuals or inside ``Q K^T V``; and
    multi-spikes divided by their ``D`` (E-SpikeFormer's ``MultiSpike`` with a
    ``norm`` other than 1, values ``k / D``), read as the integer counts ``k``
    (the division folds into the next weights; the authors expand each ``k``
    into ``k`` binary spikes). Counted as ACs, one per spike (``FLOPs x mean
    count``); with ``nonbinary_as_mac=True`` as MACs instead.
``real``
    anything else (a membrane, a mean over time feeding the classifier):
    MACs.

A product of two activations (``Q K^T``, ``q * kv``) is counted as ACs at
the rate of its sparser spike operand when either is spikes (an
event-driven machine iterates over those events), else as MACs.
Activations are the tensors computed from the model's input (tracked as
the forward runs); weights, buffers and what is computed from them alone
(a batch norm's folded scale) never set the class, and a product of those
alone is not counted. Nor is a product with a scalar or a one-element
tensor (Spikformer's attention scale, foldable into the next threshold).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..memory import recomputing
from .firing import neuron_classes, sequence_shape

# The functions a model computes its products with, as the mode receives them.
_PRODUCTS: dict = {
    torch.conv1d: "conv1d", torch.conv2d: "conv2d", torch.conv3d: "conv3d",
    torch.nn.functional.linear: "linear",
    torch.matmul: "matmul", torch.Tensor.matmul: "matmul", torch.Tensor.__matmul__: "matmul",
    torch.mm: "matmul", torch.Tensor.mm: "matmul", torch.bmm: "matmul", torch.Tensor.bmm: "matmul",
    torch.mul: "mul", torch.Tensor.mul: "mul", torch.Tensor.__mul__: "mul", torch.Tensor.__rmul__: "mul",
}
_WEIGHTED = {"conv1d", "conv2d", "conv3d", "linear"}
# Products this counter does not size; seeing one is reported rather than silently dropped.
_UNCOUNTED = {torch.einsum: "einsum", torch.baddbmm: "baddbmm", torch.addmm: "addmm",
              torch.nn.functional.conv_transpose2d: "conv_transpose2d"}

INPUT_CLASSES = ("input", "spike", "count", "real")


def classify(t: torch.Tensor, count_norms: tuple[float, ...] = ()) -> tuple[str, float]:
    """``('spike', fraction of ones)``, ``('count', mean count)`` or ``('real', 1.0)`` for an activation.

    ``count_norms``: the ``D`` of the model's normalised multi-spikes; a tensor of values ``k / D``
    (non-negative integers ``k``, exactly as ``round(...) / D`` gives them) is the count ``k``.
    """
    n = max(t.numel(), 1)
    if t.dtype == torch.bool or bool(((t == 0) | (t == 1)).all()):
        return "spike", float(t.count_nonzero()) / n
    if bool((t >= 0).all()) and (not t.is_floating_point() or bool((t == t.round()).all())):
        return "count", float(t.sum(dtype=torch.float64)) / n
    if t.is_floating_point() and bool((t >= 0).all()):
        for norm in count_norms:
            counts = torch.round(t * norm)
            if torch.equal(counts / norm, t):
                return "count", float(counts.sum(dtype=torch.float64)) / n
    return "real", 1.0


def multi_spike_norms(model: nn.Module) -> tuple[float, ...]:
    """The ``D`` of every multi-spike neuron in ``model`` that divides its integer spikes (``norm`` not 1)."""
    from ..neurons.zoo import MultiSpike

    return tuple(sorted({m.norm for m in model.modules() if isinstance(m, MultiSpike) and m.norm != 1.0}))


@dataclass
class OpTally:
    """One product of one layer, summed over every call and batch."""

    layer: str  # module name, plus ':matmul#0' for products computed in a module's own forward
    op: str  # conv2d, linear, matmul, mul, ...
    module_type: str
    params: int  # weights of the layer computing it (convolutions and linears)
    shapes: str  # operand shapes of the first call
    flops: float = 0.0  # dense multiply-accumulates, all calls
    macs: float = 0.0
    acs: float = 0.0
    classes: set[str] = field(default_factory=set)  # the input classes seen ('spike', 'count', ...)


class OpCounter(TorchFunctionMode):
    """Counts the products of ``model``'s forwards run inside ``with OpCounter(model):``.

    Hooks and the mode exist only inside the ``with``; results in
    :attr:`tallies` (one :class:`OpTally` per layer and product) and
    :attr:`samples` (samples seen), from which :meth:`per_sample_step`
    gives the figures per sample and time step.
    """

    def __init__(self, model: nn.Module, nonbinary_as_mac: bool = False):
        super().__init__()
        self.model = model
        self.nonbinary_as_mac = nonbinary_as_mac
        self.names = {module: name for name, module in model.named_modules()}
        self.tallies: dict[tuple[str, str, int], OpTally] = {}
        self.uncounted: set[str] = set()
        self.samples = 0
        self.sample_steps = 0  # sum over forwards of B*T
        self._neurons = neuron_classes()
        self._count_norms = multi_spike_norms(model)
        self._stack: list[list] = []  # [module, {op: calls so far in this module call}]
        self._in_neuron = 0
        self._neuron_seen = False
        self._handles: list = []
        self._activations: dict[int, weakref.ref] = {}  # id -> tensor computed from the input

    # -- activations: what the input flows into ------------------------------
    def _mark(self, value) -> None:
        if isinstance(value, torch.Tensor):
            key = id(value)
            if key not in self._activations:
                self._activations[key] = weakref.ref(value, lambda _, key=key: self._activations.pop(key, None))
        elif isinstance(value, (tuple, list)):
            for item in value:
                self._mark(item)

    def is_activation(self, value) -> bool:
        if isinstance(value, torch.Tensor):
            ref = self._activations.get(id(value))
            return ref is not None and ref() is value
        if isinstance(value, (tuple, list)):
            return any(self.is_activation(item) for item in value)
        return False

    # -- module stack ------------------------------------------------------
    def __enter__(self):
        self._handles.append(self.model.register_forward_pre_hook(self._on_model_input))
        for module in self.names:
            self._handles.append(module.register_forward_pre_hook(self._push))
            self._handles.append(module.register_forward_hook(self._pop))
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._activations.clear()
        return super().__exit__(*exc)

    def _on_model_input(self, module, args) -> None:
        T, B = sequence_shape(self.model, args[0])
        self.samples += B
        self.sample_steps += T * B
        self._stack.clear()
        self._in_neuron = 0
        self._neuron_seen = False
        self._mark(args[0])

    def _push(self, module, args) -> None:
        if recomputing():
            return
        self._stack.append([module, {}])
        if isinstance(module, self._neurons):
            self._in_neuron += 1
            self._neuron_seen = True

    def _pop(self, module, args, output) -> None:
        if recomputing():
            return
        # a module's output is an activation when its input is, whatever its kernel (a fused neuron)
        if self.is_activation(args):
            self._mark(output)
        if self._stack and self._stack[-1][0] is module:
            self._stack.pop()
            if isinstance(module, self._neurons):
                self._in_neuron -= 1

    # -- the products --------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if recomputing():  # activation checkpointing re-running a forward in backward: counted once
            return out
        if self.is_activation(args) or self.is_activation(list(kwargs.values())):
            self._mark(out)
        if self._stack and not self._in_neuron:
            op = _PRODUCTS.get(func)
            if op is not None:
                self._record(op, args, kwargs, out)
            elif func in _UNCOUNTED:
                self.uncounted.add(f"{_UNCOUNTED[func]} in {self._layer_name()}")
        return out

    def _layer_name(self) -> str:
        return self.names.get(self._stack[-1][0], "") or "(model)"

    def _record(self, op: str, args, kwargs, out: torch.Tensor) -> None:
        if op in _WEIGHTED:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            if not self.is_activation(x):
                return
            activations = [x]
            flops = out.numel() * (weight[0].numel() if op != "linear" else weight.shape[-1])
        else:
            a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
            tensors = [t for t in (a, b) if isinstance(t, torch.Tensor)]
            if op == "mul" and (len(tensors) < 2 or any(t.numel() <= 1 for t in tensors)):
                return  # a scale, not a product of two maps
            activations = [t for t in tensors if self.is_activation(t)]
            if not activations:
                return  # weights only: computed once, not per sample
            flops = out.numel() * (a.shape[-1] if op == "matmul" else 1)
        classes = [("input", 1.0) if not self._neuron_seen else classify(t.detach(), self._count_norms)
                   for t in activations]
        macs, acs = self._cost(flops, classes)

        module, calls = self._stack[-1]
        index = calls.get(op, 0)
        calls[op] = index + 1
        name = self._layer_name()
        key = (name, op, index if op not in _WEIGHTED else 0)
        tally = self.tallies.get(key)
        if tally is None:
            own = module if op in _WEIGHTED else None
            layer = name if op in _WEIGHTED else f"{name}:{op}#{index}"
            shapes = " x ".join(str(list(t.shape)) for t in ([args[0], args[1]] if len(args) > 1 else [args[0]])
                                if isinstance(t, torch.Tensor))
            params = sum(p.numel() for p in own.parameters(recurse=False)) if own is not None else 0
            tally = self.tallies[key] = OpTally(layer, op, type(module).__name__, params, shapes)
        tally.flops += flops
        tally.macs += macs
        tally.acs += acs
        tally.classes.update(c for c, _ in classes)

    def _cost(self, flops: float, classes: list[tuple[str, float]]) -> tuple[float, float]:
        """``(MACs, ACs)`` of ``flops`` multiply-accumulates fed by operands of these classes."""
        kinds = [c for c, _ in classes]
        spike_rates = [r for c, r in classes if c == "spike"]
        if spike_rates:
            return 0.0, flops * min(spike_rates)
        if len(classes) == 1 and kinds[0] == "count" and not self.nonbinary_as_mac:
            return 0.0, flops * classes[0][1]
        return float(flops), 0.0

    # -- results -----------------------------------------------------------
    def per_sample_step(self) -> list[OpTally]:
        """The tallies scaled to one sample and one time step (divided by the B*T seen)."""
        if not self.sample_steps:
            raise RuntimeError("OpCounter saw no forward of the model")
        n = self.sample_steps
        return [OpTally(t.layer, t.op, t.module_type, t.params, t.shapes, t.flops / n, t.macs / n, t.acs / n,
                        set(t.classes)) for t in self.tallies.values()]
