"""NIR export, for the models NIR can express: convolutions, linear layers, LIF / IF neurons, average
pooling, flattening and sums.

NIR (the Neuromorphic Intermediate Representation, the ``nir`` package) is
a graph of per-time-step primitives that neuromorphic hardware and SNN
simulators read. :func:`to_nir` traces the model with ``torch.export``, batch
norm folded first (``fold``), and maps its graph: each call of a
``Conv2d`` / ``Linear`` / ``AvgPool2d`` module or neuron becomes a NIR node
(a neuron from its own settings), the reshapes that fold time into the batch
vanish, flattening a sample becomes ``Flatten``, and a sum becomes edges
into one node (NIR adds a node's inputs). Anything else (attention's matrix
products, max pooling, a soft reset, a BN that did not fold) is refused with
one line naming the first such operation's module path and kind: every zoo
model has attention, so none of them is expressible.

The neurons follow NIR's forward-Euler reading with dt = 1: our LIF
``h = v + (x - (v - v_reset)) / tau`` is NIR's LIF with ``tau``, ``r = 1``
(``r = tau`` without input decay), ``v_leak = v_reset``; IF is ``r = 1``.
Shapes are per sample, without time and batch: ``Input`` is ``[C, H, W]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .fold import fold_batchnorm
from .onnx import inference_copy

# ops that only re-view a tensor: they vanish when the per-sample shape is kept, else are Flatten
_LAYOUT = {"aten.flatten.using_ints", "aten.reshape.default", "aten.view.default", "aten.unflatten.int",
           "aten.clone.default", "aten.contiguous.default", "aten.alias.default", "aten.detach.default",
           "aten._unsafe_view.default"}
_SUM = {"aten.add.Tensor"}


class NIRExportError(ValueError):
    """The model holds an operation NIR cannot express; the message names the first one."""


def _leaf(module: nn.Module) -> bool:
    """Whether the nodes a call of ``module`` makes are mapped as one NIR node (or refused as one); the
    library's max-pool is an ``nn.MaxPool2d``. Other modules' operations are mapped one by one."""
    from ..neurons.neuron import Neuron

    return isinstance(module, (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.MaxPool2d, Neuron,
                               nn.modules.batchnorm._BatchNorm))


def to_nir(model: nn.Module, fold: bool = True):
    """The ``nir.NIRGraph`` of ``model`` (in eval mode, float32, batch norm folded), or a
    :class:`NIRExportError` naming the first operation NIR cannot express."""
    import nir

    for attribute in ("time_steps", "in_channels", "img_size"):
        if not hasattr(model, attribute):
            raise ValueError(f"to_nir needs a model with {attribute!r} (the input it was built for); "
                             f"{type(model).__name__} has none")
    model = inference_copy(model, fold=False)
    if fold:
        fold_batchnorm(model)
    T = int(model.time_steps)
    B = 7 if T != 7 else 11  # a batch size no time step count equals, so the leading dims are told apart
    sample = (int(model.in_channels), *(int(s) for s in model.img_size))
    with torch.no_grad():
        program = torch.export.export(model, (torch.zeros(T, B, *sample),))
    return _Translator(nir, model, program, T, B).graph()


def write_nir(model: nn.Module, path: str | Path, fold: bool = True) -> Path:
    """Write ``to_nir(model)`` to ``path`` (the ``nir`` package's HDF5 file, written beside and renamed)."""
    import nir

    from ..atomic import atomic_write

    graph = to_nir(model, fold)
    path = Path(path)
    temporary = path.with_name(path.name + ".nir-partial")
    try:
        nir.write(temporary, graph)
        data = temporary.read_bytes()
    finally:
        temporary.unlink(missing_ok=True)
    atomic_write(path, lambda f: f.write(data))
    return path


class _Translator:
    """One pass over an exported program's nodes, in forward order, building NIR nodes and edges."""

    def __init__(self, nir, model: nn.Module, program, T: int, B: int):
        self.nir, self.model, self.program, self.T, self.B = nir, model, program, T, B
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        # fx node -> (the NIR nodes whose sum it is, its per-sample shape)
        self.values: dict[Any, tuple[tuple[str, ...], tuple[int, ...]]] = {}

    def graph(self):
        nir = self.nir
        graph = self.program.graph
        users = set(self.program.graph_signature.user_inputs)
        nodes = list(graph.nodes)
        i = 0
        while i < len(nodes):
            node = nodes[i]
            if node.op == "placeholder":
                if node.name in users:
                    shape = self.sample_shape(node, node)
                    self.add("input", nir.Input(input_type={"input": np.array(shape)}), ())
                    self.values[node] = (("input",), shape)
                i += 1
            elif node.op == "output":
                (result,) = node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],)
                sources, shape = self.value(result, node)
                self.add("output", nir.Output(output_type={"output": np.array(shape)}), sources)
                i += 1
            else:
                path, module = self.owner(node)
                if module is not None and _leaf(module):
                    group = [node]
                    while i + len(group) < len(nodes) and self.owner(nodes[i + len(group)])[0] == path \
                            and nodes[i + len(group)].op == "call_function":
                        group.append(nodes[i + len(group)])
                    self.module_call(path, module, group)
                    i += len(group)
                else:
                    self.operation(node, path, module)
                    i += 1
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges)

    # ------------------------------------------------------------------ helpers

    def owner(self, node) -> tuple[str, nn.Module | None]:
        """The innermost module whose call made ``node`` (its path and the module), or ('', model)."""
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return "", self.model
        path = list(stack.values())[-1][0]
        try:
            return path, self.model.get_submodule(path)
        except AttributeError:
            return path, None

    def refuse(self, path: str, module: nn.Module | None, what: str):
        kind = type(module).__name__ if module is not None else "?"
        raise NIRExportError(f"cannot express {path or '<model>'} ({kind}) in NIR: {what}")

    def sample_shape(self, node, where) -> tuple[int, ...]:
        """``node``'s shape without the leading time and batch dims ([T, B, ...] or folded [T*B, ...])."""
        value = node.meta.get("val")
        shape = tuple(int(s) for s in getattr(value, "shape", ()))
        if shape[:2] == (self.T, self.B):
            return shape[2:]
        if shape[:1] == (self.T * self.B,):
            return shape[1:]
        path, module = self.owner(where)
        self.refuse(path, module, f"{where.target} makes a tensor of shape {list(shape)}, which mixes the time "
                                  "steps or the samples (NIR runs one sample one step at a time)")

    def value(self, arg, where) -> tuple[tuple[str, ...], tuple[int, ...]]:
        if arg not in self.values:
            path, module = self.owner(where)
            self.refuse(path, module, f"{where.target} reads {arg}, which no expressible operation made")
        return self.values[arg]

    def add(self, name: str, node, sources) -> str:
        self.nodes[name] = node
        self.edges.extend((source, name) for source in sources)
        return name

    def fresh(self, path: str) -> str:
        name, k = path or "model", 1
        while name in self.nodes:
            k += 1
            name = f"{path}#{k}"
        return name

    # ------------------------------------------------------------------ operations outside leaf modules

    def operation(self, node, path: str, module):
        target = str(node.target)
        if node.op != "call_function":
            self.refuse(path, module, f"{node.op} {target}")
        if target in _LAYOUT:
            sources, shape = self.value(node.args[0], node)
            out = self.sample_shape(node, node)
            if out == shape:
                self.values[node] = (sources, out)
            elif len(out) == 1 and int(np.prod(out)) == int(np.prod(shape)):
                name = self.add(self.fresh(f"{path}.flatten" if path else "flatten"),
                                self.nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
                                sources)
                self.values[node] = ((name,), out)
            else:
                self.refuse(path, module, f"{target} reshapes a sample from {list(shape)} to {list(out)}")
        elif target in _SUM and len(node.args) == 2 and all(isinstance(a, torch.fx.Node) for a in node.args) \
                and node.kwargs.get("alpha", 1) == 1:
            (a, shape_a), (b, shape_b) = self.value(node.args[0], node), self.value(node.args[1], node)
            if shape_a != shape_b:
                self.refuse(path, module, f"a sum of shapes {list(shape_a)} and {list(shape_b)} (broadcast)")
            self.values[node] = (a + b, shape_a)  # NIR sums the edges into a node
        elif target == "aten.avg_pool2d.default":  # F.avg_pool2d in a forward
            sources, shape = self.value(node.args[0], node)
            given = list(node.args[1:])
            kernel, stride, padding, ceil_mode, include_pad, divisor = given + [[], 0, False, True, None][len(given) - 1:]
            if ceil_mode or divisor is not None or (_pair(padding) != (0, 0) and not include_pad):
                self.refuse(path, module, "average pooling with ceil_mode, a divisor or padding left out of the count")
            name = self.add(self.fresh(f"{path}.avg_pool" if path else "avg_pool"),
                            self.nir.AvgPool2d(kernel_size=np.array(_pair(kernel)),
                                               stride=np.array(_pair(stride or kernel)),
                                               padding=np.array(_pair(padding))), sources)
            self.values[node] = ((name,), self.sample_shape(node, node))
        else:
            self.refuse(path, module, _describe(target))

    # ------------------------------------------------------------------ leaf modules

    def module_call(self, path: str, module: nn.Module, group: list):
        from ..neurons.neuron import Neuron

        inside = set(group)
        inputs = [a for n in group for a in n.all_input_nodes if a not in inside and a in self.values]
        outputs = [n for n in group if any(u not in inside for u in n.users)]
        if len(outputs) != 1 or not inputs:
            self.refuse(path, module, f"a call with {len(inputs)} tensor inputs and {len(outputs)} outputs")
        sources, shape = self.value(inputs[0], group[0])
        out = self.sample_shape(outputs[0], outputs[0])
        nir = self.nir
        if isinstance(module, Neuron):
            made = self.neuron(path, module, shape)
        elif isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros":
                self.refuse(path, module, f"padding_mode={module.padding_mode!r}")
            made = nir.Conv2d(input_shape=tuple(shape[1:]), weight=_array(module.weight), stride=module.stride,
                              padding=module.padding, dilation=module.dilation, groups=module.groups,
                              bias=_array(module.bias) if module.bias is not None
                              else np.zeros(module.out_channels, dtype=np.float32))
        elif isinstance(module, nn.Linear):
            made = (nir.Affine(weight=_array(module.weight), bias=_array(module.bias)) if module.bias is not None
                    else nir.Linear(weight=_array(module.weight)))
        elif isinstance(module, nn.AvgPool2d) and not isinstance(module, nn.MaxPool2d):
            if module.ceil_mode or (module.padding not in (0, (0, 0)) and module.count_include_pad is False):
                self.refuse(path, module, "average pooling with ceil_mode or padding left out of the count")
            made = nir.AvgPool2d(kernel_size=np.array(_pair(module.kernel_size)),
                                 stride=np.array(_pair(module.stride or module.kernel_size)),
                                 padding=np.array(_pair(module.padding)))
        elif isinstance(module, nn.MaxPool2d):
            self.refuse(path, module, "max pooling (NIR pools by sum or average only)")
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            self.refuse(path, module, "a batch norm left unfolded (only the Conv-BN units and LinearBN fold "
                                      "into their layer)")
        else:
            self.refuse(path, module, "no NIR primitive")
        name = self.add(self.fresh(path), made, sources)
        self.values[outputs[0]] = ((name,), out)

    def neuron(self, path: str, module, shape: tuple[int, ...]):
        spec = module.spec
        if spec.kind not in ("lif", "plif", "if"):
            self.refuse(path, module, f"a {spec.kind!r} neuron (NIR has LIF and IF)")
        if spec.v_reset is None:
            self.refuse(path, module, "a soft reset (subtract the threshold); NIR's LIF and IF reset to v_reset")
        full = lambda value: np.full(shape, value, dtype=np.float32)  # noqa: E731
        if spec.kind == "if":
            return self.nir.IF(r=full(1.0), v_threshold=full(spec.v_threshold), v_reset=full(spec.v_reset))
        w = module.charge_parameter()
        tau = float(1.0 / torch.sigmoid(w.detach().double())) if w is not None else float(spec.tau)
        return self.nir.LIF(tau=full(tau), r=full(1.0 if spec.decay_input else tau), v_leak=full(spec.v_reset),
                            v_threshold=full(spec.v_threshold), v_reset=full(spec.v_reset))


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy().copy()


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _describe(target: str) -> str:
    """A reader's name for an operation NIR lacks."""
    names = {"aten.matmul.default": "a matrix product (attention)", "aten.bmm.default": "a matrix product "
             "(attention)", "aten.mul.Tensor": "an elementwise product", "aten.transpose.int": "a transpose",
             "aten.permute.default": "a permutation of the dimensions", "aten.mean.dim": "a mean",
             "aten.softmax.int": "a softmax", "aten.cat.default": "a concatenation"}
    return names.get(target, f"the operation {target}")
