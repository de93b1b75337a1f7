"""The data set registry: every data set by name, explicit options with the
data sets' own defaults and a description each, a wrong option named with the
valid ones, and a data root that is not there said in one line."""

import inspect

import pytest

from spikeformers.data.datasets.asl_dvs import ASLDVS
from spikeformers.data.datasets.cifar10_dvs import CIFAR10DVS
from spikeformers.data.datasets.digits import DVSDigits
from spikeformers.data.datasets.dvs_gesture import DVSGesture
from spikeformers.data.datasets.dvs_lip import DVSLip
from spikeformers.data.datasets.hardvs import HARDVS
from spikeformers.data.datasets.hmdb51_dvs import HMDB51DVS
from spikeformers.data.datasets.ncaltech101 import NCaltech101
from spikeformers.data.datasets.ncars import NCARS
from spikeformers.data.datasets.nmnist import NMNIST
from spikeformers.data.datasets.ucf101_dvs import UCF101DVS
from spikeformers.data.missing import DatasetNotFoundError
from spikeformers.data.registry import _DATASETS, create_dataset, dataset_option_help, dataset_options, list_datasets
from spikeformers.data.static.cifar import CIFAR10, CIFAR100
from spikeformers.data.static.imagenet import ImageNet

CLASSES = {"cifar10_dvs": CIFAR10DVS, "dvs_gesture": DVSGesture, "nmnist": NMNIST, "ncaltech101": NCaltech101,
           "cifar10": CIFAR10, "cifar100": CIFAR100, "imagenet": ImageNet, "dvs_digits": DVSDigits,
           "ncars": NCARS, "asl_dvs": ASLDVS, "hardvs": HARDVS, "ucf101_dvs": UCF101DVS, "hmdb51_dvs": HMDB51DVS,
           "dvs_lip": DVSLip}


def test_every_data_set_of_the_issue_is_registered():
    assert set(CLASSES) <= set(list_datasets())


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_factory_names_its_options_with_the_data_sets_defaults(name):
    params = inspect.signature(_DATASETS[name]).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values()), f"{name} forwards **options"
    constructor = inspect.signature(CLASSES[name].__init__).parameters
    for option, default in dataset_options(name).items():
        assert option in constructor, f"{name}: option {option!r} is not a parameter of {CLASSES[name].__name__}"
        assert constructor[option].default == default, f"{name}: {option} defaults differ"
    left_out = set(constructor) - set(dataset_options(name)) - {"self", "root", "train", "time_steps", "cache_dir"}
    assert not left_out, f"{name}: {CLASSES[name].__name__} options not offered by the factory: {left_out}"


def test_a_wrong_option_is_named_with_the_valid_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        create_dataset("dvs_gesture", train=True, time_steps=4, root=str(tmp_path), resize_mod="avg")
    message = str(info.value)
    assert "'resize_mod'" in message and "Did you mean 'resize_mode'" in message and "split_by" in message
    with pytest.raises(ValueError, match="has no option 'split'.*Its options: seed, sensor_size"):
        create_dataset("dvs_digits", train=True, time_steps=2, split="sj")


def test_dvs_digits_options_reach_the_data_set():
    data = create_dataset("dvs_digits", train=False, time_steps=2, sensor_size=(10, 10), seed=3)
    assert data.sensor_size == (10, 10) and data.seed == 3 and data[0][0].shape == (2, 2, 10, 10)


ON_DISK = sorted(name for name in CLASSES if name != "dvs_digits")


@pytest.mark.parametrize("name", ON_DISK)
def test_a_data_root_that_does_not_exist_is_said_in_one_line_then_where_to_get_it(name, tmp_path):
    if name == "imagenet":
        pytest.importorskip("PIL", reason="ImageNet needs Pillow before it looks at the root")
    root = tmp_path / "typo"
    with pytest.raises(DatasetNotFoundError) as info:
        create_dataset(name, train=True, time_steps=2, root=str(root))
    first, *rest = str(info.value).splitlines()
    assert f"the data root {str(root)!r} does not exist; it should hold " in first
    assert len(rest) == 1 and "http" in rest[0] and "published" in rest[0], rest
    assert "is missing" not in first and "Found" not in first  # not every folder it lacks


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_option_of_a_built_in_data_set_has_a_description(name):
    descriptions = dataset_option_help(name)
    assert set(descriptions) == set(dataset_options(name))
    assert all(len(text) > 10 for text in descriptions.values()), descriptions


def test_a_factory_function_and_a_declared_class_both_register(tmp_path):
    from dataclasses import dataclass

    from torch.utils.data import Dataset

    from spikeformers.data.registry import option, register_dataset

    @register_dataset("test_factory")
    def factory(train, time_steps, root=None, *, scale: float = 1.0):
        return ("factory", train, time_steps, root, scale)

    @register_dataset("test_declared")
    @dataclass
    class Declared(Dataset):
        root: str | None
        train: bool = True
        time_steps: int = 4
        scale: float = option(2.0, "how much to scale")

    try:
        assert create_dataset("test_factory", train=False, time_steps=3, root="r", scale=0.5) == \
            ("factory", False, 3, "r", 0.5)
        assert dataset_options("test_factory") == {"scale": 1.0} and dataset_option_help("test_factory") == \
            {"scale": ""}
        built = create_dataset("test_declared", train=False, time_steps=3, root="r")
        assert (built.root, built.train, built.time_steps, built.scale) == ("r", False, 3, 2.0)
        assert dataset_option_help("test_declared") == {"scale": "how much to scale"}
        with pytest.raises(ValueError, match="has no option 'scal'. Did you mean 'scale'"):
            create_dataset("test_declared", train=True, time_steps=1, scal=3)
    finally:
        del _DATASETS["test_factory"], _DATASETS["test_declared"]
