"""The gradient-norm panel of `seqlab plot curves`: per-layer gradient norms against the step
(log scale), from a run's grad_norms.jsonl (`seqlab.train.grad_flow.GradNorms`)."""

from __future__ import annotations

from pathlib import Path


def grad_series(rows: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """layer -> (steps, norms) of one run's rows, layers in the order the model lists them; steps
    with a non-finite norm (null) are left out."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for r in rows:
        for layer, v in (r.get("layers") or {}).items():
            if v is not None:
                xs, ys = out.setdefault(layer, ([], []))
                xs.append(r["step"])
                ys.append(max(v, 1e-30))  # a log axis cannot show 0
    return out


def draw_grad_norms(ax, runs: list[tuple[Path, list[dict]]]) -> None:
    """One run: a line per layer; several: the total norm of each run."""
    if len(runs) == 1:
        for layer, (xs, ys) in grad_series(runs[0][1]).items():
            ax.semilogy(xs, ys, lw=1, label=layer)
        title = "gradient norm per layer"
    else:
        for run, rows in runs:
            pts = [(r["step"], r["total"]) for r in rows if r.get("total")]
            if pts:
                ax.semilogy(*zip(*pts), lw=1, label=run.name)
        title = "total gradient norm"
    ax.set(xlabel="optimizer step", ylabel="gradient norm (before clipping)", title=title)
    if ax.lines:
        ax.legend(fontsize=7)
