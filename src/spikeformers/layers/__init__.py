"""Reusable parts of spiking transformers, by role (as ``timm.layers``); each takes and returns ``[T, B, ...]``.

Every part that spikes takes a neuron factory (``spikeformers.neurons.neuron_factory``)
and builds its own neurons from it, stating the width each one sees. A part only
one family uses lives in that family's model file.
"""

from .attention import BatchLeakNeuron, SpikingSelfAttention, TokenQKAttention
from .block import Block
from .embed import ShortcutPatchEmbed, SpikingPatchSplitting, halving_widths, pooled_size
from .fold import ConvBN, ConvUnit, LinearBN, over_time
from .head import ClassifierHead
from .mlp import SpikingMLP
from .pooling import MaxPool2d
from .spike_driven import MembraneMLP, SpikeDrivenSelfAttention, SpikingTokenMeanHead

__all__ = [
    "over_time", "ConvUnit", "ConvBN", "LinearBN", "MaxPool2d",
    "SpikingPatchSplitting", "ShortcutPatchEmbed", "pooled_size", "halving_widths",
    "SpikingSelfAttention", "BatchLeakNeuron", "TokenQKAttention",
    "SpikeDrivenSelfAttention", "MembraneMLP", "SpikingTokenMeanHead",
    "SpikingMLP", "ClassifierHead", "Block",
]
