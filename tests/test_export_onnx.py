"""ONNX export (``spikeformers.export.to_onnx``, ``spikeformers export --format onnx``).

A briefly trained spikformer_tiny, exported, gives in ONNX Runtime the
PyTorch model's top-1 on every DVS-digits test sample and its logits within
1e-4; one model of every family exports and matches at a batch size other
than the one it was traced with; an exported neuron fires the PyTorch
neuron's spikes bit for bit; batch-norm folding keeps the outputs.
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from spikeformers.cli import main
from spikeformers.data import create_dataset
from spikeformers.engine.checkpoint import load_checkpoint
from spikeformers.engine.evaluate import model_from_checkpoint
from spikeformers.export import Preprocessing, fold_batchnorm, read_metadata, to_onnx
from spikeformers.layers.fold import ConvUnit, LinearBN
from spikeformers.models import create_model
from spikeformers.neurons import IF, LIF, PLIF

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from test_compile_export import FAMILIES, model_input, small_model  # noqa: E402
from trained_tiny import briefly_trained, save_run_checkpoint  # noqa: E402


def run_onnx(path, frames: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: frames.numpy()})[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder holding a briefly trained spikformer_tiny as best.pt."""
    out = tmp_path_factory.mktemp("export") / "run"
    save_run_checkpoint(briefly_trained(), out / "best.pt")
    return out


def test_onnx_runtime_gives_pytorchs_top1_on_every_dvs_digits_test_sample(trained_run, tmp_path):
    state = load_checkpoint(trained_run / "best.pt")
    model = model_from_checkpoint(state, "best.pt").eval()
    path = to_onnx(model, tmp_path / "tiny.onnx", preprocessing=Preprocessing.from_dict(state["preprocessing"], "x"))
    test_set = create_dataset("dvs_digits", train=False, time_steps=model.time_steps)
    frames = torch.stack([test_set[i][0] for i in range(len(test_set))], dim=1)  # [T, 450, 2, 24, 24]
    with torch.no_grad():
        expected = model(frames).numpy()
    got = run_onnx(path, frames)
    assert got.shape == expected.shape == (len(test_set), 10)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert len(np.unique(expected.argmax(1))) > 1, "an untrained model's constant answer would prove little"


def test_the_onnx_metadata_names_the_layout_and_the_framing(trained_run, tmp_path):
    state = load_checkpoint(trained_run / "best.pt")
    model = model_from_checkpoint(state, "best.pt")
    preprocessing = Preprocessing.from_dict(state["preprocessing"], "x")
    metadata = read_metadata(to_onnx(model, tmp_path / "m.onnx", preprocessing=preprocessing,
                                     model_name="spikformer_tiny"))
    assert metadata["input_layout"] == "[T, B, C, H, W]"
    assert (metadata["time_steps"], metadata["channels"], metadata["height"], metadata["width"]) == (4, 2, 24, 24)
    assert metadata["preprocessing"] == preprocessing
    assert preprocessing.split_by == "number" and preprocessing.sensor_size == (24, 24)
    assert metadata["class_names"] == [str(d) for d in range(10)]
    assert metadata["model"] == "spikformer_tiny" and metadata["batchnorm_folded"] is True


# QKFormer's authors run a neuron across the batch (ssa_batch_leak), so its output depends on the batch size;
# here without that quirk, and with it at a fixed batch below.
BATCH_FREE = {"qkformer_dvs": dict(ssa_batch_leak=False)}


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_exports_and_onnx_runtime_matches_pytorch_at_another_batch_size(name, tmp_path):
    model = small_model(name, **BATCH_FREE.get(name, {})).eval()
    randomise_batchnorm(model)
    path = to_onnx(model, tmp_path / f"{name}.onnx")
    x = model_input(model, batch=3)  # traced with a batch of 2: the batch is dynamic
    with torch.no_grad():
        expected = model(x)
        expected = (expected.mean(0) if expected.dim() == 3 else expected).numpy()
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_a_model_whose_neuron_runs_across_the_batch_exports_only_a_fixed_batch(tmp_path):
    model = small_model("qkformer_dvs").eval()  # ssa_batch_leak=True, as the authors' code
    with pytest.raises(ValueError, match=r"stages\.1\.0\.attn\.proj_neuron \(BatchLeakNeuron\).*batch=N"):
        to_onnx(model, tmp_path / "qk.onnx")
    assert not (tmp_path / "qk.onnx").exists()
    path = to_onnx(model, tmp_path / "qk.onnx", batch=3)
    x = model_input(model, batch=3)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(path, x), model(x).numpy(), rtol=0, atol=1e-4)
    assert read_metadata(path)["batch"] == 3


