"""The seq2seq pipeline shared by translation and question answering.

`Seq2SeqPipeline` is what a seq2seq checkpoint holds: normalisation settings, source and target
tokenizers and vocabularies, and the `Seq2Seq` model (or, with `--model NAME.onnx|.pt`, an exported
one, see `seqlab.export`). Raw strings in, decoded strings (with scores and attention) out.
`build_pipeline`, `fit` and `model_flags` build and train one from the command-line flags.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.pairs import PairBatcher, Pairs, normalize
from seqlab.decode.seq2seq_search import decode, replace_unk
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, TeacherForcing, decoder_inputs, seq2seq_loss
from seqlab.tasks import common
from seqlab.train import Trainer
from seqlab.train.checkpoint import task_meta
from seqlab.metrics.seq2seq import generation_metrics

TASK = "translate"


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


class Seq2SeqPipeline:
    """Normalisation, tokenizers, vocabularies and model: source text in, target text out."""

    def __init__(self, task: str, src_tok, tgt_tok, src_vocab: Vocab, tgt_vocab: Vocab, model: Seq2Seq, data: dict):
        self.task, self.src_tok, self.tgt_tok = task, src_tok, tgt_tok
        self.src_vocab, self.tgt_vocab, self.model, self.data = src_vocab, tgt_vocab, model, data

    def norm(self, text: str) -> str:
        d = self.data
        return normalize(text, d["lowercase"], d["nfkc"], d["split_punct"])

    def src_tokens(self, text: str) -> list[str]:
        return self.src_tok.tokenize(self.norm(text))[: self.data["max_src_len"]] or ["<unk>"]

    def encode_src(self, texts: list[str]) -> list[torch.Tensor]:
        """Source ids (1-d each), cut at the model's maximum source length with a warning."""
        limit, long = self.data["max_src_len"], []
        out = []
        for i, t in enumerate(texts):
            toks = self.src_tok.tokenize(self.norm(t))
            if len(toks) > limit:
                long.append(i)
            out.append(torch.tensor(self.src_vocab.encode(toks[:limit]) or [self.src_vocab.unk_id]))
        if long:
            print(f"seqlab: warning: {len(long)} source text(s) longer than the model's maximum of {limit} "
                  f"tokens were truncated (the first is input {long[0] + 1})", file=sys.stderr)
        return out

    def encode_tgt(self, texts: list[str]) -> list[torch.Tensor]:
        """Target ids ending in <eos> (1-d each)."""
        eos = self.tgt_vocab.eos_id
        return [torch.tensor(self.tgt_vocab.encode(self.tgt_tok.tokenize(self.norm(t))) + [eos]) for t in texts]

    def reference(self, text: str) -> str:
        """A reference as the model would write it (normalised, tokenized, detokenized)."""
        return self.tgt_tok.detokenize(self.tgt_tok.tokenize(self.norm(text)))

    def batches(self, src: list[str], tgt: list[str], batch_size: int, **kw) -> PairBatcher:
        return PairBatcher(self.encode_src(src), self.encode_tgt(tgt), batch_size, self.src_vocab.pad_id, **kw)

    def generate(self, texts: list[str], beam: int = 1, max_len: int | None = None, alpha: float = 1.0,
                 batch_size: int = 128, attention: bool = False, unk_replace: bool = False) -> list[Output]:
        """Decode `texts` (greedy for beam 1), in their order."""
        hyps = decode(self.model, self.encode_src(texts), beam, max_len or self.data["max_tgt_len"], alpha,
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

    def evaluate(self, src: list[str], tgt: list[str], beam: int = 1, alpha: float = 1.0,
                 max_len: int | None = None) -> dict:
        """bleu, chrf, exact_match, token_f1, n (and the outputs) against references `tgt`."""
        outs = self.generate(src, beam, max_len, alpha)
        m = generation_metrics([o.text for o in outs], [self.reference(t) for t in tgt])
        return {**m, "outputs": outs}

    def meta(self, train_cfg) -> dict:
        vocab = {"src_tokenizer": self.src_tok.to_json(), "tgt_tokenizer": self.tgt_tok.to_json(),
                 "src_vocab": self.src_vocab.to_json(), "tgt_vocab": self.tgt_vocab.to_json()}
        return task_meta(self.task, self.model.cfg.to_json(), self.data, train_cfg, vocab)

    @classmethod
    def load(cls, path: str | Path, task: str = TASK, device: str = "cpu") -> Seq2SeqPipeline:
        cfg, v, model = runtime.load_model(path, task, lambda m: Seq2Seq(Seq2SeqConfig.from_json(m)), device)
        return cls(task, tokenizer_from_json(v["src_tokenizer"]), tokenizer_from_json(v["tgt_tokenizer"]),
                   Vocab.from_json(v["src_vocab"]), Vocab.from_json(v["tgt_vocab"]), model, cfg["data"])


def build_pipeline(a: argparse.Namespace, task: str, train: Pairs, data: dict) -> Seq2SeqPipeline:
    """Tokenizers, vocabularies and a fresh model from the training pairs and the flags."""
    src = [normalize(s, data["lowercase"], data["nfkc"], data["split_punct"]) for s in train.src]
    tgt = [normalize(t, data["lowercase"], data["nfkc"], data["split_punct"]) for t in train.tgt]
    if a.shared_vocab:
        src_tok = tgt_tok = build_tokenizer(a.tokenizer, src + tgt, False, a.subword_vocab)
        src_toks, tgt_toks = [src_tok.tokenize(s) for s in src], [tgt_tok.tokenize(t) for t in tgt]
        src_vocab = tgt_vocab = Vocab.build(src_toks + tgt_toks, a.min_freq, a.max_vocab)
    else:
        src_tok = build_tokenizer(a.tokenizer, src, False, a.subword_vocab)
        tgt_tok = build_tokenizer(a.tokenizer, tgt, False, a.subword_vocab)
        src_toks, tgt_toks = [src_tok.tokenize(s) for s in src], [tgt_tok.tokenize(t) for t in tgt]
        src_vocab = Vocab.build(src_toks, a.min_freq, a.max_vocab)
        tgt_vocab = Vocab.build(tgt_toks, a.min_freq, a.max_vocab)
    longest_src, longest_tgt = max(map(len, src_toks)), max(map(len, tgt_toks))
    data["max_src_len"] = a.max_src_len or max(20, 2 * longest_src)
    data["max_tgt_len"] = max(10, 2 * longest_tgt + 2)
    enc = common.encoder_config(a, len(src_vocab), src_vocab.pad_id)
    cfg = Seq2SeqConfig(enc, len(tgt_vocab), a.dec_embed or a.embed, a.dec_hidden, a.dec_layers or a.layers,
                        a.dec_cell or a.cell, a.attention, a.attn_dim, a.input_feed, a.bridge, a.dropout,
                        tgt_vocab.pad_id, tgt_vocab.bos_id, tgt_vocab.eos_id)
    torch.manual_seed(a.seed)
    try:
        model = Seq2Seq(cfg)
    except ValueError as e:
        raise UserError(str(e)) from None
    return Seq2SeqPipeline(task, src_tok, tgt_tok, src_vocab, tgt_vocab, model, data)


def fit(a: argparse.Namespace, pipe: Seq2SeqPipeline, out: Path, train: Pairs, eval_fn, metric: str, mode: str):
    """Train `pipe.model` on `train` with the shared Trainer; returns the Trainer's final state."""
    tcfg = common.train_config(a)  # also checked by model_flags, before any data is read
    batches = pipe.batches(train.src, train.tgt, tcfg.batch_size, shuffle=True, seed=a.seed)
    tf = TeacherForcing(a.teacher_forcing, a.tf_final, a.tf_decay, a.tf_steps or tcfg.epochs * len(batches))
    bos, pad = pipe._bos_pad()
    trainer: Trainer | None = None

    def step_fn(model, batch):  # the ratio follows the Trainer's global step (scheduled sampling)
        time_frac = trainer.clock() / tcfg.time_budget if tcfg.time_budget else 0.0
        ratio = tf.ratio(trainer.state["step"], time_frac)
        logits, _ = model(batch.ids, batch.lengths, decoder_inputs(batch.targets, bos, pad), ratio)
        return seq2seq_loss(logits, batch.targets, a.label_smoothing)

    trainer = Trainer(pipe.model, tcfg, out, step_fn, eval_fn, metric=metric, mode=mode, meta=pipe.meta(tcfg))
    return trainer.fit(batches, resume=a.resume)


def model_flags(a: argparse.Namespace) -> None:
    """Check the training and seq2seq flags before any data is read."""
    common.train_config(a)
    if not 0 <= a.label_smoothing < 1:
        raise UserError(f"--label-smoothing must be in [0, 1), got {a.label_smoothing}")
    if not (0 <= a.teacher_forcing <= 1 and 0 <= a.tf_final <= 1):
        raise UserError("--teacher-forcing and --tf-final must be in [0, 1]")
    if a.tf_decay == "none":
        a.tf_final = a.teacher_forcing
