"""The encoder-decoder that translation (`Translator`) and question answering (`QA`, seq2seq mode) share.

`Seq2SeqPipeline` is what a seq2seq checkpoint holds: normalisation settings, source and target
tokenizers and vocabularies, and the `Seq2Seq` model (or an exported one, see `seqlab.export`).
Raw strings in (encoded by its `PairEncoding`, seqlab.pipelines.pair_encoding), decoded strings (with
scores and attention) out. The config sections and `build` / `train_seq2seq` here are the recipe both
tasks train with; from `ROW_STORE_ROWS` training pairs (or with `cache`) the pairs' ids go to two
`RowStore`s (files in `cache`, else OUT/rows, reused by the next run on the same pairs).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.pairs import Pairs, normalize
from seqlab.decode.seq2seq_search import decode, replace_unk
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics.seq2seq import generation_metrics
from seqlab.models.attention import ATTENTIONS
from seqlab.models.encoder import CELLS
from seqlab.models.seq2seq import (
    BRIDGES,
    DEC_CELLS,
    TF_DECAYS,
    Seq2Seq,
    Seq2SeqConfig,
    TeacherForcing,
    decoder_inputs,
    seq2seq_loss,
)
from seqlab.pipelines.base import Readout, Steps, run_training, shown
from seqlab.pipelines.classify import ROW_STORE_ROWS
from seqlab.pipelines.config import Config, ConfigError, choice, num
from seqlab.pipelines.pair_encoding import PairEncoding, SourceTruncated
from seqlab.pipelines.sections import EncoderSettings, TrainSettings
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig


@dataclass
class Output:
    """A decoded text: `text`, its tokens, the normalised source tokens, total and mean
    log-probability, and attention (len(tokens)+1 with <eos>, len(src_tokens)) if asked for."""

    text: str
    tokens: list[str]
    src_tokens: list[str]
    score: float
    mean_logprob: float
    attention: torch.Tensor | None


# ---- config sections (translate and qa) ----------------------------------------------------------
@dataclass
class Seq2SeqModel(EncoderSettings):
    """The encoder (EncoderSettings), the decoder and its attention."""

    cell: str = choice("gru", CELLS)
    dec_cell: str | None = choice(None, DEC_CELLS, allow_none=True)  # None: as `cell`
    dec_layers: int = num(0, 0)  # 0: as `layers`
    dec_hidden: int = num(0, 0)  # 0: the encoder's output size
    dec_embed: int = num(0, 0)  # 0: as `embed`
    attention: str = choice("additive", ATTENTIONS)
    attn_dim: int = num(0, 0)  # additive attention's hidden units; 0: the decoder size
    input_feed: bool = False
    bridge: str = choice("linear", BRIDGES)

    def check(self) -> None:
        for name in ("hidden", "embed"):
            if getattr(self, name) is None:
                raise ConfigError(f"model.{name}", "must be set for a seq2seq model")


@dataclass
class Seq2SeqTokens(Config):
    """Normalisation, tokenizers and vocabularies of both sides."""

    tokenizer: str = choice("word", ("char", "word", "subword"))
    lowercase: bool = False
    nfkc: bool = False
    split_punct: bool = False
    shared_vocab: bool = False  # one tokenizer and vocabulary for source and target
    min_freq: int = num(1, 1)
    max_vocab: int | None = num(None, 1, allow_none=True)
    subword_vocab: int = num(8000, 2)
    max_src_len: int = num(0, 0)  # longer sources are cut; 0 = twice the longest training source, at least 20
    cache: str | None = None  # tokenized training pairs (two RowStores) in this directory; None: OUT/rows from 200k


@dataclass
class Seq2SeqTrain(TrainSettings):
    """The training loop plus scheduled sampling and label smoothing."""

    teacher_forcing: float = num(1.0, 0.0, 1.0)
    tf_decay: str = choice("none", TF_DECAYS)
    tf_final: float = num(0.5, 0.0, 1.0)
    tf_steps: int = num(0, 0)  # 0 = all training steps (or the time budget)
    label_smoothing: float = num(0.0, 0.0, 1.0, hi_open=True)


# ---- the pipeline both tasks decode with ---------------------------------------------------------
class Seq2SeqPipeline(PairEncoding):
    """Normalisation, tokenizers, vocabularies and model: source text in, target text out."""

    def __init__(self, task: str, src_tok, tgt_tok, src_vocab: Vocab, tgt_vocab: Vocab, model: Seq2Seq, data: dict):
        self.task, self.src_tok, self.tgt_tok = task, src_tok, tgt_tok
        self.src_vocab, self.tgt_vocab, self.model, self.data = src_vocab, tgt_vocab, model, data

    def generate(self, texts: list[str], beam: int = 1, max_len: int | None = None, alpha: float = 1.0,
                 batch_size: int = 128, attention: bool = False, unk_replace: bool = False) -> list[Output]:
        """Decode `texts` (greedy for beam 1), in their order."""
        if beam < 1:
            raise UserError(f"the beam size must be at least 1, not {beam}")
        hyps = decode(self.model, self.encode_src(list(texts)), beam, max_len or self.data["max_tgt_len"], alpha,
                      batch_size, attention or unk_replace, self.src_vocab.pad_id)
        out = []
        for t, h in zip(texts, hyps):
            toks, src = self.tgt_vocab.decode(h.tokens), self.src_tokens(t)
            if unk_replace:
                toks = replace_unk(toks, src, h.attention)
            out.append(Output(self.tgt_tok.detokenize(toks), toks, src, h.score, h.mean_logprob, h.attention))
        return out

    @torch.no_grad()
    def loss(self, src: list[str], tgt: list[str], batch_size: int = 128) -> float:
        """Teacher-forced cross-entropy per target token (nats)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        total, n = 0.0, 0
        for b in self.batches(src, tgt, batch_size):
            targets = b.targets.to(device)
            logits, _ = self.model(b.ids.to(device), b.lengths, decoder_inputs(targets, *self._bos_pad()))
            k = int((targets >= 0).sum())
            total += float(seq2seq_loss(logits, targets)) * k
            n += k
        return total / max(1, n)

    def _bos_pad(self) -> tuple[int, int]:
        return self.tgt_vocab.bos_id, self.tgt_vocab.pad_id

    def score(self, src: list[str], tgt: list[str], beam: int = 1, alpha: float = 1.0,
              max_len: int | None = None) -> dict:
        """bleu, chrf, exact_match, token_f1, n and the outputs (Output) against references `tgt`."""
        outs = self.generate(src, beam, max_len, alpha)
        m = generation_metrics([o.text for o in outs], [self.reference(t) for t in tgt])
        return {**m, "outputs": outs}

    @property
    def encoder(self) -> torch.nn.Module:
        return self.model.encoder

    @property
    def generator(self) -> Seq2SeqPipeline:
        """What writes the output text token by token (with attention weights, when it has attention)."""
        return self

    def count_steps(self, text: str) -> int:
        """The number of encoder steps `steps(text)` unrolls (no SourceTruncated warning)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SourceTruncated)
            return len(self.encode_src([text])[0])

    @torch.no_grad()
    def steps(self, text: str, top_k: int = 5) -> Steps:
        """The encoder only: the decoder reads all of its outputs (attention) and starts from its final state."""
        ids = self.encode_src([text])[0]
        return Steps([shown(t) for t in self.src_vocab.decode(ids.tolist())], ids,
                     note="the encoder: the decoder reads all of its outputs (attention) and starts from its "
                          "final state")

    def readout(self, text: str) -> Readout:
        """The greedy output, teacher-forced: per output token (and the final <eos>) the decoder's logits
        (n, output tokens + 1, target vocabulary), scored by default on the token it wrote."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SourceTruncated)
            ids = self.encode_src([text])[0].cpu()  # (src,)
        hyp = decode(self.model, [ids], 1, self.data["max_tgt_len"], pad_id=self.src_vocab.pad_id)[0]
        out = [*hyp.tokens, self.tgt_vocab.eos_id]
        tgt_in = decoder_inputs(torch.tensor([out]), *self._bos_pad())  # (1, tgt): <bos> + out[:-1]

        def run(model, n: int) -> torch.Tensor:
            return model(ids.expand(n, -1), torch.full((n,), len(ids)), tgt_in.expand(n, -1))[0]

        itos = self.tgt_vocab.itos
        return Readout(self.model, self.model.encoder, [shown(t) for t in self.src_vocab.decode(ids.tolist())], ids,
                       run, [f"output {i}: {itos[t]!r}" for i, t in enumerate(out)], list(itos), out, 0,
                       list(range(len(out))))

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        return "seq2seq", Seq2Seq(Seq2SeqConfig.from_json(cfg["model"]))

    def meta(self, train_cfg=None) -> dict:
        vocab = {"src_tokenizer": self.src_tok.to_json(), "tgt_tokenizer": self.tgt_tok.to_json(),
                 "src_vocab": self.src_vocab.to_json(), "tgt_vocab": self.tgt_vocab.to_json()}
        return task_meta(self.task, self.model.cfg.to_json(), self.data, train_cfg or TrainConfig(), vocab)

    @classmethod
    def load(cls, path: str | Path, task: str = "translate", device: str = "cpu") -> Seq2SeqPipeline:
        """Open a seq2seq checkpoint of `task`; a translation model comes back as a `Translator`."""
        parts = load_parts(path, task, device)
        if task == "translate":
            from seqlab.pipelines.translate import Translator

            return Translator(*parts)
        return Seq2SeqPipeline(task, *parts)


