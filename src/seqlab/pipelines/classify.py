"""Sequence classification (and regression) as a library: texts or numeric feature sequences in, labels out.

    from seqlab.pipelines import Classifier
    clf = Classifier.fit("train.csv", dev="dev.csv", epochs=3)        # or fit((texts, labels))
    clf.predict(["a gripping, funny film"])                            # ['positive']
    clf.evaluate("test.csv")["accuracy"]
    clf.save("sst2/");  clf = Classifier.load("sst2/")

A checkpoint holds tokenizer + vocabulary + label set + model. A model of numeric feature sequences
(`features=True`) has no tokenizer or vocabulary: its inputs are (time, features) arrays, standardised
with the training statistics in data["scaler"]. A regression model (`regression=True`) has no label set:
one output, the target standardised with data["target"].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data import BucketBatcher, Vocab, build_tokenizer, features, tokenizer_from_json
from seqlab.data.row_store import RowStore, texts_digest
from seqlab.data.split import holdout
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics import classification_metrics, regression
from seqlab.models.classifier import POOLINGS, ClassifierConfig, TextClassifier
from seqlab.pipelines.base import Pipeline, Readout, Steps, finish, run_training, shown
from seqlab.pipelines.classify_bag import bag_default, bag_groups, bigram_buckets
from seqlab.pipelines.classify_rows import TableRows, check_labels
from seqlab.pipelines.classify_rows import labelled as _labelled
from seqlab.pipelines.config import Config, choice, num
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.sections import EncoderSettings, FinetuneSettings, TableSettings, TokenSettings, TrainSettings
from seqlab.pipelines.transfer import adopt_pretrained, apply_pretrained, finetune, pretrained_tokenizer
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig


@dataclass
class ClassifyModel(EncoderSettings, FinetuneSettings):
    """The defaults hold up on small text sets too: max pooling over the steps, dropout 0.5, embedding
    dropout 0.3, and below BAG_BELOW training texts the recurrent model averaged with a bag of embeddings."""

    pooling: str | None = choice(None, POOLINGS, allow_none=True)  # None: max for text, last for features
    dropout: float = num(0.5, 0.0, 1.0, hi_open=True)
    embed_dropout: float = num(0.3, 0.0, 1.0, hi_open=True)
    bag: str = choice("auto", ("auto", "on", "off"))  # average with a bag of embeddings; auto: classify_bag.bag_default
    bag_buckets: int | None = num(None, 0, allow_none=True)  # the bag's hashed bigram rows; None: sized to the data


ROW_STORE_ROWS = 200_000  # from this many training texts, tokenized rows go to a RowStore


@dataclass
class ClassifyData(TableSettings, TokenSettings):
    label_col: str = "label"
    features: bool = False  # numeric feature sequences (long CSV id,step,features...,label or .npz) instead of text
    id_col: str = "id"
    step_col: str = "step"
    regression: bool = False  # numeric targets: one output, MSE on the standardised target
    no_bucket: bool = False  # batch in random order instead of grouping similar lengths
    cache: str | None = None  # tokenized training rows (RowStore) in this directory; None: OUT/rows from 200k rows


@dataclass
class ClassifyConfig(Config):
    model: ClassifyModel = field(default_factory=ClassifyModel)
    data: ClassifyData = field(default_factory=ClassifyData)
    train: TrainSettings = field(default_factory=TrainSettings)


@register_task
class Classifier(Pipeline):
    """Tokenizer, vocabulary, labels and model: raw text (or feature sequences) in, classes or values out."""

    task = "classify"
    Config = ClassifyConfig

    def __init__(self, tokenizer, vocab: Vocab | None, labels: Vocab | None, model: TextClassifier, data: dict,
                 config: ClassifyConfig | None = None):
        self.tokenizer, self.vocab, self.labels, self.model, self.data = tokenizer, vocab, labels, model, data
        self.config = config

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, dev=None, config: ClassifyConfig | dict | str | None = None, *, out=None,
            resume: bool = False, overwrite: bool = False, callbacks=None, log=print, **overrides) -> Classifier:
        """Train on `train` (a CSV/TSV path, an .npz / long CSV with features=True, or (inputs, labels)).

        Without `dev`, a seeded `dev_fraction` of `train` is held out. Settings: `config` and/or flat
        keyword overrides (hidden=64, epochs=3, ...: the names of the CLI flags). `out`: a run directory
        (checkpoints, logs, resume); None trains in memory. Returns the pipeline with the best weights.
        """
        cfg = adopt_pretrained(cls.make_config(config, **overrides), log, "classify")  # vectors / LM sizes
        m, dc = cfg.model, cfg.data
        data = {"text_col": dc.text_col, "label_col": dc.label_col, "delimiter": dc.delimiter, "header": dc.header,
                "encoding": dc.encoding, "tokenizer": dc.tokenizer, "lowercase": dc.lowercase,
                "min_freq": dc.min_freq, "max_vocab": dc.max_vocab, "max_len": dc.max_len}
        if dc.features:
            data.update(features=True, id_col=dc.id_col, step_col=dc.step_col)
        tcfg = cfg.train.trainer_config(10)
        big = TableRows.open(train, dev, data, dc, m, cfg.train, log, ROW_STORE_ROWS)  # large: streamed
        if big is not None:
            tok, vocab, label_vocab, texts, labels = big.tok, big.vocab, big.labels, big, big.targets
            dev_texts, dev_labels = big.dev_texts, big.dev_labels
            enc = m.encoder_config(len(vocab), vocab.pad_id)
        else:
            texts, labels, lines = _labelled(train, data, "train")
            train_name = str(train) if isinstance(train, (str, Path)) else "the training data"
            if dc.regression:
                data["regression"] = True
                labels = regression.parse_targets(labels, lines, train_name).tolist()
            if dev is not None:
                dev_texts, dev_labels, dev_lines = _labelled(dev, data, "dev")
                if dc.regression:
                    dev_labels = regression.parse_targets(dev_labels, dev_lines, dev).tolist()
            else:
                if len(texts) < 2:
                    raise UserError(f"{train_name} has {len(texts)} example; give at least 2 (one is held out as dev)")
                tr_idx, dev_idx = holdout(len(texts), cfg.train.dev_fraction, cfg.train.seed)
                dev_texts, dev_labels = [texts[i] for i in dev_idx], [labels[i] for i in dev_idx]
                texts, labels, dev_lines = [texts[i] for i in tr_idx], [labels[i] for i in tr_idx], None
            label_vocab = None if dc.regression else Vocab.labels(labels)
            if dc.regression:
                data["target"] = regression.target_scaler(np.array(labels))
            else:
                check_labels(label_vocab, dev_labels, dev_lines, train_name, dev, dc.label_col)
            if dc.features:
                tok = vocab = None
                data.update(input_dim=texts[0].shape[1], scaler=features.fit_scaler(texts))
                enc = m.encoder_config(0, 0, input_dim=data["input_dim"])
            else:
                tok = pretrained_tokenizer(m) or build_tokenizer(dc.tokenizer, texts, dc.lowercase, dc.subword_vocab)
                vocab = Vocab.build((tok.tokenize(t) for t in texts), dc.min_freq, dc.max_vocab)
                enc = m.encoder_config(len(vocab), vocab.pad_id)
        if m.cell == "none" and m.pooling in (None, "last"):
            pooling = "mean"  # a bag of embeddings has no final state
        else:
            pooling = m.pooling or ("last" if dc.features else "max")
        bag, why = bag_default(m, len(texts), vocab is not None, not dc.regression)
        if why:
            log(why)
        pipe = cls(tok, vocab, label_vocab, None, data, cfg)  # the model comes once the bag's size is known
        rows = None  # large data: tokenized rows in one flat array (files in --cache / OUT/rows), not tensors
        if vocab is not None and (dc.cache or len(texts) >= ROW_STORE_ROWS):
            rows = pipe.rows(texts, dc.cache or (Path(out) / "rows" if out is not None else None), log)
        batches = pipe.batches(texts, labels, tcfg.batch_size, shuffle=True, bucket=not dc.no_bucket,
                               seed=cfg.train.seed, rows=rows)
        buckets = m.bag_buckets if m.bag_buckets is not None or not bag else bigram_buckets(batches.seqs)
        mcfg = ClassifierConfig(enc, 1 if dc.regression else len(label_vocab), pooling, m.dropout, bag,
                                buckets if bag else 0, bool(m.init_from_backward))
        torch.manual_seed(cfg.train.seed)
        pipe.model = TextClassifier(mcfg)
        apply_pretrained(pipe.model.encoder.embedding, vocab, m, log, encoder=pipe.model.encoder,
                         back_encoder=pipe.model.back_encoder)
        if bag and m.embeddings:  # the user's vectors start both members
            pipe.model.bag.embedding.weight.data.copy_(pipe.model.encoder.embedding.weight.data)
            pipe.model.bag.embedding.weight.requires_grad_(not m.freeze_embeddings)

        def step_fn(model, batch):
            if dc.regression:
                return F.mse_loss(model(batch.ids, batch.lengths)[:, 0].float(), batch.targets)
            return sum(F.cross_entropy(x, batch.targets) for x in model.member_logits(batch.ids, batch.lengths))

        keep = ("mae", "rmse", "r2") if dc.regression else ("accuracy", "macro_f1", "loss")

        def eval_fn(model):
            return {k: v for k, v in pipe.evaluate((dev_texts, dev_labels)).items() if k in keep}

        n_params = sum(p.numel() for p in pipe.model.parameters())
        kind = "regression" if dc.regression else f"classes {label_vocab.itos}"
        log(f"train {len(texts)} examples, dev {len(dev_texts)}, vocab {len(vocab) if vocab else 'none'}, "
            f"{kind}, {n_params:,} parameters")
        stop = f"early stop after {tcfg.patience} evaluations without a better dev score" if tcfg.patience else \
            "no early stop"
        log(f"model {m.cell} {m.layers}x{m.hidden}{' bidirectional' if m.bidirectional else ''}, "
            f"{'' if dc.features else f'embed {m.embed}, embed dropout {m.embed_dropout}, '}dropout {m.dropout}, "
            f"{pooling} pooling{' + a backward member' if mcfg.backward else ''}"
            f"{' + a bag of embeddings' if bag else ''}; {tcfg.epochs or 'time-limited'} epochs, "
            f"{stop}, best by dev "
            f"{'MAE' if dc.regression else 'accuracy (ties: dev loss)'}")
        metric, mode = ("mae", "min") if dc.regression else ("accuracy", "max")
        st = run_training(pipe, batches, step_fn, eval_fn, metric=metric, mode=mode, out=out, resume=resume,
                          overwrite=overwrite, log=log, trainer_config=tcfg,
                          tie=None if dc.regression else ("loss", "min"),
                          **bag_groups(pipe.model, finetune("classify", pipe.model, m, callbacks, out,
                                                            cfg.train.logger, log)))  # ULMFiT, the bag's lr
        finish(pipe, st, pipe.evaluate((dev_texts, dev_labels)), out)
        return pipe

    # ---- inference -----------------------------------------------------------------------------
    def encode(self, texts: list) -> list[torch.Tensor]:
        """Token ids of each text (1-d long tensors); an empty text becomes a single <unk>. For a
        feature model: each (time, features) array, standardised, as a float tensor."""
        if self.vocab is None:
            return features.encode(texts, self.data["scaler"])
        return [torch.tensor(ids, dtype=torch.long) for ids in self._ids(texts)]

    def _ids(self, texts) -> list[list[int]]:
        max_len = self.data.get("max_len") or None
        return [self.vocab.encode(self.tokenizer.tokenize(t))[:max_len] or [self.vocab.unk_id] for t in texts]

    def rows(self, texts: list | TableRows, cache: str | Path | None = None, log=None) -> RowStore:
        """The texts tokenized into one flat id array + offsets (`RowStore`): files in `cache` (reused when
        the texts, tokenizer and vocabulary are the same), or in memory."""
        key = {"tokenizer": self.tokenizer.to_json(), "vocab": self.vocab.to_json(),
               "max_len": self.data.get("max_len") or 0}
        key["vocab"] = texts_digest([json.dumps(key["vocab"], sort_keys=True)])
        cache = Path(cache) if cache else None
        if isinstance(texts, TableRows):  # a large table, read again chunk by chunk
            return RowStore.build_from(texts.id_chunks(self._ids), len(self.vocab), {**key, **texts.key}, cache,
                                       log=log)
        return RowStore.build(texts, self._ids, len(self.vocab), key, cache, log=log)

    def batches(self, texts: list, labels: list | None = None, batch_size: int = 256, rows: RowStore | None = None,
                **kw) -> BucketBatcher:
        if labels is None or isinstance(labels, torch.Tensor):  # None, or the class ids already
            targets = labels
        elif self.labels is None:  # regression: float targets (n,), standardised
            targets = torch.tensor(regression.standardise(np.asarray(labels, float), self.data["target"]),
                                   dtype=torch.float32)
        else:
            targets = torch.tensor(self.labels.encode(labels))
        if self.vocab is None:
            return features.FeatureBatcher(self.encode(texts), targets, batch_size, 0, **kw)
        return BucketBatcher(rows if rows is not None else self.encode(texts), targets, batch_size,
                             self.vocab.pad_id, **kw)

    @torch.no_grad()
    def predict_proba(self, texts: list, batch_size: int = 256) -> np.ndarray:
        """(n, classes) probabilities, rows in the order of `texts`."""
        if self.labels is None:
            raise UserError("a regression model has no class probabilities; use predict()")
        self.model.eval()
        probs = torch.empty(len(texts), len(self.labels))
        for b in self.batches(list(texts), batch_size=batch_size):
            probs[b.index] = F.softmax(self.model(b.ids.to(self.device), b.lengths), -1).float().cpu()
        return probs.numpy()

    @torch.no_grad()
    def predict_values(self, texts: list, batch_size: int = 256) -> np.ndarray:
        """Regression: (n,) predictions in the target's own units, in the order of `texts`."""
        self.model.eval()
        z = torch.empty(len(texts))
        for b in self.batches(list(texts), batch_size=batch_size):
            z[b.index] = self.model(b.ids.to(self.device), b.lengths)[:, 0].float().cpu()
        return regression.restore(z.numpy().astype(np.float64), self.data["target"])

    def predict(self, texts, batch_size: int = 256) -> list:
        """The label of each text (a float per text for a regression model); one text gives one label."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if self.labels is None:
            out = self.predict_values(texts, batch_size).tolist()
        else:
            out = [self.labels.itos[i] for i in self.predict_proba(texts, batch_size).argmax(1)]
        return out[0] if single else out

    def evaluate(self, data, batch_size: int = 256) -> dict:
        """Metrics on `data` (a labelled file in the training format, or (inputs, labels)):
        accuracy, macro-F1, loss, confusion matrix, n; for regression MAE, RMSE, R² and the mean baseline."""
        texts, labels, lines = _labelled(data, self.data, "data")
        if self.labels is None:
            y = regression.parse_targets(labels, lines, data if isinstance(data, (str, Path)) else "data")
            return regression.regression_metrics(y, self.predict_values(texts, batch_size),
                                                 self.data["target"]["mean"])
        item = "sequence" if self.vocab is None else "example"
        where = [f"line {n}" for n in lines] if lines else [f"{item} {i}" for i in range(len(labels))]
        unknown = [(lb, w) for lb, w in zip(labels, where) if lb not in self.labels]
        if unknown:
            name = data if isinstance(data, (str, Path)) else "data"
            raise UserError(f"{name}: {unknown[0][1]} has label {unknown[0][0]!r}, which the model "
                            f"never saw (it knows {self.labels.itos}); fix the label column")
        probs = self.predict_proba(texts, batch_size)
        gold = np.array(self.labels.encode(labels))
        m = classification_metrics(gold, probs.argmax(1), len(self.labels))
        m["loss"] = float(-np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, None)).mean())
        m["n"] = len(gold)
        return m

    # ---- files ---------------------------------------------------------------------------------
    def count_steps(self, text: str) -> int:
        """The number of steps `steps(text)` unrolls (it runs the model on all of them as prefixes)."""
        if self.vocab is None:
            return self.steps(text)  # raises: a feature model has no text to unroll
        return len(self.encode([text])[0])

    @torch.no_grad()
    def steps(self, text: str, top_k: int = 5) -> Steps:
        """Per token: p(class | the text up to it), the classifier's answer if the text ended there."""
        if self.vocab is None:
            raise UserError("this classifier reads numeric feature sequences, not text; the unroller shows text models")
        ids = self.encode([text])[0]  # (time,)
        n = len(ids)  # every prefix as one batch
        probs = torch.softmax(self.model(ids.expand(n, n).tril(), torch.arange(1, n + 1)), -1).double().numpy()
        return Steps([shown(t) for t in self.vocab.decode(ids.tolist())], ids, "classes", probs,
                     list(self.labels.itos) if self.labels is not None else ["value"],
                     note="p(class | the text up to this token): the classifier's answer if the text ended here")

    def readout(self, text: str) -> Readout:
        """One output, the class scores of the whole text (logits (n, 1, classes)); a regression model's
        one raw value. With a bag or backward member, the forward recurrent member's scores: the others read
        their own embedding tables, which the backward view and saliency (differentiating the encoder's
        inputs) do not see."""
        if self.vocab is None:
            raise UserError("this classifier reads numeric feature sequences, not text; the backward view "
                            "shows text models")
        ids = self.encode([text])[0]  # (time,)

        def run(model, n: int) -> torch.Tensor:  # with a bag member: the recurrent member's own scores
            return model.member_logits(ids.expand(n, -1), torch.full((n,), len(ids)))[0][:, None, :]

        labels = list(self.labels.itos) if self.labels is not None else ["value"]
        alone = self.model.bag is None and self.model.back_encoder is None
        what = "the whole text" + ("" if alone else f" (the forward {self.model.cfg.encoder.cell} member)")
        return Readout(self.model, self.model.encoder, [shown(t) for t in self.vocab.decode(ids.tolist())], ids,
                       run, [what], labels, [-1], 0, [0], regression=self.labels is None)

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        return "classify", TextClassifier(ClassifierConfig.from_json(cfg["model"]))

    def meta(self, train_cfg=None) -> dict:
        vocab = {"labels": self.labels.to_json()} if self.labels is not None else {}
        if self.vocab is not None:
            vocab.update(tokenizer=self.tokenizer.to_json(), vocab=self.vocab.to_json())
        tcfg = train_cfg or (self.config.train.trainer_config(10) if self.config else TrainConfig())
        return task_meta(self.task, self.model.cfg.to_json(), self.data, tcfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Classifier:
        """Open a checkpoint directory (a run's --out, best/ or last/) or an exported .onnx/.pt file."""
        cfg, v, model = runtime.load_model(path, cls.task, lambda m: TextClassifier(ClassifierConfig.from_json(m)),
                                           device)
        ckpt = "the checkpoint's vocab.json"
        need = (() if cfg["data"].get("regression") else ("labels",)) + \
            (() if cfg["data"].get("features") else ("tokenizer", "vocab"))
        missing = [k for k in need if k not in v]
        if missing:
            raise UserError(f"{path}: {ckpt} is damaged (no {missing[0]!r}); retrain, or restore the file")
        tok = tokenizer_from_json(v["tokenizer"]) if "tokenizer" in v else None
        vocab = Vocab.from_json(v["vocab"]) if "vocab" in v else None
        labels = Vocab.from_json(v["labels"]) if "labels" in v else None
        return cls(tok, vocab, labels, model, cfg["data"])
