"""Stateless multi-step spiking neurons and their surrogate gradients."""

from .multistep import MultiStepNeuron, NeuronSpec
from .neuron import IF, LIF, PLIF, NeuronFactory, get_neuron_class, list_neurons, neuron_factory, register_neuron
from .surrogate import Surrogate, get_surrogate, list_surrogates, register_surrogate

__all__ = [
    "LIF", "PLIF", "IF", "MultiStepNeuron", "NeuronSpec",
    "NeuronFactory", "neuron_factory", "get_neuron_class", "list_neurons", "register_neuron",
    "Surrogate", "get_surrogate", "list_surrogates", "register_surrogate",
]
