"""Config sections every task shares: the recurrent encoder, tokens, table files and training.

A task's config takes these with its own defaults, e.g.
`model: ClassifyModel = field(default_factory=ClassifyModel)` where ClassifyModel extends EncoderSettings.
The CLI's flags are generated from nothing else: their defaults are these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqlab.models.encoder import CELLS, EncoderConfig
from seqlab.pipelines.config import Config, ConfigError, choice, duration, num
from seqlab.train.callbacks import LOGGERS
from seqlab.train.trainer import AMP, SCHEDULES, TrainConfig, resolve_amp


@dataclass
class EncoderSettings(Config):
    """The shared RecurrentEncoder: cell, size, direction and regularisation."""

    cell: str = choice("lstm", CELLS)
    layers: int = num(1, 1, 64)
    hidden: int | None = num(256, 1, 65536, allow_none=True)  # None: the task picks it (e.g. the LM's budget)
    embed: int | None = num(128, 1, 65536, allow_none=True)
    bidirectional: bool = False
    dropout: float = num(0.3, 0.0, 1.0, hi_open=True)
    embed_dropout: float = num(0.0, 0.0, 1.0, hi_open=True)
    locked_dropout: bool = False
    residual: bool = False
    layer_norm: bool = False

    def encoder_config(self, vocab_size: int, pad_id: int = 0, input_dim: int = 0) -> EncoderConfig:
        return EncoderConfig(
            vocab_size=vocab_size, input_dim=input_dim, embed_dim=self.embed, hidden=self.hidden,
            layers=self.layers, cell=self.cell, bidirectional=self.bidirectional, dropout=self.dropout,
            embed_dropout=self.embed_dropout, locked_dropout=self.locked_dropout, residual=self.residual,
            layer_norm=self.layer_norm, pad_id=pad_id,
        )


@dataclass
class VectorSettings(Config):
    """The user's own word vectors as the token embedding's start (seqlab.data.vectors)."""

    embeddings: str | None = None  # a GloVe / word2vec (text or binary) / fastText .vec file, optionally .gz
    freeze_embeddings: bool = False  # keep the embedding as loaded (not trained)


@dataclass
class FinetuneSettings(VectorSettings):
    """Word vectors, or a pretrained LM's embedding and encoder, and how to fine-tune them (ULMFiT)."""

    init_from: str | None = None  # a word-level `seqlab lm train` run (or checkpoint) to start from
    init_from_backward: str | None = None  # beside init_from: a backward LM (`lm train --backward`); ULMFiT's bi setup
    lr_decay_per_layer: float = num(1.0, 1.0)  # layer group k below the top trains at lr / decay**k (ULMFiT: 2.6)
    gradual_unfreeze: bool = False  # epoch 1 trains the top group only, each later epoch one more group


@dataclass
class TableSettings(Config):
    """How CSV/TSV files are read."""

    text_col: str = "text"  # a header name or a 0-based index
    delimiter: str | None = None  # None: ',' for .csv, TAB for .tsv or a tab in the first line
    header: bool = True
    encoding: str = "utf-8"


@dataclass
class TokenSettings(Config):
    """Tokenizer and vocabulary."""

    tokenizer: str = choice("word", ("char", "word", "subword"))
    lowercase: bool = False
    min_freq: int = num(1, 1)
    max_vocab: int | None = num(None, 1, allow_none=True)
    subword_vocab: int = num(8000, 2)
    max_len: int = num(0, 0)  # truncate examples to this many tokens; 0 = keep all


@dataclass
class TrainSettings(Config):
    """The training loop (seqlab.train.Trainer); names as the CLI flags (`batch`, `time` in minutes)."""

    epochs: int | None = num(None, 1, allow_none=True)  # None: the task's default, or unlimited under `time`
    batch: int = num(64, 1)
    lr: float | None = num(2e-3, 0.0, lo_open=True, allow_none=True)  # None: the task picks it
    weight_decay: float = num(0.01, 0.0)
    clip: float = num(1.0, 0.0)  # 0 = no clipping
    schedule: str = choice("constant", SCHEDULES)
    warmup: int = num(0, 0)
    patience: int = num(3, 0)  # 0 = never stop early
    eval_every: int = num(0, 0)
    time: float | str = 0.0  # minutes (also "90s", "15m", "1.5h" in a file or flag); 0 = no limit
    amp: str = choice("none", (*AMP, "auto"))
    seed: int = num(1, 0)
    device: str = "auto"
    save_every: int = num(500, 0)
    threads: int = num(0, 0)  # CPU threads for torch; 0 = torch's default
    dev_fraction: float = num(0.1, 0.0, 1.0, lo_open=True, hi_open=True)  # held out when no dev data is given
    logger: str = choice("jsonl", LOGGERS)  # metrics.jsonl always; "tensorboard" adds TensorBoard event files

    def __post_init__(self):
        if isinstance(self.time, str):
            self.time = duration(self.time)

    def check(self) -> None:
        if self.time < 0 or self.time != self.time or self.time == float("inf"):
            raise ConfigError("train.time", f"must be a positive duration, or 0 for no limit, not {self.time}")

    def trainer_config(self, default_epochs: int = 10) -> TrainConfig:
        """The Trainer's settings; `epochs` None means the task's default, or 'until the time is up'."""
        self.validate("train.")
        epochs = self.epochs if self.epochs is not None else (0 if self.time > 0 else default_epochs)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        return TrainConfig(
            epochs=epochs, batch_size=self.batch, lr=self.lr, weight_decay=self.weight_decay, clip=self.clip,
            schedule=self.schedule, warmup=self.warmup, patience=self.patience, seed=self.seed,
            device=self.device, save_every=self.save_every, time_budget=self.time * 60,
            eval_every=self.eval_every, amp=resolve_amp(self.amp, self.device),
        )
