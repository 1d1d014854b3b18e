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
uninterrupted one.

A text file is tokenized once, streaming, into a token store (`seqlab.pipelines.lm_corpus`,
`seqlab.data.token_store`): a memory-mapped file of uint8/uint16/uint32 ids in `cache` (default
OUT/tokens for files of 4 MB and more), reused by the next run on the same text with the same token
settings; the batches are read from it window by window, so a corpus larger than memory trains.

Validation scores the held-out text (`valid`, or the last `dev_fraction` of the training text) as
`valid_streams` parallel streams with the state carried (`stream_nll`, as PyTorch's
word_language_model evaluates), up to `valid_tokens` tokens (0: all; under `time`, as many as one
CPU core scores in ~5% of the budget, at least 250,000: `lm_corpus.auto_valid_tokens`), and
reports loss in nats/token, perplexity and bits per character (for word and subword levels, over
the characters of the text scored).
`evaluate(..., exact=True)` reads it as one sequence instead (`sequence_nll`).

The defaults follow the time budget: with `hidden` and `embed` left None, a 1x256 model below 10
minutes of `time` (or with no time limit), 1x512 from 10 minutes; embed = hidden, so the input and
output weights are tied; AdamW 0.006 with a cosine schedule; amp "auto". The sizes chosen are
written into the run's config (run.yaml, `lm.config`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from seqlab.data import Vocab, tokenizer_from_json
from seqlab.data.streams import StreamBatcher
from seqlab.data.vocab import EOS
from seqlab.decode.sampling import generate as sample_tokens
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.dynamic_eval import dynamic_nll
from seqlab.models.language_model import LanguageModel, lm_metrics
from seqlab.models.language_model import LMConfig as ModelConfig
from seqlab.pipelines.base import Pipeline, Readout, Steps, check_out_dir, finish, run_training, shown
from seqlab.pipelines.lm_config import (  # noqa: F401  (the settings live there; imported from here too)
    DEFAULT_EPOCHS,
    LARGE_FROM_MINUTES,
    LMConfig,
    LMData,
    LMModel,
    LMTrain,
)
from seqlab.pipelines.lm_corpus import (
    Validation,
    auto_valid_tokens,
    encode_text,
    oriented,
    prepare_corpus,
    read_source,
    score,
    text_tokens,
    unigram_bits_of_counts,
)
from seqlab.pipelines.lm_step import CarriedStateStep, WeightAverage
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.transfer import adopt_pretrained, apply_pretrained, pretrained_tokenizer
from seqlab.train.callbacks import SampleText
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig


