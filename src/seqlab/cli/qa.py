"""`seqlab qa train | ask | eval`: flags -> QAConfig -> seqlab.pipelines.QA -> print.

The modes (seq2seq, classify), the abstain threshold and the checkpoint choice are described in
`seqlab.pipelines.qa`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqlab.cli import common
from seqlab.cli.translate import add_seq2seq_args, warnings_as_lines
from seqlab.data import read_lines
from seqlab.data.pairs import read_pairs_table
from seqlab.errors import UserError
from seqlab.pipelines.qa import QA, QAConfig

TASK = "qa"



@warnings_as_lines
def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(QAConfig, a)
    run = common.TrainRun(cfg, a.out, "calibrating the abstain threshold and scoring the best model")
    with run:
        pipe = QA.fit(a.data, None, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite, callbacks=run.callbacks())
    r, out = pipe.results, Path(a.out)
    thr = "none" if r["threshold"] is None else f"{r['threshold']:.3f}"
    print(f"exact match on the training questions {r['train_exact_match']:.2%} (answered {r['train_answered']:.0%}); "
          f"abstain threshold {thr} (mean log-probability); model in {out / 'best'}")
    print(run.summary())
    return 0


@warnings_as_lines
def cmd_ask(a: argparse.Namespace) -> int:
    pipe = QA.load(a.model, a.device)
    if a.input and a.questions:
        raise UserError("give questions on the command line or --input FILE, not both")
    questions = read_lines(a.input, a.encoding) if a.input else a.questions
    if not questions:
        raise UserError("nothing to ask: give questions, or --input FILE")
    threshold = a.threshold if a.threshold is not None else pipe.threshold
    out = pipe.answer(questions, a.beam)
    for q, (ans, conf) in zip(questions, out):
        ok = conf >= threshold
        if a.json:
            print(json.dumps({"question": q, "answer": ans if ok else None, "best_guess": ans,
                              "confidence": conf, "threshold": threshold}))
        elif ok:
            print(f"{ans}\t(confidence {conf:.3f})")
        else:
            print(f"I don't know\t(best guess {ans!r}, confidence {conf:.3f} < threshold {threshold:.3f})")
    if a.input and not a.json:
        n_ans = sum(c >= threshold for _, c in out)
        print(f"answered {n_ans} of {len(out)} questions, abstained on {len(out) - n_ans} ({1 - n_ans / len(out):.0%})")
    return 0


@warnings_as_lines
def cmd_eval(a: argparse.Namespace) -> int:
    pipe = QA.load(a.model, a.device)
    d = pipe.data
    pairs = read_pairs_table(a.data, a.question_col or d["question_col"], a.answer_col or d["answer_col"],
                             a.delimiter or d["delimiter"], a.header or d["header"], a.encoding or d["encoding"])
    with common.Heartbeat(f"answering the {len(pairs.src)} questions of {a.data}"):
        m = pipe.evaluate(pairs, a.beam)
    if a.json:
        print(json.dumps({"data": str(a.data), **m}))
    else:
        print(f"{a.data}: {m['n']} questions  exact match {m['exact_match']:.2%}  token F1 {m['token_f1']:.3f}  "
              f"answered {m['answered']:.0%}  exact match when answering {m['answered_exact_match']:.2%}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qa", help="question answering from question/answer pairs: train, ask, eval",
                       description="Answer questions with a seq2seq model (or a classifier) trained on a CSV of "
                                   "question/answer pairs; abstain when unsure.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,ask,eval}")

    t = s.add_parser("train", help="train on a CSV/TSV of question/answer pairs")
    t.add_argument("--data", required=True, help="question/answer pairs, CSV/TSV (optionally .gz)")
    t.add_argument("--question-col", default="question", help="question column: name or 0-based index "
                   "(default: %(default)s)")
    t.add_argument("--answer-col", default="answer", help="answer column: name or 0-based index (default: %(default)s)")
    t.add_argument("--header", choices=["auto", "yes", "no"], default="auto",
                   help="does the file have a header row; auto = yes when a column is given by name "
                        "(default: %(default)s)")
    t.add_argument("--delimiter", default=None, help="field separator; default: ',' for .csv, TAB for .tsv")
    t.add_argument("--encoding", default="utf-8", help="text encoding (default: %(default)s)")
    t.add_argument("--mode", choices=["seq2seq", "classify"], default="seq2seq",
                   help="write the answer token by token, or pick one of the training answers as a class "
                        "(the seeds' model) (default: %(default)s)")
    t.add_argument("--valid-fraction", dest="dev_fraction", metavar="VALID_FRACTION", type=float, default=0.1,
                   help="share of questions held out to calibrate the abstain threshold (default: %(default)s)")
    add_seq2seq_args(t, hidden=128, embed=64)
    common.add_train_args(t, epochs=100, batch=16, lr=3e-3)
    common.apply_config_defaults(t, QAConfig)  # lowercase, split punctuation, patience 20: QA's own defaults
    t.set_defaults(func=cmd_train)

    k = s.add_parser("ask", help="answer questions (or say it does not know)")
    k.add_argument("questions", nargs="*", help="questions to answer")
    k.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a QA model")
    k.add_argument("--input", help="plain-text file of questions, one per line")
    k.add_argument("--encoding", default="utf-8", help="encoding of --input (default: %(default)s)")
    k.add_argument("--threshold", type=float, default=None,
                   help="abstain below this confidence (mean log-probability) (default: the calibrated one)")
    k.add_argument("--beam", type=int, default=1, help="beam size for seq2seq answers (default: %(default)s)")
    k.add_argument("--json", action="store_true", help="print one JSON object per question")
    common.add_runtime_args(k)
    k.set_defaults(func=cmd_ask)

    e = s.add_parser("eval", help="exact match, token F1 and answered share on question/answer pairs")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a QA model")
    e.add_argument("--data", required=True, help="question/answer pairs, CSV/TSV")
    e.add_argument("--question-col", default=None, help="question column (default: as in training)")
    e.add_argument("--answer-col", default=None, help="answer column (default: as in training)")
    e.add_argument("--header", choices=["auto", "yes", "no"], default=None, help="header row (default: as in training)")
    e.add_argument("--delimiter", default=None, help="field separator (default: as in training)")
    e.add_argument("--encoding", default=None, help="text encoding (default: as in training)")
    e.add_argument("--beam", type=int, default=1, help="beam size for seq2seq answers (default: %(default)s)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    common.add_runtime_args(e)
    e.set_defaults(func=cmd_eval)
