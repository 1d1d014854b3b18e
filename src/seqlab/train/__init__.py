"""Training: the one Trainer, checkpoints, metrics."""

from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.run_dir import resolve_checkpoint
from seqlab.train.trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer", "resolve_checkpoint", "save_checkpoint"]
