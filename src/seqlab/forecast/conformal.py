"""Conformal prediction intervals and quantiles for the forecaster, calibrated on the training part only.

Split conformal on forecast errors made where the forecasting model was not fitted. By default
(`calibrate`, calibration_folds 3) the forecaster is refitted with its own settings on the training part
cut short by k blocks (k = 1..folds; a block is max(horizon, 10% of the steps before the test part)), and
each refit forecasts, from every origin (stride 1), the block after its end: residuals of models never fitted
nor early-stopped on their targets, all before the test part. With folds 0 the residuals are the trained
model's own on its dev part. Residuals r[o, h] = y[o + h] - mean[o, h] are taken in the model's scaled (and,
with --log, log) units:

    scale[h]    the mean |r[., h]| of each horizon step, made non-decreasing in h (isotonic regression):
                intervals widen with the horizon
    scores      r / scale[h], pooled over steps and origins (n of them), sorted
    quantile    of level tau: mean + scale[h] * score_(k), the k-th smallest score with the finite-sample
                correction k = ceil((n + 1) tau) above the median (floor below it); symmetric tables use
                the absolute scores, +-|score|_(ceil((n + 1) |2 tau - 1|))

so a central interval at level lv is the (1 - lv)/2 .. (1 + lv)/2 quantiles. With too few residuals for
a level (k beyond n) the largest score is used, which under-covers; `ConformalTable.n` says how many.
The table is stored in the checkpoint's config.json (data["conformal"]), so predict, eval, export
and the web page use it without refitting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.errors import UserError
from seqlab.forecast.combine import MAX_CALIBRATION_ORIGINS
from seqlab.pipelines.base import write_text_atomic

MAX_SCORES = 4000  # scores kept per target in a checkpoint (evenly spaced order statistics beyond that)


def isotonic_increasing(v: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to `v` (n,) in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [sum, count]
    for x in np.asarray(v, dtype=float):
        blocks.append([x, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    return np.concatenate([np.full(int(c), s / c) for s, c in blocks]) if blocks else np.zeros(0)


def calibration_residuals(mean: np.ndarray, values: np.ndarray, origins: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Residuals (origins, horizon, targets) of forecasts `mean` (origins, horizon, targets) from
    `origins` against `values` (time, targets), NaN where the target step is outside [lo, hi)."""
    H = mean.shape[1]
    t = origins[:, None] + np.arange(H)[None, :]
    inside = (t >= lo) & (t < hi)
    y = values[np.clip(t, 0, len(values) - 1)]
    return np.where(inside[..., None], y - mean, np.nan)


