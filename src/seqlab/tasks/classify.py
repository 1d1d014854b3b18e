"""Text classification end to end: `seqlab classify train | eval | predict`.

`ClassifyPipeline` is what a checkpoint holds: tokenizer + vocabulary + label set + model.
It turns raw strings into probabilities, and is saved and loaded as one unit.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data import (
    BucketBatcher,
    Vocab,
    build_tokenizer,
    features,
    read_lines,
    read_table,
    tokenizer_from_json,
)
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.classifier import POOLINGS, ClassifierConfig, TextClassifier
from seqlab.tasks import common, regression
from seqlab.train import Trainer
from seqlab.train.checkpoint import task_meta
from seqlab.train.metrics import classification_metrics, format_confusion

TASK = "classify"


class ClassifyPipeline:
    """Tokenizer, vocabulary, labels and model: raw text in, class probabilities out. A model of numeric
    feature sequences (`--features`) has no tokenizer or vocabulary (None): its inputs are (time, features)
    arrays, standardised with the training statistics in data["scaler"]. A regression model (`--regression`)
    has no label set (labels None): one output, the target standardised with data["target"]."""

    def __init__(self, tokenizer, vocab: Vocab, labels: Vocab, model: TextClassifier, data: dict):
        self.tokenizer, self.vocab, self.labels, self.model, self.data = tokenizer, vocab, labels, model, data

    def encode(self, texts: list[str]) -> list[torch.Tensor]:
        """Token ids of each text (1-d long tensors); an empty text becomes a single <unk>. For a
        feature model: each (time, features) array, standardised, as a float tensor."""
        if self.vocab is None:
            return features.encode(texts, self.data["scaler"])
        max_len = self.data.get("max_len") or None
        out = []
        for t in texts:
            ids = self.vocab.encode(self.tokenizer.tokenize(t))[:max_len] or [self.vocab.unk_id]
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    def batches(self, texts: list[str], labels: list[str] | None = None, batch_size: int = 256,
                **kw) -> BucketBatcher:
        if labels is None:
            targets = None
        elif self.labels is None:  # regression: float targets (n,), standardised
            targets = torch.tensor(regression.standardise(np.asarray(labels, float), self.data["target"]),
                                   dtype=torch.float32)
        else:
            targets = torch.tensor(self.labels.encode(labels))
        if self.vocab is None:
            return features.FeatureBatcher(self.encode(texts), targets, batch_size, 0, **kw)
        return BucketBatcher(self.encode(texts), targets, batch_size, self.vocab.pad_id, **kw)

    @torch.no_grad()
    def predict_proba(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """(n, classes) probabilities, rows in the order of `texts`."""
        self.model.eval()
        device = next(self.model.parameters()).device
        probs = torch.empty(len(texts), len(self.labels))
        for b in self.batches(texts, batch_size=batch_size):
            probs[b.index] = F.softmax(self.model(b.ids.to(device), b.lengths), -1).float().cpu()
        return probs.numpy()

    @torch.no_grad()
    def predict_values(self, texts: list, batch_size: int = 256) -> np.ndarray:
        """Regression: (n,) predictions in the target's own units, in the order of `texts`."""
        self.model.eval()
        device = next(self.model.parameters()).device
        z = torch.empty(len(texts))
        for b in self.batches(texts, batch_size=batch_size):
            z[b.index] = self.model(b.ids.to(device), b.lengths)[:, 0].float().cpu()
        return regression.restore(z.numpy().astype(np.float64), self.data["target"])

    def meta(self, train_cfg) -> dict:
        vocab = {"labels": self.labels.to_json()} if self.labels is not None else {}
        if self.vocab is not None:
            vocab.update(tokenizer=self.tokenizer.to_json(), vocab=self.vocab.to_json())
        return task_meta(TASK, self.model.cfg.to_json(), self.data, train_cfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ClassifyPipeline:
        cfg, v, model = runtime.load_model(path, TASK, lambda m: TextClassifier(ClassifierConfig.from_json(m)),
                                           device)
        tok = tokenizer_from_json(v["tokenizer"]) if "tokenizer" in v else None
        vocab = Vocab.from_json(v["vocab"]) if "vocab" in v else None
        labels = Vocab.from_json(v["labels"]) if "labels" in v else None
        return cls(tok, vocab, labels, model, cfg["data"])


def _read_labelled(path, data: dict) -> tuple[list[str], list[str], list[int]]:
    table = read_table(path, [data["text_col"], data["label_col"]], data["delimiter"],
                       data["header"], data["encoding"])
    for text, label, line in zip(table.column(0), table.column(1), table.lines):
        if not text:
            raise UserError(f"{path}: line {line} has an empty text; remove or fill that row")
        if not label:
            raise UserError(f"{path}: line {line} has an empty label; remove or fill that row")
    return table.column(0), table.column(1), table.lines


def _evaluate(pipe: ClassifyPipeline, texts, labels, batch_size=256) -> dict:
    probs = pipe.predict_proba(texts, batch_size)
    gold = np.array(pipe.labels.encode(labels))
    m = classification_metrics(gold, probs.argmax(1), len(pipe.labels))
    m["loss"] = float(-np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, None)).mean())
    m["n"] = len(gold)
    return m


