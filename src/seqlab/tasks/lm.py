"""Language modelling end to end: `seqlab lm train | eval | generate`.

`LMPipeline` is what a checkpoint holds: tokenizer + vocabulary + `LanguageModel`. It turns a
text into one long sequence of token ids, scores texts, and writes new ones; it is saved and
loaded as one unit (task "lm").

Levels: 'char' reads the text as it is, newlines included. 'word' and 'subword' (BPE learned from
the training text) tokenize each line and end it with <eos>, so the model learns where lines end
and a generated <eos> prints as a newline.

Training reads the text as `--batch` contiguous streams, `--seq-len` tokens per step
(`seqlab.data.streams`); the final state of a step is the start state of the next (detached:
truncated BPTT) and is reset to zeros at each epoch start. The carried state is part of the
`last/` checkpoint, so a run resumed inside an epoch ends with the same weights as an
uninterrupted one. Validation reads the whole held-out text as one sequence with the state
carried (`sequence_nll`), and reports loss in nats/token, perplexity and bits per character
(for word and subword levels, the total over all characters of the text).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.readers import read_text
from seqlab.data.streams import StreamBatcher
from seqlab.data.vocab import EOS
from seqlab.decode.sampling import generate
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.dynamic_eval import dynamic_nll
from seqlab.models.language_model import LanguageModel, LMConfig, detach_state, lm_metrics, sequence_nll
from seqlab.tasks import common
from seqlab.train import Trainer
from seqlab.train.checkpoint import task_meta

TASK = "lm"


def text_tokens(tokenizer, text: str) -> list[str]:
    """The token strings of a whole text: characters as they are, or each line's tokens + <eos>."""
    if tokenizer.kind == "char":
        return tokenizer.tokenize(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":  # a final newline ends the last line; it opens no new one
        lines.pop()
    return [t for line in lines for t in (*tokenizer.tokenize(line), EOS)]


class LMPipeline:
    """Tokenizer, vocabulary and language model: text in, scores and new text out."""

    def __init__(self, tokenizer, vocab: Vocab, model: LanguageModel, data: dict):
        self.tokenizer, self.vocab, self.model, self.data = tokenizer, vocab, model, data

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

    def evaluate(self, text: str, source: str = "the text", dynamic: tuple[int, float] | None = None) -> dict:
        """loss (nats/token), perplexity, bits_per_char, tokens, unk_rate over the whole text; with
        `dynamic` = (segment, lr), under dynamic evaluation (models/dynamic_eval.py)."""
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

    def meta(self, train_cfg) -> dict:
        vocab = {"tokenizer": self.tokenizer.to_json(), "vocab": self.vocab.to_json()}
        return task_meta(TASK, self.model.cfg.to_json(), self.data, train_cfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> LMPipeline:
        cfg, v, model = runtime.load_model(path, TASK, lambda m: LanguageModel(LMConfig.from_json(m)), device)
        return cls(tokenizer_from_json(v["tokenizer"]), Vocab.from_json(v["vocab"]), model, cfg["data"])


def unigram_bits(ids: torch.Tensor) -> float:
    """Entropy of the token frequencies in bits/token: the loss of the best context-free model."""
    counts = torch.tensor(list(Counter(ids.tolist()).values()), dtype=torch.float64)
    p = counts / counts.sum()
    return float(-(p * p.log2()).sum())


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


LARGE_FROM_MINUTES = 10.0


def auto_size(a: argparse.Namespace) -> str:
    """Fill in the defaults that depend on the budget: --hidden 256 below 10 minutes of --time (or
    with no --time), 512 from there on; --embed = --hidden (tied weights). Measured on Tiny
    Shakespeare: at 75 s and 5 min the small model is ahead, at 15 and 30 min the large one
    (README). Returns a note of what was chosen ('' if the user set everything)."""
    chosen = []
    if a.hidden is None:
        a.hidden = 512 if a.time >= LARGE_FROM_MINUTES else 256
        chosen.append(f"--hidden {a.hidden}")
    if a.embed is None:
        a.embed = a.hidden
        chosen.append(f"--embed {a.embed}")
    return f"defaults for this budget: {' '.join(chosen)}" if chosen else ""


def cmd_train(a: argparse.Namespace) -> int:
    note = auto_size(a)
    tcfg = common.train_config(a)
    if a.seq_len < 1:
        raise UserError("--seq-len must be at least 1")
    if a.bidirectional:
        raise UserError("--bidirectional would let the language model read the token it must predict; drop it")
    if not a.valid and not 0 < a.valid_fraction < 1:
        raise UserError(f"--valid-fraction must be between 0 and 1, got {a.valid_fraction}")
    out = common.check_out_dir(a.out, a.resume, a.overwrite)
    text = read_text(a.data, a.encoding)
    if a.valid:
        valid, valid_src = read_text(a.valid, a.encoding), a.valid
    else:  # hold out the end of the text
        cut = int(len(text) * (1 - a.valid_fraction))
        text, valid, valid_src = text[:cut], text[cut:], f"the last {a.valid_fraction:.0%} of {a.data}"
    tok = build_tokenizer(a.level, text.split("\n"), a.lowercase, a.subword_vocab)
    vocab = Vocab.build([text_tokens(tok, text)], a.min_freq, a.max_vocab)
    data = {"level": a.level, "lowercase": a.lowercase, "encoding": a.encoding, "seq_len": a.seq_len,
            "min_freq": a.min_freq, "max_vocab": a.max_vocab, "subword_vocab": a.subword_vocab}
    cfg = LMConfig(common.encoder_config(a, len(vocab), vocab.pad_id), not a.no_tie, a.dropout)
    torch.manual_seed(a.seed)
    pipe = LMPipeline(tok, vocab, LanguageModel(cfg), data)
    train_ids = pipe.encode(text)
    need = tcfg.batch_size * a.seq_len + 1
    if len(train_ids) < need:
        raise UserError(f"{a.data}: the training text has {len(train_ids)} {a.level} tokens, fewer than one "
                        f"batch (--batch {tcfg.batch_size} x --seq-len {a.seq_len} + 1 = {need}); "
                        "give more text or lower --batch or --seq-len")
    if len(pipe.encode(valid)) < 2:
        raise UserError(f"{valid_src}: the validation text has fewer than 2 tokens; "
                        "give a longer --valid file or a larger --valid-fraction")
    batches = StreamBatcher(train_ids, tcfg.batch_size, a.seq_len)
    step_fn = CarriedStateStep(batches)
    def eval_fn(model):
        m = pipe.evaluate(valid, valid_src)
        return {k: m[k] for k in ("loss", "perplexity", "bits_per_char")}

    n_params = sum(p.numel() for p in pipe.model.parameters())
    if note:
        print(note)
    print(f"train {len(train_ids):,} {a.level} tokens as {batches.batch} streams of {batches.stream_len:,} "
          f"({len(batches)} steps/epoch); valid {valid_src}; vocab {len(vocab)}; {n_params:,} parameters"
          f"{', tied weights' if cfg.tied else ''}; unigram entropy {unigram_bits(train_ids):.3f} bits/token")
    trainer = Trainer(pipe.model, tcfg, out, step_fn, eval_fn, metric="loss", mode="min", meta=pipe.meta(tcfg))
    st = trainer.fit(batches, resume=a.resume)
    m = LMPipeline.load(out / "best").evaluate(valid, valid_src)
    summary = {"valid_loss": m["loss"], "valid_perplexity": m["perplexity"], "valid_bits_per_char": m["bits_per_char"],
               "best_epoch": st["best_epoch"], "train_seconds": round(st["elapsed"], 1), "steps": st["step"],
               "parameters": n_params}
    common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"best valid loss {m['loss']:.4f} nats/token, perplexity {m['perplexity']:.2f}, "
          f"{m['bits_per_char']:.3f} bits/char (epoch {st['best_epoch']}), trained {st['elapsed']:.0f}s; "
          f"model in {out / 'best'}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = LMPipeline.load(a.model, a.device)
    if a.dynamic and (a.dynamic_lr < 0 or a.dynamic_segment < 1):
        raise UserError("--dynamic-lr must be >= 0 and --dynamic-segment at least 1")
    dynamic = (a.dynamic_segment, a.dynamic_lr) if a.dynamic else None
    m = pipe.evaluate(read_text(a.data, a.encoding or pipe.data["encoding"]), str(a.data), dynamic)
    if a.json:
        print(json.dumps({"data": str(a.data), **m}))
    else:
        print(f"{a.data}: {m['tokens']:,} tokens  loss {m['loss']:.4f} nats/token  perplexity "
              f"{m['perplexity']:.2f}  {m['bits_per_char']:.3f} bits/char  unknown {m['unk_rate']:.2%}"
              + ("  (dynamic evaluation)" if dynamic else ""))
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    if not a.greedy and not a.temperature > 0:
        raise UserError(f"--temperature must be greater than 0, got {a.temperature}; use --greedy for argmax")
    if not 0 < a.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {a.top_p}; 1 keeps every token")
    if a.top_k < 0 or a.length < 1 or a.num < 1:
        raise UserError("--top-k must be at least 0, and --length and --num at least 1")
    pipe = LMPipeline.load(a.model, a.device)
    prime_ids = pipe.encode_prime(a.prime)
    device = next(pipe.model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(a.seed) if a.seed is not None else None
    stream = a.num == 1
    sep = "" if pipe.level == "char" or not a.prime else " "
    if stream:
        sys.stdout.write(a.prime + sep)

    def on_step(t, tokens):
        sys.stdout.write(pipe.token_text(int(tokens[0])))
        sys.stdout.flush()

    out = generate(pipe.model, prime_ids, a.length, a.num, a.temperature, a.top_k, a.top_p, gen,
                   a.greedy, on_step if stream else None)
    if stream:
        sys.stdout.write("\n")
        return 0
    for k, row in enumerate(out):
        print(f"=== sample {k + 1} ===\n{a.prime}{sep}{pipe.decode(row)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="language models: train on a text, score texts, generate",
                       description="Train, evaluate and sample from a recurrent language model.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,generate}")

    t = s.add_parser("train", help="train a language model on a plain-text file")
    t.add_argument("--data", required=True, help="training text (plain text, optionally .gz)")
    t.add_argument("--valid", help="validation text; default: the last --valid-fraction of --data")
    t.add_argument("--valid-fraction", type=float, default=0.1,
                   help="share at the end of --data held out when no --valid is given (default: %(default)s)")
    t.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")
    common.add_tokenizer_args(t, default="char", flag="--level", source="--data", max_len=False)
    t.add_argument("--seq-len", type=int, default=64,
                   help="tokens per stream per step; gradients flow back at most this far (default: %(default)s)")
    t.add_argument("--no-tie", action="store_true",
                   help="do not share the embedding and output weights (they are shared when --embed == --hidden)")
    common.add_encoder_args(t, auto={"hidden": "256, or 512 with --time of 10 minutes or more",
                                     "embed": "the same as --hidden, so the weights can be tied"})
    common.add_train_args(t, epochs=10, batch=32, lr=6e-3, schedule="cosine", amp="auto")
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="loss, perplexity and bits per character on a text")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a language model")
    e.add_argument("--data", required=True, help="plain-text file to score, read as one sequence")
    e.add_argument("--encoding", default=None, help="text encoding (default: as in training)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    e.add_argument("--dynamic", action="store_true",
                   help="dynamic evaluation: after scoring each segment, take one RMSprop step on it, so the model "
                        "adapts to the text as it reads (Krause et al. 2018); not comparable with static loss")
    e.add_argument("--dynamic-lr", type=float, default=1e-3,
                   help="learning rate of the --dynamic updates (default: %(default)s)")
    e.add_argument("--dynamic-segment", type=int, default=50,
                   help="tokens scored between two --dynamic updates (default: %(default)s)")
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    e.set_defaults(func=cmd_eval)

    g = s.add_parser("generate", help="write new text, continuing a prime")
    g.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a language model")
    g.add_argument("--prime", default="", help="text to start from (default: the start of a line)")
    g.add_argument("--length", type=int, default=200, help="tokens to generate (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="> 0; below 1 safer and more repetitive, above 1 more random (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=0,
                   help="sample among the k most likely tokens only; 0 = all (default: %(default)s)")
    g.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: the fewest tokens with this much probability, in (0, 1] "
                        "(default: %(default)s)")
    g.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    g.add_argument("--num", type=int, default=1, help="samples, generated together as one batch (default: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples (default: random)")
    g.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    g.set_defaults(func=cmd_generate)
