"""The seed project's command runs unchanged (``python main.py --dataset dvsc10 ... --device 0``) on a
small CIFAR10-DVS folder of real AEDAT 2.0 files, and every neuron flag reaches the model."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spikeformers.cli.seed import build_parser, translate
from spikeformers.engine.checkpoint import load_checkpoint
from spikeformers.models import create_model
from spikeformers.neurons import PLIF
from test_datasets_cifar10_dvs import make_tree

ROOT = Path(__file__).resolve().parents[1]


def test_the_seed_command_trains_on_a_cifar10_dvs_folder(tmp_path):
    data = make_tree(tmp_path / "CIFAR10DVS", per_class=10)  # split sj: 9 train, 1 test per class
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--dataset", "dvsc10", "--epochs", "1", "--batch-size", "8",
         "--seed", "42", "--event-size", "32", "--model", "spikformer", "--device", "0", "--step", "2",
         "--cooldown-epochs", "0", "--data-root", data, "--output", tmp_path / "logs",
         "--node-type", "PLIFNode", "--threshold", "0.75", "--tau", "3.0", "--act-fun", "AtanGrad"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs").iterdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["model"], config["dataset"], config["time_steps"]) == ("spikformer_dvs_t10", "cifar10_dvs", 2)
    assert config["dataset_options"]["resize"] == 32 and config["model_options"] == {"img_size": 32}
    assert config["mixup"] == 0.5 and config["augment_wide"], "the matching recipe fills in the rest"
    state = load_checkpoint(run / "last.pt")
    model = create_model(state["model_name"], **state["model_overrides"])
    model.load_state_dict(state["model"])
    neurons = [m for m in model.modules() if isinstance(m, PLIF)]
    assert neurons, "--node-type PLIFNode reached the model"
    assert all(n.surrogate == "atan" for n in neurons)
    assert {n.v_threshold for n in neurons} == {0.75, 0.5}, "every threshold but the attention neuron's"
    assert (run / "summary.json").is_file()
    train_files = (run / "cifar10_dvs_train_files.txt").read_text().splitlines()
    assert train_files[0].startswith("# cifar10_dvs split=sj train: 90 files")
    assert (run / "cifar10_dvs_test_files.txt").read_text().count(".aedat") == 10


def test_seed_names_map_to_the_papers_configurations():
    def values(*argv):
        return translate(build_parser().parse_args(list(argv)), cuda_available=False)

    assert values("--dataset", "dvsc10", "--model", "sdt")["model"] == "spike_driven_dvs_t10"
    assert values("--dataset", "dvsc10", "--model", "spikformer_TIM")["model"] == "tim_dvs"
    assert values("--dataset", "cifar100", "--model", "qkformer")["model"] == "qkformer_cifar100"
    assert values("--dataset", "dvsc10", "--device", "0")["device"] == "cpu"
    assert translate(build_parser().parse_args(["--device", "1"]), cuda_available=True)["device"] == "cuda:1"
    assert "time_steps" not in values("--dataset", "dvsc10"), "without --step, the model's own T"
    assert "dataset_options" not in values("--dataset", "dvsc10", "--event-size", "128"), "the sensor's size"


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist-dvs"], "Unknown seed --dataset"),
    (["--node-type", "LIAFNode"], "Unknown --node-type 'LIAFNode'"),
    (["--act-fun", "Relu"], "Unknown --act-fun 'Relu'"),
    (["--model", "vit", "--dataset", "dvsg"], "--model vit has no configuration"),
])
def test_seed_values_without_a_meaning_here_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        translate(build_parser().parse_args(argv), cuda_available=False)


def test_a_seed_flag_spikeformers_does_not_map_is_an_error_not_ignored():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--gp", "avg"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "--gp" in result.stderr and "not supported" in result.stderr


@pytest.mark.parametrize("node_type, neuron", [
    ("EIFNode", "EIF"), ("HDLIFNode", "HDLIF"), ("ILIFNode", "ILIF"), ("NILIFNode", "NILIF"), ("PSNTorch", "PSN"),
    ("GLIFTorch", "GLIF"), ("KLIFNode", "KLIF"), ("ComplementaryLIFNeuron", "CLIF"),
])
def test_step_node_types_build_the_zoo_neurons(node_type, neuron):
    """STEP's --node-type names reach every neuron of the model, with the model's T for those that need it."""
    from spikeformers.engine.config import TrainConfig
    from spikeformers.neurons import get_neuron_class

    values = translate(build_parser().parse_args(["--dataset", "cifar10", "--model", "spikformer", "--step", "2",
                                                  "--node-type", node_type]), cuda_available=False)
    values["model_options"] = {"embed_dim": 32, "depth": 1, "num_heads": 2}  # small: only the neurons matter
    overrides = TrainConfig(**values).model_overrides()
    model = create_model(values["model"], **overrides)
    built = {type(m).__name__ for m in model.modules()}
    assert get_neuron_class(values["neuron"]).__name__ == neuron
    assert neuron in built and "LIF" not in built, "every neuron of the model is the one named"
