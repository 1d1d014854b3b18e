"""SST-2 from random initialisation, from word2vec vectors, and from a pretrained word-level LM (ULMFiT), at
the same training budget.

    .venv/bin/python benchmarks/transfer_table.py [--only random,vectors,ulmfit] [--minutes 6] [--lm-minutes 10]

Unlabeled text to pretrain on (runs/transfer/data/unlabeled.txt, lower-cased): the SST-2 training
sentences and the UCI sentences (amazon, imdb, yelp). No test sentence of SST-2 is in it: rt-polarity
is left out because SST's sentences, the test ones included, come from it; the SST-2 dev sentences
(model selection) are left out too.
  vectors  word2vec (gensim, `pip install gensim==4.4.0`): skip-gram, 300 dimensions, window 5, 10 epochs,
           written as word2vec text (data/w2v.txt), given to `--embeddings`
  spacy    spaCy's en_core_web_md vectors (300 dimensions, trained on billions of web tokens; the pipeline
           directory from PyPI, benchmarks/pretrained_vectors.py), given to `--embeddings`
  ulmfit   a word-level LSTM LM (2x256, embed 300, locked dropout, weight drop 0.3) pretrained on the text
           for --lm-minutes, then `--init-from` with --lr-decay-per-layer 2.6, --gradual-unfreeze,
           --schedule slanted and concat pooling
  lm-init  the same LM, `--init-from` and concat pooling, every layer trained from the start at one
           learning rate (the classifier's linear schedule)
  lm-init-bi, ulmfit-bi  ULMFiT's bidirectional setup: the same LM and a backward one (`backward=True`, the
           same settings and budget), `--init-from` and `--init-from-backward`: two members, one reading each
           text from its end, their probabilities averaged (at the same --minutes, so each member gets half)
Every classifier: 2-layer unidirectional LSTM, hidden 256, embed 300, 4 epochs or --minutes, whichever
ends first, best checkpoint by dev accuracy (evaluated every 300 steps), test accuracy of that one.
Results: runs/transfer/<run>/table_row.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqlab.data import read_table
from seqlab.pipelines import LM, Classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_vectors import spacy_md  # noqa: E402
from sentiment_table import DATA, prepare  # noqa: E402  (the SST-2 test file made readable)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "transfer"
MODEL = dict(cell="lstm", layers=2, hidden=256, embed=300, dropout=0.5, embed_dropout=0.3, pooling="max",
             schedule="linear", patience=0, eval_every=300, epochs=4, text_col="sentence")
ULMFIT = dict(lr_decay_per_layer=2.6, gradual_unfreeze=True, schedule="slanted", pooling="concat")
LM_INIT = dict(pooling="concat")


def unlabeled(d: Path) -> Path:
    path = d / "unlabeled.txt"
    lines = [t for t in read_table(DATA / "sst2" / "train.tsv", ["sentence"]).column(0)]
    for name in ("amazon_cells", "imdb", "yelp"):
        lines += read_table(DATA / "uci_sentiment_labelled_sentences" / f"{name}_labelled.txt", [0],
                            header=False).column(0)
    path.write_text("".join(f"{t.strip().lower()}\n" for t in lines if t.strip()))
    return path


def word2vec(text: Path, out: Path, threads: int) -> Path:
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise SystemExit("the vectors row needs gensim: pip install gensim==4.4.0") from None
    from seqlab.data import build_tokenizer

    tok = build_tokenizer("word", lowercase=True)
    sents = [tok.tokenize(line) for line in text.read_text().splitlines()]
    w2v = Word2Vec(sents, vector_size=300, window=5, min_count=1, sg=1, epochs=10, workers=threads, seed=1)
    w2v.wv.save_word2vec_format(str(out))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="",
                    help="comma-separated rows: random, vectors, spacy, ulmfit, lm-init, lm-init-bi, ulmfit-bi "
                         "(default: all)")
    ap.add_argument("--minutes", type=float, default=6.0, help="training budget of each classifier")
    ap.add_argument("--lm-minutes", type=float, default=10.0, help="pretraining budget of the LM")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=Path, default=RUNS, help="where the runs go (default: runs/transfer)")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found (place ../shared beside the project)")
        return 0
    files = prepare()["sst2"]
    d = a.runs / "data"
    d.mkdir(parents=True, exist_ok=True)
    text = unlabeled(d)
    rows = {"random": {}, "vectors": None, "spacy": None, "ulmfit": None, "lm-init": None, "lm-init-bi": None,
            "ulmfit-bi": None}
    only = [x for x in a.only.split(",") if x] or list(rows)
    if "vectors" in only:
        w2v = d / "w2v.txt"
        if not w2v.exists():
            word2vec(text, w2v, a.threads)
        rows["vectors"] = {"embeddings": str(w2v)}
    if "spacy" in only:
        rows["spacy"] = {"embeddings": str(spacy_md())}
    lm_dirs = {}  # the forward LM for every row that starts from one, the backward LM too for the -bi rows
    need = {False: any(r.startswith(("ulmfit", "lm-init")) for r in only), True: any(r.endswith("-bi") for r in only)}
    for backward in (False, True):
        if not need[backward]:
            continue
        lm_dirs[backward] = lm_dir = a.runs / ("lm-backward" if backward else "lm")
        if not (lm_dir / "best").is_dir():
            LM.fit(text, level="word", lowercase=True, layers=2, hidden=256, embed=300, locked_dropout=True,
                   dropout=0.4, embed_dropout=0.1, weight_drop=0.3, seq_len=48, batch=32, time=a.lm_minutes,
                   threads=a.threads, out=lm_dir, overwrite=True, backward=backward)
    if False in lm_dirs:
        rows["ulmfit"] = {"init_from": str(lm_dirs[False]), **ULMFIT}
        rows["lm-init"] = {"init_from": str(lm_dirs[False]), **LM_INIT}
    if True in lm_dirs:
        pair = {"init_from": str(lm_dirs[False]), "init_from_backward": str(lm_dirs[True])}
        rows["ulmfit-bi"] = {**pair, **ULMFIT}
        rows["lm-init-bi"] = {**pair, **LM_INIT}
    for name in only:
        settings = {**MODEL, **rows[name], "time": a.minutes, "threads": a.threads}
        print(f"$ Classifier.fit({files['train'].name}, dev={files['dev'].name}, "
              + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ")", flush=True)
        out = a.runs / name
        clf = Classifier.fit(files["train"], files["dev"], out=out, overwrite=True, **settings)
        res = dict(clf.results, test_accuracy=clf.evaluate(files["test"])["accuracy"], name=name)
        (out / "table_row.json").write_text(json.dumps(res, indent=2))
    print("\n| start | dev accuracy | test accuracy | best at epoch | training time |")
    print("|---|---|---|---|---|")
    for name in rows:
        p = a.runs / name / "table_row.json"
        if p.exists():
            r = json.loads(p.read_text())
            print(f"| {name} | {r['dev_accuracy']:.1%} | {r['test_accuracy']:.1%} | {r['best_epoch']} "
                  f"| {r['train_seconds'] / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
