"""Reproduce the README's tagging table: CoNLL-2003 NER (test entity F1) and UD English-EWT POS
(test UPOS accuracy), BiLSTM taggers with and without character features and a CRF.

    .venv/bin/python benchmarks/tagging_table.py [--only conll-char-crf,ewt-char] [--threads 1] [--runs DIR]

Every model is trained through `seqlab tag train` (model selection on the dev split, a fixed time
budget per run, no pretrained embeddings but in conll-char-crf-vectors: spaCy's en_core_web_md vectors,
downloaded from PyPI by benchmarks/pretrained_vectors.py) and scored once on the test split with `seqlab tag eval`.
Results: <runs>/<run>/table_row.json, gathered in <runs>/results.json, and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tagging"
SEQLAB = [sys.executable, "-m", "seqlab"]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrained_vectors import spacy_md  # noqa: E402

CONLL = {"train": DATA / "conll2003" / "train.txt", "dev": DATA / "conll2003" / "valid.txt",
         "test": DATA / "conll2003" / "test.txt"}
EWT = {part: DATA / "ud_english_ewt" / f"en_ewt-ud-{part}.conllu.gz" for part in ("train", "dev", "test")}

# the settings behind the README figures: the CLI defaults (lower-cased word embeddings 100 + case
# feature, char BiLSTM 2x25, BiLSTM 100 per direction, CRF, dropout 0.5, word dropout 0.1, AdamW 4e-3
# with a cosine schedule that ends with the --time budget), minus what a row leaves out
COMMON = ["--patience", "0"]
RUNS = {
    "conll-word": (CONLL, ["--char-features", "none", "--no-crf"]),
    "conll-char": (CONLL, ["--no-crf"]),
    "conll-char-crf": (CONLL, []),
    "ewt-word": (EWT, ["--char-features", "none", "--no-crf"]),
    "ewt-char": (EWT, ["--no-crf"]),
    "ewt-char-crf": (EWT, []),
    "conll-char-crf-vectors": (CONLL, ["--embeddings", "VECTORS"]),  # spaCy's en_core_web_md vectors
}


def run(name: str, runs: Path, threads: int, minutes: float) -> dict:
    files, extra = RUNS[name]
    extra = [str(spacy_md()) if x == "VECTORS" else x for x in extra]
    out = runs / name
    cmd = [*SEQLAB, "tag", "train", "--train", str(files["train"]), "--dev", str(files["dev"]), *COMMON, *extra,
           "--time", str(minutes), "--threads", str(threads), "--out", str(out), "--overwrite"]
    print("$", " ".join(["seqlab", *cmd[3:]]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    res = json.loads((out / "results.json").read_text())
    ev = subprocess.run([*SEQLAB, "tag", "eval", "--model", str(out), "--data", str(files["test"]), "--json"],
                        check=True, capture_output=True, text=True)
    m = json.loads(ev.stdout)
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"dev_' in x]
    best = next(e for e in evals if e["epoch"] == res["best_epoch"])
    epochs = res["steps"] / evals[0]["step"] * evals[0]["epoch"]  # the first evaluation ends epoch 1
    res.update(name=name, wall_seconds=round(wall, 1), epochs=round(epochs, 1),
               best_seconds=round(best["time"], 1), test_accuracy=m["accuracy"], test_f1=m.get("f1"),
               test_per_type={t: s["f1"] for t, s in m.get("per_type", {}).items()})
    (out / "table_row.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated run names (default: all): " + ", ".join(RUNS))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default: %(default)s)")
    ap.add_argument("--time", type=float, default=25.0, help="training minutes per run (default: %(default)s)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "tagging",
                    help="where the runs go (default: %(default)s)")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found (place ../shared beside the project)")
        return 0
    only = [x for x in a.only.split(",") if x]
    unknown = sorted(set(only) - set(RUNS))
    if unknown:
        ap.error(f"unknown run {unknown[0]!r}; choose from {', '.join(RUNS)}")
    for name in RUNS:
        if not only or name in only:
            run(name, a.runs, a.threads, a.time)
    rows = [a.runs / name / "table_row.json" for name in RUNS]  # also rows from earlier invocations
    results = {p.parent.name: json.loads(p.read_text()) for p in rows if p.exists()}
    (a.runs / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n| run | char features | CRF | metric | dev | test | training time | best checkpoint at |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ner = name.startswith("conll")
        dev, test = (r["dev_f1"], r["test_f1"]) if ner else (r["dev_accuracy"], r["test_accuracy"])
        print(f"| {name} | {'BiLSTM' if 'char' in name else 'no'} | {'yes' if 'crf' in name else 'no'} "
              f"| {'entity F1' if ner else 'UPOS accuracy'} | {100 * dev:.2f} | {100 * test:.2f} "
              f"| {r['train_seconds'] / 60:.1f} min ({r['epochs']:g} epochs) "
              f"| {r['best_seconds'] / 60:.1f} min (epoch {r['best_epoch']:g}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
