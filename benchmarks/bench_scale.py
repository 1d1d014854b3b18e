"""Scale: the language model on 10 MB, 100 MB (and, with --size, 1 GB) of text, in memory and time.

    .venv/bin/python benchmarks/bench_scale.py [--size 10MB,100MB,1GB] [--time 1] [--threads 1] [--again]

The texts are made by repeating Tiny Shakespeare (or, without ../shared, Python's pydoc topics) with
its lines shuffled, in a temporary directory (or --work DIR, never inside the project; kept there for
the next run). Each size trains `LM.fit(text, time=..., threads=..., out=...)` with the defaults of
`seqlab lm train` in a fresh process and reports:
  tokenize MB/s       the text's size over the time spent tokenizing it into the token store
  peak RSS            VmHWM of the process (the pages of the memory-mapped token file it touched included)
  peak PSS            the largest Pss of /proc/self/smaps_rollup (sampled every 0.2 s), and its anonymous
                      part (Pss_Anon: the process's own memory, without any file pages)
  first step          seconds from the start of `fit` to the first training step
  tokens/s            training tokens (steps x batch x seq_len) per second of training
  eval                seconds spent in validation (all evaluations during training and the final one)
  wall / budget       the process's wall time (imports included) against the --time budget
`--again` trains each size a second time on the same run directory: its token store is reused
(tokenizing skipped). Ratios are against the first (smallest) row.

`--rows 100k,1M[,10M]` adds classification: a TSV of that many rows drawn from SST-2's training sentences
(or generated ones without ../shared), trained by `Classifier.fit` (hidden 128, embed 64, batch 64, dev =
SST-2's dev set) in a fresh process; from 200k rows the tokenized rows go to a `RowStore` (one flat token
file + an offsets index in OUT/rows). Reported: tokenize time (the rows into ids), peak RSS, first step,
examples/s, wall; `--plain` trains the largest size once more with the rows as a list of tensors (the
old way); `--size ""` skips the LM. Writes benchmarks/results/bench_scale.json
(ratio = peak RSS of the smallest row / that of the largest: 1.0 is flat, above 0.5 is under 2x).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "char_lm" / "tinyshakespeare.txt"
UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(KB|MB|GB)\s*", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write 10MB, 100MB or 1GB")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def make_text(path: Path, size: int, seed: int = 0) -> None:
    """`size` bytes (about: whole lines) of the shipped text, its lines shuffled anew for every copy."""
    if path.exists() and path.stat().st_size >= size:
        return
    if SHAKESPEARE.exists():
        lines = SHAKESPEARE.read_text().split("\n")
    else:
        import pydoc_data.topics as topics

        lines = "\n".join(topics.topics.values()).split("\n")
    rnd, n = random.Random(seed), 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        while n < size:
            rnd.shuffle(lines)
            block = "\n".join(lines) + "\n"
            f.write(block[: size - n] if n + len(block) > size else block)
            n += len(block)
    os.replace(tmp, path)


# ---- the worker: one training in this process --------------------------------------------------------
def _smaps() -> dict:
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                out[k] = int(v.split()[0]) * 1024
    return out


def worker(a: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    peak = {"Pss": 0, "Pss_Anon": 0, "Rss": 0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            s = _smaps()
            for k in peak:
                peak[k] = max(peak[k], s.get(k, 0))

    threading.Thread(target=sample, daemon=True).start()
    import torch

    from seqlab.pipelines import LM
    from seqlab.pipelines.lm_corpus import Validation
    from seqlab.train.callbacks import default_callbacks

    torch.set_num_threads(a.threads)
    evals: list[float] = []
    orig = Validation.__call__

    def timed(self, model):
        t = time.perf_counter()
        try:
            return orig(self, model)
        finally:
            evals.append(time.perf_counter() - t)

    Validation.__call__ = timed
    orig_final = Validation.final

    def timed_final(self, model, best):
        t = time.perf_counter()
        res = orig_final(self, model, best)
        if res is not self.best:  # scored anew (not the figures of the best evaluation)
            evals.append(time.perf_counter() - t)
        return res

    Validation.final = timed_final
    marks: dict = {}

    class FirstStep:
        def on_fit_start(self, trainer, resume):
            marks["fit_start"] = time.perf_counter()

    lines: list[str] = []
    t_fit = time.perf_counter()
    pipe = LM.fit(a.worker, time=a.time, threads=a.threads, out=a.out, overwrite=True, seed=1,
                  callbacks=[*default_callbacks(a.out), FirstStep()], log=lambda s: (lines.append(s), print(s)))
    wall = time.perf_counter() - t_start
    stop.set()
    r, cfg = pipe.results, pipe.config
    tokens = r["steps"] * cfg.train.batch * cfg.data.seq_len
    with open("/proc/self/status") as f:
        hwm = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))
    s = _smaps()
    for k in peak:
        peak[k] = max(peak[k], s.get(k, 0))
    size = os.path.getsize(a.worker)
    return {"bytes": size, "budget_s": a.time * 60, "wall_s": wall, "tokenize_s": r["tokenize_seconds"],
            "tokenize_mb_s": size / 1e6 / r["tokenize_seconds"] if r["tokenize_seconds"] else None,
            "reused": any("tokenizing skipped" in ln for ln in lines), "peak_rss": hwm, "peak_pss": peak["Pss"],
            "peak_pss_anon": peak["Pss_Anon"], "first_step_s": marks["fit_start"] - t_fit,
            "train_s": r["train_seconds"], "tokens_per_s": tokens / max(r["train_seconds"], 1e-9),
            "eval_s": sum(evals), "evaluations": len(evals), "valid_scored_tokens": r["valid_scored_tokens"],
            "valid_loss": r["valid_loss"], "steps": r["steps"]}


def make_rows(path: Path, n: int, seed: int = 0) -> None:
    """A TSV (sentence, label) of `n` rows drawn with replacement from SST-2's training set."""
    if path.exists():
        return
    sst = SHAKESPEARE.parents[1] / "sentiment" / "sst2" / "train.tsv"
    if sst.exists():
        pool = [ln.split("\t") for ln in sst.read_text().splitlines()[1:]]
    else:
        words = "good bad fine awful great poor dull fun film plot actor scene long short".split()
        rnd0 = random.Random(1)
        pool = [(" ".join(rnd0.choices(words, k=rnd0.randint(3, 20))), str(i % 2)) for i in range(5000)]
    rnd, tmp = random.Random(seed), path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write("sentence\tlabel\n")
        for _ in range(0, n, 10_000):
            f.write("".join(f"{t.strip()}\t{y.strip()}\n" for t, y in rnd.choices(pool, k=min(10_000, n))))
    os.replace(tmp, path)


