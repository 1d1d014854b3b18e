"""Sequence tagging as a library: tokenized sentences in, one tag per token out (NER, POS, chunking).

    from seqlab.pipelines import Tagger
    tagger = Tagger.fit("train.conll", dev="dev.conll", epochs=5)   # or fit([(tokens, tags), ...])
    tagger.predict(["John lives in Paris ."])                        # [['B-PER', 'O', 'O', 'B-LOC', 'O']]
    tagger.evaluate("test.conll")["f1"]                              # entity F1 as conlleval counts it
    tagger.save("ner/");  tagger = Tagger.load("ner/")

A checkpoint holds the word vocabulary, the character vocabulary, the tag set and the BiLSTM(-CRF)
model (seqlab.models.tagger). Entity tags (BIO, IOB1, BIOES) are learned in `model_scheme` (BIOES
by default) and written back in the scheme of the training data; entity-tagged data is scored by
entity F1 (conlleval), plain tags (POS) by token accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqlab.data import Vocab
from seqlab.data.conll import (
    ENTITY_SCHEMES,
    FORMATS,
    SCHEMES,
    TaggedCorpus,
    check_scheme,
    detect_format,
    read_conll,
    to_scheme,
)
from seqlab.data.split import holdout
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics.tagging import entity_metrics, token_accuracy
from seqlab.models.tagger import CHAR_FEATURES, TagBatcher, TaggerConfig, case_of, tag_log_scores, tag_marginals
from seqlab.models.tagger import Tagger as TaggerModel
from seqlab.pipelines.base import Pipeline, Readout, Steps, finish, run_training
from seqlab.pipelines.config import Config, ConfigError, choice, num
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.sections import EncoderSettings, FinetuneSettings, TrainSettings
from seqlab.pipelines.transfer import adopt_pretrained, apply_pretrained, finetune, pretrained_encoder_config
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import SCHEDULES, TrainConfig

MAX_CHARS = 30  # longer words keep their first and last 15 characters
DEFAULT_EPOCHS = 30
DEV_METRICS = ("f1", "precision", "recall", "accuracy")


@dataclass
class TagModel(EncoderSettings, FinetuneSettings):
    """The BiLSTM(-CRF) tagger: word embeddings (+ character features, + case pattern) -> encoder -> tags."""

    hidden: int = num(100, 1, 65536)
    embed: int = num(100, 1, 65536)  # word embedding size
    bidirectional: bool = True
    dropout: float = num(0.5, 0.0, 1.0, hi_open=True)
    embed_dropout: float = num(0.5, 0.0, 1.0, hi_open=True)
    model_scheme: str = choice("bioes", ("bioes", "bio"))  # how the model encodes entities
    char_features: str = choice("lstm", CHAR_FEATURES)
    char_dim: int = num(30, 1)
    char_out: int = num(50, 1)  # a word's character features (char BiLSTM: both directions together)
    crf: bool = True
    word_dropout: float = num(0.1, 0, 1, hi_open=True)  # share of training tokens replaced by <unk>

    def check(self) -> None:
        if self.char_features == "lstm" and self.char_out % 2:
            raise ConfigError("model.char_out", f"{self.char_out} must be even (half per direction of the "
                                                "char BiLSTM)")


@dataclass
class TagData(Config):
    """How CoNLL / CoNLL-U files are read, and the word vocabulary."""

    format: str = choice("auto", FORMATS)  # auto: conllu for *.conllu[.gz], else conll
    word_col: str | None = None  # None: 0 for conll, form for conllu
    tag_col: str | None = None  # None: -1 for conll, upos for conllu
    scheme: str = choice("auto", SCHEMES)  # the files' tag scheme; auto: detected from the tags
    encoding: str = "utf-8"
    lowercase: bool = True  # lower-case the word vocabulary and add a learned case-pattern feature
    min_freq: int = num(2, 1)
    max_vocab: int | None = num(None, 1, allow_none=True)


@dataclass
class TagTrain(TrainSettings):
    batch: int = num(32, 1)
    lr: float | None = num(4e-3, 0.0, lo_open=True, allow_none=True)
    schedule: str = choice("cosine", SCHEDULES)
    patience: int = num(5, 0)


@dataclass
class TagConfig(Config):
    model: TagModel = field(default_factory=TagModel)
    data: TagData = field(default_factory=TagData)
    train: TagTrain = field(default_factory=TagTrain)


def as_corpus(source, name: str = "data") -> TaggedCorpus:
    """A TaggedCorpus from (tokens, tags) pairs; tokens and tags are lists or whitespace-separated strings.

    For error messages a sentence's "line" is its 1-based position in the list.
    """
    if isinstance(source, TaggedCorpus):
        return source
    words, tags = [], []
    try:
        for i, (ws, ts) in enumerate(source, 1):
            ws = ws.split() if isinstance(ws, str) else [str(w) for w in ws]
            ts = ts.split() if isinstance(ts, str) else [str(t) for t in ts]
            if not ws or len(ws) != len(ts):
                raise UserError(f"{name}: sentence {i} has {len(ws)} tokens and {len(ts)} tags; give one tag per "
                                "token, at least one token per sentence")
            words.append(ws)
            tags.append(ts)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a CoNLL / CoNLL-U file path or a list of (tokens, tags) pairs") from None
    if not words:
        raise UserError(f"{name}: no sentences given")
    return TaggedCorpus(name, words, tags, [[i] * len(w) for i, w in enumerate(words, 1)])


def read_tagged(source, fmt: str = "auto", word_col=None, tag_col=None, encoding: str = "utf-8",
                with_tags: bool = True, name: str = "data") -> tuple[TaggedCorpus, str]:
    """(corpus, format) of a CoNLL / CoNLL-U path, or of (tokens, tags) pairs (format "conll")."""
    if isinstance(source, (str, Path)):
        fmt = detect_format(source, fmt)
        return read_conll(source, word_col, tag_col, fmt, encoding, with_tags), fmt
    return as_corpus(source, name), "conll" if fmt == "auto" else fmt


def check_tags(corpus: TaggedCorpus, scheme: str, trained: str) -> None:
    """The tags of an evaluation set must be the same kind (entity or plain) as the model's."""
    got = check_scheme(corpus, scheme)
    if (got in ENTITY_SCHEMES) != (trained in ENTITY_SCHEMES):
        raise UserError(f"{corpus.path}: its tags look like {got!r} tags but the model was trained on "
                        f"{trained!r} tags; check --tag-col and --scheme")


