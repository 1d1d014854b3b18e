"""The memory tasks' network: the shared RecurrentEncoder (one layer) and a linear head on its last steps."""

from __future__ import annotations

import torch
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder


class MemoryNet(nn.Module):
    """RecurrentEncoder (one layer) + a linear head reading the last step (adding, output (n,)) or
    the last `answer_steps` steps (copy, logits (n, answer_steps, symbols))."""

    def __init__(self, task: str, cell: str, hidden: int, input_dim: int, symbols: int = 8, memorize: int = 10):
        super().__init__()
        self.task, self.answer_steps = task, memorize
        self.cfg = {"task": task, "cell": cell, "hidden": hidden, "input_dim": input_dim, "symbols": symbols,
                    "memorize": memorize}
        self.encoder = RecurrentEncoder(EncoderConfig(input_dim=input_dim, hidden=hidden, cell=cell))
        self.head = nn.Linear(hidden, 1 if task == "adding" else symbols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, time, input_dim) -> predictions (batch,) or logits (batch, memorize, symbols)."""
        outputs = self.encoder(x).outputs  # (batch, time, hidden)
        if self.task == "adding":
            return self.head(outputs[:, -1]).squeeze(-1)
        return self.head(outputs[:, -self.answer_steps:])