def rows_worker(a: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    import torch

    from seqlab.pipelines import Classifier, classify
    from seqlab.train.callbacks import default_callbacks

    torch.set_num_threads(a.threads)
    if a.plain:
        classify.ROW_STORE_ROWS = 10**12  # never a RowStore: the rows as a list of tensors
    spent: list[float] = []
    for name in ("rows", "encode"):
        orig = getattr(Classifier, name)

        def timed(self, *args, _orig=orig, **kw):
            t = time.perf_counter()
            try:
                return _orig(self, *args, **kw)
            finally:
                spent.append(time.perf_counter() - t)

        setattr(Classifier, name, timed)
    marks: dict = {}

    class FirstStep:
        def on_fit_start(self, trainer, resume):
            marks["fit_start"] = time.perf_counter()

    sst_dev = SHAKESPEARE.parents[1] / "sentiment" / "sst2" / "dev.tsv"
    t_fit = time.perf_counter()
    pipe = Classifier.fit(a.worker, dev=str(sst_dev) if sst_dev.exists() else None, text_col="sentence",
                          time=a.time, threads=a.threads, out=a.out, overwrite=True, seed=1, hidden=128, embed=64,
                          batch=64, callbacks=[*default_callbacks(a.out), FirstStep()], log=print)
    wall = time.perf_counter() - t_start
    r = pipe.results
    with open("/proc/self/status") as f:
        hwm = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))
    n = sum(1 for _ in open(a.worker)) - 1
    return {"rows": n, "budget_s": a.time * 60, "wall_s": wall, "tokenize_s": spent[0] if spent else 0.0,
            "peak_rss": hwm, "first_step_s": marks["fit_start"] - t_fit, "train_s": r["train_seconds"],
            "examples_per_s": r["steps"] * 64 / max(r["train_seconds"], 1e-9), "steps": r["steps"],
            "dev_accuracy": r.get("dev_accuracy"), "store": not a.plain and n >= classify.ROW_STORE_ROWS}


