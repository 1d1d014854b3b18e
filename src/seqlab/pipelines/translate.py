"""Translation as a library: an encoder-decoder with attention trained on sentence pairs.

    from seqlab.pipelines import Translator
    tr = Translator.fit("pairs.tsv", epochs=10)          # or fit([("the cat .", "le chat ."), ...])
    tr.predict(["the dog sleeps ."], beam=5)             # ['le chien dort .']
    tr.evaluate("test.tsv")["bleu"]                      # BLEU, chrF, exact match, token F1
    tr.save("en-fr/");  tr = Translator.load("en-fr/")

A file is read as two columns, `src_col` and `tgt_col` (default 0 and 1, no header row; give names
to read a header). Without `dev`, a seeded `dev_fraction` of the pairs is held out for validation,
and without `dev` or `test` a `test_fraction` more as a test split (pairs with the same source
stay in one split). The checkpoint is a seq2seq one (`Seq2SeqPipeline`) of task "translate".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data.pairs import TUTORIAL_PREFIXES, Pairs, filter_pairs, normalize, read_pairs_table, split_pairs
from seqlab.errors import UserError
from seqlab.pipelines.base import Pipeline, check_out_dir, finish, write_text_atomic
from seqlab.pipelines.config import Config, choice, num
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.sections import VectorSettings
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
from seqlab.pipelines.transfer import adopt_pretrained, apply_pretrained
from seqlab.train.trainer import TrainConfig


@dataclass
class TranslateModel(Seq2SeqModel, VectorSettings):
    """The seq2seq model; `embeddings` start the source embedding from the user's vectors."""


@dataclass
class TranslateData(Seq2SeqTokens):
    """How pair files are read and filtered, and the held-out test share."""

    src_col: str = "0"  # a header name or a 0-based index
    tgt_col: str = "1"
    header: str = choice("auto", ("auto", "yes", "no"))  # auto: a header row when a column is given by name
    delimiter: str | None = None
    encoding: str = "utf-8"
    max_tokens: int = num(0, 0)  # keep pairs whose sides both have fewer tokens; 0 = all
    prefixes: str = ""  # comma-separated; "tutorial" = the PyTorch tutorial's
    prefix_side: str = choice("src", ("src", "tgt"))
    test_fraction: float = num(0.05, 0.0, 1.0, hi_open=True)  # held out as test when no dev/test data is given


@dataclass
class TranslateTrain(Seq2SeqTrain):
    dev_fraction: float = num(0.05, 0.0, 1.0, lo_open=True, hi_open=True)  # the CLI's --valid-fraction


@dataclass
class TranslateEval(Config):
    """Model selection during training and the decoding of the final evaluation."""

    valid_metric: str = choice("bleu", ("bleu", "loss"))
    beam: int = num(5, 1)  # the final valid/test scores are greedy and with this beam
    length_norm: float = num(1.0, 0.0)
    max_len: int | None = num(None, 1, allow_none=True)  # longest output; None = twice the longest target + 2


@dataclass
class TranslateConfig(Config):
    model: TranslateModel = field(default_factory=TranslateModel)
    data: TranslateData = field(default_factory=TranslateData)
    train: TranslateTrain = field(default_factory=TranslateTrain)
    eval: TranslateEval = field(default_factory=TranslateEval)


def _reader(d: dict):
    def read(path):
        src_col = d.get("src_col") if d.get("src_col") is not None else 0
        tgt_col = d.get("tgt_col") if d.get("tgt_col") is not None else 1
        return read_pairs_table(path, src_col, tgt_col, d.get("delimiter"), d.get("header") or "auto",
                                d.get("encoding") or "utf-8")
    return read


def _tsv(p: Pairs) -> str:
    return "".join(f"{s.replace(chr(9), ' ')}\t{t.replace(chr(9), ' ')}\n" for s, t in zip(p.src, p.tgt))


