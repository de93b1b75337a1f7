"""Every zoo model family trains with every neuron: ``neuron=NAME`` reaches every neuron a model builds.

One tiny configuration per family (test_zoo_training.py's sizes) x each registered neuron, two
batches of the built-in DVSDigits frames (T=2): a finite loss, moved parameters, and only the
named neuron in the model. The default run pairs each neuron with two families in turn (every
family and every neuron appear); the full cross product is marked slow.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from spikeformers.data import DVSDigits
from spikeformers.models import create_model, list_models
from spikeformers.models.registry import model_entry
from spikeformers.neurons import get_neuron_class, list_neurons
from spikeformers.neurons.neuron import neuron_keywords
from test_zoo_training import SENSOR_32, TINY

TIME_STEPS, BATCH, BATCHES = 2, 8, 2


def one_model_per_family() -> list[str]:
    chosen = {}
    for name in list_models():
        family = model_entry(name).model_class
        if family not in chosen and not any(name.startswith(p.rstrip("*")) for p in SENSOR_32):
            chosen[family] = name
    return sorted(chosen.values())


FAMILIES = one_model_per_family()
NEURONS = list_neurons()
# TIM's temporal interaction calls its neurons on the steps so far (models/tim.py): a neuron that mixes
# all T steps at once (PSN, masked PSN, HD-LIF's gate) cannot run there, and says so.
ALL_STEPS_AT_ONCE = ("psn", "masked_psn", "hdlif")
STEP_BY_STEP = tuple(f for f in FAMILIES if f.startswith("tim"))
FULL = [(f, n) for f, n in itertools.product(FAMILIES, NEURONS) if not (f in STEP_BY_STEP and n in ALL_STEPS_AT_ONCE)]
PAIRED = [pair for i, neuron in enumerate(NEURONS) for shift in (0, 3)
          if (pair := (FAMILIES[(i + shift) % len(FAMILIES)], neuron)) in FULL]


@pytest.fixture(scope="module")
def digits():
    data = DVSDigits(train=True, time_steps=TIME_STEPS)
    return Subset(data, range(BATCH * BATCHES))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds synchronisation
    yield
    torch.set_num_threads(threads)


def train(model_name, neuron, digits):
    torch.manual_seed(0)
    neuron_kwargs = {"T": TIME_STEPS} if "T" in (neuron_keywords(get_neuron_class(neuron)) or ()) else {}
    options = dict(TINY[model_entry(model_name).model_class])
    if neuron_kwargs and model_name.startswith("qkformer"):
        # the authors' quirk runs one neuron over T*B steps: no place for a neuron with per-step weights
        options["ssa_batch_leak"] = False
    model = create_model(model_name, img_size=24, in_channels=2, num_classes=10, time_steps=TIME_STEPS,
                         neuron=neuron, neuron_kwargs=neuron_kwargs, **options)
    cls = get_neuron_class(neuron)
    spiking = [m for m in model.modules() if isinstance(m, cls)]
    assert spiking, f"no {cls.__name__} in {model_name}"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for frames, labels in DataLoader(digits, batch_size=BATCH):
        loss = F.cross_entropy(model(frames.transpose(0, 1)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert len(losses) == BATCHES and all(torch.isfinite(torch.tensor(losses))), losses
    moved = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert len(moved) >= 0.5 * len(before), f"{model_name} with {neuron}: only {len(moved)} of {len(before)} moved"


@pytest.mark.parametrize("neuron", ALL_STEPS_AT_ONCE)
def test_a_neuron_mixing_all_steps_says_why_it_cannot_run_in_tim(neuron, digits):
    assert STEP_BY_STEP
    with pytest.raises(ValueError, match="mixes all T steps at once.*TIM"):
        train(STEP_BY_STEP[0], neuron, digits)


def test_every_family_and_every_neuron_are_paired():
    assert {f for f, _ in PAIRED} == set(FAMILIES) and {n for _, n in PAIRED} == set(NEURONS)


@pytest.mark.parametrize("model_name, neuron", PAIRED)
def test_model_trains_with_neuron(model_name, neuron, digits):
    train(model_name, neuron, digits)


@pytest.mark.slow
@pytest.mark.parametrize("model_name, neuron", [p for p in FULL if p not in PAIRED])
def test_model_trains_with_neuron_full_product(model_name, neuron, digits):
    train(model_name, neuron, digits)
