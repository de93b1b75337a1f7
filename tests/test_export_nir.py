"""NIR export (``spikeformers.export.to_nir``, ``spikeformers export --format nir``).

A small convolutional LIF network (not from the zoo: every zoo model has
attention) becomes a NIR graph that survives a round trip through the
``nir`` package's files, node by node and parameter by parameter, and that,
simulated step by step with NIR's own reading of its primitives, fires the
PyTorch model's spikes. Every zoo model is refused with one line naming the
first operation NIR cannot express.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeformers.cli import main
from spikeformers.engine.checkpoint import save_checkpoint
from spikeformers.export.nir import NIRExportError, to_nir, write_nir
from spikeformers.layers.fold import ConvUnit, over_time
from spikeformers.neurons import IF, LIF, neuron_factory
from test_compile_export import FAMILIES, small_model

nir = pytest.importorskip("nir")


class ConvLIF(nn.Module):
    """Conv-BN-LIF, average pooling, a residual Conv-BN-PLIF unit (a sum), flatten, linear, IF."""

    def __init__(self):
        super().__init__()
        self.time_steps, self.in_channels, self.img_size, self.num_classes = 4, 2, (8, 8), 5
        self.stem = ConvUnit(2, 6, neuron_factory("lif", tau=2.0, v_threshold=0.6), "conv bn neuron")
        self.pool = nn.AvgPool2d(2)
        self.block = ConvUnit(6, 6, neuron_factory("plif", init_tau=1.7), "conv bn neuron")
        self.head = nn.Linear(6 * 4 * 4, 5)
        self.out = IF(v_threshold=0.3)

    def forward(self, x):
        x = over_time(self.pool, self.stem(x))
        x = x + self.block(x)
        return self.out(self.head(x.flatten(2)))


def conv_lif(dtype=torch.float32):
    torch.manual_seed(0)
    model = ConvLIF()
    gen = torch.Generator().manual_seed(1)
    for bn in (model.stem.bn, model.block.bn):  # statistics that make folding matter
        bn.running_mean.copy_(torch.randn(6, generator=gen) * 0.2)
        bn.running_var.copy_(torch.rand(6, generator=gen) + 0.5)
        bn.weight.data.copy_(torch.rand(6, generator=gen) + 0.8)
    return model.eval().to(dtype)


def test_the_graph_names_each_layer_and_the_sum_as_two_edges_into_one_node():
    graph = to_nir(conv_lif())
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "stem.conv": "Conv2d", "stem.neuron": "LIF", "pool": "AvgPool2d",
                     "block.conv": "Conv2d", "block.neuron": "LIF", "flatten": "Flatten", "head": "Affine",
                     "out": "IF", "output": "Output"}
    assert sorted(graph.edges) == sorted([
        ("input", "stem.conv"), ("stem.conv", "stem.neuron"), ("stem.neuron", "pool"), ("pool", "block.conv"),
        ("block.conv", "block.neuron"), ("pool", "flatten"), ("block.neuron", "flatten"), ("flatten", "head"),
        ("head", "out"), ("out", "output")])
    model = conv_lif()
    plif = model.block.neuron
    assert np.allclose(graph.nodes["block.neuron"].tau, 1 / torch.sigmoid(plif.w).item())  # the learned leak
    assert graph.nodes["stem.neuron"].v_threshold.shape == (6, 8, 8)
    assert np.all(graph.nodes["stem.neuron"].v_threshold == np.float32(0.6))
    assert list(graph.nodes["input"].input_type["input"]) == [2, 8, 8]


def test_a_written_graph_reads_back_with_the_same_nodes_edges_and_parameters(tmp_path):
    graph = to_nir(conv_lif())
    path = write_nir(conv_lif(), tmp_path / "model.nir")
    back = nir.read(path)
    assert set(back.nodes) == set(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    for name, node in graph.nodes.items():
        other = back.nodes[name]
        assert type(other) is type(node)
        for key, value in node.to_dict().items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(np.asarray(other.to_dict()[key]), value), f"{name}.{key}"
    assert not list(tmp_path.glob("*partial*"))


def simulate(graph, frames: torch.Tensor) -> torch.Tensor:
    """Run a NIR graph one time step at a time, each node's input the sum of its incoming edges, with the
    forward-Euler reading (dt = 1) of NIR's LIF and IF and a spike at v >= v_threshold."""
    order, done = [], set()
    while len(order) < len(graph.nodes):
        for name in graph.nodes:
            if name not in done and all(src in done for src, dst in graph.edges if dst == name):
                order.append(name)
                done.add(name)
    state, outputs = {}, []
    t64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    for x in frames:
        values = {}
        for name in order:
            node = graph.nodes[name]
            sources = [values[src] for src, dst in graph.edges if dst == name]
            i = x if name == "input" else sum(sources)
            kind = type(node).__name__
            if kind in ("Input", "Output"):
                y = i
            elif kind == "Conv2d":
                y = F.conv2d(i, t64(node.weight), t64(node.bias), tuple(node.stride), tuple(node.padding),
                             tuple(node.dilation), node.groups)
            elif kind == "Affine":
                y = i @ t64(node.weight).T + t64(node.bias)
            elif kind == "AvgPool2d":
                y = F.avg_pool2d(i, tuple(node.kernel_size), tuple(node.stride), tuple(node.padding))
            elif kind == "Flatten":
                y = i.flatten(1)
            elif kind in ("LIF", "IF"):
                v = state.get(name, t64(node.v_reset).expand_as(i))
                if kind == "LIF":
                    v = v + (t64(node.v_leak) - v + t64(node.r) * i) / t64(node.tau)
                else:
                    v = v + t64(node.r) * i
                y = (v >= t64(node.v_threshold)).double()
                state[name] = torch.where(y > 0, t64(node.v_reset).expand_as(v), v)
            else:
                raise AssertionError(f"no simulation of {kind}")
            values[name] = y
        outputs.append(values["output"])
    return torch.stack(outputs)


