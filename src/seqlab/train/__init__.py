"""Training: the one Trainer, checkpoints, metrics."""

from seqlab.train.checkpoint import resolve_checkpoint, save_checkpoint
from seqlab.train.trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer", "resolve_checkpoint", "save_checkpoint"]
