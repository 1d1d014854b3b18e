"""Forecast plot: the recent history, the forecast, its 80% and 95% intervals, and what happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_forecast(times_hist, hist: np.ndarray, times_fc, mean: np.ndarray, intervals: dict,
                  out: str | Path, actual: np.ndarray | None = None, title: str = "",
                  names: list[str] | None = None, baselines: dict[str, np.ndarray] | None = None) -> Path:
    """Write a PNG, one panel per target column.

    times_hist (t,), hist (t, targets): the history shown; times_fc (horizon,), mean (horizon, targets);
    intervals {level: (lo, hi)} each (horizon, targets); actual (horizon, targets) or None: the true
    values, when the forecast starts inside the observed series; baselines {name: (horizon, targets)}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = mean.shape[1]
    fig, axes = plt.subplots(d, 1, figsize=(10, 3.6 * d), squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(times_hist, hist[:, j], color="black", lw=1.2, label="history")
        for lv, alpha in ((0.95, 0.18), (0.8, 0.35)):
            if lv in intervals:
                lo, hi = intervals[lv]
                ax.fill_between(times_fc, lo[:, j], hi[:, j], color="tab:blue", alpha=alpha, lw=0,
                                label=f"{round(lv * 100)}% interval")
        ax.plot(times_fc, mean[:, j], color="tab:blue", lw=1.8, marker="o", ms=3, label="forecast")
        for (name, f), color in zip((baselines or {}).items(), ("tab:orange", "tab:green", "tab:purple")):
            ax.plot(times_fc, f[:, j], color=color, lw=1, ls="--", label=name)
        if actual is not None:
            ax.plot(times_fc, actual[:, j], color="black", lw=1.2, ls=":", marker="x", ms=4, label="actual")
        ax.set_ylabel(names[j] if names else f"target {j}")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
