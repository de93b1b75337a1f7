"""Model families (one file per paper) and the registry that builds them by name."""

from . import spikformer  # noqa: F401  (registers the Spikformer configurations)
from .base import SpikingClassifier
from .registry import count_parameters, create_model, list_models, model_entry, register_model
from .spikformer import Spikformer

__all__ = ["create_model", "list_models", "register_model", "model_entry", "count_parameters",
           "SpikingClassifier", "Spikformer"]
