"""Model families (one file per paper) and the registry that builds them by name."""

from . import cml, e_spikeformer, meta_spikeformer, qkformer, sglformer, spike_driven, spiking_wavelet, spikformer, spikformer_semm, spikformer_v2, spikingformer, spikingresformer, tim  # noqa: F401  (register their configurations)
from .base import SpikingClassifier
from .cml import CMLSpikformer, CMLSpikingformer
from .e_spikeformer import ESpikeFormer
from .meta_spikeformer import MetaSpikeFormer
from .qkformer import QKFormer
from .registry import Config, count_parameters, create_model, list_models, model_entry, register_configs, register_model
from .sglformer import SGLFormer
from .spike_driven import SpikeDrivenTransformer
from .spiking_wavelet import SpikingWaveletTransformer
from .spikformer import Spikformer
from .spikformer_semm import SpikformerSEMM
from .spikformer_v2 import SpikformerV2
from .spikingformer import Spikingformer
from .spikingresformer import SpikingResformer
from .tim import TIMSpikformer

__all__ = ["create_model", "list_models", "register_model", "register_configs", "Config", "model_entry",
           "count_parameters", "SpikingClassifier", "Spikformer", "SpikeDrivenTransformer", "QKFormer",
           "TIMSpikformer", "SpikformerV2", "Spikingformer", "SGLFormer", "MetaSpikeFormer",
           "SpikingResformer", "SpikformerSEMM", "SpikingWaveletTransformer", "CMLSpikformer", "CMLSpikingformer",
           "ESpikeFormer"]
