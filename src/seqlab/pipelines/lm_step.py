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

    def __init__(self, batches: StreamBatcher | None = None, average: WeightAverage | None = None):
        self.state, self.batches, self.average = None, batches, average

    def state_tensors(self) -> dict[str, torch.Tensor]:
        avg = self.average.state_tensors() if self.average is not None else {}
        if self.state is None:
            return avg
        parts = self.state if isinstance(self.state, tuple) else (self.state,)
        return {f"carried.{i}": t for i, t in enumerate(parts)} | avg

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.average is not None:
            self.average.load_state_tensors(tensors)
        parts = [tensors[f"carried.{i}"] for i in range(sum(k.startswith("carried.") for k in tensors))]
        self.state = None if not parts else parts[0] if len(parts) == 1 else tuple(parts)

    def __call__(self, model: LanguageModel, batch) -> torch.Tensor:
        first = int(self.batches.starts[0]) if self.batches is not None else 0  # (a rank's rows start later)
        if int(batch.index[0]) == first:  # the first chunk of an epoch: the streams start afresh
            self.state = None
        if self.average is not None:
            self.average.update(model)
        logits, state = model(batch.ids, self.state)
        self.state = detach_state(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
        return loss + model.penalty()  # AR/TAR when the model has them


class WeightAverage:
    """Averaged weights for evaluation (the averaging of NT-ASGD, as an exponential moving average):
    avg <- decay * avg + (1 - decay) * weights before every training step. A Trainer callback: each
    evaluation, and the best/ checkpoint it may write, uses the averaged weights; training goes on with
    the raw ones. The average is part of last/ (through the step's state tensors), so a resume is exact."""

    def __init__(self, decay: float):
        self.decay, self.avg, self._raw = decay, None, None

    @torch.no_grad()
    def update(self, model) -> None:
        params = dict(model.named_parameters())
        if self.avg is None:
            self.avg = {k: p.detach().clone() for k, p in params.items()}
            return
        for k, p in params.items():  # new tensors, not in place: the Trainer may hold the ones before this step
            self.avg[k] = torch.lerp(self.avg[k], p.detach(), 1.0 - self.decay)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"avg.{k}": v for k, v in (self.avg or {}).items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        avg = {k[4:]: v.clone() for k, v in tensors.items() if k.startswith("avg.")}
        self.avg = avg or None

    @torch.no_grad()
    def on_validate_start(self, trainer) -> None:
        if self.avg is None:
            return
        params = dict(trainer.model.named_parameters())
        self._raw = {k: p.detach().clone() for k, p in params.items()}
        for k, p in params.items():
            p.copy_(self.avg[k])

    @torch.no_grad()
    def on_validate_end(self, trainer) -> None:
        if self._raw is None:
            return
        for k, p in trainer.model.named_parameters():
            p.copy_(self._raw[k])
        self._raw = None
