"""Training curves: loss per step and dev metrics per epoch, from runs' metrics.jsonl logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def read_log(run: str | Path) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records) of a run directory's metrics.jsonl."""
    path = Path(run) / "metrics.jsonl"
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    steps = [r for r in recs if "loss" in r]
    epochs = [r for r in recs if any(k.startswith("dev_") for k in r)]
    return steps, epochs


def plot_curves(runs: Sequence[str | Path], out: str | Path) -> Path:
    """Write a PNG: training loss against step (left), dev metrics against epoch (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = [(Path(r), *read_log(r)) for r in runs]
    if not any(steps for _, steps, _ in logs):
        raise ValueError("no training steps logged yet")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for run, steps, epochs in logs:
        label = run.name if len(logs) > 1 else "train loss"
        a1.plot([r["step"] for r in steps], [r["loss"] for r in steps], label=label, lw=1)
        keys = sorted({k for r in epochs for k in r if k.startswith("dev_") and k != "dev_loss"})
        for k in keys[: 3 if len(logs) == 1 else 1]:
            pts = [(r["epoch"], r[k]) for r in epochs if k in r]
            name = f"{run.name} {k}" if len(logs) > 1 else k
            a2.plot(*zip(*pts), marker="o", label=name)
    a1.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    a1.legend()
    a2.set(xlabel="epoch", ylabel="dev metric", title="dev metrics")
    if a2.lines:
        a2.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
