"""Sequence regression: `seqlab classify train --regression` predicts a number per sequence (text or numeric
feature sequences) instead of a class.

The same `TextClassifier` with one output unit is trained with mean squared error on the target
standardised by the training mean and std (saved in the checkpoint, so predictions come back in the
target's own units). Metrics: MAE, RMSE, R² and the MAE of always predicting the training mean, the
baseline a model must beat.
"""

from __future__ import annotations

import numpy as np

from seqlab.errors import UserError


def parse_targets(labels: list[str], lines: list[int] | None, path) -> np.ndarray:
    """Float targets (n,) from the label column; a non-number names its line (CSV) or sequence (.npz)."""
    y = np.empty(len(labels), dtype=np.float64)
    for i, v in enumerate(labels):
        try:
            y[i] = float(v)
        except ValueError:
            where = f"line {lines[i]}" if lines else f"sequence {i}"
            raise UserError(f"{path}: {where} has target {v!r}, which is not a number; --regression needs a "
                            "numeric label column (drop --regression to learn classes)") from None
    return y


def target_scaler(y: np.ndarray) -> dict:
    """Mean and std of the training targets (std 1 when constant), as JSON for the checkpoint."""
    if not np.isfinite(y).all():
        raise UserError("the training targets hold NaN or infinite values; fill or drop those rows")
    std = float(y.std())
    return {"mean": float(y.mean()), "std": std if std > 0 else 1.0}


def standardise(y: np.ndarray, sc: dict) -> np.ndarray:
    return (y - sc["mean"]) / sc["std"]


def restore(z: np.ndarray, sc: dict) -> np.ndarray:
    return z * sc["std"] + sc["mean"]


def regression_metrics(y: np.ndarray, pred: np.ndarray, train_mean: float) -> dict:
    """MAE, RMSE, R² of `pred` against `y` (both (n,)), and the MAE of the constant train-mean baseline."""
    err = pred - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())),
            "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else 0.0,
            "baseline_mae": float(np.abs(y - train_mean).mean()), "n": len(y)}


def format_metrics(name, m: dict) -> str:
    return (f"{name}: {m['n']} examples  MAE {m['mae']:.4g}  RMSE {m['rmse']:.4g}  R² {m['r2']:.4f}  "
            f"(predicting the training mean: MAE {m['baseline_mae']:.4g})")
