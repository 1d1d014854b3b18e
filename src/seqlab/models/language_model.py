"""A recurrent language model: predict the next token from all the tokens before it.

    ids (batch, time) --embedding + RecurrentEncoder--> outputs (batch, time, hidden)
        --dropout--> --Linear--> logits (batch, time, vocab)      p(x_{t+1} | x_1..x_t) = softmax

The encoder is the shared `RecurrentEncoder` (its embedding, cells, residual, layer norm and locked
dropout), always unidirectional: a backward direction would read the very token it must predict.

The state is the memory. `forward` takes a start state and returns the final one, so a long text
can be read in chunks with the state carried from one to the next, and generation can feed one
token at a time (see `seqlab.decode.sampling`). Reading a text in chunks with the state carried
gives the same logits as reading it in one call (tested); `sequence_nll` scores a text that way.

Weight tying (Press & Wolf 2017; Inan et al. 2017): the output layer maps a hidden vector to one
score per token, a (vocab, hidden) matrix, the same shape as the embedding (vocab, embed) when
embed == hidden. Sharing the two matrices halves the parameters of a large vocabulary and usually
lowers perplexity; `LMConfig.tie_weights` asks for it and it happens when the sizes allow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


@dataclass
class LMConfig:
    """encoder: the shared encoder's settings (vocab_size = the token vocabulary, unidirectional).
    tie_weights: share the embedding and output matrices when embed_dim == hidden.
    dropout: on the encoder outputs, before the output layer."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tie_weights: bool = True
    dropout: float = 0.0

    @property
    def tied(self) -> bool:
        """Whether the weights are actually tied (asked for, and the sizes match)."""
        return self.tie_weights and self.encoder.embed_dim == self.encoder.output_dim

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> LMConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


class LanguageModel(nn.Module):
    """Embedding -> RecurrentEncoder -> dropout -> Linear(hidden, vocab), optionally tied."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        enc = cfg.encoder
        if enc.bidirectional:
            raise ValueError("a language model must be unidirectional: the backward direction sees the target")
        if not enc.vocab_size:
            raise ValueError("a language model reads token ids: set encoder.vocab_size")
        self.cfg = cfg
        self.encoder = RecurrentEncoder(enc)
        self.dropout = nn.Dropout(cfg.dropout)
        self.decoder = nn.Linear(enc.output_dim, enc.vocab_size)
        if cfg.tied:
            self.decoder.weight = self.encoder.embedding.weight
        # nn.Embedding starts at N(0, 1): as output weights those give logits of size ~sqrt(hidden)
        # at step 0 and a model that learns slowly. Start small, as PyTorch's word_language_model does.
        emb = self.encoder.embedding.weight
        with torch.no_grad():
            emb.uniform_(-0.1, 0.1)
            emb[enc.pad_id].zero_()
            self.decoder.bias.zero_()

    def forward(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> (logits (batch, time, vocab), new_state).

        state / new_state: h (layers, batch, hidden), or (h, c) for LSTM; None = zeros at the start
        (and always None for cell 'none', which has no memory).
        """
        enc = self.encoder(ids, None, state)
        logits = self.decoder(self.dropout(enc.outputs))
        if enc.h_n is None:
            return logits, None
        return logits, (enc.h_n, enc.c_n) if enc.c_n is not None else enc.h_n


def detach_state(state: State) -> State:
    """Cut the gradient path into a carried state (truncated BPTT); the values stay."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


@torch.no_grad()
def sequence_nll(model: LanguageModel, ids: torch.Tensor, chunk: int = 2048) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of ids[1:] given the tokens before, and its count.

    ids (n,) with n >= 2 is read as one sequence (batch 1) in chunks of `chunk` tokens with the
    state carried across chunks, so the result does not depend on `chunk` (up to float rounding).
    Mean loss = total / count; perplexity = exp(mean); bits per token = mean / ln 2.
    """
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("ids must be 1-d with at least 2 tokens")
    model.eval()
    device = next(model.parameters()).device
    state, total, n = None, 0.0, len(ids) - 1
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        x = ids[start:end].to(device)[None, :]  # (1, t)
        y = ids[start + 1 : end + 1].to(device)
        logits, state = model(x, state)
        total += float(F.cross_entropy(logits[0].double(), y, reduction="sum"))
    return total, n


def lm_metrics(total_nats: float, tokens: int, chars: int) -> dict:
    """{loss (nats/token), perplexity, bits_per_char} from a total NLL over `tokens` tokens that
    cover `chars` characters (for a character model tokens == chars)."""
    loss = total_nats / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_char": total_nats / math.log(2) / max(chars, 1)}
