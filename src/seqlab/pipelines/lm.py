"""Language modelling as a library: train on a text, score texts, write new ones.

    from seqlab.pipelines import LM
    lm = LM.fit("shakespeare.txt", time=5)              # or fit(a_long_string); valid= a path or text
    lm.generate("ROMEO:", length=200, temperature=0.8)   # the prime and its continuation
    lm.evaluate("test.txt")                              # loss (nats/token), perplexity, bits_per_char
    lm.save("charlm/");  lm = LM.load("charlm/")

A checkpoint holds tokenizer + vocabulary + `LanguageModel` (task "lm"). Levels: 'char' reads the
text as it is, newlines included. 'word' and 'subword' (BPE learned from the training text) tokenize
each line and end it with <eos>, so the model learns where lines end and a generated <eos> prints as
a newline.

Training reads the text as `batch` contiguous streams, `seq_len` tokens per step
(`seqlab.data.streams`); the final state of a step is the start state of the next (detached:
truncated BPTT, `CarriedStateStep`) and is reset to zeros at each epoch start. The carried state is
part of the `last/` checkpoint, so a run resumed inside an epoch ends with the same weights as an
uninterrupted one. Validation reads the whole held-out text (`valid`, or the last `dev_fraction` of
the training text) as one sequence with the state carried (`sequence_nll`), and reports loss in
nats/token, perplexity and bits per character (for word and subword levels, the total over all
characters of the text).

The defaults follow the time budget: with `hidden` and `embed` left None, a 1x256 model below 10
minutes of `time` (or with no time limit), 1x512 from 10 minutes; embed = hidden, so the input and
output weights are tied; AdamW 0.006 with a cosine schedule; amp "auto". The sizes chosen are
written into the run's config (run.yaml, `lm.config`).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.readers import read_text
from seqlab.data.split import holdout_tail
from seqlab.data.streams import StreamBatcher
from seqlab.data.vocab import EOS
from seqlab.decode.sampling import generate as sample_tokens
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.dynamic_eval import dynamic_nll
from seqlab.models.language_model import LanguageModel, detach_state, lm_metrics, sequence_nll
from seqlab.models.language_model import LMConfig as ModelConfig
from seqlab.pipelines.base import Pipeline, Steps, finish, run_training, shown
from seqlab.pipelines.config import Config, ConfigError, choice, num
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.sections import EncoderSettings, TrainSettings
from seqlab.train.callbacks import SampleText
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import AMP, SCHEDULES, TrainConfig

LARGE_FROM_MINUTES = 10.0  # from this much `time` on, the budget default is 1x512 instead of 1x256
DEFAULT_EPOCHS = 10


# ---- config ------------------------------------------------------------------------------------
@dataclass
class LMModel(EncoderSettings):
    """The recurrent LM; hidden/embed None: chosen by the budget (256 or 512; embed = hidden, tied)."""

    hidden: int | None = num(None, 1, 65536, allow_none=True)
    embed: int | None = num(None, 1, 65536, allow_none=True)
    no_tie: bool = False  # keep the embedding and output weights apart (shared when embed == hidden)

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


@dataclass
class LMTrain(TrainSettings):
    """The LM's training defaults: batch 32 streams, AdamW 0.006, cosine schedule, amp auto."""

    batch: int = num(32, 1)
    lr: float | None = num(6e-3, 0.0, lo_open=True, allow_none=True)
    schedule: str = choice("cosine", SCHEDULES)
    amp: str = choice("auto", (*AMP, "auto"))
    dev_fraction: float = num(0.1, 0.0, 1.0, lo_open=True, hi_open=True)  # the CLI's --valid-fraction
    sample_every: int = num(0, 0)  # write a short sample every N evaluations (epochs); 0 = never


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