def rows_table(rows: list[dict]) -> str:
    base = rows[0]
    out = ["| rows | tokenize | peak RSS | first step | examples/s | wall / budget |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['tokenize_s']:.1f}s (x{r['tokenize_s'] / max(base['tokenize_s'], 1e-9):.2f}) | "
                   f"{_mb(r['peak_rss'])} (x{r['peak_rss'] / base['peak_rss']:.2f}) | {r['first_step_s']:.1f}s "
                   f"(x{r['first_step_s'] / base['first_step_s']:.2f}) | {r['examples_per_s']:,.0f} "
                   f"(x{r['examples_per_s'] / base['examples_per_s']:.2f}) | {r['wall_s']:.0f}s / "
                   f"{r['budget_s']:.0f}s |")
    return "\n".join(out)


def _run_worker(cmd: list[str], threads: int, label: str = "") -> dict | None:
    print(f"== {label}{' '.join(cmd[1:])}", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    res = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if r.returncode != 0 or res is None:
        print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
        return None
    print("\n".join(ln for ln in r.stdout.splitlines() if not ln.startswith("RESULT ")), flush=True)
    return json.loads(res[7:])


def classification(a: argparse.Namespace, work: Path) -> list[dict]:
    rows = []
    sizes = [int(float(s.lower().rstrip("km")) * (1e6 if s.lower().endswith("m") else 1e3)) for s in a.rows.split(",")]
    for k, n in enumerate(sizes + ([sizes[-1]] if a.plain else [])):
        name = f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"
        data = work / f"rows-{name}.tsv"
        make_rows(data, n)
        plain = k == len(sizes)
        cmd = [sys.executable, __file__, "--rows-worker", "--worker", str(data), "--out",
               str(work / f"rows-run-{name}{'-plain' if plain else ''}"), "--time", str(a.time), "--threads",
               str(a.threads)] + (["--plain"] if plain else [])
        res = _run_worker(cmd, a.threads)
        if res is None:
            raise SystemExit(1)
        rows.append({"name": name + (" (list of tensors)" if plain else " (row store)" if res["store"] else ""), **res})
    return rows


# ---- the driver -----------------------------------------------------------------------------------------
def _mb(x: float) -> str:
    return f"{x / 2**20:,.0f} MiB"


def table(rows: list[dict]) -> str:
    base = rows[0]
    out = ["| text | tokenize | peak RSS | peak PSS (anon) | first step | tokens/s | eval | wall / budget |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tok = "reused" if r["reused"] else f"{r['tokenize_mb_s']:,.0f} MB/s ({r['tokenize_s']:.1f}s)"
        out.append(f"| {r['name']} | {tok} | {_mb(r['peak_rss'])} (x{r['peak_rss'] / base['peak_rss']:.2f}) | "
                   f"{_mb(r['peak_pss'])} ({_mb(r['peak_pss_anon'])}) | {r['first_step_s']:.1f}s | "
                   f"{r['tokens_per_s']:,.0f} (x{r['tokens_per_s'] / base['tokens_per_s']:.2f}) | "
                   f"{r['eval_s']:.1f}s / {r['evaluations']} (x{r['eval_s'] / max(base['eval_s'], 1e-9):.2f}) | "
                   f"{r['wall_s']:.0f}s / {r['budget_s']:.0f}s (+{r['wall_s'] - r['budget_s']:.0f}s) |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="10MB,100MB", help="text sizes, comma-separated (default: %(default)s)")
    p.add_argument("--time", type=float, default=0.5, help="training budget in minutes (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--again", action="store_true", help="train each size twice: the second run reuses the store")
    p.add_argument("--work", default=None, help="directory for the texts and runs (default: a temporary one)")
    p.add_argument("--rows", default="", help="classification rows, e.g. 100k,1M (default: none)")
    p.add_argument("--plain", action="store_true", help="also train the largest --rows without the row store")
    p.add_argument("--rows-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print("RESULT " + json.dumps(rows_worker(a) if a.rows_worker else worker(a)), flush=True)
        return 0
    sizes = [parse_size(s) for s in a.size.split(",") if s.strip()]
    work = Path(a.work).resolve() if a.work else Path(tempfile.mkdtemp(prefix="seqlab-scale-"))
    if work == ROOT or ROOT in work.parents:
        p.error(f"--work {work} is inside the project; give a directory outside it")
    work.mkdir(parents=True, exist_ok=True)
    rows, cls_rows = [], []
    try:
        for size in sizes:
            name = f"{size / 1e9:g}GB" if size >= 1e9 else f"{size / 1e6:g}MB"
            text = work / f"text-{name}.txt"
            make_text(text, size)
            shutil.rmtree(work / f"run-{name}", ignore_errors=True)  # the first run tokenizes (texts are kept)
            for k in range(2 if a.again else 1):
                cmd = [sys.executable, __file__, "--worker", str(text), "--out", str(work / f"run-{name}"),
                       "--time", str(a.time), "--threads", str(a.threads)]
                res = _run_worker(cmd, a.threads, f"{name}{' (again)' if k else ''}: ")
                if res is None:
                    return 1
                rows.append({"name": name + (" again" if k else ""), **res})
        cls_rows = classification(a, work) if a.rows else []
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    res = {"time": a.time, "threads": a.threads}
    if not rows and (out / "bench_scale.json").exists():  # --size "": keep the LM figures of an earlier run
        res = {k: v for k, v in json.loads((out / "bench_scale.json").read_text()).items() if k != "classification"}
    if rows:
        print(f"\nLM (char, defaults of `seqlab lm train`), --time {a.time:g}, --threads {a.threads}\n")
        print(table(rows))
        first, last = rows[0], max(rows, key=lambda r: r["bytes"])
        res |= {"compared": f"LM peak RSS, {first['name']} vs {last['name']} of text (--time {a.time:g})",
                "reference": f"{_mb(first['peak_rss'])} -> {_mb(last['peak_rss'])}; tokenize "
                             f"{last['tokenize_mb_s'] or 0:,.0f} MB/s",
                "ratio": first["peak_rss"] / last["peak_rss"], "rows": rows}
    if cls_rows:
        print(f"\nclassification (SST-2 rows, hidden 128, batch 64), --time {a.time:g}, --threads {a.threads}\n")
        print(rows_table(cls_rows))
        first, last = cls_rows[0], max(cls_rows, key=lambda r: (r["rows"], r["store"]))
        res.setdefault("compared", f"classifier peak RSS, {first['name']} vs {last['name']} rows")
        res.setdefault("reference", f"{_mb(first['peak_rss'])} -> {_mb(last['peak_rss'])}")
        res.setdefault("ratio", first["peak_rss"] / last["peak_rss"])
        res["classification"] = cls_rows
    (out / "bench_scale.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