@register_task
class Translator(Seq2SeqPipeline, Pipeline):
    """Source sentences in, translations out (a Seq2SeqPipeline of task "translate")."""

    task = "translate"
    Config = TranslateConfig

    def __init__(self, src_tok, tgt_tok, src_vocab, tgt_vocab, model, data: dict,
                 config: TranslateConfig | None = None):
        super().__init__("translate", src_tok, tgt_tok, src_vocab, tgt_vocab, model, data)
        self.config = config

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, dev=None, config: TranslateConfig | dict | str | None = None, *, test=None, out=None,
            resume: bool = False, overwrite: bool = False, callbacks=None, log=print, **overrides) -> Translator:
        """Train on `train`: a TSV/CSV path, a list of (source, target) pairs, or a `Pairs`.

        `dev` (validation, picks the best checkpoint) and `test` take the same forms; held out from
        `train` when not given (see the module docstring). Settings: `config` and/or flat keyword
        overrides (hidden=64, epochs=3, attention="dot", ...: the names of the CLI flags). `out`: a run
        directory (checkpoints, logs, data/valid.tsv and data/test.tsv of held-out splits, resume);
        None trains in memory. `cache="DIR"`: the training pairs tokenized into two row stores there (one
        flat token file + offsets per side; default OUT/rows from 200,000 pairs), reused on the same pairs.
        Returns the pipeline with the best weights; `.results` has greedy and beam BLEU/chrF/exact match
        on the validation and test pairs.
        """
        cfg = adopt_pretrained(cls.make_config(config, **overrides), log)  # embed = the vectors' dimension
        d, ev = cfg.data, cfg.eval
        tcfg = cfg.train.trainer_config(10)
        run_dir = check_out_dir(out, resume, overwrite) if out is not None else None
        data = {"lowercase": d.lowercase, "nfkc": d.nfkc, "split_punct": d.split_punct, "src_col": d.src_col,
                "tgt_col": d.tgt_col, "header": d.header, "delimiter": d.delimiter, "encoding": d.encoding}
        read = _reader(data)
        prefixes = TUTORIAL_PREFIXES if d.prefixes == "tutorial" else tuple(p for p in d.prefixes.split(",") if p)

        def norm_count(s):
            return len(normalize(s, d.lowercase, d.nfkc, True).split())

        def prepare(p: Pairs | None) -> Pairs | None:
            if p is None or not (d.max_tokens or prefixes):
                return p
            return filter_pairs(p, d.max_tokens, prefixes, d.prefix_side, norm_count)

        pairs = prepare(as_pairs(train, "train", read))
        valid = prepare(as_pairs(dev, "dev", read)) if dev is not None else None
        test_p = prepare(as_pairs(test, "test", read)) if test is not None else None
        vf = 0.0 if valid else cfg.train.dev_fraction
        tf_ = 0.0 if test_p or valid else d.test_fraction
        tr_idx, va_idx, te_idx = split_pairs(pairs, vf, tf_, cfg.train.seed)
        train_p = pairs.subset(tr_idx)
        held_valid, held_test = not valid, not test_p and bool(te_idx)
        valid = valid or pairs.subset(va_idx)
        test_p = test_p or (pairs.subset(te_idx) if te_idx else None)
        if len(train_p) == 0 or len(valid) == 0:
            raise UserError(f"{pairs.origin}: {len(pairs)} pairs after filtering leave {len(train_p)} for training "
                            f"and {len(valid)} for validation; relax the filters or give more data")
        pipe = build(lambda task, *parts: cls(*parts, config=cfg), cls.task, cfg.model, d, train_p, data,
                     cfg.train.seed)
        apply_pretrained(pipe.model.encoder.embedding, pipe.src_vocab, cfg.model, log)
        if run_dir is not None:  # the held-out splits, for `translate eval` later
            for name, p, held in (("valid", valid, held_valid), ("test", test_p, held_test)):
                if p is not None and held:
                    write_text_atomic(run_dir / "data" / f"{name}.tsv", _tsv(p))

        def eval_fn(model):
            m = pipe.score(valid.src, valid.tgt, 1)
            return {"bleu": m["bleu"], "chrf": m["chrf"], "exact_match": m["exact_match"],
                    "loss": pipe.loss(valid.src, valid.tgt)}

        n_params = sum(p.numel() for p in pipe.model.parameters())
        log(f"train {len(train_p)} pairs, valid {len(valid)}, test {len(test_p) if test_p else 0}; vocab source "
            f"{len(pipe.src_vocab)} target {len(pipe.tgt_vocab)}; attention {cfg.model.attention}; "
            f"{n_params:,} parameters")
        st = train_seq2seq(pipe, pipe, train_p, eval_fn, ev.valid_metric, "max" if ev.valid_metric == "bleu" else "min",
                           tcfg, out=out, resume=resume, overwrite=overwrite, callbacks=callbacks, log=log)
        extra = {"attention": cfg.model.attention}
        for name, p in (("valid", valid), ("test", test_p)):
            for beam in sorted({1, ev.beam}):
                if p is not None:
                    m = pipe.score(p.src, p.tgt, beam, ev.length_norm, ev.max_len)
                    key = f"{name}_{'greedy' if beam == 1 else f'beam{beam}'}"
                    extra.update({f"{key}_bleu": round(m["bleu"], 2), f"{key}_chrf": round(m["chrf"], 2),
                                  f"{key}_exact_match": round(m["exact_match"], 4)})
                    log(f"{name} {'greedy' if beam == 1 else f'beam {beam}'}: BLEU {m['bleu']:.2f}  "
                        f"chrF {m['chrf']:.2f}  exact match {m['exact_match']:.2%}  ({m['n']} pairs)")
        finish(pipe, st, {}, out, extra=extra)
        return pipe

    # ---- inference -----------------------------------------------------------------------------
    def predict(self, sentences, beam: int = 1, max_len: int | None = None, alpha: float = 1.0,
                batch_size: int = 128) -> list[str] | str:
        """The translation of each sentence (greedy for beam 1, else beam search with length
        normalisation `alpha`); one sentence gives one translation."""
        single = isinstance(sentences, str)
        outs = self.generate([sentences] if single else list(sentences), beam, max_len, alpha, batch_size)
        texts = [o.text for o in outs]
        return texts[0] if single else texts

    def evaluate(self, data, beam: int = 1, alpha: float = 1.0, max_len: int | None = None) -> dict:
        """bleu, chrf (0-100), exact_match, token_f1 and n on `data`: a pair file (read with the columns of
        training) or a list of (source, target) pairs. The references are normalised as in training."""
        pairs = as_pairs(data, "data", _reader(self.data))
        m = self.score(pairs.src, pairs.tgt, beam, alpha, max_len)
        m.pop("outputs")
        return m

    # ---- files ---------------------------------------------------------------------------------
    def meta(self, train_cfg=None) -> dict:
        tcfg = train_cfg or (self.config.train.trainer_config(10) if self.config else TrainConfig())
        return super().meta(tcfg)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Translator:
        """Open a checkpoint directory (a run's out, best/ or last/) or an exported .onnx/.pt file."""
        return cls(*load_parts(path, cls.task, device))
