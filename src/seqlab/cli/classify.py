"""`seqlab classify train | eval | predict`: flags -> ClassifyConfig -> seqlab.pipelines.Classifier -> print."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

from seqlab.cli import common
from seqlab.data import (
    features,
    read_lines,
    read_table,
)
from seqlab.errors import UserError
from seqlab.metrics import regression
from seqlab.metrics.classification import format_confusion
from seqlab.models.classifier import POOLINGS
from seqlab.pipelines.classify import Classifier, ClassifyConfig

TASK = "classify"




def _check_features(pipe: Classifier, a: argparse.Namespace) -> None:
    """A feature-sequence model reads feature files (--features), a text model reads text."""
    if a.features != (pipe.vocab is None):
        kind = "numeric feature sequences; pass --features" if pipe.vocab is None else "text; drop --features"
        raise UserError(f"{a.model} is a classifier of {kind}")


def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(ClassifyConfig, a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = Classifier.fit(a.train, a.dev, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite,
                              callbacks=run.callbacks())
    r, out = pipe.results, Path(a.out)
    if cfg.data.regression:
        m = {k[4:]: v for k, v in r.items() if k.startswith("dev_")} | {"n": "dev"}
        print(f"best dev MAE {m['mae']:.4g}  RMSE {m['rmse']:.4g}  R² {m['r2']:.4f}, epoch {r['best_epoch']}; "
              f"trained {r['train_seconds']:.0f}s; model in {out / 'best'}")
    else:
        print(f"best dev accuracy {r['dev_accuracy']:.4f}  macro-F1 {r['dev_macro_f1']:.4f} "
              f"(epoch {r['best_epoch']}), trained {r['train_seconds']:.0f}s; model in {out / 'best'}")
    print(run.summary())
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = Classifier.load(a.model, a.device)
    _check_features(pipe, a)
    data = dict(pipe.data)
    for k in ("text_col", "label_col", "delimiter", "encoding"):
        if getattr(a, k) is not None:
            data[k] = getattr(a, k)
    if a.no_header:
        data["header"] = False
    pipe.data = data
    with common.Heartbeat(f"evaluating {a.model} on {a.data}"):
        m = pipe.evaluate(a.data)
    if pipe.labels is None:  # a regression model
        print(json.dumps({"data": str(a.data), **m}) if a.json else regression.format_metrics(a.data, m))
        return 0
    if a.json:
        print(json.dumps({"data": str(a.data), **m}))
    else:
        print(f"{a.data}: {m['n']} examples  accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
              f"loss {m['loss']:.4f}")
        print(format_confusion(m["confusion_matrix"], pipe.labels.itos))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe = Classifier.load(a.model, a.device)
    _check_features(pipe, a)
    if a.input and a.texts:
        raise UserError("give texts on the command line or --input FILE, not both")
    key = "id" if a.features else "text"
    if a.features:
        if not a.input:
            raise UserError("give the feature sequences to classify with --input (.npz or long CSV)")
        fs = features.read_features(a.input, pipe.data, need_labels=False)
        features.check_width(fs, pipe.data, a.input)
        texts, shown = fs.seqs, fs.ids
    elif a.input:
        name = Path(a.input).name.removesuffix(".gz")
        if name.endswith((".csv", ".tsv")):
            d = pipe.data
            texts = read_table(a.input, [a.text_col or d["text_col"]], a.delimiter or d["delimiter"],
                               d["header"], a.encoding or d["encoding"]).column(0)
        else:
            texts = read_lines(a.input, a.encoding or pipe.data["encoding"])
    elif a.texts:
        texts = a.texts
    else:
        raise UserError("nothing to predict: give texts, or --input FILE")
    if not a.features:
        shown = texts
    if pipe.labels is None:  # a regression model
        return _print_values(a, key, shown, pipe.predict_values(texts))
    probs = pipe.predict_proba(texts)
    names = pipe.labels.itos
    pred = [names[i] for i in probs.argmax(1)]
    if a.output:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([key, "label", *[f"p_{n}" for n in names]])
        for t, lb, p in zip(shown, pred, probs):
            w.writerow([t, lb, *[f"{x:.6f}" for x in p]])
        common.write_text_atomic(a.output, buf.getvalue())
        print(f"wrote {len(shown)} predictions to {a.output}")
    elif a.json:
        for t, lb, p in zip(shown, pred, probs):
            print(json.dumps({key: t, "label": lb, "probs": dict(zip(names, map(float, p)))}))
    else:
        for t, lb, p in zip(shown, pred, probs):
            shown = "  ".join(f"{n} {x:.3f}" for n, x in zip(names, p))
            print(f"{lb}\t({shown})\t{t}")
    return 0


def _print_values(a: argparse.Namespace, key: str, shown: list, values: np.ndarray) -> int:
    if a.output:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([key, "prediction"])
        w.writerows([t, f"{v:.6g}"] for t, v in zip(shown, values))
        common.write_text_atomic(a.output, buf.getvalue())
        print(f"wrote {len(shown)} predictions to {a.output}")
    else:
        for t, v in zip(shown, values):
            print(json.dumps({key: t, "prediction": float(v)}) if a.json else f"{v:.6g}\t{t}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="text classification (sentiment, topics, ...)",
                       description="Train, evaluate and use a recurrent text classifier.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict}")

    t = s.add_parser("train", help="train a classifier on a labelled CSV/TSV file")
    t.add_argument("--train", required=True, help="labelled training file (CSV/TSV, optionally .gz)")
    t.add_argument("--dev", help="labelled dev file for model selection; default: hold out --dev-fraction")
    t.add_argument("--dev-fraction", type=float, default=0.1,
                   help="share of --train held out as dev when no --dev is given (default: %(default)s)")
    common.add_table_args(t)
    t.add_argument("--label-col", default="label",
                   help="column holding the label: a name or 0-based index (default: %(default)s)")
    common.add_tokenizer_args(t)
    common.add_encoder_args(t)
    t.add_argument("--pooling", choices=POOLINGS, default=None,
                   help="how the sequence becomes one vector: final state, mean or max over steps, or concat (all "
                        "three side by side, ULMFiT's head) (default: max for text, last for --features, mean for "
                        "--cell none)")
    t.add_argument("--bag", choices=("auto", "on", "off"), default="auto",
                   help="average the recurrent model with a bag of embeddings (its own embedding table, mean "
                        "pooling), each member trained on its own loss; auto: on below 20,000 training texts when "
                        "training from scratch (default: %(default)s)")
    t.add_argument("--bag-buckets", type=int, default=None, metavar="N",
                   help="the bag member's hashed bigram embeddings, fastText's trick (default: twice the training "
                        "texts' distinct bigrams, as a power of two, at most 65,536; 0: single tokens only)")
    t.add_argument("--no-bucket", action="store_true",
                   help="batch in random order without grouping similar lengths (slower)")
    t.add_argument("--cache", default=None, metavar="DIR",
                   help="keep the tokenized training rows in DIR as one token file + an offsets index, reused by "
                        "the next run on the same texts (default: OUT/rows from 200,000 rows, else in memory)")
    g = t.add_argument_group("numeric feature sequences (instead of text)")
    g.add_argument("--features", action="store_true",
                   help="--train/--dev hold numeric sequences: a long CSV (id, step, feature columns..., label) "
                        "or an .npz with x (batch, time, features), y (batch,) and optional lengths")
    g.add_argument("--id-col", default="id", help="long CSV: column naming each sequence (default: %(default)s)")
    g.add_argument("--step-col", default="step", help="long CSV: column ordering the steps (default: %(default)s)")
    t.add_argument("--regression", action="store_true",
                   help="the label column holds numbers: predict a value per sequence (mean squared error on the "
                        "standardised target; MAE, RMSE and R² reported) instead of a class")
    common.add_vector_args(t, finetune=True)
    common.add_train_args(t)
    common.apply_config_defaults(t, ClassifyConfig)
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="accuracy, macro-F1 and confusion matrix on a labelled file")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a classifier")
    e.add_argument("--data", required=True, help="labelled CSV/TSV file")
    e.add_argument("--text-col", default=None, help="text column (default: as in training)")
    e.add_argument("--label-col", default=None, help="label column (default: as in training)")
    e.add_argument("--delimiter", default=None, help="field separator (default: as in training)")
    e.add_argument("--no-header", action="store_true", help="the file has no header row")
    e.add_argument("--encoding", default=None, help="file encoding (default: as in training)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    e.add_argument("--features", action="store_true", help="--data holds numeric feature sequences (.npz or "
                                                          "long CSV), for a model trained with --features")
    common.add_runtime_args(e)
    e.set_defaults(func=cmd_eval)

    r = s.add_parser("predict", help="label new texts, with class probabilities")
    r.add_argument("texts", nargs="*", help="texts to classify")
    r.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a classifier")
    r.add_argument("--input", help="file of texts: CSV/TSV (reads --text-col) or plain text, one per line")
    r.add_argument("--output", help="write a CSV of text, label and one probability per class here")
    r.add_argument("--text-col", default=None, help="text column of a CSV/TSV --input (default: as in training)")
    r.add_argument("--delimiter", default=None, help="field separator of --input (default: as in training)")
    r.add_argument("--encoding", default=None, help="encoding of --input (default: as in training)")
    r.add_argument("--json", action="store_true", help="print one JSON object per text")
    r.add_argument("--features", action="store_true", help="--input holds numeric feature sequences (.npz or "
                                                          "long CSV), for a model trained with --features")
    common.add_runtime_args(r)
    r.set_defaults(func=cmd_predict)
