"""Stateless multi-step spiking neurons and their surrogate gradients."""

from .kernels import BACKENDS, multistep, select_backend
from .kernels.reference import ReferenceNeuron as MultiStepNeuron  # the reference kernel, under its old name
from .multistep import NeuronSpec
from .neuron import IF, LIF, PLIF, NeuronFactory, get_neuron_class, list_neurons, neuron_factory, register_neuron
from .surrogate import Surrogate, get_surrogate, list_surrogates, register_surrogate

__all__ = [
    "LIF", "PLIF", "IF", "MultiStepNeuron", "NeuronSpec", "multistep", "BACKENDS", "select_backend",
    "NeuronFactory", "neuron_factory", "get_neuron_class", "list_neurons", "register_neuron",
    "Surrogate", "get_surrogate", "list_surrogates", "register_surrogate",
]
