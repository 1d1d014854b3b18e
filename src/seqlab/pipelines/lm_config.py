"""The language model's settings: `LMConfig` with its model, data and train sections (seqlab.pipelines.lm).

The defaults follow the time budget: hidden and embed left None are chosen by `budget_sizes`.
AWD-LSTM's regularisers (Merity et al. 2018) are model settings, each off by default: weight_drop
(DropConnect on the hidden-to-hidden weights), embed_row_dropout (whole word types), locked_dropout
(variational, on the inputs, between layers and on the outputs), ar / tar (activation and temporal
activation regularisation); `average` (train) evaluates and keeps averaged weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seqlab.pipelines.config import Config, ConfigError, choice, num
from seqlab.pipelines.sections import EncoderSettings, TrainSettings
from seqlab.train.trainer import AMP, SCHEDULES

LARGE_FROM_MINUTES = 10.0  # from this much `time` on, the budget default is 1x512 instead of 1x256
DEFAULT_EPOCHS = 10


# ---- config ------------------------------------------------------------------------------------
@dataclass
class LMModel(EncoderSettings):
    """The recurrent LM; hidden/embed None: chosen by the budget (256 or 512; embed = hidden, tied)."""

    hidden: int | None = num(None, 1, 65536, allow_none=True)
    embed: int | None = num(None, 1, 65536, allow_none=True)
    no_tie: bool = False  # keep the embedding and output weights apart (shared when embed == hidden)
    init_from: str | None = None  # continue this LM run on the new text (its sizes, level and tokenizer)
    weight_drop: float = num(0.0, 0.0, 1.0, hi_open=True)  # DropConnect on the hidden-to-hidden weights
    embed_row_dropout: float = num(0.0, 0.0, 1.0, hi_open=True)  # drop whole word types from the embedding
    ar: float = num(0.0, 0.0)  # activation regularisation: ar * mean(dropped top outputs²) (AWD-LSTM: 2)
    tar: float = num(0.0, 0.0)  # temporal activation regularisation: tar * mean((h_t - h_{t-1})²) (AWD-LSTM: 1)

    def check(self) -> None:
        if self.bidirectional:
            raise ConfigError("model.bidirectional", "would let the language model read the token it must "
                              "predict; drop it")


@dataclass
class LMData(Config):
    """Tokens and vocabulary of the text, and the window of truncated BPTT."""

    level: str = choice("char", ("char", "word", "subword"))
    lowercase: bool = False
    min_freq: int = num(1, 1)
    max_vocab: int | None = num(None, 1, allow_none=True)
    subword_vocab: int = num(8000, 2)
    encoding: str = "utf-8"
    seq_len: int = num(64, 1)  # tokens per stream per step; gradients flow back at most this far
    cache: str | None = None  # token store directory; None: OUT/tokens (files of 4 MB and more)
    backward: bool = False  # read the text from its end to its start: a backward LM (ULMFiT's bidirectional setup)


@dataclass
class LMTrain(TrainSettings):
    """The LM's training defaults: batch 32 streams, AdamW 0.006, cosine schedule, amp auto."""

    batch: int = num(32, 1)
    lr: float | None = num(6e-3, 0.0, lo_open=True, allow_none=True)
    schedule: str = choice("cosine", SCHEDULES)
    amp: str = choice("auto", (*AMP, "auto"))
    dev_fraction: float = num(0.1, 0.0, 1.0, lo_open=True, hi_open=True)  # the CLI's --valid-fraction
    sample_every: int = num(0, 0)  # write a short sample every N evaluations (epochs); 0 = never
    valid_tokens: int = num(0, 0)  # validation reads at most this many tokens; 0 = auto (see lm_corpus)
    valid_streams: int = num(32, 1)  # validation reads the held-out text as this many parallel streams
    average: float = num(0.0, 0.0, 1.0, hi_open=True)  # EMA decay of averaged weights for evaluation; 0 = off


@dataclass
class LMConfig(Config):
    model: LMModel = field(default_factory=LMModel)
    data: LMData = field(default_factory=LMData)
    train: LMTrain = field(default_factory=LMTrain)

    def budget_sizes(self) -> dict[str, int]:
        """The sizes left to the budget (hidden, embed), as {name: value}; {} when all are set."""
        chosen = {}
        if self.model.hidden is None:
            chosen["hidden"] = 512 if self.train.time >= LARGE_FROM_MINUTES else 256
        if self.model.embed is None:
            chosen["embed"] = chosen.get("hidden", self.model.hidden)
        return chosen

    def resolved(self) -> LMConfig:
        """This config with the budget's defaults filled in."""
        chosen = self.budget_sizes()
        return self.with_values(**chosen).validate() if chosen else self
