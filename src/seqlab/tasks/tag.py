"""Sequence tagging end to end: `seqlab tag train | eval | predict` (NER, POS, chunking).

`TagPipeline` is what a checkpoint holds: word vocabulary, character vocabulary, tag set and
`Tagger`. It turns tokenized sentences into tags and is saved and loaded as one unit (task "tag").
Entity tags (BIO, IOB1, BIOES) are learned in `--model-scheme` (BIOES by default) and written back
in the scheme of the training file; entity-tagged data is scored by entity F1 (conlleval), plain
tags (POS) by token accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from seqlab.data import Vocab
from seqlab.data.conll import ENTITY_SCHEMES, FORMATS, check_scheme, detect_format, read_conll, spans, to_scheme
from seqlab.data.readers import read_lines
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics.tagging import entity_metrics, format_entity_report, token_accuracy
from seqlab.models.tagger import CHAR_FEATURES, TagBatcher, Tagger, TaggerConfig, case_of
from seqlab.tasks import common
from seqlab.train import Trainer
from seqlab.train.checkpoint import task_meta

TASK = "tag"
MAX_CHARS = 30  # longer words keep their first and last 15 characters


class TagPipeline:
    """Vocabularies, tag set and tagger: tokenized sentences in, tags out."""

    def __init__(self, words: Vocab, chars: Vocab | None, tags: Vocab, model: Tagger, data: dict):
        self.words, self.chars, self.tags, self.model, self.data = words, chars, tags, model, data

    @property
    def entities(self) -> bool:
        return self.data["scheme"] in ENTITY_SCHEMES

    def norm(self, word: str) -> str:
        return word.lower() if self.data["lowercase"] else word

    def batches(self, sentences: list[list[str]], tags: list[list[str]] | None = None, batch_size: int = 128,
                **kw) -> TagBatcher:
        """Batches of `sentences` (lists of tokens) with optional gold `tags` in the file's scheme."""
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
            form_chars, form_lengths = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True), \
                torch.tensor([len(x) for x in seqs])
        if cfg.case_dim:
            form_case = torch.tensor([0] + [case_of(w) for w in names[1:]], dtype=torch.long)
        return TagBatcher(words, targets, batch_size, self.words.pad_id, forms, form_chars, form_lengths,
                          form_case, **kw)

    @torch.no_grad()
    def predict(self, sentences: list[list[str]], batch_size: int = 128) -> list[list[str]]:
        """Tags of each sentence, in the training file's scheme, in the order given."""
        self.model.eval()
        device = next(self.model.parameters()).device
        out: list[list[str]] = [[] for _ in sentences]
        for b in self.batches(sentences, batch_size=batch_size):
            pred = self.model.decode(b.to(device)).cpu()
            for row, i, n in zip(pred.tolist(), b.index.tolist(), b.lengths.tolist()):
                out[i] = self.tags.decode(row[:n])
        if self.entities:
            out = [to_scheme(t, self.data["scheme"]) for t in out]
        return out

    def score(self, sentences: list[list[str]], gold: list[list[str]]) -> tuple[dict, list[list[str]]]:
        """(metrics, predicted tags): entity P/R/F1 and token accuracy, or token accuracy for plain tags."""
        pred = self.predict(sentences)
        if self.entities:
            return entity_metrics(gold, pred), pred
        return {"accuracy": token_accuracy(gold, pred), "tokens": sum(map(len, gold))}, pred

    def meta(self, train_cfg) -> dict:
        vocab = {"words": self.words.to_json(), "chars": self.chars.to_json() if self.chars else None,
                 "tags": self.tags.to_json()}
        return task_meta(TASK, self.model.cfg.to_json(), self.data, train_cfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TagPipeline:
        cfg, v, model = runtime.load_model(path, TASK, lambda m: Tagger(TaggerConfig.from_json(m)), device)
        chars = Vocab.from_json(v["chars"]) if v["chars"] else None
        return cls(Vocab.from_json(v["words"]), chars, Vocab.from_json(v["tags"]), model, cfg["data"])


def _read(path, a, data: dict, with_tags: bool = True):
    """Read a labelled file with the columns and scheme of `data`, overridden by flags set in `a`."""
    fmt = getattr(a, "format", None)
    if fmt is None:  # eval: CoNLL-U by its name, else the training files' format
        fmt = detect_format(path, "auto")
        fmt = data["format"] if fmt == "conll" else fmt
    fmt = detect_format(path, fmt)
    keep = fmt == data.get("format")  # columns saved from training apply to files of its format
    word_col = getattr(a, "word_col", None) or (data["word_col"] if keep else None)
    tag_col = getattr(a, "tag_col", None) or (data["tag_col"] if keep else None)
    corpus = read_conll(path, word_col, tag_col, fmt, getattr(a, "encoding", None) or data["encoding"], with_tags)
    return corpus, fmt


def _check_tags(corpus, scheme: str, trained: str) -> None:
    """The tags of an evaluation file must be the same kind (entity or plain) as the model's."""
    got = check_scheme(corpus, scheme)
    if (got in ENTITY_SCHEMES) != (trained in ENTITY_SCHEMES):
        raise UserError(f"{corpus.path}: its tags look like {got!r} tags but the model was trained on "
                        f"{trained!r} tags; check --tag-col and --scheme")


def cmd_train(a: argparse.Namespace) -> int:
    if a.char_features not in CHAR_FEATURES:
        raise UserError(f"unknown --char-features {a.char_features!r}; choose one of {', '.join(CHAR_FEATURES)}")
    if a.char_features == "lstm" and (a.char_out < 2 or a.char_out % 2):
        raise UserError(f"--char-out {a.char_out} must be even (half per direction of the char BiLSTM)")
    if not 0 <= a.word_dropout < 1 or not 0 < a.dev_fraction < 1 or a.min_freq < 1 or a.char_dim < 1:
        raise UserError("--word-dropout must be in [0, 1), --dev-fraction in (0, 1), --min-freq and --char-dim >= 1")
    tcfg = common.train_config(a)
    out = common.check_out_dir(a.out, a.resume, a.overwrite)
    data = {"format": a.format, "word_col": a.word_col, "tag_col": a.tag_col, "encoding": a.encoding,
            "lowercase": a.lowercase}
    train, data["format"] = _read(a.train, a, data)
    scheme = check_scheme(train, a.scheme)
    if a.dev:
        dev, _ = _read(a.dev, a, data)
        _check_tags(dev, a.scheme, scheme)
        dev_words, dev_tags = dev.words, dev.tags
        tr_words, tr_tags = train.words, train.tags
    else:  # hold out a seeded fraction of the training sentences
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(a.seed)).tolist()
        k = max(1, int(len(train) * a.dev_fraction))
        dev_words, dev_tags = [train.words[i] for i in perm[:k]], [train.tags[i] for i in perm[:k]]
        tr_words, tr_tags = [train.words[i] for i in perm[k:]], [train.tags[i] for i in perm[k:]]
    data.update(scheme=scheme, model_scheme=a.model_scheme if scheme in ENTITY_SCHEMES else "none")
    tags = Vocab.labels(t for s in tr_tags for t in to_scheme(s, data["model_scheme"]))
    unseen = sorted({t for s in dev_tags for t in to_scheme(s, data["model_scheme"])} - set(tags.itos))
    if unseen:
        raise UserError(f"{a.dev or a.train}: tag {unseen[0]!r} in the dev sentences never occurs in the training "
                        "sentences; fix the tag or add training examples of it")
    norm = str.lower if a.lowercase else str
    words = Vocab.build(([norm(w) for w in s] for s in tr_words), a.min_freq, a.max_vocab)
    chars = Vocab.build(ch for s in tr_words for ch in s) if a.char_features != "none" else None
    case_dim = 8 if a.lowercase else 0
    in_dim = a.embed + (a.char_out if chars else 0) + case_dim
    cfg = TaggerConfig(common.encoder_config(a, 0, 0, in_dim), len(words), a.embed, len(tags), a.char_features,
                       len(chars) if chars else 0, a.char_dim, a.char_out, case_dim, a.crf, a.dropout,
                       a.word_dropout, words.pad_id, words.unk_id)
    torch.manual_seed(a.seed)
    pipe = TagPipeline(words, chars, tags, Tagger(cfg), data)
    batches = pipe.batches(tr_words, tr_tags, tcfg.batch_size, shuffle=True, seed=a.seed)
    metric = "f1" if pipe.entities else "accuracy"

    def eval_fn(model):
        m, _ = pipe.score(dev_words, dev_tags)
        return {k: m[k] for k in ("f1", "precision", "recall", "accuracy") if k in m}

    n_params = sum(p.numel() for p in pipe.model.parameters())
    print(f"train {len(tr_words)} sentences, dev {len(dev_words)}, words {len(words)}, "
          f"chars {len(chars) if chars else 0}, tags {len(tags)} ({scheme} as {data['model_scheme']}), "
          f"{n_params:,} parameters")
    trainer = Trainer(pipe.model, tcfg, out, lambda model, b: model.loss(b), eval_fn, metric=metric, mode="max",
                      meta=pipe.meta(tcfg))
    st = trainer.fit(batches, resume=a.resume)
    m, _ = TagPipeline.load(out / "best").score(dev_words, dev_tags)
    summary = {f"dev_{metric}": m[metric], "best_epoch": st["best_epoch"], "train_seconds": round(st["elapsed"], 1),
               "steps": st["step"], "parameters": n_params}
    common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"best dev {metric} {m[metric]:.4f} (epoch {st['best_epoch']}), trained {st['elapsed']:.0f}s; "
          f"model in {out / 'best'}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = TagPipeline.load(a.model, a.device)
    corpus, _ = _read(a.data, a, pipe.data)
    _check_tags(corpus, a.scheme or "auto", pipe.data["scheme"])
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
    pipe = TagPipeline.load(a.model, a.device)
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
            sentences = _read(a.input, argparse.Namespace(format=fmt, word_col=a.word_col, encoding=a.encoding),
                              pipe.data, with_tags=False)[0].words
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
    t.set_defaults(bidirectional=True, dropout=0.5, embed_dropout=0.5)
    common.add_train_args(t, epochs=30, batch=32, lr=4e-3)
    t.set_defaults(func=cmd_train, patience=5, schedule="cosine")

    e = s.add_parser("eval", help="entity precision/recall/F1 per type (conlleval), or token accuracy")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a tagger")
    e.add_argument("--data", required=True, help="tagged CoNLL or CoNLL-U file")
    _file_args(e, training=False)
    e.add_argument("--output", help="write `word gold predicted` lines here (conlleval's input format)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
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
    r.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    r.set_defaults(func=cmd_predict)
