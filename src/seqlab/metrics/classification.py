"""Classification metrics: accuracy, macro-averaged F1, confusion matrix (NumPy, vectorised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else 0.0


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix; 0 where a class has no true and no predicted item."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes that occur in y_true or y_pred."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    present = (cm.sum(0) + cm.sum(1)) > 0
    return float(per_class_f1(cm)[present].mean()) if present.any() else 0.0


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> dict:
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "confusion_matrix": cm.tolist(),
    }


def format_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """A plain-text confusion matrix with labelled rows (true) and columns (predicted)."""
    w = max(6, *(len(s) for s in labels), *(len(str(v)) for row in cm for v in row))
    head = "true\\pred".ljust(w) + " " + " ".join(s.rjust(w) for s in labels)
    rows = [labels[i].ljust(w) + " " + " ".join(str(v).rjust(w) for v in r) for i, r in enumerate(cm)]
    return "\n".join([head, *rows])