@dataclass
class ConformalTable:
    """scale (horizon, targets); scores (n, targets) sorted; symmetric; n residuals per target; source."""

    scale: np.ndarray
    scores: np.ndarray
    symmetric: bool
    n: int
    source: str

    @classmethod
    def fit(cls, residuals: np.ndarray, symmetric: bool = True, source: str = "the dev part") -> ConformalTable:
        """From residuals (origins, horizon, targets), NaN where there is none; needs one per step."""
        r = np.asarray(residuals, dtype=float)
        d = r.shape[2]
        counts = np.sum(~np.isnan(r), 0)  # (horizon, targets)
        if counts.min() < 1:
            raise ValueError("conformal calibration needs at least one residual at every horizon step")
        mae = np.nanmean(np.abs(r), 0)
        scale = np.stack([isotonic_increasing(mae[:, j]) for j in range(d)], 1)
        tiny = max(1e-12, 1e-9 * float(np.nanmax(np.abs(r))))
        scale = np.maximum(scale, tiny)
        z = r / scale[None]
        cols = [np.sort(np.abs(z[..., j][~np.isnan(z[..., j])]) if symmetric else z[..., j][~np.isnan(z[..., j])])
                for j in range(d)]
        n = min(len(c) for c in cols)
        cols = [np.sort(c)[:n] if len(c) == n else np.sort(c)[np.round(np.linspace(0, len(c) - 1, n)).astype(int)]
                for c in cols]
        scores = np.stack(cols, 1)
        if n > MAX_SCORES:
            scores = scores[np.round(np.linspace(0, n - 1, MAX_SCORES)).astype(int)]
        return cls(scale, scores, symmetric, n, source)

    def _order(self, k: np.ndarray) -> np.ndarray:
        """The k-th smallest score (1-based, clipped to 1..n) of each target: (targets,)."""
        m = len(self.scores)
        k = np.clip(k, 1, self.n)
        idx = np.round((k - 1) * (m - 1) / max(self.n - 1, 1)).astype(int) if m < self.n else k - 1
        return self.scores[idx, np.arange(self.scores.shape[1])]

    def offset(self, tau: float) -> np.ndarray:
        """(horizon, targets): what to add to the (scaled) mean forecast for its tau-quantile."""
        if not 0 < tau < 1:
            raise ValueError(f"a quantile level must be between 0 and 1, not {tau}")
        d = self.scores.shape[1]
        if self.symmetric:
            lv = abs(2 * tau - 1)
            k = math.ceil((self.n + 1) * lv - 1e-9)
            z = self._order(np.full(d, k)) * np.sign(tau - 0.5) if lv > 0 else np.zeros(d)
        elif tau > 0.5:
            z = self._order(np.full(d, math.ceil((self.n + 1) * tau - 1e-9)))
        elif tau < 0.5:
            z = self._order(np.full(d, math.floor((self.n + 1) * tau + 1e-9)))
        else:
            z = np.median(self.scores, 0)
        return self.scale * z[None, :]

    def quantiles(self, mean: np.ndarray, taus) -> dict[float, np.ndarray]:
        """{tau: mean + offset} for forecasts `mean` (origins, horizon, targets) in scaled units."""
        H = mean.shape[1]
        return {t: mean + self.offset(t)[None, :H] for t in taus}

    def to_json(self) -> dict:
        return {"scale": self.scale.tolist(), "scores": np.round(self.scores, 6).tolist(),
                "symmetric": self.symmetric, "n": self.n, "source": self.source}

    @classmethod
    def from_json(cls, j: dict) -> ConformalTable:
        return cls(np.asarray(j["scale"], dtype=float), np.asarray(j["scores"], dtype=float), bool(j["symmetric"]),
                   int(j["n"]), str(j.get("source", "")))


def quantiles_of(mean: np.ndarray, scale: np.ndarray | None, taus, table: ConformalTable | None) \
        -> dict[float, np.ndarray]:
    """{tau: quantile forecast} in scaled units from `mean` (origins, horizon, targets): conformal when
    `table`, else the Gaussian head's mean + z_tau * scale (none without a scale)."""
    if table is not None:
        return table.quantiles(mean, taus)
    if scale is None:
        return {}
    from statistics import NormalDist

    return {t: mean + NormalDist().inv_cdf(t) * scale for t in taus}


def central(levels) -> list[float]:
    """The quantile levels of central intervals: (1 - lv)/2 and (1 + lv)/2 of each level."""
    return sorted({round((1 - lv) / 2, 10) for lv in levels} | {round((1 + lv) / 2, 10) for lv in levels})


def quantile_name(tau: float) -> str:
    """The output column of quantile level `tau`: 0.1 -> q10, 0.025 -> q2.5."""
    return f"q{round(100 * tau, 6):g}"


def parse_quantiles(spec) -> tuple[float, ...]:
    """Quantile levels from "0.1,0.5,0.9" (or a sequence of numbers), each strictly between 0 and 1."""
    if spec is None or spec == "":
        return ()
    parts = [p.strip() for p in spec.split(",") if p.strip()] if isinstance(spec, str) else list(spec)
    out = []
    for p in parts:
        try:
            tau = float(p)
        except (TypeError, ValueError):
            tau = float("nan")
        if not 0 < tau < 1:
            raise UserError(f"--quantiles: {p!r} is not a quantile level; give levels between 0 and 1, "
                            "e.g. --quantiles 0.1,0.5,0.9")
        out.append(tau)
    return tuple(sorted(set(out)))