def load_parts(path: str | Path, task: str, device: str = "cpu") -> tuple:
    """(src_tok, tgt_tok, src_vocab, tgt_vocab, model, data) of a seq2seq checkpoint or exported file."""
    cfg, v, model = runtime.load_model(path, task, lambda m: Seq2Seq(Seq2SeqConfig.from_json(m)), device)
    return (tokenizer_from_json(v["src_tokenizer"]), tokenizer_from_json(v["tgt_tokenizer"]),
            Vocab.from_json(v["src_vocab"]), Vocab.from_json(v["tgt_vocab"]), model, cfg["data"])


# ---- the recipe -----------------------------------------------------------------------------------
def as_pairs(source, name: str, read) -> Pairs:
    """Pairs from a path (read with `read(path)`), a Pairs, or (source, target) string pairs."""
    if isinstance(source, (str, Path)):
        return read(source)
    if isinstance(source, Pairs):
        return source
    try:
        rows = [tuple(r) for r in source]
    except TypeError:
        raise UserError(f"{name} must be a file path or a list of (source, target) pairs") from None
    for i, r in enumerate(rows):
        if len(r) != 2 or not all(isinstance(x, str) for x in r):
            raise UserError(f"{name}: item {i} is not a (source, target) pair of strings")
        if not r[0].strip() or not r[1].strip():
            raise UserError(f"{name}: item {i} has an empty {'source' if not r[0].strip() else 'target'}")
    if not rows:
        raise UserError(f"{name} holds no pairs")
    return Pairs([s for s, _ in rows], [t for _, t in rows], list(range(1, len(rows) + 1)), name)


