"""Training, evaluation, configuration and checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, load_config
from .evaluate import EvalResult, evaluate
from .train import train

__all__ = ["TrainConfig", "load_config", "train", "evaluate", "EvalResult", "save_checkpoint", "load_checkpoint"]