def rolling_residuals(pipe, s, config, test_start: int, folds: int) -> tuple[np.ndarray | None, int, int]:
    """Rolling-origin residuals for calibrating `pipe` (a trained Forecaster) on the training part:
    `folds` refits with its settings (lookback, season, network, log, window norm, ensemble pinned), the k-th on
    the steps before test_start - k * block, each scored on the `block` steps after its own end, so no
    residual comes from a model fitted (or early-stopped) on its target. A fold too short for the model's
    lookback is refitted with the lookback the defaults choose for it (on short series, out-of-sample errors
    of a slightly different model calibrate far better than the model's in-sample ones). In pipe's scaled units.
    (residuals (origins, horizon, targets) or None when no fold fits, the folds fitted, block)."""
    H, L, d = pipe.horizon, pipe.lookback, pipe.data
    block = max(H, round(0.1 * test_start))
    pinned = {"test": block, "test_start": None, "lookback": L, "season": d["season"], "log_scale": d["log_scale"],
              "window_norm": d["window_norm"], "calendar": d["calendar"], "ensemble": d["ensemble"],
              "network": d.get("network", "standard"),
              "intervals": "gaussian", "save_every": 0, "combine": ",".join(d.get("combine") or ()) or "none"}
    shorter = {k: v for k, v in pinned.items() if k != "lookback"}  # the defaults' lookback for that history
    target = pipe.scaler.transform(s.values)
    out = []
    for k in range(1, folds + 1):
        cut = test_start - k * block
        fold = None
        for settings in (pinned, shorter):
            try:
                fold = type(pipe).fit(s.head(cut + block), config, log=lambda *_: None, **settings)
                break
            except UserError:  # too short for the model's lookback: try the one that fits; then for any fold
                continue
        if fold is None:
            break
        origins = np.arange(max(fold.lookback, cut - H + 1), cut + block)
        if d.get("combine"):  # the classical models refit at every origin: a spread-out subset of them
            origins = origins[np.unique(np.linspace(0, len(origins) - 1, MAX_CALIBRATION_ORIGINS).round().astype(int))]
        z = pipe.scaler.transform(fold.forecast(s, origins).mean)
        out.append(calibration_residuals(z, target, origins, cut, cut + block))
    return (np.concatenate(out) if out else None), len(out), block


def calibrate(pipe, s, dev_start: int, test_start: int, config, folds: int = 3, out=None, log=print) -> dict:
    """The conformal table (as JSON) of the trained Forecaster `pipe` on series `s`, also written into the
    checkpoints under `out` (best/, last/ config.json data["conformal"]): residuals of `folds`
    rolling-origin refits (rolling_residuals); without any, of the model itself on its dev part
    [dev_start, test_start) (early-stopped there: a little narrow; without a dev part, the last training
    steps, in-sample: too narrow)."""
    H = pipe.horizon
    r, k, block = rolling_residuals(pipe, s, config, test_start, folds) if folds else (None, 0, 0)
    source, steps = f"{k} rolling-origin refits (the {block} steps after each)", k * block
    if r is None:
        lo, source = dev_start, "the dev part"
        if dev_start >= test_start:
            lo = max(pipe.lookback + H, test_start - max(H, round(0.1 * test_start)))
            source = "the last training steps (in-sample: no dev part, likely too narrow)"
        origins = np.arange(max(pipe.lookback, lo - H + 1), test_start)
        r = calibration_residuals(pipe.raw(s, origins)[0], pipe.scaler.transform(s.values), origins, lo, test_start)
        steps = test_start - lo
    table = ConformalTable.fit(r, source=source).to_json()
    log(f"conformal intervals from {table['n']} residuals of {source} ({steps} steps x {H} horizons)")
    for name in ("best", "last") if out is not None else ():  # the checkpoints training wrote
        path = Path(out) / name / "config.json"
        if path.exists():
            cfg = json.loads(path.read_text())
            write_text_atomic(path, json.dumps({**cfg, "data": {**cfg["data"], "conformal": table}}, indent=2) + "\n")
    return table