@register_task
class Tagger(Pipeline):
    """Vocabularies, tag set and tagger model: tokenized sentences in, tags out."""

    task = "tag"
    Config = TagConfig

    def __init__(self, words: Vocab, chars: Vocab | None, tags: Vocab, model: TaggerModel, data: dict,
                 config: TagConfig | None = None):
        self.words, self.chars, self.tags, self.model, self.data = words, chars, tags, model, data
        self.config = config

    @property
    def entities(self) -> bool:
        return self.data["scheme"] in ENTITY_SCHEMES

    def norm(self, word: str) -> str:
        return word.lower() if self.data["lowercase"] else word

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, dev=None, config: TagConfig | dict | str | None = None, *, out=None, resume: bool = False,
            overwrite: bool = False, callbacks=None, log=print, **overrides) -> Tagger:
        """Train on `train`: a CoNLL / CoNLL-U path, or a list of (tokens, tags) pairs.

        Without `dev` (same forms), a seeded `dev_fraction` of the training sentences is held out.
        Settings: `config` and/or flat keyword overrides (hidden=64, epochs=3, crf=False, ...: the names
        of the CLI flags). `out`: a run directory (checkpoints, logs, resume); None trains in memory.
        Returns the pipeline with the best weights; `.results` has the dev entity F1 (or accuracy).
        """
        cfg = adopt_pretrained(cls.make_config(config, **overrides), log, "tag")  # vectors / LM checks
        m, dc = cfg.model, cfg.data
        tcfg = cfg.train.trainer_config(DEFAULT_EPOCHS)
        data = {"format": dc.format, "word_col": dc.word_col, "tag_col": dc.tag_col, "encoding": dc.encoding,
                "lowercase": dc.lowercase}
        read = dict(word_col=dc.word_col, tag_col=dc.tag_col, encoding=dc.encoding)
        train_c, data["format"] = read_tagged(train, dc.format, **read, name="train")
        scheme = check_scheme(train_c, dc.scheme)
        if dev is not None:
            dev_c, _ = read_tagged(dev, dc.format, **read, name="dev")
            check_tags(dev_c, dc.scheme, scheme)
            dev_words, dev_tags, tr_words, tr_tags = dev_c.words, dev_c.tags, train_c.words, train_c.tags
        else:
            if len(train_c) < 2:
                raise UserError(f"{train_c.path} has {len(train_c)} sentence; give at least 2 (one is held out "
                                "as dev)")
            tr_idx, dev_idx = holdout(len(train_c), cfg.train.dev_fraction, cfg.train.seed)
            dev_words, dev_tags = [train_c.words[i] for i in dev_idx], [train_c.tags[i] for i in dev_idx]
            tr_words, tr_tags = [train_c.words[i] for i in tr_idx], [train_c.tags[i] for i in tr_idx]
        entities = scheme in ENTITY_SCHEMES
        data.update(scheme=scheme, model_scheme=m.model_scheme if entities else "none")
        tags = Vocab.labels(t for s in tr_tags for t in to_scheme(s, data["model_scheme"]))
        unseen = sorted({t for s in dev_tags for t in to_scheme(s, data["model_scheme"])} - set(tags.itos))
        if unseen:
            where = dev_c.path if dev is not None else train_c.path
            raise UserError(f"{where}: tag {unseen[0]!r} in the dev sentences never occurs in the training "
                            "sentences; fix the tag or add training examples of it")
        norm = str.lower if dc.lowercase else str
        words = Vocab.build(([norm(w) for w in s] for s in tr_words), dc.min_freq, dc.max_vocab)
        chars = Vocab.build(ch for s in tr_words for ch in s) if m.char_features != "none" else None
        case_dim, lm_enc = 8 if dc.lowercase else 0, pretrained_encoder_config(m, words, m.dropout)  # LM or None
        lm_back = pretrained_encoder_config(m, words, m.dropout, backward=True)  # a backward LM or None
        in_dim = m.embed + (m.char_out if chars else 0) + case_dim + sum(e.output_dim for e in (lm_enc, lm_back) if e)
        mcfg = TaggerConfig(m.encoder_config(0, 0, input_dim=in_dim), len(words), m.embed, len(tags),
                            m.char_features, len(chars) if chars else 0, m.char_dim, m.char_out, case_dim, m.crf,
                            m.dropout, m.word_dropout, words.pad_id, words.unk_id, lm=lm_enc, lm_back=lm_back)
        torch.manual_seed(cfg.train.seed)
        pipe = cls(words, chars, tags, TaggerModel(mcfg), data, cfg)
        apply_pretrained(pipe.model.embedding, words, m, log, encoder=pipe.model.lm, back_encoder=pipe.model.lm_back)
        batches = pipe.batches(tr_words, tr_tags, tcfg.batch_size, shuffle=True, seed=cfg.train.seed)

        def eval_fn(model):
            got, _ = pipe.score(dev_words, dev_tags)
            return {k: got[k] for k in DEV_METRICS if k in got}

        n_params = sum(p.numel() for p in pipe.model.parameters())
        kind = f"{scheme} as {data['model_scheme']}" if entities else "plain labels, accuracy"
        log(f"train {len(tr_words)} sentences, dev {len(dev_words)}, words {len(words)}, "
            f"chars {len(chars) if chars else 0}, tags {len(tags)} ({kind}), {n_params:,} parameters")
        st = run_training(pipe, batches, lambda model, b: model.loss(b), eval_fn,
                          metric="f1" if entities else "accuracy", mode="max", out=out, resume=resume,
                          overwrite=overwrite, log=log, trainer_config=tcfg,
                          **finetune("tag", pipe.model, m, callbacks, out, cfg.train.logger, log))  # ULMFiT
        finish(pipe, st, eval_fn(pipe.model), out)
        return pipe

    # ---- inference -----------------------------------------------------------------------------
    def batches(self, sentences: list[list[str]], tags: list[list[str]] | None = None, batch_size: int = 128,
                **kw) -> TagBatcher:
        """Batches of `sentences` (lists of tokens) with optional gold `tags` in the data's scheme."""
        words = [torch.tensor(self.words.encode(map(self.norm, s)), dtype=torch.long) for s in sentences]
        targets = None
        if tags is not None:
            targets = [torch.tensor(self.tags.encode(to_scheme(t, self.data["model_scheme"])), dtype=torch.long)
                       for t in tags]
        cfg = self.model.cfg
        if self.chars is None and not cfg.case_dim:
            return TagBatcher(words, targets, batch_size, self.words.pad_id, **kw)
        ids: dict[str, int] = {"": 0}  # form 0 is padding
        forms = [torch.tensor([ids.setdefault(w, len(ids)) for w in s], dtype=torch.long) for s in sentences]
        names = list(ids)
        form_chars = form_lengths = form_case = None
        if self.chars is not None:
            h = MAX_CHARS // 2
            seqs = [torch.tensor(self.chars.encode(w if len(w) <= MAX_CHARS else w[:h] + w[-h:]) or [0])
                    for w in names]
            form_chars = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
            form_lengths = torch.tensor([len(x) for x in seqs])
        if cfg.case_dim:
            form_case = torch.tensor([0] + [case_of(w) for w in names[1:]], dtype=torch.long)
        return TagBatcher(words, targets, batch_size, self.words.pad_id, forms, form_chars, form_lengths,
                          form_case, **kw)

    @torch.no_grad()
    def predict(self, sentences, batch_size: int = 128) -> list:
        """The tags of each sentence (a list of tokens, or a string split on whitespace), in the training
        data's scheme, in the order given; one string gives one tag list."""
        single = isinstance(sentences, str)
        sentences = [s.split() if isinstance(s, str) else list(s) for s in ([sentences] if single else sentences)]
        empty = next((i for i, s in enumerate(sentences) if not s), None)
        if empty is not None:
            raise UserError(f"sentence {empty + 1} is empty; give at least one token per sentence")
        self.model.eval()
        out: list[list[str]] = [[] for _ in sentences]
        for b in self.batches(sentences, batch_size=batch_size):
            pred = self.model.decode(b.to(self.device)).cpu()
            for row, i, n in zip(pred.tolist(), b.index.tolist(), b.lengths.tolist()):
                out[i] = self.tags.decode(row[:n])
        if self.entities:
            out = [to_scheme(t, self.data["scheme"]) for t in out]
        return out[0] if single else out

    def score(self, sentences: list[list[str]], gold: list[list[str]]) -> tuple[dict, list[list[str]]]:
        """(metrics, predicted tags): entity P/R/F1 and token accuracy, or token accuracy for plain tags."""
        pred = self.predict(sentences) if sentences else []
        if self.entities:
            return entity_metrics(gold, pred), pred
        return {"accuracy": token_accuracy(gold, pred), "tokens": sum(map(len, gold))}, pred

    def read(self, path, fmt: str | None = None, word_col=None, tag_col=None, encoding: str | None = None,
             with_tags: bool = True) -> TaggedCorpus:
        """A CoNLL / CoNLL-U file read as in training; a column given here, or a different format, wins."""
        if fmt is None:  # CoNLL-U by its name, else the training files' format
            fmt = detect_format(path, "auto")
            fmt = self.data.get("format", "conll") if fmt == "conll" else fmt
        fmt = detect_format(path, fmt)
        keep = fmt == self.data.get("format")  # columns saved from training apply to files of its format
        word_col = word_col or (self.data.get("word_col") if keep else None)
        tag_col = tag_col or (self.data.get("tag_col") if keep else None)
        return read_conll(path, word_col, tag_col, fmt, encoding or self.data.get("encoding", "utf-8"), with_tags)

    def evaluate(self, data, scheme: str = "auto") -> dict:
        """Metrics on `data` (a tagged CoNLL / CoNLL-U path, or (tokens, tags) pairs), as `seqlab tag eval
        --json` prints them: entity tags give conlleval's precision, recall, F1 (and per type) plus token
        accuracy; plain tags give token accuracy. Also "sentences" and "tokens"."""
        corpus = self.read(data) if isinstance(data, (str, Path)) else as_corpus(data)
        check_tags(corpus, scheme, self.data["scheme"])
        m, _ = self.score(corpus.words, corpus.tags)
        return {"sentences": len(corpus), **m}

    # ---- files ---------------------------------------------------------------------------------
    def probabilities(self, words: list[str]) -> torch.Tensor:
        """p(tag | whole sentence) per token (time, tags): CRF marginals, or a softmax without a CRF."""
        return tag_marginals(self.model, next(iter(self.batches([words], batch_size=1))))[0]

    def count_steps(self, text: str) -> int:
        """The number of steps `steps(text)` unrolls: the words."""
        return len(text.split())

    @torch.no_grad()
    def steps(self, text: str, top_k: int = 5) -> Steps:
        """Per token: p(tag | whole sentence)."""
        words = text.split()
        if not words:
            raise UserError("the sentence is empty; type at least one word")
        feats = self.model.features(next(iter(self.batches([words], batch_size=1))))[0]  # (time, input_dim)
        note = "p(tag | whole sentence) per token" + (" (CRF marginals)" if self.model.crf is not None else "")
        return Steps(words, feats, "tags", self.probabilities(words).double().numpy(), list(self.tags.itos),
                     note=note)

    def readout(self, text: str) -> Readout:
        """Per token the log of p(tag | whole sentence) (n, time, tags): the CRF's log-marginals (the
        gradient of its log Z, kept differentiable), or the emission scores without a CRF."""
        st = self.steps(text)  # words and their features (time, input_dim)
        words = st.tokens

        def run(model, n: int) -> torch.Tensor:
            return tag_log_scores(model, next(iter(self.batches([words] * n, batch_size=n))))

        return Readout(self.model, self.model.encoder, words, st.inputs.cpu(), run, [f"tag of {w!r}" for w in words],
                       list(self.tags.itos), [-1] * len(words), len(words) - 1, list(range(len(words))))

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        return "tag", TaggerModel(TaggerConfig.from_json(cfg["model"]))

    def meta(self, train_cfg=None) -> dict:
        vocab = {"words": self.words.to_json(), "chars": self.chars.to_json() if self.chars else None,
                 "tags": self.tags.to_json()}
        tcfg = train_cfg or (self.config.train.trainer_config(DEFAULT_EPOCHS) if self.config else TrainConfig())
        return task_meta(self.task, self.model.cfg.to_json(), self.data, tcfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Tagger:
        """Open a checkpoint directory (a run's --out, best/ or last/) or an exported .onnx/.pt file."""
        cfg, v, model = runtime.load_model(path, cls.task, lambda m: TaggerModel(TaggerConfig.from_json(m)), device)
        chars = Vocab.from_json(v["chars"]) if v["chars"] else None
        return cls(Vocab.from_json(v["words"]), chars, Vocab.from_json(v["tags"]), model, cfg["data"])
