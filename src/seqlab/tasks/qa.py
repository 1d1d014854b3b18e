"""Question answering from question/answer pairs: `seqlab qa train | ask | eval`.

Two modes:
  seq2seq   (default) the translation model (`Seq2SeqPipeline`, task "qa") writes the answer token
            by token; confidence = the mean log-probability of its tokens (and <eos>).
  classify  the seeds' simpler model: every distinct training answer is one class, predicted
            from the question's final hidden state (the shared `TextClassifier`, pooling 'last');
            confidence = the log-probability of the chosen class. It can never answer with
            anything it did not see as an answer in training.

Abstaining: after training, the model answers the held-out validation questions and the
threshold on the confidence is chosen that makes the most right decisions there (answer when the
answer is right, abstain when it is wrong). `qa ask` says it does not know below the threshold.
The best checkpoint is picked by exact match over the validation questions plus (up to 200)
training questions (so a tiny set of facts, whose held-out questions cannot be answered, still
keeps a model that knows its training answers), ties broken by the confidence gap between
training and held-out questions (score = exact match + 0.01 * min(1, gap)): the wider the gap, the
better the abstain threshold separates what the model knows from what it does not.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data import Vocab, build_tokenizer, read_lines, tokenizer_from_json
from seqlab.data.pairs import Pairs, normalize, read_pairs_table, split_pairs
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.tasks import common
from seqlab.tasks.classify import ClassifyPipeline
from seqlab.tasks.seq2seq_pipeline import Seq2SeqPipeline, build_pipeline, fit, model_flags
from seqlab.tasks.translate import add_seq2seq_args
from seqlab.train import Trainer, save_checkpoint
from seqlab.train.checkpoint import load_weights, open_checkpoint, task_meta
from seqlab.metrics.seq2seq import answer_tokens, exact_match, token_f1
from seqlab.train.trainer import pick_device

TASK = "qa"


def tidy(text: str) -> str:
    """Word-level output as people write it: "harper - lee" -> "harper-lee", "299 , 792" -> "299,792",
    "paris ." -> "paris." (the metrics ignore punctuation either way)."""
    text = re.sub(r"(\d) , (?=\d)", r"\1,", text)
    text = re.sub(r" ?([-/]) ?", r"\1", text)
    return re.sub(r" ([.,!?;:%)])", r"\1", text)


class QAPipeline:
    """A trained QA model of either mode: questions in, (answer, confidence) out."""

    def __init__(self, inner, data: dict):
        self.inner, self.data = inner, data

    @property
    def mode(self) -> str:
        return self.data["mode"]

    @property
    def threshold(self) -> float:
        t = self.data.get("threshold")
        return -math.inf if t is None else t

    def norm(self, text: str) -> str:
        return normalize(text, self.data["lowercase"], self.data["nfkc"], self.data["split_punct"])

    def answer(self, questions: list[str], beam: int = 1) -> list[tuple[str, float]]:
        """(answer text, confidence = a mean log-probability <= 0) for each question."""
        if self.mode == "seq2seq":
            return [(tidy(o.text), o.mean_logprob) for o in self.inner.generate(questions, beam)]
        probs = self.inner.predict_proba([self.norm(q) for q in questions])
        best = probs.argmax(1)
        names = self.inner.labels.itos
        return [(names[k], float(np.log(max(probs[i, k], 1e-12)))) for i, k in enumerate(best)]

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> QAPipeline:
        exported = runtime.is_exported(path)  # NAME.onnx / NAME.pt from `seqlab export`
        if exported:
            ckpt, (cfg, v, model) = path, runtime.load(path, TASK)
        else:
            ckpt, cfg, v = open_checkpoint(path, TASK)
        data = cfg["data"]
        if data["mode"] == "seq2seq":
            inner = Seq2SeqPipeline.load(ckpt, TASK, device)
            return cls(inner, inner.data)
        if not exported:
            model = TextClassifier(ClassifierConfig.from_json(cfg["model"]))
            load_weights(model, ckpt, pick_device(device))
            model.eval()
        inner = ClassifyPipeline(tokenizer_from_json(v["tokenizer"]), Vocab.from_json(v["vocab"]),
                                 Vocab.from_json(v["labels"]), model, data)
        return cls(inner, data)


def calibrate(conf: list[float], correct: list[bool]) -> float | None:
    """The confidence threshold with the most right decisions on held-out questions: answer
    (confidence >= threshold) when right, abstain when wrong. Ties go to the lowest threshold
    (answer more). Candidates lie between consecutive confidences; None without data."""
    if not conf:
        return None
    c = np.array(conf, dtype=float)
    r = np.array(correct, dtype=bool)
    u = np.unique(c)
    cands = np.concatenate([[u[0] - 1e-3], (u[1:] + u[:-1]) / 2, [u[-1] + 1e-3]])
    right = [int(((c >= t) & r).sum() + ((c < t) & ~r).sum()) for t in cands]
    return float(cands[int(np.argmax(right))])


def _metrics(pipe: QAPipeline, questions: list[str], answers: list[str], beam: int = 1) -> dict:
    out = pipe.answer(questions, beam)
    hyps, conf = [a for a, _ in out], [c for _, c in out]
    answered = [c >= pipe.threshold for c in conf]
    right = [answer_tokens(h) == answer_tokens(r) for h, r in zip(hyps, answers)]
    n_ans = sum(answered)
    return {"exact_match": exact_match(hyps, answers), "token_f1": token_f1(hyps, answers),
            "answered": n_ans / max(1, len(hyps)),
            "answered_exact_match": sum(a and r for a, r in zip(answered, right)) / max(1, n_ans),
            "n": len(hyps), "conf": conf, "right": right, "hyps": hyps}


def _train_classify(a, out: Path, train: Pairs, data: dict, eval_fn) -> tuple[QAPipeline, dict, object]:
    questions = [normalize(q, a.lowercase, a.nfkc, a.split_punct) for q in train.src]
    tok = build_tokenizer(a.tokenizer, questions, False, a.subword_vocab)
    vocab = Vocab.build((tok.tokenize(q) for q in questions), a.min_freq, a.max_vocab)
    labels = Vocab.labels(train.tgt)
    cfg = ClassifierConfig(common.encoder_config(a, len(vocab), vocab.pad_id), len(labels), "last", a.dropout)
    torch.manual_seed(a.seed)
    pipe = QAPipeline(ClassifyPipeline(tok, vocab, labels, TextClassifier(cfg), data), data)
    tcfg = common.train_config(a)
    batches = pipe.inner.batches(questions, train.tgt, tcfg.batch_size, shuffle=True, seed=a.seed)

    def step_fn(model, batch):
        return F.cross_entropy(model(batch.ids, batch.lengths), batch.targets)

    def meta():
        v = {"tokenizer": tok.to_json(), "vocab": vocab.to_json(), "labels": labels.to_json()}
        return task_meta(TASK, cfg.to_json(), data, tcfg, v)

    st = Trainer(pipe.inner.model, tcfg, out, step_fn, eval_fn(pipe), "score", "max", meta()).fit(
        batches, resume=a.resume)
    return pipe, st, meta


def cmd_train(a: argparse.Namespace) -> int:
    if a.mode == "seq2seq":
        model_flags(a)
    else:
        common.train_config(a)
    out = common.check_out_dir(a.out, a.resume, a.overwrite)
    pairs = read_pairs_table(a.data, a.question_col, a.answer_col, a.delimiter, a.header, a.encoding)
    tr, va, _ = split_pairs(pairs, a.valid_fraction, 0.0, a.seed)
    train, valid = pairs.subset(tr), pairs.subset(va)
    if len(train) < 2:
        raise UserError(f"{a.data}: {len(train)} training pairs after holding out --valid-fraction "
                        f"{a.valid_fraction}; give more rows or a smaller --valid-fraction")
    seen = train.subset(np.random.default_rng(a.seed).permutation(len(train))[:200].tolist())
    data = {"mode": a.mode, "lowercase": a.lowercase, "nfkc": a.nfkc, "split_punct": a.split_punct,
            "question_col": a.question_col, "answer_col": a.answer_col, "header": a.header,
            "delimiter": a.delimiter, "encoding": a.encoding, "threshold": None, "max_len": 0}

    def eval_fn(pipe):
        def fn(model):
            m_seen = _metrics(pipe, seen.src, seen.tgt)
            m_valid = _metrics(pipe, valid.src, valid.tgt) if len(valid) else {"exact_match": 0.0, "n": 0, "conf": []}
            both = (m_seen["exact_match"] * m_seen["n"] + m_valid["exact_match"] * m_valid["n"])
            both /= m_seen["n"] + m_valid["n"]
            gap = float(np.mean(m_seen["conf"]) - (np.mean(m_valid["conf"]) if m_valid["conf"] else 0.0))
            return {"score": both + 0.01 * min(1.0, max(0.0, gap)), "exact_match": both,
                    "seen_exact_match": m_seen["exact_match"], "valid_exact_match": m_valid["exact_match"],
                    "confidence_gap": gap}
        return fn

    print(f"train {len(train)} question/answer pairs, valid {len(valid)}; mode {a.mode}")
    if a.mode == "seq2seq":
        pipe = QAPipeline(build_pipeline(a, TASK, train, data), data)
        st = fit(a, pipe.inner, out, train, eval_fn(pipe), "score", "max")
        best = QAPipeline.load(out / "best", a.device)

        def meta():
            return best.inner.meta(common.train_config(a))
    else:
        _, st, meta = _train_classify(a, out, train, data, eval_fn)
        best = QAPipeline.load(out / "best", a.device)
    m_valid = _metrics(best, valid.src, valid.tgt) if len(valid) else None
    data["threshold"] = calibrate(m_valid["conf"], m_valid["right"]) if m_valid else None
    best.data.update(threshold=data["threshold"])
    model = best.inner.model
    save_checkpoint(out / "best", model, meta())  # the same weights, now with the threshold
    best = QAPipeline.load(out / "best", a.device)
    m_seen = _metrics(best, train.src, train.tgt)
    summary = {"mode": a.mode, "train_exact_match": m_seen["exact_match"], "train_answered": m_seen["answered"],
               "threshold": data["threshold"], "best_epoch": st["best_epoch"],
               "train_seconds": round(st["elapsed"], 1), "parameters": sum(p.numel() for p in model.parameters())}
    if m_valid:
        m_valid = _metrics(best, valid.src, valid.tgt)
        summary.update(valid_exact_match=m_valid["exact_match"], valid_answered=m_valid["answered"])
    common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
    thr = "none" if data["threshold"] is None else f"{data['threshold']:.3f}"
    print(f"exact match on the training questions {m_seen['exact_match']:.2%} (answered {m_seen['answered']:.0%}); "
          f"abstain threshold {thr} (mean log-probability); model in {out / 'best'}")
    return 0


def cmd_ask(a: argparse.Namespace) -> int:
    pipe = QAPipeline.load(a.model, a.device)
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


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = QAPipeline.load(a.model, a.device)
    d = pipe.data
    pairs = read_pairs_table(a.data, a.question_col or d["question_col"], a.answer_col or d["answer_col"],
                             a.delimiter or d["delimiter"], a.header or d["header"], a.encoding or d["encoding"])
    m = _metrics(pipe, pairs.src, pairs.tgt, a.beam)
    m = {k: v for k, v in m.items() if k not in ("conf", "right", "hyps")}
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
    t.add_argument("--valid-fraction", type=float, default=0.1,
                   help="share of questions held out to calibrate the abstain threshold (default: %(default)s)")
    add_seq2seq_args(t, hidden=128, embed=64)
    common.add_train_args(t, epochs=100, batch=16, lr=3e-3)
    t.set_defaults(func=cmd_train, lowercase=True, split_punct=True, patience=20)

    k = s.add_parser("ask", help="answer questions (or say it does not know)")
    k.add_argument("questions", nargs="*", help="questions to answer")
    k.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a QA model")
    k.add_argument("--input", help="plain-text file of questions, one per line")
    k.add_argument("--encoding", default="utf-8", help="encoding of --input (default: %(default)s)")
    k.add_argument("--threshold", type=float, default=None,
                   help="abstain below this confidence (mean log-probability) (default: the calibrated one)")
    k.add_argument("--beam", type=int, default=1, help="beam size for seq2seq answers (default: %(default)s)")
    k.add_argument("--json", action="store_true", help="print one JSON object per question")
    k.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
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
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    e.set_defaults(func=cmd_eval)
