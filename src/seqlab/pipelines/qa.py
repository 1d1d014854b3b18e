"""Question answering from question/answer pairs, with a calibrated "I don't know".

    from seqlab.pipelines import QA
    qa = QA.fit("qa.csv", epochs=50)                     # columns question, answer; or fit([(q, a), ...])
    qa.predict(["What is the capital of France?"])       # ['paris'], or [None] where it abstains
    qa.evaluate("qa.csv")["exact_match"]
    qa.save("qa/");  qa = QA.load("qa/")

Two modes (`mode`):
  seq2seq   (default) the translation model (`Seq2SeqPipeline`, task "qa") writes the answer token
            by token; confidence = the mean log-probability of its tokens (and <eos>).
  classify  every distinct training answer is one class, predicted from the question's final hidden
            state (the shared `TextClassifier`, pooling 'last'); confidence = the log-probability of
            the chosen class. It can never answer with anything it did not see as an answer in training.

Abstaining: after training, the model answers the held-out validation questions and the threshold on
the confidence is chosen that makes the most right decisions there (answer when the answer is right,
abstain when it is wrong). `predict` returns None below the threshold (the CLI's `qa ask` prints
"I don't know" there); `answer` gives every (best guess, confidence). The best checkpoint is picked by
exact match over the validation questions plus (up to 200) training questions (so a tiny set of facts,
whose held-out questions cannot be answered, still keeps a model that knows its training answers), ties
broken by the confidence gap between training and held-out questions (score = exact match + 0.01 *
min(1, gap)): the wider the gap, the better the threshold separates what the model knows from what it
does not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.pairs import Pairs, normalize, read_pairs_table, split_pairs
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics.seq2seq import answer_tokens, exact_match, token_f1
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.pipelines.base import Pipeline, Readout, Steps, check_out_dir, finish, run_training
from seqlab.pipelines.classify import Classifier
from seqlab.pipelines.config import Config, choice, num
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.seq2seq import (
    Seq2SeqModel,
    Seq2SeqPipeline,
    Seq2SeqTokens,
    Seq2SeqTrain,
    as_pairs,
    build,
    load_parts,
    train_seq2seq,
)
from seqlab.train.checkpoint import load_weights, save_checkpoint, task_meta
from seqlab.train.run_dir import open_checkpoint
from seqlab.train.trainer import TrainConfig, pick_device

MODES = ("seq2seq", "classify")
DEFAULT_EPOCHS = 100


@dataclass
class QAModel(Seq2SeqModel):
    hidden: int | None = num(128, 1, 65536, allow_none=True)
    embed: int | None = num(64, 1, 65536, allow_none=True)


@dataclass
class QAData(Seq2SeqTokens):
    """The pair file's columns, the mode and QA's normalisation defaults."""

    mode: str = choice("seq2seq", MODES)
    question_col: str = "question"
    answer_col: str = "answer"
    header: str = choice("auto", ("auto", "yes", "no"))
    delimiter: str | None = None
    encoding: str = "utf-8"
    lowercase: bool = True
    split_punct: bool = True


@dataclass
class QATrain(Seq2SeqTrain):
    batch: int = num(16, 1)
    lr: float | None = num(3e-3, 0.0, lo_open=True, allow_none=True)
    patience: int = num(20, 0)
    dev_fraction: float = num(0.1, 0.0, 1.0, hi_open=True)  # the CLI's --valid-fraction; 0 = no threshold


@dataclass
class QAConfig(Config):
    model: QAModel = field(default_factory=QAModel)
    data: QAData = field(default_factory=QAData)
    train: QATrain = field(default_factory=QATrain)


def tidy(text: str) -> str:
    """Word-level output as people write it: "harper - lee" -> "harper-lee", "299 , 792" -> "299,792",
    "paris ." -> "paris." (the metrics ignore punctuation either way)."""
    text = re.sub(r"(\d) , (?=\d)", r"\1,", text)
    text = re.sub(r" ?([-/]) ?", r"\1", text)
    return re.sub(r" ([.,!?;:%)])", r"\1", text)


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


def _reader(d: dict):
    def read(path):
        return read_pairs_table(path, d["question_col"], d["answer_col"], d["delimiter"], d["header"], d["encoding"])
    return read


@register_task
class QA(Pipeline):
    """A trained QA model of either mode: questions in, answers (or None: abstain) out."""

    task = "qa"
    Config = QAConfig

    def __init__(self, inner: Seq2SeqPipeline | Classifier, data: dict, config: QAConfig | None = None):
        self.inner, self.data, self.config = inner, data, config

    @property
    def model(self) -> torch.nn.Module:
        return self.inner.model

    @property
    def mode(self) -> str:
        return self.data["mode"]

    @property
    def threshold(self) -> float:
        """Abstain below this confidence; -inf (always answer) when none was calibrated."""
        t = self.data.get("threshold")
        return -math.inf if t is None else t

    def norm(self, text: str) -> str:
        return normalize(text, self.data["lowercase"], self.data["nfkc"], self.data["split_punct"])

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, dev=None, config: QAConfig | dict | str | None = None, *, out=None, resume: bool = False,
            overwrite: bool = False, callbacks=None, log=print, **overrides) -> QA:
        """Train on `train`: a CSV/TSV path of question/answer pairs (columns `question_col`,
        `answer_col`) or a list of (question, answer) pairs. `dev` (same forms) calibrates the abstain
        threshold; without it a seeded `dev_fraction` of the questions is held out (0: no threshold).
        Settings: `config` and/or flat overrides (mode="classify", epochs=50, ...: the CLI flags' names).
        `out`: a run directory; None trains in memory. Returns the pipeline with the best weights and
        the calibrated threshold."""
        cfg = cls.make_config(config, **overrides)
        d, t = cfg.data, cfg.train
        tcfg = t.trainer_config(DEFAULT_EPOCHS)
        run_dir = check_out_dir(out, resume, overwrite) if out is not None else None
        data = {"mode": d.mode, "lowercase": d.lowercase, "nfkc": d.nfkc, "split_punct": d.split_punct,
                "question_col": d.question_col, "answer_col": d.answer_col, "header": d.header,
                "delimiter": d.delimiter, "encoding": d.encoding, "threshold": None, "max_len": 0}
        read = _reader(data)
        pairs = as_pairs(train, "train", read)
        if dev is not None:
            train_p, valid = pairs, as_pairs(dev, "dev", read)
        else:
            tr, va, _ = split_pairs(pairs, t.dev_fraction, 0.0, t.seed)
            train_p, valid = pairs.subset(tr), pairs.subset(va)
        if len(train_p) < 2:
            raise UserError(f"{pairs.origin}: {len(train_p)} training pairs after holding out --valid-fraction "
                            f"{t.dev_fraction}; give more rows or a smaller --valid-fraction")
        seen = train_p.subset(np.random.default_rng(t.seed).permutation(len(train_p))[:200].tolist())

        log(f"train {len(train_p)} question/answer pairs, valid {len(valid)}; mode {d.mode}")
        if d.mode == "seq2seq":
            pipe = build(lambda task, *parts: cls(Seq2SeqPipeline(task, *parts), parts[-1], cfg), cls.task,
                         cfg.model, d, train_p, data, t.seed)
        else:
            pipe = cls._classifier(cfg, train_p, data)

        def eval_fn(model):
            m_seen = pipe._metrics(seen.src, seen.tgt)
            m_valid = pipe._metrics(valid.src, valid.tgt) if len(valid) else {"exact_match": 0.0, "n": 0, "conf": []}
            both = (m_seen["exact_match"] * m_seen["n"] + m_valid["exact_match"] * m_valid["n"])
            both /= m_seen["n"] + m_valid["n"]
            gap = float(np.mean(m_seen["conf"]) - (np.mean(m_valid["conf"]) if m_valid["conf"] else 0.0))
            return {"score": both + 0.01 * min(1.0, max(0.0, gap)), "exact_match": both,
                    "seen_exact_match": m_seen["exact_match"], "valid_exact_match": m_valid["exact_match"],
                    "confidence_gap": gap}

        kw = dict(out=out, resume=resume, overwrite=overwrite, callbacks=callbacks, log=log)
        if d.mode == "seq2seq":
            st = train_seq2seq(pipe, pipe.inner, train_p, eval_fn, "score", "max", tcfg, **kw)
        else:
            batches = pipe.inner.batches([pipe.norm(q) for q in train_p.src], train_p.tgt, tcfg.batch_size,
                                         shuffle=True, seed=t.seed)

            def step_fn(model, batch):
                return F.cross_entropy(model(batch.ids, batch.lengths), batch.targets)

            st = run_training(pipe, batches, step_fn, eval_fn, metric="score", mode="max", trainer_config=tcfg, **kw)
        m_valid = pipe._metrics(valid.src, valid.tgt) if len(valid) else None
        if m_valid:  # calibrate on held-out questions *and* seen ones: a question the model was taught is
            m_cal = pipe._metrics(seen.src, seen.tgt)  # one it should answer, whatever the held-out part holds
            data["threshold"] = calibrate(m_valid["conf"] + m_cal["conf"], m_valid["right"] + m_cal["right"])
        else:
            data["threshold"] = None
        if run_dir is not None:
            save_checkpoint(run_dir / "best", pipe.model, pipe.meta())  # the same weights, now with the threshold
        m_seen = pipe._metrics(train_p.src, train_p.tgt)
        extra = {"mode": d.mode, "train_exact_match": m_seen["exact_match"], "train_answered": m_seen["answered"],
                 "threshold": data["threshold"]}
        if m_valid:
            m_valid = pipe._metrics(valid.src, valid.tgt)
            extra.update(valid_exact_match=m_valid["exact_match"], valid_answered=m_valid["answered"])
        finish(pipe, st, {}, out, extra=extra)
        return pipe

    @classmethod
    def _classifier(cls, cfg: QAConfig, train: Pairs, data: dict) -> QA:
        m, d = cfg.model, cfg.data
        questions = [normalize(q, d.lowercase, d.nfkc, d.split_punct) for q in train.src]
        tok = build_tokenizer(d.tokenizer, questions, False, d.subword_vocab)
        vocab = Vocab.build((tok.tokenize(q) for q in questions), d.min_freq, d.max_vocab)
        labels = Vocab.labels(train.tgt)
        mcfg = ClassifierConfig(m.encoder_config(len(vocab), vocab.pad_id), len(labels), "last", m.dropout)
        torch.manual_seed(cfg.train.seed)
        return cls(Classifier(tok, vocab, labels, TextClassifier(mcfg), data), data, cfg)

    # ---- inference -----------------------------------------------------------------------------
    def answer(self, questions: list[str], beam: int = 1) -> list[tuple[str, float]]:
        """(best guess, confidence = a mean log-probability <= 0) for each question, never abstaining."""
        questions = list(questions)
        if self.mode == "seq2seq":
            return [(tidy(o.text), o.mean_logprob) for o in self.inner.generate(questions, beam)]
        probs = self.inner.predict_proba([self.norm(q) for q in questions])
        best = probs.argmax(1)
        names = self.inner.labels.itos
        return [(names[k], float(np.log(max(probs[i, k], 1e-12)))) for i, k in enumerate(best)]

    def predict(self, questions, beam: int = 1, threshold: float | None = None) -> list[str | None] | str | None:
        """The answer to each question, or None where the model abstains (its confidence is below
        `threshold`, default the calibrated one; the CLI prints "I don't know" there). One question
        gives one answer."""
        single = isinstance(questions, str)
        thr = self.threshold if threshold is None else threshold
        out = [a if c >= thr else None for a, c in self.answer([questions] if single else questions, beam)]
        return out[0] if single else out

    def _metrics(self, questions: list[str], answers: list[str], beam: int = 1) -> dict:
        out = self.answer(questions, beam)
        hyps, conf = [a for a, _ in out], [c for _, c in out]
        answered = [c >= self.threshold for c in conf]
        right = [answer_tokens(h) == answer_tokens(r) for h, r in zip(hyps, answers)]
        n_ans = sum(answered)
        return {"exact_match": exact_match(hyps, answers), "token_f1": token_f1(hyps, answers),
                "answered": n_ans / max(1, len(hyps)),
                "answered_exact_match": sum(a and r for a, r in zip(answered, right)) / max(1, n_ans),
                "n": len(hyps), "conf": conf, "right": right, "hyps": hyps}

    def evaluate(self, data, beam: int = 1) -> dict:
        """exact_match and token_f1 of the best guesses, the answered share (confidence >= threshold),
        exact match among the answered ones, and n, on `data`: a question/answer file (read with the
        columns of training) or a list of (question, answer) pairs."""
        pairs = as_pairs(data, "data", _reader(self.data))
        m = self._metrics(pairs.src, pairs.tgt, beam)
        return {k: v for k, v in m.items() if k not in ("conf", "right", "hyps")}

    # ---- files ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> torch.nn.Module:
        return self.inner.model.encoder

    tidy = staticmethod(tidy)  # a generated answer as shown: detokenized, capitalised

    @property
    def generator(self) -> Seq2SeqPipeline | None:
        """The seq2seq model that writes answers, or None in classify mode (it picks a training answer)."""
        return self.inner if self.mode == "seq2seq" else None

    def count_steps(self, text: str) -> int:
        return self.inner.count_steps(text if self.mode == "seq2seq" else self.norm(text))

    def steps(self, text: str, top_k: int = 5) -> Steps:
        """The inner model's view: the seq2seq encoder, or the classifier's answer per prefix."""
        return self.inner.steps(text if self.mode == "seq2seq" else self.norm(text), top_k)

    def readout(self, text: str) -> Readout:
        """The inner model's: the seq2seq answer teacher-forced, or the classifier's class scores."""
        return self.inner.readout(text if self.mode == "seq2seq" else self.norm(text))

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        if cfg["data"].get("mode") == "classify":
            return Classifier.graph_model(cfg)
        return Seq2SeqPipeline.graph_model(cfg)

    def meta(self, train_cfg=None) -> dict:
        tcfg = train_cfg or (self.config.train.trainer_config(DEFAULT_EPOCHS) if self.config else TrainConfig())
        if self.mode == "seq2seq":
            return self.inner.meta(tcfg)
        i = self.inner
        v = {"tokenizer": i.tokenizer.to_json(), "vocab": i.vocab.to_json(), "labels": i.labels.to_json()}
        return task_meta(self.task, i.model.cfg.to_json(), self.data, tcfg, v)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> QA:
        """Open a checkpoint directory (a run's out, best/ or last/) or an exported .onnx/.pt file."""
        exported = runtime.is_exported(path)  # NAME.onnx / NAME.pt from `seqlab export`
        if exported:
            ckpt, (cfg, v, model) = path, runtime.load(path, cls.task)
        else:
            ckpt, cfg, v = open_checkpoint(path, cls.task)
        data = cfg["data"]
        if data["mode"] == "seq2seq":
            inner = Seq2SeqPipeline(cls.task, *load_parts(ckpt, cls.task, device))
            return cls(inner, inner.data)
        if not exported:
            model = TextClassifier(ClassifierConfig.from_json(cfg["model"]))
            load_weights(model, ckpt, pick_device(device))
            model.eval()
        inner = Classifier(tokenizer_from_json(v["tokenizer"]), Vocab.from_json(v["vocab"]),
                           Vocab.from_json(v["labels"]), model, data)
        return cls(inner, data)