def _evaluate_regression(pipe: ClassifyPipeline, texts, targets, batch_size=256) -> dict:
    return regression.regression_metrics(np.asarray(targets, float), pipe.predict_values(texts, batch_size),
                                         pipe.data["target"]["mean"])


def _check_features(pipe: ClassifyPipeline, a: argparse.Namespace) -> None:
    """A feature-sequence model reads feature files (--features), a text model reads text."""
    if a.features != (pipe.vocab is None):
        kind = "numeric feature sequences; pass --features" if pipe.vocab is None else "text; drop --features"
        raise UserError(f"{a.model} is a classifier of {kind}")


def cmd_train(a: argparse.Namespace) -> int:
    data = {"text_col": a.text_col, "label_col": a.label_col, "delimiter": a.delimiter, "header": a.header,
            "encoding": a.encoding, "tokenizer": a.tokenizer, "lowercase": a.lowercase,
            "min_freq": a.min_freq, "max_vocab": a.max_vocab, "max_len": a.max_len}
    if a.features:  # numeric feature sequences: long CSV (id, step, features..., label) or .npz
        data.update(features=True, id_col=a.id_col, step_col=a.step_col)
    read = features.read_labelled if a.features else _read_labelled
    tcfg = common.train_config(a)
    out = common.check_out_dir(a.out, a.resume, a.overwrite)
    texts, labels, lines = read(a.train, data)
    if a.regression:  # numeric targets; lists of floats from here on
        data["regression"] = True
        labels = regression.parse_targets(labels, lines, a.train).tolist()
    if a.dev:
        dev_texts, dev_labels, dev_lines = read(a.dev, data)
        if a.regression:
            dev_labels = regression.parse_targets(dev_labels, dev_lines, a.dev).tolist()
    else:  # hold out a seeded fraction of the training file
        perm = np.random.default_rng(a.seed).permutation(len(texts))
        k = max(1, int(len(texts) * a.dev_fraction))
        dev_idx, tr_idx = perm[:k], perm[k:]
        dev_texts, dev_labels = [texts[i] for i in dev_idx], [labels[i] for i in dev_idx]
        texts, labels = [texts[i] for i in tr_idx], [labels[i] for i in tr_idx]
        dev_lines = None
    label_vocab = None if a.regression else Vocab.labels(labels)
    if a.regression:
        data["target"] = regression.target_scaler(np.array(labels))
    elif len(label_vocab) < 2:
        raise UserError(f"{a.train}: the label column {a.label_col!r} has only one class "
                        f"({label_vocab.itos[0]!r}); a classifier needs at least two")
    unseen = [] if a.regression else sorted(set(dev_labels) - set(label_vocab.itos))
    if unseen:
        where = f" (line {dev_lines[dev_labels.index(unseen[0])]})" if dev_lines else ""
        raise UserError(f"{a.dev}: label {unseen[0]!r}{where} never occurs in {a.train}; "
                        "fix the label or add training examples of it")
    if a.features:
        tok = vocab = None
        data.update(input_dim=texts[0].shape[1], scaler=features.fit_scaler(texts))
        enc = common.encoder_config(a, 0, 0, input_dim=data["input_dim"])
    else:
        tok = build_tokenizer(a.tokenizer, texts, a.lowercase, a.subword_vocab)
        vocab = Vocab.build((tok.tokenize(t) for t in texts), a.min_freq, a.max_vocab)
        enc = common.encoder_config(a, len(vocab), vocab.pad_id)
    if a.cell == "none" and a.pooling == "last":
        a.pooling = "mean"
    cfg = ClassifierConfig(enc, 1 if a.regression else len(label_vocab), a.pooling, a.dropout)
    torch.manual_seed(a.seed)
    pipe = ClassifyPipeline(tok, vocab, label_vocab, TextClassifier(cfg), data)
    batches = pipe.batches(texts, labels, tcfg.batch_size, shuffle=True, bucket=not a.no_bucket, seed=a.seed)

    def step_fn(model, batch):
        out = model(batch.ids, batch.lengths)
        if a.regression:
            return F.mse_loss(out[:, 0].float(), batch.targets)
        return F.cross_entropy(out, batch.targets)

    def eval_fn(model):
        if a.regression:
            m = _evaluate_regression(pipe, dev_texts, dev_labels)
            return {k: m[k] for k in ("mae", "rmse", "r2")}
        m = _evaluate(pipe, dev_texts, dev_labels)
        return {k: m[k] for k in ("accuracy", "macro_f1", "loss")}

    n_params = sum(p.numel() for p in pipe.model.parameters())
    print(f"train {len(texts)} examples, dev {len(dev_texts)}, vocab {len(vocab) if vocab else 'none'}, "
          f"{'regression' if a.regression else f'classes {label_vocab.itos}'}, {n_params:,} parameters")
    metric, mode = ("mae", "min") if a.regression else ("accuracy", "max")
    trainer = Trainer(pipe.model, tcfg, out, step_fn, eval_fn, metric=metric, mode=mode, meta=pipe.meta(tcfg))
    st = trainer.fit(batches, resume=a.resume)
    best = ClassifyPipeline.load(out / "best")
    if a.regression:
        m = _evaluate_regression(best, dev_texts, dev_labels)
        summary = {f"dev_{k}": v for k, v in m.items() if k != "n"} | {
            "best_epoch": st["best_epoch"], "train_seconds": round(st["elapsed"], 1), "steps": st["step"],
            "parameters": n_params}
        common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
        print(regression.format_metrics("best dev", m) + f", epoch {st['best_epoch']}; trained "
              f"{st['elapsed']:.0f}s; model in {out / 'best'}")
        return 0
    m = _evaluate(best, dev_texts, dev_labels)
    summary = {"dev_accuracy": m["accuracy"], "dev_macro_f1": m["macro_f1"], "best_epoch": st["best_epoch"],
               "train_seconds": round(st["elapsed"], 1), "steps": st["step"], "parameters": n_params}
    common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"best dev accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f} (epoch {st['best_epoch']}), "
          f"trained {st['elapsed']:.0f}s; model in {out / 'best'}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = ClassifyPipeline.load(a.model, a.device)
    _check_features(pipe, a)
    data = dict(pipe.data)
    for k in ("text_col", "label_col", "delimiter", "encoding"):
        if getattr(a, k) is not None:
            data[k] = getattr(a, k)
    if a.no_header:
        data["header"] = False
    texts, labels, lines = (features.read_labelled if a.features else _read_labelled)(a.data, data)
    if pipe.labels is None:  # a regression model
        m = _evaluate_regression(pipe, texts, regression.parse_targets(labels, lines, a.data))
        print(json.dumps({"data": str(a.data), **m}) if a.json else regression.format_metrics(a.data, m))
        return 0
    where = [f"line {n}" for n in lines] if lines else [f"sequence {i}" for i in range(len(labels))]  # .npz
    unknown = [(lb, w) for lb, w in zip(labels, where) if lb not in pipe.labels]
    if unknown:
        raise UserError(f"{a.data}: {unknown[0][1]} has label {unknown[0][0]!r}, which the model "
                        f"never saw (it knows {pipe.labels.itos}); fix the label column")
    m = _evaluate(pipe, texts, labels)
    if a.json:
        print(json.dumps({"data": str(a.data), **m}))
    else:
        print(f"{a.data}: {m['n']} examples  accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
              f"loss {m['loss']:.4f}")
        print(format_confusion(m["confusion_matrix"], pipe.labels.itos))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe = ClassifyPipeline.load(a.model, a.device)
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
    t.add_argument("--pooling", choices=POOLINGS, default="last",
                   help="how the sequence becomes one vector: final state, mean or max over steps "
                        "(default: %(default)s)")
    t.add_argument("--no-bucket", action="store_true",
                   help="batch in random order without grouping similar lengths (slower)")
    g = t.add_argument_group("numeric feature sequences (instead of text)")
    g.add_argument("--features", action="store_true",
                   help="--train/--dev hold numeric sequences: a long CSV (id, step, feature columns..., label) "
                        "or an .npz with x (batch, time, features), y (batch,) and optional lengths")
    g.add_argument("--id-col", default="id", help="long CSV: column naming each sequence (default: %(default)s)")
    g.add_argument("--step-col", default="step", help="long CSV: column ordering the steps (default: %(default)s)")
    t.add_argument("--regression", action="store_true",
                   help="the label column holds numbers: predict a value per sequence (mean squared error on the "
                        "standardised target; MAE, RMSE and R² reported) instead of a class")
    common.add_train_args(t)
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
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
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
    r.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    r.set_defaults(func=cmd_predict)