def build(make, task: str, m: Seq2SeqModel, tk: Seq2SeqTokens, train: Pairs, data: dict, seed: int):
    """Tokenizers, vocabularies and a fresh model from the training pairs; `make(task, *parts)` wraps them."""
    src = [normalize(s, tk.lowercase, tk.nfkc, tk.split_punct) for s in train.src]
    tgt = [normalize(t, tk.lowercase, tk.nfkc, tk.split_punct) for t in train.tgt]
    if tk.shared_vocab:
        src_tok = tgt_tok = build_tokenizer(tk.tokenizer, src + tgt, False, tk.subword_vocab)
        src_toks, tgt_toks = [src_tok.tokenize(s) for s in src], [tgt_tok.tokenize(t) for t in tgt]
        src_vocab = tgt_vocab = Vocab.build(src_toks + tgt_toks, tk.min_freq, tk.max_vocab)
    else:
        src_tok = build_tokenizer(tk.tokenizer, src, False, tk.subword_vocab)
        tgt_tok = build_tokenizer(tk.tokenizer, tgt, False, tk.subword_vocab)
        src_toks, tgt_toks = [src_tok.tokenize(s) for s in src], [tgt_tok.tokenize(t) for t in tgt]
        src_vocab = Vocab.build(src_toks, tk.min_freq, tk.max_vocab)
        tgt_vocab = Vocab.build(tgt_toks, tk.min_freq, tk.max_vocab)
    longest_src, longest_tgt = max(map(len, src_toks)), max(map(len, tgt_toks))
    data["max_src_len"] = tk.max_src_len or max(20, 2 * longest_src)
    data["max_tgt_len"] = max(10, 2 * longest_tgt + 2)
    cfg = Seq2SeqConfig(m.encoder_config(len(src_vocab), src_vocab.pad_id), len(tgt_vocab), m.dec_embed or m.embed,
                        m.dec_hidden, m.dec_layers or m.layers, m.dec_cell or m.cell, m.attention, m.attn_dim,
                        m.input_feed, m.bridge, m.dropout, tgt_vocab.pad_id, tgt_vocab.bos_id, tgt_vocab.eos_id)
    torch.manual_seed(seed)
    try:
        model = Seq2Seq(cfg)
    except ValueError as e:
        raise UserError(str(e)) from None
    return make(task, src_tok, tgt_tok, src_vocab, tgt_vocab, model, data)