def test_the_graph_simulated_step_by_step_fires_the_models_spikes():
    """In float64, where the two orders of the same arithmetic cannot round a membrane across the threshold."""
    model = conv_lif(torch.float64)
    x = torch.randint(0, 3, (4, 6, 2, 8, 8), generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad():
        expected = model(x)
    got = simulate(to_nir(model), x)
    assert 0 < expected.mean() < 1, "the output neurons must fire sometimes, not always"
    assert torch.equal(got, expected)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_zoo_model_is_refused_naming_its_first_unsupported_operation(name):
    model = small_model(name)
    with pytest.raises(NIRExportError) as caught:
        to_nir(model)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot express ")
    path, kind = message[len("cannot express "):].split(" in NIR")[0].rsplit(" (", 1)
    module = model.get_submodule(path) if path != "<model>" else model
    assert type(module).__name__ == kind.rstrip(")")


def test_a_soft_reset_is_refused():
    class Soft(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_steps, self.in_channels, self.img_size = 2, 1, (3, 3)
            self.neuron = LIF(v_reset=None)

        def forward(self, x):
            return self.neuron(x)

    with pytest.raises(NIRExportError, match=r"cannot express neuron \(LIF\) in NIR: a soft reset"):
        to_nir(Soft())


def test_the_export_command_refuses_a_zoo_model_for_nir_in_one_line(tmp_path, capsys):
    overrides = dict(img_size=32, time_steps=2, embed_dim=32, depth=1, num_heads=2)
    model = small_model("spikformer_dvs")
    save_checkpoint(tmp_path / "m.pt", {"model_name": "spikformer_dvs", "model_overrides": overrides,
                                        "model": model.state_dict(), "config": {"dataset": "cifar10_dvs"}})
    out = tmp_path / "m.nir"
    assert main(["export", "--checkpoint", str(tmp_path / "m.pt"), "--format", "nir", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("spikeformers export: error: cannot express patch_embed.stages.0.pool (MaxPool2d) in NIR: "
                   "max pooling (NIR pools by sum or average only)")
    assert not out.exists()
