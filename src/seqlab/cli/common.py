"""Command-line pieces every task shares: the flags for data files, the encoder and training,
and the step from parsed flags to the config dataclasses."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seqlab.cli.train_run import Heartbeat, TrainRun  # noqa: F401  (re-exported: common.TrainRun)
from seqlab.errors import UserError
from seqlab.models.encoder import CELLS, EncoderConfig
from seqlab.pipelines.base import check_out_dir, write_text_atomic  # noqa: F401  (re-exported)
from seqlab.pipelines.config import ConfigError, _check_range, parse_minutes
from seqlab.train.callbacks import LOGGERS
from seqlab.train.trainer import AMP, SCHEDULES, TrainConfig, resolve_amp


def add_table_args(p: argparse.ArgumentParser, text_default: str = "text") -> None:
    g = p.add_argument_group("input files")
    g.add_argument("--text-col", default=text_default,
                   help="column holding the text: a header name or a 0-based index (default: %(default)s)")
    g.add_argument("--delimiter", default=None,
                   help="field separator; default: ',' for .csv, TAB for .tsv or a tab in the first line")
    g.add_argument("--no-header", dest="header", action="store_false",
                   help="the files have no header row (give columns by index)")
    g.add_argument("--encoding", default="utf-8",
                   help="text encoding of the files, e.g. latin-1 (default: %(default)s)")


def add_tokenizer_args(p: argparse.ArgumentParser, default: str = "word", flag: str = "--tokenizer",
                       source: str = "--train", max_len: bool = True) -> None:
    """Tokenizer and vocabulary flags; `flag` names the level choice (the LM calls it --level)."""
    g = p.add_argument_group("tokens and vocabulary")
    g.add_argument(flag, choices=["char", "word", "subword"], default=default,
                   help=f"split text into characters, words, or BPE subwords learned from {source} "
                        "(default: %(default)s)")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=False,
                   help="lower-case all text first (--no-lowercase to keep case where a task's default is on)")
    g.add_argument("--min-freq", type=int, default=1,
                   help="keep tokens seen at least this often in training; rarer ones become <unk> "
                        "(default: %(default)s)")
    g.add_argument("--max-vocab", type=int, default=None,
                   help="keep at most this many tokens, most frequent first (default: no limit)")
    g.add_argument("--subword-vocab", type=int, default=8000,
                   help=f"BPE vocabulary size for {flag} subword (default: %(default)s)")
    if max_len:
        g.add_argument("--max-len", type=int, default=0,
                       help="truncate examples to this many tokens; 0 = keep all (default: %(default)s)")


def add_encoder_args(p: argparse.ArgumentParser, hidden: int = 256, embed: int = 128,
                     auto: dict[str, str] | None = None) -> None:
    """Encoder flags. `auto` names flags whose default the task decides later (None until then),
    mapping each to the text its help shows as the default."""
    g = p.add_argument_group("recurrent encoder")
    g.add_argument("--cell", choices=CELLS, default=None if "cell" in (auto or {}) else "lstm",
                   help="recurrent cell: rnn (tanh), rnn_relu, lstm, gru, or none (bag of embeddings) "
                        f"(default: {(auto or {}).get('cell', '%(default)s')})")
    g.add_argument("--layers", type=int, default=1, help="stacked layers (default: %(default)s)")
    shown = {"hidden": hidden, "embed": embed} | (auto or {})
    g.add_argument("--hidden", type=int, default=None if "hidden" in (auto or {}) else hidden,
                   help=f"hidden size per direction (default: {shown['hidden']})")
    g.add_argument("--embed", type=int, default=None if "embed" in (auto or {}) else embed,
                   help=f"embedding size (default: {shown['embed']})")
    g.add_argument("--bidirectional", action="store_true", help="read each sequence both ways")
    g.add_argument("--dropout", type=float, default=0.3,
                   help="dropout between stacked layers and before the output layer (default: %(default)s)")
    g.add_argument("--embed-dropout", type=float, default=0.0,
                   help="dropout on the embeddings (default: %(default)s)")
    g.add_argument("--locked-dropout", action="store_true",
                   help="use one dropout mask per sequence, the same at every step (variational)")
    g.add_argument("--residual", action="store_true", help="residual connections between stacked layers")
    g.add_argument("--layer-norm", action="store_true", help="layer normalisation after each layer")


def add_vector_args(p: argparse.ArgumentParser, finetune: bool = False) -> None:
    """--embeddings FILE and --freeze-embeddings; with `finetune` also --init-from LM_RUN and how to fine-tune
    it (ULMFiT: discriminative learning rates, gradual unfreezing)."""
    g = p.add_argument_group("pretrained start")
    g.add_argument("--embeddings", metavar="FILE", default=None,
                   help="start the token embedding from your word vectors: GloVe text, word2vec text or binary, "
                        "fastText .vec (optionally .gz), or a spaCy pipeline directory with vectors (en_core_web_md, "
                        "_lg); only the vocabulary's words are read, --embed becomes their dimension, and the "
                        "coverage is printed")
    g.add_argument("--freeze-embeddings", action="store_true",
                   help="keep the pretrained embedding as it is (not trained)")
    if not finetune:
        return
    g.add_argument("--init-from", metavar="LM_RUN", default=None,
                   help="start from a word-level language model (a `seqlab lm train` run): its embedding and "
                        "encoder, mapped onto this vocabulary by token; sizes and cell come from the LM")
    g.add_argument("--init-from-backward", metavar="LM_RUN", default=None,
                   help="with --init-from: a backward LM (`seqlab lm train --backward` on the same kind of text); a "
                        "classifier gains a second member reading each text from its end, started from it, and "
                        "averages the two (ULMFiT's bidirectional setup); a tagger reads its outputs beside the "
                        "forward LM's")
    g.add_argument("--lr-decay-per-layer", type=float, default=1.0,
                   help="discriminative learning rates: each layer group below the top trains at --lr divided by "
                        "this once more (ULMFiT: 2.6) (default: %(default)s)")
    g.add_argument("--gradual-unfreeze", action="store_true",
                   help="epoch 1 trains only the top layer group, each later epoch one more (ULMFiT)")


def add_train_args(p: argparse.ArgumentParser, epochs: int = 10, batch: int = 64, lr: float = 2e-3,
                   schedule: str | None = "constant", amp: str = "none", lr_help: str | None = None,
                   schedule_help: str | None = None) -> None:
    """Training flags; a task that picks the learning rate (schedule) itself passes lr=None and `lr_help`
    (schedule=None and `schedule_help`)."""
    g = p.add_argument_group("training")
    g.add_argument("--out", required=True, type=out_dir_arg, help="run directory for checkpoints, logs and plots")
    g.add_argument("--epochs", type=int, default=None,
                   help=f"passes over the training data (default: {epochs}; with --time and no --epochs, as many "
                        "as the time allows)")
    p.set_defaults(default_epochs=epochs)
    g.add_argument("--batch", type=int, default=batch,
                   help="examples per batch, per process under torchrun (default: %(default)s)")
    g.add_argument("--lr", type=float, default=lr,
                   help=f"AdamW learning rate (default: {lr_help or lr})")
    g.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default: %(default)s)")
    g.add_argument("--clip", type=float, default=1.0,
                   help="clip the global gradient norm to this; 0 = no clipping (default: %(default)s)")
    g.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                   help="learning-rate schedule over all steps; slanted: ULMFiT's slanted triangle, up over the "
                        f"first 10%%, then down to 1/32 of --lr (default: {schedule_help or '%(default)s'})")
    g.add_argument("--warmup", type=int, default=0, help="linear warm-up steps (default: %(default)s)")
    g.add_argument("--patience", type=int, default=3,
                   help="stop after this many dev evaluations without improvement; 0 = never "
                        "(default: %(default)s)")
    g.add_argument("--eval-every", type=int, default=0,
                   help="also evaluate on dev every N steps (besides each epoch end); 0 = only at "
                        "epoch ends (default: %(default)s)")
    g.add_argument("--time", type=_duration, default=0.0,
                   help="stop after this much training time (evaluation not counted): minutes (15), or 90s, 15m, "
                        "1.5h; a decaying --schedule then ends with the time; 0 = no limit (default: %(default)s)")
    g.add_argument("--amp", choices=(*AMP, "auto"), default=amp,
                   help="mixed precision: bf16 (CPUs with AVX-512 BF16 or AMX, and GPUs), fp16 (GPU only), or "
                        "auto (bf16 where the hardware runs it natively, else none) (default: %(default)s)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    add_runtime_args(p, device="auto", group=g)
    g.add_argument("--save-every", type=int, default=500,
                   help="also checkpoint last/ every N steps, for resuming after a kill (default: %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    g.add_argument("--logger", choices=LOGGERS, default="jsonl",
                   help="metrics.jsonl (always written) or also TensorBoard event files in OUT/tensorboard "
                        "(needs pip install 'seqlab[tensorboard]') (default: %(default)s)")
    g.add_argument("--config", default=None,
                   help="a run.yaml (every run writes one) to start from; flags given on the command line win")
    p.set_defaults(_parser=p)
    g.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")


DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _device(text: str) -> str:
    if not DEVICE_RE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N")
    return text.strip()


def add_runtime_args(p: argparse.ArgumentParser, device: str = "cpu", group=None) -> None:
    """--device and --threads: every command that runs a model (train, eval, predict, generate, ask) has
    both; `seqlab.cli.main` applies --threads before the command runs (`apply_threads`)."""
    g = group if group is not None else p.add_argument_group("device")
    shown = "auto (CUDA when present), cpu or cuda" if device == "auto" else "cpu, cuda or auto (CUDA when present)"
    g.add_argument("--device", type=_device, default=device, help=f"{shown} (default: %(default)s)")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch; 0 = torch's default (default: %(default)s)")


def apply_threads(a: argparse.Namespace) -> None:
    """torch.set_num_threads(--threads) when the command has the flag and it is not 0."""
    n = getattr(a, "threads", 0)
    if n < 0:
        raise UserError(f"--threads must be at least 0 (0 = torch's default), not {n}")
    if n:
        import torch

        torch.set_num_threads(n)


def _duration(text: str) -> float:
    try:
        return parse_minutes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def given_flags(a: argparse.Namespace) -> set[str]:
    """The dests of the flags typed on the command line (not left at their defaults)."""
    parser, argv = getattr(a, "_parser", None), getattr(a, "_argv", None)
    if parser is None or argv is None:
        return set()
    by_option = {o: act.dest for act in parser._actions for o in act.option_strings}
    return {by_option[t.split("=", 1)[0]] for t in argv if t.split("=", 1)[0] in by_option}


def config_from_args(config_cls, a: argparse.Namespace):
    """The run's config: `--config FILE` (or the defaults), then the flags typed on the command line."""
    if getattr(a, "config", None):
        base = config_cls.read(a.config)
        given = given_flags(a)
        leaves = config_cls.leaf_names()
        return base.with_values(**{k: getattr(a, k) for k in given if k in leaves}).validate()
    return config_cls.from_args(a).validate()


