"""The language model's training step: truncated backpropagation through time over stream chunks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqlab.data.streams import StreamBatcher
from seqlab.models.language_model import LanguageModel, detach_state


class CarriedStateStep:
    """The Trainer's step_fn for `StreamBatcher` chunks: truncated BPTT with the state carried.

    Each call reads ids (batch, seq_len) from the final state of the previous chunk, keeps the new
    final state detached (values carried, gradient cut at the chunk boundary) and returns the mean
    cross-entropy over the (batch, seq_len) targets. The state restarts from zeros at the first
    chunk of an epoch (``batch.index[0] == batches.starts[0]``; 0 without `batches`). The carried
    state is saved in last/ checkpoints (`state_tensors`), so a run resumed inside an epoch goes on
    from the same state.
    """

    def __init__(self, batches: StreamBatcher | None = None):
        self.state, self.batches = None, batches

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.state is None:
            return {}
        parts = self.state if isinstance(self.state, tuple) else (self.state,)
        return {f"carried.{i}": t for i, t in enumerate(parts)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        parts = [tensors[f"carried.{i}"] for i in range(len(tensors))]
        self.state = None if not parts else parts[0] if len(parts) == 1 else tuple(parts)

    def __call__(self, model: LanguageModel, batch) -> torch.Tensor:
        first = int(self.batches.starts[0]) if self.batches is not None else 0  # (a rank's rows start later)
        if int(batch.index[0]) == first:  # the first chunk of an epoch: the streams start afresh
            self.state = None
        logits, state = model(batch.ids, self.state)
        self.state = detach_state(state)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
