"""The data set registry: every data set by name, explicit options with the
data sets' own defaults, and a wrong option named with the valid ones."""

import inspect

import pytest

from spikeformers.data.cifar import CIFAR10, CIFAR100
from spikeformers.data.cifar10_dvs import CIFAR10DVS
from spikeformers.data.digits import DVSDigits
from spikeformers.data.dvs_gesture import DVSGesture
from spikeformers.data.imagenet import ImageNet
from spikeformers.data.ncaltech101 import NCaltech101
from spikeformers.data.nmnist import NMNIST
from spikeformers.data.registry import _DATASETS, create_dataset, dataset_options, list_datasets

CLASSES = {"cifar10_dvs": CIFAR10DVS, "dvs_gesture": DVSGesture, "nmnist": NMNIST, "ncaltech101": NCaltech101,
           "cifar10": CIFAR10, "cifar100": CIFAR100, "imagenet": ImageNet, "dvs_digits": DVSDigits}


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
