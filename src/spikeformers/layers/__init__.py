"""Reusable parts of spiking transformers; each takes and returns ``[T, B, ...]``.

Every part that spikes takes a neuron factory (``spikeformers.neurons.neuron_factory``)
and builds its own neurons from it.
"""

from .attention import BatchLeakNeuron, SpikingSelfAttention
from .block import Block
from .folded import ConvBN, LinearBN
from .head import ClassifierHead
from .meta_attention import PaddedBatchNorm, RepConv, RepConvBN, RepConvSelfAttention
from .meta_conv import MetaConvBlock, SeparableConv, SpikingDownsample
from .mlp import SpikingMLP
from .patch_embed import ConvBNSpike, SpikingPatchSplitting
from .pooling import MaxPool2d
from .scs_stem import SCSStage, SpikingConvolutionalStem
from .sgl_attention import SGLSelfAttention
from .sgl_block import SGLBlock
from .sgl_head import SpatioTemporalHead
from .sgl_local import DepthwiseConvBNSpike, LocalBlock
from .sgl_mlp import SpikingConvMLP
from .spikingformer_attention import PreActivationSelfAttention
from .spikingformer_embed import PreActivationTokenizer, SpikePoolConvBN
from .qk_attention import TokenQKAttention
from .qk_embed import ConvBNPoolSpike, QKPatchEmbed
from .sdt_attention import SpikeDrivenSelfAttention
from .sdt_embed import MembranePatchEmbed
from .sdt_head import SpikingTokenMeanHead
from .sdt_mlp import MembraneMLP
from .tim import TemporalInteraction, TimSelfAttention

__all__ = [
    "ConvBN", "LinearBN", "ConvBNSpike", "SpikingPatchSplitting", "MaxPool2d",
    "SpikingSelfAttention", "SpikingMLP", "Block", "ClassifierHead",
    # QKFormer
    "ConvBNPoolSpike", "QKPatchEmbed", "TokenQKAttention", "BatchLeakNeuron",
    # Spike-driven Transformer
    "MembranePatchEmbed", "SpikeDrivenSelfAttention", "MembraneMLP", "SpikingTokenMeanHead",
    # TIM
    "TemporalInteraction", "TimSelfAttention",
    # Meta-SpikeFormer (Spike-driven Transformer V2)
    "SpikingDownsample", "SeparableConv", "MetaConvBlock", "PaddedBatchNorm", "RepConv", "RepConvBN",
    "RepConvSelfAttention",
    # Spikformer V2
    "SpikingConvolutionalStem", "SCSStage",
    # Spikingformer
    "SpikePoolConvBN", "PreActivationTokenizer", "PreActivationSelfAttention",
    # SGLFormer
    "DepthwiseConvBNSpike", "LocalBlock", "SGLSelfAttention", "SpikingConvMLP", "SGLBlock", "SpatioTemporalHead",
]
