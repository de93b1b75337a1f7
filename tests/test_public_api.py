"""The package's front door: the zoo and the data sets from ``spikeformers`` itself, as timm's
``timm.create_model``, and an ``import spikeformers`` that loads nothing heavy."""

import subprocess
import sys

import pytest

import spikeformers


def test_the_zoo_and_the_data_sets_are_reached_from_the_top_level_package():
    from spikeformers import data, models

    for name in ("create_model", "list_models", "register_model"):
        assert getattr(spikeformers, name) is getattr(models, name)
    for name in ("create_dataset", "list_datasets", "time_major_loader"):
        assert getattr(spikeformers, name) is getattr(data, name)
    assert "spikformer_tiny" in spikeformers.list_models("spikformer*") and "dvs_digits" in spikeformers.list_datasets()
    assert set(spikeformers.__all__) <= set(dir(spikeformers))
    model = spikeformers.create_model("spikformer_tiny", time_steps=2)
    assert model.time_steps == 2


def test_the_predictor_is_reached_from_the_top_level_package_without_loading_onnx():
    probe = ("import sys, spikeformers; from spikeformers.export import predict; "
             "print(spikeformers.Predictor is predict.Predictor, [m for m in ('onnx', 'onnxruntime', 'nir') "
             "if m in sys.modules])")
    # a guard against a hung interpreter, not a speed check
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "[]"]


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="has no attribute 'create_modle'"):
        spikeformers.create_modle


def test_importing_the_package_loads_neither_torch_nor_the_zoo():
    probe = ("import sys, spikeformers; heavy = [m for m in ('torch', 'spikeformers.models', 'spikeformers.data') "
             "if m in sys.modules]; print(heavy); from spikeformers import create_model; print('torch' in sys.modules)")
    # a guard against a hung interpreter, not a speed check: importing torch on a loaded machine takes seconds
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "True"]
