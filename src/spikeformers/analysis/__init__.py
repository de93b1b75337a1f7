"""Firing rates, operation counts, parameters and energy, as the papers report them, and pictures.

``profile_model(model, data)`` returns a :class:`ProfileReport`; its parts are
usable alone: :class:`FiringRateMonitor` (spikes per neuron layer),
:class:`OpCounter` (FLOPs, MACs and ACs per layer), :class:`EnergyModel`
(``E = E_MAC x MACs + E_AC x ACs``), :class:`AttentionRecorder` (Q K^T
per head) and :func:`plot_report` (PNG files). ``spikeformers profile`` is
the command.
"""

from .attention_maps import AttentionRecorder
from .energy import EnergyModel
from .firing import FiringRateMonitor, LayerRate, neuron_layers
from .ops import OpCounter, classify
from .plots import plot_report
from .profile import profile_model, synthetic_input
from .report import LayerOps, ProfileReport

__all__ = ["profile_model", "synthetic_input", "ProfileReport", "LayerOps", "LayerRate", "FiringRateMonitor",
           "OpCounter", "EnergyModel", "AttentionRecorder", "plot_report", "classify", "neuron_layers"]
