"""The neuron zoo against its references (STEP's node.py, SpikingJelly 2.0), and its keywords.

The reference data are made by tests/data/neuron_reference/make_reference.py in the
references' own environments; here each case's neuron is built with the same
settings and parameters and must give, in float64, the same spikes and the same
gradients to the input and to every learnable parameter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeformers.neurons import get_neuron_class, list_neurons, neuron_factory
from spikeformers.neurons.neuron import neuron_keywords

DATA = Path(__file__).parent / "data" / "neuron_reference"
CASES = sorted(p.stem for p in DATA.glob("*.pt"))
# STEP's GLIF keeps its spikes in float32 (SpikeAct_extended's .float()), so in any dtype the gradient
# through each spike is rounded to float32: its gradients agree to float32's precision, its spikes exactly.
FLOAT32_GRADIENTS = ("step_glif", "step_glif_dynamic_gate")
ZOO = ("eif", "ilif", "nilif", "psn", "masked_psn", "sliding_psn", "glif", "klif", "clif", "hdlif", "qif", "izhikevich")


def build(record):
    neuron = get_neuron_class(record["neuron"])(**record["kwargs"]).double()
    neuron.train(record["train"])
    with torch.no_grad():
        named = dict(neuron.named_parameters())
        for name, value in record["params"].items():
            named[name].copy_(value.reshape(named[name].shape))  # SpikingJelly's PSN bias is [T, 1]
    return neuron


def test_every_zoo_neuron_has_reference_data_from_its_source():
    covered = {torch.load(DATA / f"{case}.pt")["neuron"] for case in CASES}
    assert set(ZOO) <= covered
    # where STEP and SpikingJelly differ, both are covered
    for neuron in ("eif", "klif", "clif", "glif", "psn"):
        assert f"step_{neuron}" in CASES and f"sj_{neuron}" in CASES


@pytest.mark.parametrize("case", CASES)
def test_neuron_equals_its_reference_in_float64(case):
    record = torch.load(DATA / f"{case}.pt")
    neuron = build(record)
    x = record["x"].clone().requires_grad_(True)
    spikes = neuron(x)
    # ILIF's integer spikes: STEP adds its straight-through term as hard - u + u, an ulp off the integer
    expected = record["spikes"].round() if record["neuron"] in ("ilif", "nilif") else record["spikes"]
    assert torch.equal(spikes.detach(), expected.to(spikes.dtype)), f"{case}: spikes differ"
    spikes.backward(record["grad_output"])
    tol = dict(rtol=1e-6, atol=1e-7) if case in FLOAT32_GRADIENTS else dict(rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(x.grad, record["grad_x"], **tol, msg=f"{case}: grad x")
    named = dict(neuron.named_parameters())
    for name, grad in record["param_grads"].items():
        got = named[name].grad if named[name].grad is not None else torch.zeros_like(named[name])
        torch.testing.assert_close(got, grad.reshape(got.shape).to(got.dtype), **tol, msg=f"{case}: grad {name}")
    assert record["spikes"].sum() > 0 and record["grad_x"].abs().sum() > 0  # the case exercises firing


def test_zoo_neurons_are_registered_by_name():
    assert set(ZOO) <= set(list_neurons())


def test_a_bad_keyword_names_the_neuron_and_its_keywords():
    with pytest.raises(TypeError) as err:
        neuron_factory("eif", delta_t=2.0)
    message = str(err.value)
    assert "EIF" in message and "'delta_t'" in message and "delta_T" in message and "theta_rh" in message


def test_keywords_follow_the_references_names():
    assert {"delta_T", "theta_rh"} <= set(neuron_keywords(get_neuron_class("eif")))
    assert {"v_c", "a0", "tau_w", "a", "b"} <= set(neuron_keywords(get_neuron_class("izhikevich")))
    assert "scale_reset" in neuron_keywords(get_neuron_class("klif"))
    assert "D" in neuron_keywords(get_neuron_class("ilif"))
    assert {"T", "k"} <= set(neuron_keywords(get_neuron_class("masked_psn")))
    for name in ZOO:  # the common settings a model passes to every neuron
        assert {"v_threshold", "tau", "v_reset", "detach_mem"} <= set(neuron_keywords(get_neuron_class(name))), name


def test_defaults_are_the_references():
    eif = get_neuron_class("eif")()
    assert (eif.v_reset, eif.delta_T, eif.theta_rh, eif.tau, eif.detach_reset) == (-0.1, 1.0, 0.8, 2.0, True)
    assert get_neuron_class("eif")(variant="spikingjelly").detach_reset is False
    assert get_neuron_class("ilif")().D == 2
    qif = get_neuron_class("qif")()
    assert (qif.v_c, qif.a0, qif.v_reset) == (0.8, 1.0, -0.1)
    psn = get_neuron_class("psn")(T=4)
    assert (psn.surrogate, psn.alpha) == ("sigmoid", 2.0) and torch.equal(psn.bias, torch.full((4,), -1.0))
    assert get_neuron_class("psn")(T=4, variant="spikingjelly").surrogate == "atan"


def test_neurons_that_need_T_say_so():
    for name in ("psn", "masked_psn", "glif"):
        with pytest.raises(TypeError, match="needs T"):
            neuron_factory(name)


def test_hdlif_gets_its_width_from_the_factory():
    factory = neuron_factory("hdlif", T=2)
    neuron = factory(channels=6, channel_dim=-1)
    assert neuron.gate.in_channels == 12
    x = torch.randn(2, 3, 5, 6)  # [T, B, N, C] tokens
    assert neuron(x).shape == x.shape


@pytest.mark.parametrize("name", ZOO)
def test_zoo_neuron_keeps_shape_and_dtype_and_gives_gradients(name):
    cls = get_neuron_class(name)
    kwargs = {"T": 3} if "T" in neuron_keywords(cls) else {}
    neuron = neuron_factory(name, **kwargs)(channels=4, channel_dim=2)
    x = (torch.randn(3, 2, 4, 5) + 0.5).requires_grad_(True)
    spikes = neuron(x)
    assert spikes.shape == x.shape and spikes.dtype == x.dtype
    spikes.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    bf16 = neuron(x.detach().to(torch.bfloat16))
    assert bf16.dtype == torch.bfloat16


def test_step_neuron_ablation_recipes_cover_every_step_neuron_on_spikformer_cifar10():
    from spikeformers.engine.config import list_recipes, load_config, matching_recipe

    ablation = [name for name in list_recipes() if name.startswith("neuron_ablation/")]
    configs = {load_config(name).neuron: load_config(name) for name in ablation}
    assert set(configs) == {"eif", "hdlif", "ilif", "nilif", "psn", "glif", "klif", "clif", "plif"}
    for neuron, cfg in configs.items():
        assert (cfg.model, cfg.dataset, cfg.time_steps, cfg.epochs) == ("spikformer_cifar10", "cifar10", 4, 400)
        overrides = cfg.model_overrides()
        if neuron in ("psn", "glif", "hdlif"):
            assert overrides["neuron_kwargs"]["T"] == 4, "the model's T reaches a neuron with per-step weights"
    assert configs["hdlif"].v_threshold == 0.5 and configs["hdlif"].batch_size == 64
    assert configs["psn"].surrogate is None, "STEP's PSN keeps its own surrogate"
    # the model's own recipe stays the one main.py and `train` find for the model and data set
    assert matching_recipe("spikformer_cifar10", "cifar10").parent.name == "spikformer"
