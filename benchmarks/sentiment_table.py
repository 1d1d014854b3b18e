"""Reproduce the README's sentiment table: RNN / GRU / LSTM / BiLSTM / bag-of-embeddings on SST-2,
and the BiLSTM on UCI sentiment sentences and rt-polarity with a fixed seeded split.

    .venv/bin/python benchmarks/sentiment_table.py [--only sst2-bilstm,uci] [--threads 1]
    .venv/bin/python benchmarks/sentiment_table.py --only uci-defaults,uci-lstm-defaults,uci-bow-defaults --seeds 1,2,3

DATA-defaults is every setting at its default (below 20,000 training texts: the LSTM averaged with a bag of
embeddings and bigrams), DATA-lstm-defaults the same with `bag="off"`, DATA-bow-defaults the baseline;
DATA-vectors-defaults the defaults with `--embeddings` spaCy's en_core_web_md vectors (downloaded from PyPI
by benchmarks/pretrained_vectors.py), DATA-vectors-frozen-defaults the same with them frozen,
sst2-bilstm-vectors the tuned BiLSTM with them;
`--seeds` trains each named run once per seed (runs NAME-s1, NAME-s2, ...) and prints the mean.

Every model is trained with `seqlab.pipelines.Classifier.fit` (what `seqlab classify train` runs) and
scored with `Classifier.evaluate` on the test file.
Prepared copies of the data (the PTB-escaped SST-2 test set made readable, the latin-1 rt-polarity
files turned into a TSV, the seeded 80/10/10 splits) go to runs/sentiment/data; nothing is copied
into the project. Results: runs/sentiment/<run>/table_row.json, gathered in
runs/sentiment/results.json, and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from seqlab.data import read_lines, read_table
from seqlab.pipelines import Classifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_vectors import spacy_md  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sentiment"
RUNS = ROOT / "runs" / "sentiment"
# the settings behind the README figures (SST-2: 2 layers, 15 minutes of CPU at most), as Config names
MODEL = dict(layers=2, hidden=256, embed=300, dropout=0.5, embed_dropout=0.3, pooling="max", schedule="linear",
             patience=0, eval_every=300, time=15)
VECTORS = "en_core_web_md"  # a row's embeddings: spaCy's vectors (benchmarks/pretrained_vectors.py)
SST_RUNS = {
    "sst2-bow": dict(cell="none", pooling="mean", epochs=4),
    "sst2-rnn": dict(cell="rnn", epochs=4),
    "sst2-gru": dict(cell="gru", epochs=4),
    "sst2-lstm": dict(cell="lstm", epochs=4),
    "sst2-bilstm": dict(cell="lstm", bidirectional=True, epochs=4),
}


def write_tsv(rows, path: Path) -> None:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{lb}\n" for t, lb in rows))


def split(rows, seed=13):
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n = len(rows)
    a, b = int(0.8 * n), int(0.9 * n)
    return rows[:a], rows[a:b], rows[b:]


def prepare() -> dict[str, dict[str, Path]]:
    d = RUNS / "data"
    d.mkdir(parents=True, exist_ok=True)
    sets = {"sst2": {"train": DATA / "sst2" / "train.tsv", "dev": DATA / "sst2" / "dev.tsv",
                     "test": d / "sst2_test.tsv"}}
    t = read_table(DATA / "sst2" / "test_labeled_ptb.tsv", ["content", "label"])
    fix = {"-lrb-": "(", "-rrb-": ")", "\\/": "/"}
    rows = []
    for text, label in t.rows:
        for k, v in fix.items():
            text = text.replace(k, v)
        rows.append((text, label))
    write_tsv(rows, sets["sst2"]["test"])
    uci = []
    for name in ("amazon_cells", "imdb", "yelp"):
        uci += read_table(DATA / "uci_sentiment_labelled_sentences" / f"{name}_labelled.txt", [0, 1],
                          header=False).rows
    rt = [(s, "1") for s in read_lines(DATA / "rt-polarity" / "rt-polarity.pos", "latin-1")]
    rt += [(s, "0") for s in read_lines(DATA / "rt-polarity" / "rt-polarity.neg", "latin-1")]
    for name, rows in (("uci", uci), ("rt-polarity", rt)):
        sets[name] = {}
        for part, chunk in zip(("train", "dev", "test"), split(rows)):
            sets[name][part] = d / f"{name}_{part}.tsv"
            write_tsv(chunk, sets[name][part])
    return sets


def run(name: str, files: dict[str, Path], settings: dict, threads: int) -> dict:
    out = RUNS / name
    settings = {**settings, "text_col": "sentence", "threads": threads}
    print(f"$ Classifier.fit({files['train'].name}, dev={files['dev'].name}, "
          + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + ")", flush=True)
    clf = Classifier.fit(files["train"], files["dev"], out=out, overwrite=True, **settings)
    res = dict(clf.results, test_accuracy=clf.evaluate(files["test"])["accuracy"], name=name)
    (out / "table_row.json").write_text(json.dumps(res, indent=2))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated run names (default: all): "
                    + ", ".join([*SST_RUNS, "uci", "rt-polarity"]) + ", and DATA-defaults, DATA-bow-defaults "
                    "for DATA in sst2, uci, rt-polarity (every setting at its default)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    ap.add_argument("--seeds", default="", help="comma-separated seeds: each named run once per seed, "
                    "as NAME-sSEED, and the mean printed (default: the runs' own seed, once)")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found (place ../shared beside the project)")
        return 0
    sets = prepare()
    todo = {**{k: ("sst2", {**MODEL, **v}) for k, v in SST_RUNS.items()},
            "uci": ("uci", {**MODEL, **SST_RUNS["sst2-bilstm"]}),
            "rt-polarity": ("rt-polarity", {**MODEL, **SST_RUNS["sst2-bilstm"]})}
    for ds in ("sst2", "uci", "rt-polarity"):  # what a user gets: nothing set, and the baseline beside it
        todo[f"{ds}-defaults"] = (ds, {})
        todo[f"{ds}-bow-defaults"] = (ds, {"cell": "none", "pooling": "mean"})
        todo[f"{ds}-lstm-defaults"] = (ds, {"bag": "off"})
        todo[f"{ds}-vectors-defaults"] = (ds, {"embeddings": VECTORS})  # the defaults + pretrained vectors
        todo[f"{ds}-vectors-frozen-defaults"] = (ds, {"embeddings": VECTORS, "freeze_embeddings": True})
    todo["sst2-bilstm-vectors"] = ("sst2", {**MODEL, **SST_RUNS["sst2-bilstm"], "embeddings": VECTORS})
    only = [x for x in a.only.split(",") if x]
    seeds = [int(x) for x in a.seeds.split(",") if x]
    for name, (ds, settings) in list(todo.items()):
        if seeds:
            del todo[name]
            todo.update({f"{name}-s{sd}": (ds, {**settings, "seed": sd}) for sd in seeds})
    for name, (ds, settings) in todo.items():
        if not only or name in only or name.rsplit("-s", 1)[0] in only:
            if settings.get("embeddings") == VECTORS:
                settings = {**settings, "embeddings": str(spacy_md())}
            run(name, sets[ds], settings, a.threads)
    rows = [RUNS / name / "table_row.json" for name in todo]  # also rows from earlier invocations
    results = {p.parent.name: json.loads(p.read_text()) for p in rows if p.exists()}
    (RUNS / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| run | dev accuracy | test accuracy | best at epoch | training time |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['dev_accuracy']:.1%} | {r['test_accuracy']:.1%} | {r['best_epoch']} "
              f"| {r['train_seconds'] / 60:.1f} min |")
    for base in sorted({n.rsplit("-s", 1)[0] for n in results if seeds}):
        accs = [results[f"{base}-s{sd}"]["test_accuracy"] for sd in seeds if f"{base}-s{sd}" in results]
        if accs:
            print(f"{base}: mean test accuracy {sum(accs) / len(accs):.1%} over seeds "
                  + " / ".join(f"{x:.1%}" for x in accs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