class Neurons(nn.Module):
    """A neuron alone, as a model: the exported graph is its unrolled recurrence."""

    def __init__(self, neuron):
        super().__init__()
        self.neuron, self.time_steps, self.in_channels, self.img_size = neuron, 8, 3, (5, 7)

    def forward(self, x):
        return self.neuron(x)


@pytest.mark.parametrize("make", [lambda: LIF(tau=1.7, v_threshold=0.8),
                                  lambda: PLIF(init_tau=1.7, v_reset=None, detach_reset=False),
                                  lambda: IF(v_threshold=0.8)], ids=["lif", "plif-soft", "if"])
def test_an_exported_neuron_fires_the_same_spikes_bit_for_bit(make, tmp_path):
    """h >= v_threshold on the same float32 h, computed in the same order: not one spike differs."""
    module = Neurons(make())
    path = to_onnx(module, tmp_path / "neuron.onnx")
    x = torch.randn(8, 64, 3, 5, 7, generator=torch.Generator().manual_seed(0)) * 1.2 + 0.9
    with torch.no_grad():
        expected = module(x)
    got = run_onnx(path, x)
    assert 0.05 < expected.mean() < 0.95
    assert np.array_equal(got, expected.numpy())


def randomise_batchnorm(model):
    """Statistics and affine parameters far from the defaults, so that folding them is not trivial."""
    gen = torch.Generator().manual_seed(7)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)


@pytest.mark.parametrize("make,x", [
    (lambda: ConvUnit(3, 8, order="conv bn"), torch.randn(2, 4, 3, 9, 9)),
    (lambda: ConvUnit(3, 8, order="conv bn", kernel_size=1, bias=True), torch.randn(2, 4, 3, 9, 9)),
    (lambda: LinearBN(6, 5), torch.randn(2, 4, 7, 6)),
], ids=["conv", "conv-1x1-bias", "linear"])
def test_folding_batchnorm_keeps_the_units_output(make, x):
    unit = make().eval()
    randomise_batchnorm(unit)
    expected = unit(x)
    assert fold_batchnorm(unit) == [".bn"]
    assert isinstance(unit.bn, nn.Identity)
    torch.testing.assert_close(unit(x), expected, rtol=1e-5, atol=1e-5)


def test_folding_leaves_a_batchnorm_that_does_not_follow_its_conv():
    """QKFormer's "conv bn pool neuron" folds (the pool follows the BN); a pre-activation unit too; none is
    skipped silently: every ConvUnit BN of a model is folded or still a BatchNorm."""
    model = small_model("qkformer_dvs").eval()
    folded = fold_batchnorm(model)
    assert folded and all(path.endswith(".bn") for path in folded)
    units = [m for m in model.modules() if isinstance(m, (ConvUnit, LinearBN))]
    assert units and all(isinstance(m.bn, nn.Identity) for m in units)


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(small_model("spikformer_dvs").train())


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = small_model("spikformer_dvs").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    to_onnx(model, tmp_path / "m.onnx")
    assert model.training and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_export_command_writes_onnx_from_a_run_folder(trained_run, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(trained_run), "--format", "onnx", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    metadata = read_metadata(out)
    state = load_checkpoint(trained_run / "best.pt")
    assert metadata["preprocessing"].to_dict() == state["preprocessing"]
    model = model_from_checkpoint(state, "best.pt").eval()
    x = model_input(model, batch=5)
    with torch.no_grad():
        np.testing.assert_allclose(run_onnx(out, x), model(x).numpy(), rtol=0, atol=1e-4)


def test_the_export_command_names_a_file_that_is_no_checkpoint(tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    assert main(["export", "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_a_model_without_its_input_description_is_refused(tmp_path):
    with pytest.raises(ValueError, match="time_steps"):
        to_onnx(nn.Linear(3, 2), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