class _TrainerRef:
    """A callback that hands the running Trainer to the step function (its step and clock), on every rank."""

    trainer, every_rank = None, True

    def on_fit_start(self, trainer, resume: bool) -> None:
        self.trainer = trainer


def train_seq2seq(pipe, core: Seq2SeqPipeline, train: Pairs, eval_fn, metric: str, mode: str, tcfg: TrainConfig,
                  *, out=None, resume=False, overwrite=False, callbacks=None, log=print) -> dict:
    """Train `core.model` (the model of `pipe`, whose config is a seq2seq config) on `train` with run_training."""
    t, d = pipe.config.train, pipe.config.data
    rows = None  # large data: the token ids in two RowStores (files in --cache / OUT/rows), not tensors
    if d.cache or len(train) >= ROW_STORE_ROWS:
        rows = core.rows(train.src, train.tgt, d.cache or (Path(out) / "rows" if out is not None else None), log)
    batches = core.batches(train.src, train.tgt, tcfg.batch_size, rows=rows, shuffle=True, seed=t.seed)
    final = t.teacher_forcing if t.tf_decay == "none" else t.tf_final
    tf = TeacherForcing(t.teacher_forcing, final, t.tf_decay, t.tf_steps or tcfg.epochs * len(batches))
    bos, pad = core._bos_pad()
    ref = _TrainerRef()
    if callbacks is None:
        from seqlab.train.callbacks import default_callbacks

        callbacks = default_callbacks(Path(out) if out is not None else None, t.logger)
    callbacks = [*callbacks, ref]

    def step_fn(model, batch):  # the ratio follows the Trainer's global step (scheduled sampling)
        trainer = ref.trainer
        time_frac = trainer.clock() / tcfg.time_budget if tcfg.time_budget else 0.0
        ratio = tf.ratio(trainer.state["step"], time_frac)
        logits, _ = model(batch.ids, batch.lengths, decoder_inputs(batch.targets, bos, pad), ratio)
        return seq2seq_loss(logits, batch.targets, t.label_smoothing)

    return run_training(pipe, batches, step_fn, eval_fn, metric=metric, mode=mode, out=out, resume=resume,
                        overwrite=overwrite, callbacks=callbacks, log=log, trainer_config=tcfg)