# ---- text --------------------------------------------------------------------------------------
def unigram_bits(ids: torch.Tensor) -> float:
    """Entropy of the token frequencies in bits/token: the loss of the best context-free model."""
    return unigram_bits_of_counts(torch.bincount(torch.as_tensor(ids).long()).numpy())


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
        cfg = adopt_pretrained(cls.make_config(config, **overrides), log, "lm")  # --init-from: the LM's sizes
        chosen = cfg.budget_sizes()
        cfg = cfg.resolved()
        m, dc = cfg.model, cfg.data
        tcfg = cfg.train.trainer_config(DEFAULT_EPOCHS)
        if out is not None and not overwrite:
            check_out_dir(out, resume, False)  # a run in the way is said before any tokenizing
        cache = Path(dc.cache) if dc.cache else Path(out) / "tokens" if out is not None else None
        corpus = prepare_corpus(train, valid, dc, cfg.train.dev_fraction, cache, bool(dc.cache), log,
                                pretrained_tokenizer(m))
        tok, vocab = corpus.tokenizer, corpus.vocab
        data = {"level": dc.level, "lowercase": dc.lowercase, "encoding": dc.encoding, "seq_len": dc.seq_len,
                "min_freq": dc.min_freq, "max_vocab": dc.max_vocab, "subword_vocab": dc.subword_vocab,
                "backward": dc.backward}
        enc = replace(m.encoder_config(len(vocab), vocab.pad_id), weight_drop=m.weight_drop,
                      embed_row_dropout=m.embed_row_dropout)  # AWD-LSTM's regularisers (off by default)
        mcfg = ModelConfig(enc, not m.no_tie, m.dropout, m.ar, m.tar)
        torch.manual_seed(cfg.train.seed)
        pipe = cls(tok, vocab, LanguageModel(mcfg), data, cfg)
        apply_pretrained(None, vocab, m, log, lm_model=pipe.model)
        train_ids = oriented(corpus.check(tcfg.batch_size, dc.seq_len, dc.level), dc.backward)
        if dc.backward:  # the held-out text is scored in the same direction
            corpus = replace(corpus, train=train_ids, valid=oriented(corpus.valid, True))
            log("backward: the model reads the text from its end to its start (each token from the ones after it)")
        batches = StreamBatcher(train_ids, tcfg.batch_size, dc.seq_len, len(vocab), corpus.store.name)
        cap = cfg.train.valid_tokens or auto_valid_tokens(pipe.model, len(corpus.valid) - 1, cfg.train.time)
        validation = Validation(corpus, dc.level, cfg.train.valid_streams, cap)
        if chosen:
            log("defaults for this budget: " + ", ".join(f"{k} {v}" for k, v in chosen.items()))
        n_params = sum(p.numel() for p in pipe.model.parameters())
        log(f"train {len(train_ids):,} {dc.level} tokens as {batches.batch} streams of {batches.stream_len:,} "
            f"({len(batches)} steps/epoch); valid {corpus.valid_name} ({validation}); vocab {len(vocab)}; "
            f"{n_params:,} parameters"
            f"{', tied weights' if mcfg.tied else ''}; unigram entropy "
            f"{unigram_bits_of_counts(corpus.counts):.3f} bits/token")
        if cfg.train.sample_every:  # a SampleText callback beside the run's own (metrics.jsonl, loss.png, ...)
            if callbacks is None:
                from seqlab.train.callbacks import default_callbacks

                callbacks = default_callbacks(out, cfg.train.logger)
            callbacks = [*callbacks, SampleText(pipe._progress_sample(cfg.train.seed), cfg.train.sample_every, log)]
        average = WeightAverage(cfg.train.average) if cfg.train.average else None
        if average is not None:  # averaged weights for the evaluations and best/, beside the run's callbacks
            from seqlab.train.callbacks import default_callbacks

            callbacks = [*(callbacks if callbacks is not None else default_callbacks(out, cfg.train.logger)), average]
        st = run_training(pipe, batches, CarriedStateStep(batches, average), validation, metric="loss", mode="min",
                          default_epochs=DEFAULT_EPOCHS, out=out, resume=resume, overwrite=overwrite,
                          callbacks=callbacks, log=log, trainer_config=tcfg)
        extra = {"tokenize_seconds": round(corpus.seconds, 2), "token_store": str(corpus.store.path or "")}
        if int(os.environ.get("RANK", "0")) != 0:  # rank 0 evaluated best/ and writes the results
            finish(pipe, st, dict.fromkeys(Validation.KEEP, math.nan), None, prefix="valid", extra=extra)
            return pipe
        res = validation.final(pipe.model, st.get("best"))
        finish(pipe, st, {k: res[k] for k in Validation.KEEP}, out, prefix="valid",
               extra={**extra, "valid_scored_tokens": res["tokens"], "valid_streams": res["streams"]})
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

    @property
    def backward(self) -> bool:
        """Whether the model reads text from its end to its start (`seqlab lm train --backward`)."""
        return bool(self.data.get("backward", False))

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
            return [self.vocab.eos_id, *oriented(self.vocab.encode(self.tokenizer.tokenize(prime)), self.backward)]
        chars = oriented(self.tokenizer.tokenize(prime), self.backward)
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
        """New text continuing `prime`: the prime followed by `length` generated tokens (a backward LM
        writes the `length` tokens before the prime, returned in reading order, the prime at the end).

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
        if on_token is not None and n == 1 and not self.backward:  # a backward sample is whole only at the end
            def on_step(t, tokens):
                on_token(self.token_text(int(tokens[0])))
        rows = sample_tokens(self.model, prime_ids, length, n, temperature, top_k, top_p, gen, greedy, on_step,
                             banned=self.banned_ids)
        sep = "" if self.level == "char" or not prime else " "
        texts = [self.decode(row.tolist()[::-1]) + prime if self.backward else prime + sep + self.decode(row)
                 for row in rows]
        if on_token is not None and n == 1 and self.backward:
            on_token(texts[0])
        return texts[0] if n == 1 else texts

    predict = generate  # the surface every pipeline shares

    # ---- scoring -----------------------------------------------------------------------------
    def evaluate(self, data, source: str | None = None, dynamic: tuple[int, float] | None = None, *,
                 exact: bool = False, streams: int = 32, max_tokens: int | None = None,
                 encoding: str | None = None) -> dict:
        """loss (nats/token), perplexity, bits_per_char, tokens, streams, unk_rate of `data` (a text file
        path, streamed; a string of text or a list of lines): read as `streams` parallel streams with
        the state carried (`stream_nll`), or as one sequence with `exact` (the figure of a single pass;
        the two differ by the context each stream starts without), up to `max_tokens` tokens (None:
        all); with `dynamic` = (segment, lr), under dynamic evaluation (models/dynamic_eval.py)."""
        ids, chars, name = encode_text(data, self.tokenizer, self.vocab, encoding or self.data.get("encoding", "utf-8"),
                                       source or "the text")
        ids = oriented(ids, self.backward)
        source = source or name
        if len(ids) < 2:
            raise UserError(f"{source}: {len(ids)} token, too short to score; give at least 2 tokens")
        if not dynamic:
            return score(self.model, ids, chars, self.level, self.vocab.unk_id, streams=streams,
                         max_tokens=max_tokens, exact=exact)
        ids = torch.from_numpy(np.ascontiguousarray(ids[: max_tokens + 1] if max_tokens else ids)).long()
        nll, n = dynamic_nll(self.model, ids, *dynamic)
        chars = n if self.level == "char" else chars
        unk = float((ids == self.vocab.unk_id).float().mean())
        return {**lm_metrics(float(nll.sum()), n, chars), "tokens": n, "streams": 1, "unk_rate": unk}

    # ---- files ---------------------------------------------------------------------------------
    def input_ids(self, text: str) -> torch.Tensor:
        """The model's input for `text` (time,): its characters (char level), or <eos> (a line start)
        and its tokens (word/subword), unknown tokens as <unk>; a backward LM's in reverse order."""
        if self.level == "char":
            ids = oriented(self.encode(text), self.backward)
        else:
            ids = torch.tensor(self.encode_prime(text))  # <eos> and the tokens, as a prime
        if len(ids) == 0:
            raise UserError("the text is empty; type at least one character")
        return ids

    def count_steps(self, text: str) -> int:
        """The number of steps `steps(text)` unrolls."""
        return len(self.input_ids(text))

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

    def readout(self, text: str) -> Readout:
        """Per position t, the next-token logits (n, time, vocab); scored by default on the token that
        follows in the text (the last position: on the model's most likely next token)."""
        ids = self.input_ids(text).cpu()  # (time,)

        def run(model, n: int) -> torch.Tensor:
            return model(ids.expand(n, -1))[0]

        itos = self.vocab.itos
        toks = [shown(itos[i]) for i in ids.tolist()]
        return Readout(self.model, self.model.encoder, toks, ids, run, [f"next after {t!r}" for t in toks],
                       [shown(t) for t in itos], ids[1:].tolist() + [-1], len(ids) - 1,
                       list(range(max(1, len(ids) - 1))))

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


__all__ = ["LM", "LMConfig", "LMData", "LMModel", "LMTrain", "CarriedStateStep", "read_source", "text_tokens",
           "unigram_bits"]
