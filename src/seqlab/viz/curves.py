"""Training curves: loss per step and dev metrics per epoch, from runs' metrics.jsonl logs.

The figure has the training loss on the left, then one panel per *scale* of dev metric, so that
metrics of different ranges never share an axis: BLEU and chrF (0-100) in one panel, exact match or
accuracy (0-1) in another, and any other metric with one whose values are within a factor of ten of
its own. A run without dev evaluations (e.g. `forecast train --dev 0`) gets the loss panel alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from seqlab.train.grad_flow import read_grad_norms
from seqlab.viz.grad_plot import draw_grad_norms

PERCENT = ("bleu", "chrf", "smape", "mape")  # metrics reported on a 0-100 scale
FRACTION = ("accuracy", "f1", "exact_match", "precision", "recall", "answered", "coverage", "score", "r2")


def read_log(run: str | Path) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records) of a run directory's metrics.jsonl."""
    path = Path(run) / "metrics.jsonl"
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    steps = [r for r in recs if "loss" in r]
    epochs = [r for r in recs if any(k.startswith("dev_") for k in r)]
    return steps, epochs


def _scale(key: str) -> str | None:
    """'percent' or 'fraction' for metrics of a known range (by name), else None."""
    name = key.removeprefix("dev_")
    if name in PERCENT or name.endswith(tuple(f"_{p}" for p in PERCENT)):
        return "percent"
    if name in FRACTION or name.endswith(tuple(f"_{f}" for f in FRACTION)):
        return "fraction"
    return None


def metric_groups(series: dict[str, list[float]]) -> list[list[str]]:
    """Metric names grouped by scale, one group per panel: the known 0-100 and 0-1 metrics by name,
    the others by size (largest |value| within a factor of 10 of the group's first)."""
    groups: dict[str, list[str]] = {}
    for key in series:
        s = _scale(key)
        if s:
            groups.setdefault(s, []).append(key)
    sizes = {k: max((abs(v) for v in vs if math.isfinite(v)), default=0.0) for k, vs in series.items()}
    rest = sorted((k for k in series if _scale(k) is None), key=lambda k: -sizes[k])
    others: list[list[str]] = []
    for key in rest:
        for g in others:
            top, size = sizes[g[0]], sizes[key]
            if top == size or (size > 0 and top / size <= 10):
                g.append(key)
                break
        else:
            others.append([key])
    return [groups[s] for s in ("percent", "fraction") if s in groups] + others


def _dev_series(logs) -> dict[str, list[tuple[str, list[tuple[float, float]]]]]:
    """{metric key: [(line label, [(epoch, value)])]} of the dev metrics to draw."""
    out: dict[str, list] = {}
    for run, _, epochs in logs:
        keys = sorted({k for r in epochs for k in r if k.startswith("dev_") and k not in ("dev_loss", "dev_n")})
        if not keys and any("dev_loss" in r for r in epochs):
            keys = ["dev_loss"]  # a run whose only dev metric is its loss
        for k in keys if len(logs) == 1 else keys[:1]:
            pts = [(r["epoch"], r[k]) for r in epochs if isinstance(r.get(k), (int, float))]
            if pts:
                out.setdefault(k, []).append((f"{run.name} {k}" if len(logs) > 1 else k, pts))
    return out


def curves_figure(runs: Sequence[str | Path], grad_norms: bool = False):
    """The matplotlib Figure of `plot_curves` (not saved): axes[0] the training loss, then one axes
    per group of dev metrics (`metric_groups`); no dev axes when no run logged a dev metric. With
    grad_norms, a last axes of per-layer gradient norms (`seqlab.viz.grad_plot`) when the runs have
    a grad_norms.jsonl. Close it with plt.close(fig)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = [(Path(r), *read_log(r)) for r in runs]
    if not any(steps for _, steps, _ in logs):
        raise ValueError("no training steps logged yet")
    dev = _dev_series(logs)
    groups = metric_groups({k: [v for _, pts in lines for _, v in pts] for k, lines in dev.items()})
    grads = [(run, read_grad_norms(run)) for run, _, _ in logs] if grad_norms else []
    extra = int(any(rows for _, rows in grads))
    n = 1 + len(groups) + extra
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False)
    axes = list(axes[0])
    a1 = axes[0]
    for run, steps, _ in logs:
        label = run.name if len(logs) > 1 else "train loss"
        a1.plot([r["step"] for r in steps], [r["loss"] for r in steps], label=label, lw=1)
    a1.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    a1.legend()
    for ax, keys in zip(axes[1:], groups):
        for k in keys:
            for label, pts in dev[k]:
                ax.plot(*zip(*pts), marker="o", label=label)
        names = ", ".join(k.removeprefix("dev_") for k in keys)
        scale = _scale(keys[0])
        ax.set(xlabel="epoch", ylabel={"percent": "dev metric (0-100)", "fraction": "dev metric (0-1)"}
               .get(scale, "dev metric"), title=f"dev {names}" if len(names) <= 40 else "dev metrics")
        ax.legend(fontsize=8)
    if extra:
        draw_grad_norms(axes[-1], grads)
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(runs: Sequence[str | Path], out: str | Path, grad_norms: bool = False) -> Path:
    """Write a PNG: training loss against step (left), dev metrics against epoch (a panel per scale),
    with grad_norms the per-layer gradient norms (right)."""
    import matplotlib.pyplot as plt

    fig = curves_figure(runs, grad_norms)
    out = Path(out)
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out
