"""Run every benchmarks/bench_*.py and print one summary table from their results JSON.

    make bench        (= .venv/bin/python benchmarks/run_all.py)

Each benchmark measures seqlab against a reference in the same run and writes
benchmarks/results/<name>.json with at least: compared, reference, ratio (higher is better).
The table is also written to benchmarks/results/summary.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# small defaults here (the script's own: 10MB,100MB and no rows); the 100k classification rows add ~25 s
ARGS = {"bench_scale.py": ["--size", "10MB", "--time", "0.3", "--rows", "100k"]}


def main() -> int:
    results = HERE / "results"
    rows = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        r = subprocess.run([sys.executable, str(script), *ARGS.get(script.name, [])], cwd=HERE.parent)
        out = results / f"{script.stem}.json"
        if r.returncode != 0 or not out.exists() or out.stat().st_mtime < script.stat().st_mtime:
            rows.append({"benchmark": script.stem, "compared": "(failed or skipped)", "ratio": None, "reference": ""})
            continue
        rows.append(json.loads(out.read_text()) | {"benchmark": script.stem})
    print("\n| benchmark | what is compared | ratio | reference |\n|---|---|---|---|")
    for row in rows:
        ratio = f"{row['ratio']:.1f}x" if row.get("ratio") else "-"
        print(f"| {row['benchmark']} | {row['compared']} | {ratio} | {row.get('reference', '')} |")
    results.mkdir(exist_ok=True)
    (results / "summary.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