def flag_of(a: argparse.Namespace, param: str) -> str | None:
    """The command-line flag of a config parameter ("train.lr" -> "--lr"), when the command has one."""
    parser = getattr(a, "_parser", None)
    leaf = param.split(".")[-1].split("[")[0]
    if parser is None:
        return None
    for act in parser._actions:
        if act.dest == leaf and act.option_strings:
            return act.option_strings[-1] if act.option_strings[-1].startswith("--") else act.option_strings[0]
    return None


def apply_config_defaults(p: argparse.ArgumentParser, config_cls) -> None:
    """Make every flag named like a config leaf default to the config's own default (one source of truth)."""
    cfg = config_cls()
    leaves = config_cls.leaf_names()
    for act in p._actions:
        if act.dest in leaves and act.default is not None:
            act.default = cfg.get(leaves[act.dest])


def encoder_config(a: argparse.Namespace, vocab_size: int, pad_id: int = 0, input_dim: int = 0) -> EncoderConfig:
    for name in ("layers", "hidden", "embed"):
        if getattr(a, name) < 1:
            raise UserError(f"--{name} must be at least 1")
    return EncoderConfig(
        vocab_size=vocab_size, input_dim=input_dim, embed_dim=a.embed, hidden=a.hidden, layers=a.layers,
        cell=a.cell, bidirectional=a.bidirectional, dropout=a.dropout, embed_dropout=a.embed_dropout,
        locked_dropout=a.locked_dropout, residual=a.residual, layer_norm=a.layer_norm, pad_id=pad_id,
    )


