"""`seqlab tag train | eval | predict` (NER, POS, chunking): flags -> TagConfig -> seqlab.pipelines.Tagger -> print.

Entity tags (BIO, IOB1, BIOES) are learned in `--model-scheme` (BIOES by default) and written back
in the scheme of the training file; entity-tagged data is scored by entity F1 (conlleval), plain
tags (POS) by token accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqlab.cli import common
from seqlab.data.conll import FORMATS, detect_format, spans
from seqlab.data.readers import read_lines
from seqlab.errors import UserError
from seqlab.metrics.tagging import format_entity_report
from seqlab.pipelines.tag import TagConfig, Tagger, check_tags

TASK = "tag"



def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(TagConfig, a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = Tagger.fit(a.train, a.dev, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite,
                          callbacks=run.callbacks())
    r, metric = pipe.results, "f1" if pipe.entities else "accuracy"
    print(f"best dev {metric} {r[f'dev_{metric}']:.4f} (epoch {r['best_epoch']}), trained {r['train_seconds']:.0f}s; "
          f"model in {Path(a.out) / 'best'}")
    print(run.summary())
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = Tagger.load(a.model, a.device)
    corpus = pipe.read(a.data, a.format, a.word_col, a.tag_col, a.encoding)
    check_tags(corpus, a.scheme or "auto", pipe.data["scheme"])
    with common.Heartbeat(f"tagging the {len(corpus)} sentences of {a.data}"):
        m, pred = pipe.score(corpus.words, corpus.tags)
    if a.output:
        rows = ["\n".join(f"{w} {g} {p}" for w, g, p in zip(*s)) + "\n" for s in zip(corpus.words, corpus.tags, pred)]
        common.write_text_atomic(a.output, "\n".join(rows))
    if a.json:
        print(json.dumps({"data": str(a.data), "sentences": len(corpus), **m}))
    elif pipe.entities:
        print(f"{a.data}: {len(corpus)} sentences")
        print(format_entity_report(m))
    else:
        print(f"{a.data}: {len(corpus)} sentences, {m['tokens']} tokens  accuracy {m['accuracy']:.4f}")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe = Tagger.load(a.model, a.device)
    if a.input and a.texts:
        raise UserError("give sentences on the command line or --input FILE, not both")
    fmt = "text"
    if a.input:
        fmt = a.format if a.format != "auto" else detect_format(a.input, "auto")
        if a.format == "auto" and fmt == "conll" and not Path(a.input).name.removesuffix(".gz").endswith(".conll"):
            fmt = "text"
        if fmt == "text":
            sentences = [s.split() for s in read_lines(a.input, a.encoding or pipe.data["encoding"])]
        else:
            sentences = pipe.read(a.input, fmt, a.word_col, encoding=a.encoding, with_tags=False).words
    elif a.texts:
        sentences = [s.split() for s in a.texts]
        if not all(sentences):
            raise UserError("an empty sentence was given; give at least one token per sentence")
    else:
        raise UserError("nothing to tag: give sentences, or --input FILE")
    pred = pipe.predict(sentences)
    if a.json:
        lines = [json.dumps({"tokens": s, "tags": p, "entities": [
            {"type": t, "start": i, "end": j, "text": " ".join(s[i:j])} for t, i, j in spans(p)]
            if pipe.entities else []}) for s, p in zip(sentences, pred)]
        text = "\n".join(lines) + "\n"
    elif fmt == "text":
        text = "".join(" ".join(f"{w}/{t}" for w, t in zip(s, p)) + "\n" for s, p in zip(sentences, pred))
    else:
        text = "\n".join("".join(f"{w}\t{t}\n" for w, t in zip(s, p)) for s, p in zip(sentences, pred))
    if a.output:
        common.write_text_atomic(a.output, text)
        print(f"wrote tags of {len(sentences)} sentences to {a.output}")
    else:
        print(text, end="")
    return 0


def _file_args(p: argparse.ArgumentParser, training: bool) -> None:
    g = p.add_argument_group("input files")
    d = "" if training else "; default: as in training"
    g.add_argument("--format", choices=FORMATS, default="auto" if training else None,
                   help=f"conll (a token per line, columns), conllu (CoNLL-U), or auto: conllu for *.conllu[.gz] "
                        f"files, else conll{d or ' (default: %(default)s)'}")
    g.add_argument("--word-col", default=None,
                   help=f"column of the words: a 0-based index, or a CoNLL-U column name (0 for conll, form "
                        f"for conllu{d})")
    g.add_argument("--tag-col", default=None,
                   help=f"column of the tags: an index (-1 = last) or a CoNLL-U name such as upos or xpos "
                        f"(-1 for conll, upos for conllu{d})")
    g.add_argument("--scheme", default="auto" if training else None,
                   help="tag scheme of the files: bio, iob1, bioes (entities: scored by entity F1), none (plain "
                        "tags such as POS: scored by accuracy), or auto: detected from the tags (default: auto)")
    g.add_argument("--encoding", default="utf-8" if training else None,
                   help=f"text encoding of the files{d or ' (default: %(default)s)'}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="sequence tagging: named entities, part-of-speech tags, chunks",
                       description="Train, evaluate and use a BiLSTM(-CRF) tagger on CoNLL / CoNLL-U files.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict}")

    t = s.add_parser("train", help="train a tagger on a CoNLL or CoNLL-U file")
    t.add_argument("--train", required=True, help="tagged training file (CoNLL or CoNLL-U, optionally .gz)")
    t.add_argument("--dev", help="tagged dev file for model selection; default: hold out --dev-fraction")
    t.add_argument("--dev-fraction", type=float, default=0.1,
                   help="share of the training sentences held out as dev when no --dev is given (default: %(default)s)")
    _file_args(t, training=True)
    g = t.add_argument_group("tagger")
    g.add_argument("--model-scheme", choices=("bioes", "bio"), default="bioes",
                   help="how the model encodes entities; predictions are written in the files' scheme "
                        "(default: %(default)s)")
    g.add_argument("--char-features", default="lstm",
                   help="character-level word features: lstm (a char BiLSTM), cnn, or none (default: %(default)s)")
    g.add_argument("--char-dim", type=int, default=30, help="character embedding size (default: %(default)s)")
    g.add_argument("--char-out", type=int, default=50,
                   help="size of a word's character features (BiLSTM: both directions) (default: %(default)s)")
    g.add_argument("--crf", action=argparse.BooleanOptionalAction, default=True,
                   help="score whole tag sequences with a CRF (Viterbi decoding); --no-crf: a softmax per token "
                        "(default: on)")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True,
                   help="lower-case words for the word vocabulary and add a learned case-pattern feature; "
                        "--no-lowercase: one embedding per spelling (default: on)")
    g.add_argument("--min-freq", type=int, default=2,
                   help="keep words seen at least this often in training; rarer ones become <unk> "
                        "(default: %(default)s)")
    g.add_argument("--max-vocab", type=int, default=None, help="keep at most this many words (default: no limit)")
    g.add_argument("--word-dropout", type=float, default=0.1,
                   help="share of training tokens replaced by <unk>, to learn to tag unseen words "
                        "(default: %(default)s)")
    common.add_encoder_args(t, hidden=100, embed=100)
    t.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                   help="read sentences left to right only (a tagger is bidirectional by default)")
    common.add_vector_args(t, finetune=True)
    common.add_train_args(t, epochs=30, batch=32, lr=4e-3, schedule="cosine")
    common.apply_config_defaults(t, TagConfig)
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="entity precision/recall/F1 per type (conlleval), or token accuracy")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a tagger")
    e.add_argument("--data", required=True, help="tagged CoNLL or CoNLL-U file")
    _file_args(e, training=False)
    e.add_argument("--output", help="write `word gold predicted` lines here (conlleval's input format)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    common.add_runtime_args(e)
    e.set_defaults(func=cmd_eval)

    r = s.add_parser("predict", help="tag new sentences (tokens separated by spaces)")
    r.add_argument("texts", nargs="*", help="sentences to tag, tokens separated by spaces")
    r.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a tagger")
    r.add_argument("--input", help="file to tag: plain text (a sentence per line, tokens separated by spaces), "
                                   "or CoNLL / CoNLL-U (see --format)")
    r.add_argument("--format", choices=("auto", "text", "conll", "conllu"), default="auto",
                   help="format of --input; auto: conllu for *.conllu[.gz], conll for *.conll[.gz], else text "
                        "(default: %(default)s)")
    r.add_argument("--word-col", default=None, help="word column of a CoNLL --input (default: as in training)")
    r.add_argument("--encoding", default=None, help="encoding of --input (default: as in training)")
    r.add_argument("--output", help="write the tags here instead of printing them")
    r.add_argument("--json", action="store_true", help="print one JSON object (tokens, tags, entities) per sentence")
    common.add_runtime_args(r)
    r.set_defaults(func=cmd_predict)
