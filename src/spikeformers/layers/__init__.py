"""Reusable parts of spiking transformers; each takes and returns ``[T, B, ...]``.

Every part that spikes takes a neuron factory (``spikeformers.neurons.neuron_factory``)
and builds its own neurons from it.
"""

from .attention import SpikingSelfAttention
from .block import Block
from .folded import ConvBN, LinearBN
from .head import ClassifierHead
from .mlp import SpikingMLP
from .patch_embed import ConvBNSpike, SpikingPatchSplitting

__all__ = [
    "ConvBN", "LinearBN", "ConvBNSpike", "SpikingPatchSplitting",
    "SpikingSelfAttention", "SpikingMLP", "Block", "ClassifierHead",
]