def train_config(a: argparse.Namespace) -> TrainConfig:
    if a.epochs is None:  # --time alone means "train until the time is up"
        a.epochs = 0 if a.time > 0 else a.default_epochs
    elif a.epochs < 1:
        raise UserError("--epochs must be at least 1")
    if a.batch < 1:
        raise UserError("--batch must be at least 1")
    if a.time < 0:
        raise UserError("--time must be positive (minutes), or 0 for no limit")
    if a.lr is not None and a.lr <= 0:
        raise UserError("--lr must be positive")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    return TrainConfig(
        epochs=a.epochs, batch_size=a.batch, lr=a.lr, weight_decay=a.weight_decay, clip=a.clip,
        schedule=a.schedule, warmup=a.warmup, patience=a.patience, seed=a.seed, device=a.device,
        save_every=a.save_every, time_budget=a.time * 60, eval_every=a.eval_every,
        amp=resolve_amp(a.amp, a.device),
    )


# ---- progress and wall time -------------------------------------------------------------------------
def num_arg(kind: type = int, lo=None, hi=None, *, lo_open=False, hi_open=False):
    """An argparse `type=` for a numeric flag that has no config field (the scratch commands): it parses
    `kind` (int or float) and checks the range as `num` does, so a bad value is argparse's one-line error
    naming the flag ("argument --hidden: must be at least 1, not 0"), before the command runs."""
    md = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            want = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}") from None
        try:
            _check_range("", v, md)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(e.message) from None
        return v

    parse.__name__, parse.kind = kind.__name__, kind
    return parse


def out_dir_arg(text: str) -> str:
    """argparse `type=` of a run directory (--out): refuse, while parsing, a path that is an existing
    file or lies under one, so the error comes before any data is read or any model built."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory; give another --out")
    above = next((p for p in path.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise argparse.ArgumentTypeError(f"{above} is a file, so {text} cannot be a directory; give another --out")
    return text
