"""Stateless multi-step spiking neurons and their surrogate gradients."""

from .kernels import BACKENDS, multistep, select_backend, unrolled
from .neuron import IF, LIF, PLIF, Neuron, NeuronFactory, get_neuron_class, list_neurons, neuron_factory, register_neuron
from .spec import NeuronSpec
from .zoo import CLIF, EIF, GLIF, HDLIF, ILIF, KLIF, NILIF, PSN, QIF, Izhikevich, MaskedPSN, MultiSpike, SlidingPSN
from .surrogate import Surrogate, get_surrogate, list_surrogates, register_surrogate

__all__ = [
    "Neuron", "LIF", "PLIF", "IF", "NeuronSpec", "multistep", "BACKENDS", "select_backend", "unrolled",
    "NeuronFactory", "neuron_factory", "get_neuron_class", "list_neurons", "register_neuron",
    "EIF", "QIF", "Izhikevich", "ILIF", "NILIF", "KLIF", "CLIF", "GLIF", "PSN", "MaskedPSN", "SlidingPSN", "HDLIF",
    "MultiSpike",
    "Surrogate", "get_surrogate", "list_surrogates", "register_surrogate",
]
