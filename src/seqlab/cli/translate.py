"""`seqlab translate train | eval | predict`: flags -> TranslateConfig -> seqlab.pipelines.Translator -> print.

The model, its tokenizers and vocabularies are a `Seq2SeqPipeline` (`seqlab.pipelines.seq2seq`),
which question answering (`seqlab qa`) uses too, under task "qa".
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from pathlib import Path

from seqlab.cli import common
from seqlab.data import read_lines
from seqlab.data.pairs import Pairs, read_pairs_table, read_parallel
from seqlab.errors import UserError
from seqlab.models.attention import ATTENTIONS
from seqlab.models.seq2seq import BRIDGES, DEC_CELLS, TF_DECAYS
from seqlab.pipelines.seq2seq import SourceTruncated
from seqlab.pipelines.translate import TranslateConfig, Translator

TASK = "translate"


def warnings_as_lines(fn):
    """Run a command with SourceTruncated warnings printed as `seqlab: warning: ...` lines on stderr."""

    @functools.wraps(fn)
    def run(a: argparse.Namespace) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SourceTruncated)
            shown = warnings.showwarning

            def show(message, category, *args, **kw):
                if issubclass(category, SourceTruncated):
                    print(f"seqlab: warning: {message}", file=sys.stderr)
                else:
                    shown(message, category, *args, **kw)

            warnings.showwarning = show
            return fn(a)

    return run


def read_pairs(a: argparse.Namespace, which: str = "", encoding: str = "utf-8", cols: dict | None = None,
               ) -> Pairs | str | None:
    """--{which}data (a table: its path, or with `cols` its Pairs) or --{which}src/--{which}tgt (parallel
    files, as Pairs); None if absent."""
    table, src, tgt = (getattr(a, f"{which}{k}", None) for k in ("data", "src", "tgt"))
    if table and (src or tgt):
        raise UserError(f"give --{which}data or --{which}src/--{which}tgt, not both")
    if table:
        if cols is None:
            return table  # Translator.fit reads it with the config's columns
        return read_pairs_table(table, cols["src_col"], cols["tgt_col"], cols["delimiter"], cols["header"],
                                cols["encoding"])
    if src or tgt:
        if not (src and tgt):
            raise UserError(f"parallel files come in twos: give both --{which}src and --{which}tgt")
        return read_parallel(src, tgt, encoding)
    return None


@warnings_as_lines
def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(TranslateConfig, a)
    enc = cfg.data.encoding
    train = read_pairs(a, "", enc)
    if train is None:
        raise UserError("no training data: give --data FILE, or --src FILE --tgt FILE")
    valid, test = read_pairs(a, "valid_", enc), read_pairs(a, "test_", enc)
    run = common.TrainRun(cfg, a.out, "evaluating the best model on the valid and test pairs")
    with run:
        pipe = Translator.fit(train, valid, cfg, test=test, out=a.out, resume=a.resume, overwrite=a.overwrite,
                              callbacks=run.callbacks())
    r, out = pipe.results, Path(a.out)
    print(f"trained {r['train_seconds']:.0f}s (best epoch {r['best_epoch']}); model in {out / 'best'}")
    if (out / "data" / "test.tsv").exists():
        print(f"evaluate again with: seqlab translate eval --model {out} --data {out / 'data' / 'test.tsv'} "
              "--src-col 0 --tgt-col 1 --header no --beam 5")
    print(run.summary())
    return 0


def _eval_data(a: argparse.Namespace, data: dict) -> Pairs:
    cols = {}
    for k in ("src_col", "tgt_col", "header", "delimiter", "encoding"):
        v = getattr(a, k)
        cols[k] = v if v is not None else data.get(k) if data.get(k) is not None else \
            {"src_col": 0, "tgt_col": 1, "header": "auto", "encoding": "utf-8"}.get(k)
    pairs = read_pairs(a, "", cols["encoding"], cols)
    if pairs is None:
        raise UserError("nothing to evaluate: give --data FILE, or --src FILE --tgt FILE")
    return pairs


@warnings_as_lines
def cmd_eval(a: argparse.Namespace) -> int:
    pipe = Translator.load(a.model, a.device)
    pairs = _eval_data(a, pipe.data)
    start = time.perf_counter()
    with common.Heartbeat(f"translating the {len(pairs.src)} sources of {pairs.origin}"):
        m = pipe.score(pairs.src, pairs.tgt, a.beam, a.length_norm, a.max_len)
    secs = time.perf_counter() - start
    outs = m.pop("outputs")
    m["sentences_per_s"] = len(outs) / secs
    if a.output:
        rows = "".join(f"{s}\t{pipe.reference(t)}\t{o.text}\n" for s, t, o in zip(pairs.src, pairs.tgt, outs))
        common.write_text_atomic(a.output, "source\treference\toutput\n" + rows)
    if a.json:
        print(json.dumps({"data": pairs.origin, "beam": a.beam, **m}))
    else:
        print(f"{pairs.origin}: {m['n']} pairs, {'greedy' if a.beam == 1 else f'beam {a.beam}'}  BLEU "
              f"{m['bleu']:.2f}  chrF {m['chrf']:.2f}  exact match {m['exact_match']:.2%}  token F1 "
              f"{m['token_f1']:.3f}  ({m['sentences_per_s']:.0f} sentences/s)")
    return 0


def attention_paths(path: str, n: int) -> list[Path]:
    p = Path(path)
    return [p] if n == 1 else [p.with_name(f"{p.stem}-{i + 1}{p.suffix or '.png'}") for i in range(n)]


@warnings_as_lines
def cmd_predict(a: argparse.Namespace) -> int:
    from seqlab.viz.attention import plot_attention

    pipe = Translator.load(a.model, a.device)
    if a.input and a.texts:
        raise UserError("give texts on the command line or --input FILE, not both")
    texts = read_lines(a.input, a.encoding) if a.input else a.texts
    if not texts:
        raise UserError("nothing to translate: give texts, or --input FILE")
    if (a.show_attention or a.unk_replace) and pipe.model.attention is None:
        raise UserError("this model has no attention (trained with --attention none); drop --show-attention "
                        "and --unk-replace")
    outs = pipe.generate(texts, a.beam, a.max_len, a.length_norm, a.batch, bool(a.show_attention), a.unk_replace)
    for t, o in zip(texts, outs):
        if a.json:
            print(json.dumps({"source": t, "output": o.text, "score": o.score, "mean_logprob": o.mean_logprob}))
        else:
            print(o.text)
    if a.show_attention:
        for o, path in zip(outs, attention_paths(a.show_attention, len(outs))):
            rows = o.tokens + ["<eos>"] * (len(o.attention) - len(o.tokens))
            plot_attention(o.src_tokens, rows, o.attention, path, f"{' '.join(o.src_tokens)} -> {o.text}")
            print(f"attention heatmap written to {path}", file=sys.stderr)
    return 0


def add_pair_args(p: argparse.ArgumentParser, what: str = "pairs", cols: tuple = (0, 1), defaults: bool = True):
    g = p.add_argument_group("input files")
    g.add_argument("--data", help=f"{what} as a CSV/TSV file (optionally .gz); see --src-col/--tgt-col")
    g.add_argument("--src", help="or: the source side as a plain-text file, one sentence per line (optionally .gz)")
    g.add_argument("--tgt", help="with --src: the target side, line-aligned with --src")
    d = (lambda v: v) if defaults else (lambda v: None)
    g.add_argument("--src-col", default=d(cols[0]), help="source column of --data: header name or 0-based index "
                   "(default: %(default)s)" if defaults else "source column (default: as in training)")
    g.add_argument("--tgt-col", default=d(cols[1]), help="target column of --data: header name or 0-based index "
                   "(default: %(default)s)" if defaults else "target column (default: as in training)")
    g.add_argument("--header", choices=["auto", "yes", "no"], default=d("auto"),
                   help="does --data have a header row; auto = yes when a column is given by name "
                        "(default: %(default)s)")
    g.add_argument("--delimiter", default=None, help="field separator; default: ',' for .csv, TAB for .tsv or a "
                   "tab in the first line")
    g.add_argument("--encoding", default=d("utf-8"), help="text encoding of the files (default: %(default)s)")


def add_decode_args(p: argparse.ArgumentParser, beam: int = 1, device: bool = True) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument("--beam", type=int, default=beam, help="beam size; 1 = greedy (default: %(default)s)")
    g.add_argument("--length-norm", type=float, default=1.0,
                   help="beam scores are sum(log p) / length**this; 0 = raw sums (default: %(default)s)")
    g.add_argument("--max-len", type=int, default=None,
                   help="longest output in tokens (default: twice the longest training target + 2)")
    if device:  # train has them among its training flags
        common.add_runtime_args(p)


def add_seq2seq_args(p: argparse.ArgumentParser, hidden: int = 256, embed: int = 128) -> None:
    """Tokenizer, encoder, decoder, attention and seq2seq training flags (translate and qa)."""
    common.add_tokenizer_args(p, max_len=False, source="the training pairs")
    g = p.add_argument_group("normalisation")
    g.add_argument("--nfkc", action="store_true", help="Unicode NFKC normalisation (fold full-width forms, ligatures)")
    g.add_argument("--split-punct", action=argparse.BooleanOptionalAction, default=False,
                   help="put spaces around punctuation before tokenizing (on by default for qa; --no-split-punct)")
    g.add_argument("--shared-vocab", action="store_true", help="one tokenizer and vocabulary for both sides")
    g.add_argument("--max-src-len", type=int, default=0, help="longest source in tokens; longer ones are cut "
                   "with a warning; 0 = twice the longest training source, at least 20 (default: %(default)s)")
    common.add_encoder_args(p, hidden=hidden, embed=embed)
    p.set_defaults(cell="gru")
    g = p.add_argument_group("decoder and attention")
    g.add_argument("--dec-cell", choices=DEC_CELLS, default=None, help="decoder cell (default: as --cell)")
    g.add_argument("--dec-layers", type=int, default=0, help="decoder layers; 0 = as --layers (default: %(default)s)")
    g.add_argument("--dec-hidden", type=int, default=0, help="decoder state size; 0 = the encoder's output size "
                   "(2x --hidden when bidirectional) (default: %(default)s)")
    g.add_argument("--dec-embed", type=int, default=0, help="target embedding size; 0 = --embed (default: %(default)s)")
    g.add_argument("--attention", choices=ATTENTIONS, default="additive",
                   help="none, dot (Luong), general (Luong) or additive (Bahdanau) (default: %(default)s)")
    g.add_argument("--attn-dim", type=int, default=0, help="hidden units of additive attention; 0 = decoder size")
    g.add_argument("--input-feed", action="store_true", help="feed the previous attentional state into the decoder")
    g.add_argument("--bridge", choices=BRIDGES, default="linear",
                   help="decoder initial state: linear map of the encoder's final states, or zero "
                        "(default: %(default)s)")
    g = p.add_argument_group("seq2seq training")
    g.add_argument("--teacher-forcing", type=float, default=1.0,
                   help="probability of feeding the gold previous token instead of the model's own "
                        "(default: %(default)s)")
    g.add_argument("--tf-decay", choices=TF_DECAYS, default="none",
                   help="scheduled sampling: decay the ratio towards --tf-final (default: %(default)s)")
    g.add_argument("--tf-final", type=float, default=0.5, help="ratio at the end of the decay (default: %(default)s)")
    g.add_argument("--tf-steps", type=int, default=0, help="steps over which the ratio decays; 0 = all training "
                   "steps (default: %(default)s)")
    g.add_argument("--label-smoothing", type=float, default=0.0,
                   help="spread this much target probability over the whole vocabulary (default: %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="seq2seq translation with attention: train, eval, predict",
                       description="Train, evaluate and use an encoder-decoder with attention on sentence pairs.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict}")

    t = s.add_parser("train", help="train on sentence pairs (a TSV/CSV file or two parallel files)")
    add_pair_args(t, "training pairs")
    g = t.add_argument_group("validation and test data")
    for which in ("valid", "test"):
        g.add_argument(f"--{which}-data", help=f"{which} pairs as a CSV/TSV file (same columns as --data)")
        g.add_argument(f"--{which}-src", help=f"{which} source file, one sentence per line")
        g.add_argument(f"--{which}-tgt", help=f"{which} target file, line-aligned with --{which}-src")
    g.add_argument("--valid-fraction", dest="dev_fraction", metavar="VALID_FRACTION", type=float, default=0.05,
                   help="share of the pairs held out for validation without --valid-* (default: %(default)s)")
    g.add_argument("--test-fraction", type=float, default=0.05,
                   help="share held out as a test split without --valid-* or --test-* (default: %(default)s)")
    t.add_argument("--cache", default=None, metavar="DIR",
                   help="keep the tokenized training pairs in DIR as two token files + offsets indexes (sources, "
                        "targets), reused by the next run on the same pairs (default: OUT/rows from 200,000 pairs, "
                        "else in memory)")
    g = t.add_argument_group("filters")
    g.add_argument("--max-tokens", type=int, default=0,
                   help="keep pairs whose sides both have fewer tokens than this; 0 = all (default: %(default)s)")
    g.add_argument("--prefixes", default="",
                   help="keep pairs whose --prefix-side starts with one of these comma-separated prefixes; "
                        "'tutorial' = the PyTorch tutorial's 'i am, he is, she is, you are, we are, they are'")
    g.add_argument("--prefix-side", choices=["src", "tgt"], default="src",
                   help="which side --prefixes apply to (default: %(default)s)")
    add_seq2seq_args(t)
    g = t.add_argument_group("evaluation during training")
    g.add_argument("--valid-metric", choices=["bleu", "loss"], default="bleu",
                   help="dev metric that picks the best checkpoint (greedy BLEU or loss) (default: %(default)s)")
    add_decode_args(t, beam=5, device=False)
    common.add_vector_args(t)
    common.add_train_args(t, epochs=10, batch=64, lr=2e-3)
    common.apply_config_defaults(t, TranslateConfig)
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="BLEU, chrF, exact match and token F1 on pairs")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a translation model")
    add_pair_args(e, "pairs to score", defaults=False)
    add_decode_args(e)
    e.add_argument("--output", help="write a TSV of source, reference and output here")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    e.set_defaults(func=cmd_eval)

    r = s.add_parser("predict", help="translate new sentences")
    r.add_argument("texts", nargs="*", help="sentences to translate")
    r.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a translation model")
    r.add_argument("--input", help="plain-text file of sentences, one per line")
    r.add_argument("--encoding", default="utf-8", help="encoding of --input (default: %(default)s)")
    add_decode_args(r)
    r.add_argument("--batch", type=int, default=128, help="sentences decoded together (default: %(default)s)")
    r.add_argument("--show-attention", metavar="PNG", help="write an attention heatmap here (NAME-1.png, ... "
                   "for several sentences)")
    r.add_argument("--unk-replace", action="store_true", help="replace <unk> outputs by the most-attended source word")
    r.add_argument("--json", action="store_true", help="print one JSON object per sentence, with its score")
    r.set_defaults(func=cmd_predict)