# ---- text --------------------------------------------------------------------------------------
def text_tokens(tokenizer, text: str) -> list[str]:
    """The token strings of a whole text: characters as they are, or each line's tokens + <eos>."""
    if tokenizer.kind == "char":
        return tokenizer.tokenize(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":  # a final newline ends the last line; it opens no new one
        lines.pop()
    return [t for line in lines for t in (*tokenizer.tokenize(line), EOS)]


_FILE_SUFFIX = re.compile(r"\.(txt|text|gz|md|rst|csv|tsv|json|jsonl|py|html?|xml|tex)$", re.I)


def _is_path(source) -> bool:
    """A Path, or a str that names a file: one line, and an existing file or a file-like name."""
    if isinstance(source, os.PathLike):
        return True
    return (isinstance(source, str) and "\n" not in source and len(source) < 4096
            and (os.path.isfile(source) or bool(_FILE_SUFFIX.search(source.strip()))))


def read_source(source, encoding: str = "utf-8", name: str = "the text") -> tuple[str, str]:
    """(text, how to name it in messages) from a path, a string of text or a list of lines."""
    if _is_path(source):
        return read_text(source, encoding), str(source)
    if isinstance(source, (list, tuple)) and all(isinstance(s, str) for s in source):
        source = "".join(s if s.endswith("\n") else s + "\n" for s in source)
    if not isinstance(source, str):
        raise UserError(f"{name} must be a file path, a string of text or a list of lines, "
                        f"not {type(source).__name__}")
    if not source.strip():
        raise UserError(f"{name} is empty; give some text")
    return source.replace("\r\n", "\n"), name


def unigram_bits(ids: torch.Tensor) -> float:
    """Entropy of the token frequencies in bits/token: the loss of the best context-free model."""
    counts = torch.tensor(list(Counter(ids.tolist()).values()), dtype=torch.float64)
    p = counts / counts.sum()
    return max(0.0, float(-(p * p.log2()).sum()))  # one token type: 0.0, never -0.0


# ---- the training step ---------------------------------------------------------------------------
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


# ---- the pipeline --------------------------------------------------------------------------------
@register_task
class LM(Pipeline):
    """Tokenizer, vocabulary and language model: text in, scores and new text out."""

    task = "lm"
    Config = LMConfig

    def __init__(self, tokenizer, vocab: Vocab, model: LanguageModel, data: dict, config: LMConfig | None = None):
        self.tokenizer, self.vocab, self.model, self.data = tokenizer, vocab, model, data
        self.config = config

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, valid=None, config: LMConfig | dict | str | None = None, *, out=None,
            resume: bool = False, overwrite: bool = False, callbacks=None, log: Callable[[str], None] = print,
            **overrides) -> LM:
        """Train on `train` (a text file path, a string of text, or a list of lines).

        `valid` (the same kinds) is scored after each epoch; without it the last `dev_fraction` of the
        text is held out. Settings: `config` and/or flat keyword overrides (hidden=512, time=15,
        seq_len=128, ...: the names of the CLI flags). hidden/embed left None are chosen by the time
        budget and recorded in `lm.config`. `out`: a run directory (checkpoints, logs, resume); None
        trains in memory. Returns the pipeline with the best weights; `lm.results` has the scores.
        """
        cfg = cls.make_config(config, **overrides)
        chosen = cfg.budget_sizes()
        cfg = cfg.resolved()
        m, dc = cfg.model, cfg.data
        tcfg = cfg.train.trainer_config(DEFAULT_EPOCHS)
        text, name = read_source(train, dc.encoding, "the training text")
        if valid is not None:
            valid_text, valid_src = read_source(valid, dc.encoding, "the validation text")
        else:  # hold out the end of the text
            cut = holdout_tail(len(text), cfg.train.dev_fraction)
            text, valid_text = text[:cut], text[cut:]
            valid_src = f"the last {cfg.train.dev_fraction:.0%} of {name}"
        tok = build_tokenizer(dc.level, text.split("\n"), dc.lowercase, dc.subword_vocab)
        vocab = Vocab.build([text_tokens(tok, text)], dc.min_freq, dc.max_vocab)
        data = {"level": dc.level, "lowercase": dc.lowercase, "encoding": dc.encoding, "seq_len": dc.seq_len,
                "min_freq": dc.min_freq, "max_vocab": dc.max_vocab, "subword_vocab": dc.subword_vocab}
        mcfg = ModelConfig(m.encoder_config(len(vocab), vocab.pad_id), not m.no_tie, m.dropout)
        torch.manual_seed(cfg.train.seed)
        pipe = cls(tok, vocab, LanguageModel(mcfg), data, cfg)
        train_ids = pipe.encode(text)
        need = tcfg.batch_size * dc.seq_len + 1
        if len(train_ids) < need:
            raise UserError(f"{name}: the training text has {len(train_ids)} {dc.level} tokens, fewer than one "
                            f"batch (batch {tcfg.batch_size} x seq_len {dc.seq_len} + 1 = {need}); "
                            "give more text or a smaller batch or seq_len")
        if len(pipe.encode(valid_text)) < 2:
            raise UserError(f"{valid_src}: the validation text has fewer than 2 tokens; "
                            "give a longer validation text or a larger valid fraction")
        batches = StreamBatcher(train_ids, tcfg.batch_size, dc.seq_len)
        keep = ("loss", "perplexity", "bits_per_char")

        def eval_fn(model):
            res = pipe.evaluate(valid_text, valid_src)
            return {k: res[k] for k in keep}

        if chosen:
            log("defaults for this budget: " + ", ".join(f"{k} {v}" for k, v in chosen.items()))
        n_params = sum(p.numel() for p in pipe.model.parameters())
        log(f"train {len(train_ids):,} {dc.level} tokens as {batches.batch} streams of {batches.stream_len:,} "
            f"({len(batches)} steps/epoch); valid {valid_src}; vocab {len(vocab)}; {n_params:,} parameters"
            f"{', tied weights' if mcfg.tied else ''}; unigram entropy {unigram_bits(train_ids):.3f} bits/token")
        if cfg.train.sample_every:  # a SampleText callback beside the run's own (metrics.jsonl, loss.png, ...)
            if callbacks is None:
                from seqlab.train.callbacks import default_callbacks

                callbacks = default_callbacks(out, cfg.train.logger)
            callbacks = [*callbacks, SampleText(pipe._progress_sample(cfg.train.seed), cfg.train.sample_every, log)]
        st = run_training(pipe, batches, CarriedStateStep(batches), eval_fn, metric="loss", mode="min",
                          default_epochs=DEFAULT_EPOCHS, out=out, resume=resume, overwrite=overwrite,
                          callbacks=callbacks, log=log, trainer_config=tcfg)
        res = pipe.evaluate(valid_text, valid_src)
        finish(pipe, st, {k: res[k] for k in keep}, out, prefix="valid")
        return pipe

    def _progress_sample(self, seed: int, length: int | None = None) -> Callable[[int], str]:
        """sample(k): the k-th short sample during training (its own seeded generator; 200 characters,
        or 50 words or subwords)."""
        length = length or (200 if self.level == "char" else 50)
        return lambda k: self.generate("", length=length, temperature=0.8, seed=seed * 1000 + k)

    # ---- text <-> ids ------------------------------------------------------------------------
    @property
    def level(self) -> str:
        return self.tokenizer.kind

    def encode(self, text: str) -> torch.Tensor:
        """The whole text as token ids (n,); unknown tokens become <unk>."""
        return torch.tensor(self.vocab.encode(text_tokens(self.tokenizer, text)), dtype=torch.long)

    def token_text(self, i: int) -> str:
        """How token id `i` prints: <eos> as a newline, words followed by a space, BPE '▁' as a space."""
        tok = self.vocab.itos[i]
        if self.level == "char":
            return tok
        if tok == EOS:
            return "\n"
        return tok + " " if self.level == "word" else tok.replace("▁", " ")

    def decode(self, ids) -> str:
        return "".join(self.token_text(int(i)) for i in ids)

    @property
    def banned_ids(self) -> list[int]:
        """Token ids generation never writes: the special tokens (<pad>, <unk>, <bos>, ...). <eos> is one
        of them at the char level, where no token means a line end (the newline character does); at the
        word and subword levels <eos> ends every line of the training text and prints as a newline."""
        keep = {EOS} if self.level != "char" else set()
        return [self.vocab.stoi[t] for t in self.vocab.specials if t not in keep and t in self.vocab.stoi]

    def encode_prime(self, prime: str) -> list[int]:
        """Ids to start generation from. Char level: the prime's characters, each of which must be
        in the vocabulary (an empty prime starts after a newline). Word/subword: <eos> (a line
        start) and the prime's tokens, unknown words as <unk>."""
        if self.level != "char":
            return [self.vocab.eos_id, *self.vocab.encode(self.tokenizer.tokenize(prime))]
        chars = self.tokenizer.tokenize(prime)
        if not chars:  # start after a newline, or (a text without any) at its most frequent character
            return [self.vocab.stoi.get("\n", len(self.vocab.specials))]
        unknown = sorted({c for c in chars if c not in self.vocab.stoi or c in self.vocab.specials})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown)
            raise UserError(f"--prime has characters the model never saw in training ({shown}); "
                            "remove or replace them")
        return self.vocab.encode(chars)

    # ---- generation --------------------------------------------------------------------------
    def generate(self, prime: str = "", length: int = 200, temperature: float = 0.8, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, n: int = 1, *, greedy: bool = False,
                 on_token: Callable[[str], None] | None = None) -> str | list[str]:
        """New text continuing `prime`: the prime followed by `length` generated tokens.

        temperature > 0 (below 1 safer, above 1 more random); top_k: sample among the k most likely
        tokens (None: all); top_p: nucleus sampling in (0, 1] (None: 1, all); seed: reproducible
        samples; greedy: always the most likely token. `n` > 1 returns a list of n samples, generated
        together as one batch. `on_token(text)` is called with each new token's text as it is
        written (one sample only), to stream it.
        """
        top_k, top_p = top_k or 0, 1.0 if top_p is None else top_p
        if not greedy and not temperature > 0:
            raise UserError(f"temperature must be greater than 0, got {temperature}; use greedy=True for argmax")
        if not 0 < top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {top_p}; 1 keeps every token")
        if top_k < 0 or length < 1 or n < 1:
            raise UserError(f"top_k must be at least 0, and length and n at least 1 (got {top_k}, {length}, {n})")
        prime_ids = self.encode_prime(prime)
        gen = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        on_step = None
        if on_token is not None and n == 1:
            def on_step(t, tokens):
                on_token(self.token_text(int(tokens[0])))
        rows = sample_tokens(self.model, prime_ids, length, n, temperature, top_k, top_p, gen, greedy, on_step,
                             banned=self.banned_ids)
        sep = "" if self.level == "char" or not prime else " "
        texts = [prime + sep + self.decode(row) for row in rows]
        return texts[0] if n == 1 else texts

    predict = generate  # the surface every pipeline shares

    # ---- scoring -----------------------------------------------------------------------------
    def evaluate(self, data, source: str | None = None, dynamic: tuple[int, float] | None = None) -> dict:
        """loss (nats/token), perplexity, bits_per_char, tokens, unk_rate over the whole of `data` (a
        text file path, a string of text or a list of lines), read as one sequence; with `dynamic` =
        (segment, lr), under dynamic evaluation (models/dynamic_eval.py)."""
        text, name = read_source(data, self.data.get("encoding", "utf-8"), source or "the text")
        source = source or name
        ids = self.encode(text)
        if len(ids) < 2:
            raise UserError(f"{source}: {len(ids)} token, too short to score; give at least 2 tokens")
        if dynamic:
            nll, n = dynamic_nll(self.model, ids, *dynamic)
            total = float(nll.sum())
        else:
            total, n = sequence_nll(self.model, ids)
        chars = n if self.level == "char" else len(text)
        unk = float((ids == self.vocab.unk_id).float().mean())
        return {**lm_metrics(total, n, chars), "tokens": n, "unk_rate": unk}

    # ---- files ---------------------------------------------------------------------------------
    def input_ids(self, text: str) -> torch.Tensor:
        """The model's input for `text` (time,): its characters (char level), or <eos> (a line start)
        and its tokens (word/subword), unknown tokens as <unk>."""
        if self.level == "char":
            ids = self.encode(text)
        else:
            ids = torch.tensor([self.vocab.eos_id, *self.vocab.encode(self.tokenizer.tokenize(text))])
        if len(ids) == 0:
            raise UserError("the text is empty; type at least one character")
        return ids

    @torch.no_grad()
    def steps(self, text: str, top_k: int = 5) -> Steps:
        """Per token: the `top_k` most likely next tokens and their probabilities."""
        ids = self.input_ids(text)
        logits, _ = self.model(ids[None].to(self.device))
        top = torch.softmax(logits[0].double().cpu(), -1).topk(min(top_k, logits.shape[-1]), -1)
        itos = self.vocab.itos
        return Steps([shown(itos[i]) for i in ids.tolist()], ids, "next_token", top.values.numpy(),
                     top_tokens=[[shown(itos[i]) for i in row] for row in top.indices.tolist()],
                     note="p(next token | the tokens so far): the most likely continuations after each step")

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        return "lm", LanguageModel(ModelConfig.from_json(cfg["model"]))

    def meta(self, train_cfg=None) -> dict:
        vocab = {"tokenizer": self.tokenizer.to_json(), "vocab": self.vocab.to_json()}
        tcfg = train_cfg or (self.config.train.trainer_config(DEFAULT_EPOCHS) if self.config else TrainConfig())
        return task_meta(self.task, self.model.cfg.to_json(), self.data, tcfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> LM:
        """Open a checkpoint directory (a run's --out, best/ or last/) or an exported .onnx/.pt file."""
        cfg, v, model = runtime.load_model(path, cls.task, lambda m: LanguageModel(ModelConfig.from_json(m)), device)
        return cls(tokenizer_from_json(v["tokenizer"]), Vocab.from_json(v["vocab"]), model, cfg["data"])


__all__ = ["LM", "LMConfig", "LMData", "LMModel", "LMTrain", "CarriedStateStep", "text_tokens", "unigram_bits"]
