"""Numeric feature sequences for classification: each example is (time, features), not token ids.

Two file forms (`seqlab classify train --features`):

  long CSV   id,step,f1,f2,...,label    one row per (sequence, time step); a sequence's rows may come
                                        in any order (sorted by step); every other column is a feature
  .npz       x (batch, time, features)  float array; y (batch,) labels (numbers or strings);
             optional lengths (batch,)  the valid steps of each sequence (the rest is padding)

Features are standardised with the training set's per-feature mean and std (the `Scaler` of
data/timeseries.py, saved in the checkpoint); sequences of different lengths are padded and
packed like token sequences (`FeatureBatcher`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.utils.rnn import pad_sequence

from seqlab.data.batching import Batch, BucketBatcher
from seqlab.data.readers import read_table, read_text
from seqlab.data.timeseries import Scaler, parse_numbers
from seqlab.errors import UserError


@dataclass
class FeatureSet:
    """seqs[i] (time_i, features) float; labels[i] or None; ids[i] names sequence i; lines[i] its first
    line in a CSV (None for .npz); columns: the feature names."""

    seqs: list[np.ndarray]
    labels: list[str] | None
    ids: list[str]
    lines: list[int] | None
    columns: list[str]


def _read_npz(path: Path, need_labels: bool) -> FeatureSet:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npz file ({e})") from None
    keys = set(z.files)
    xk = next((k for k in ("x", "X", "features") if k in keys), None)
    yk = next((k for k in ("y", "labels", "label") if k in keys), None)
    if xk is None:
        raise UserError(f"{path}: no array named x (batch, time, features); it holds {sorted(keys)}")
    try:
        x = np.asarray(z[xk], dtype=np.float64)
        y = z[yk] if yk else None
        lengths = z["lengths"] if "lengths" in keys else None
    except ValueError as e:  # object arrays need pickle, which we never load
        raise UserError(f"{path}: {e}; store labels as numbers or fixed-width strings (np.str_)") from None
    if x.ndim != 3:
        raise UserError(f"{path}: x has shape {x.shape}; it must be (batch, time, features)")
    if lengths is None:
        lengths = np.full(len(x), x.shape[1])
    if len(lengths) != len(x) or (lengths < 1).any() or (lengths > x.shape[1]).any():
        raise UserError(f"{path}: lengths must hold one value in 1..{x.shape[1]} per sequence")
    seqs = [x[i, : int(n)] for i, n in enumerate(lengths)]
    bad = [i for i, s in enumerate(seqs) if not np.isfinite(s).all()]
    if bad:
        raise UserError(f"{path}: sequence {bad[0]} has NaN or infinite features; fill them first")
    if y is not None and len(y) != len(x):
        raise UserError(f"{path}: {len(y)} labels for {len(x)} sequences")
    if need_labels and y is None:
        raise UserError(f"{path}: no labels (an array named y); add them")
    labels = None if y is None else [str(v) for v in y.tolist()]
    return FeatureSet(seqs, labels, [str(i) for i in range(len(x))], None,
                      [f"f{j}" for j in range(x.shape[2])])


def _header(path: Path, delimiter: str | None, encoding: str) -> list[str]:
    first = read_text(path, encoding).split("\n", 1)[0]
    delim = delimiter or ("\t" if path.name.removesuffix(".gz").endswith(".tsv") or "\t" in first else ",")
    return [h.strip() for h in next(csv.reader(io.StringIO(first), delimiter=delim))]


def _read_long(path: Path, d: dict, need_labels: bool) -> FeatureSet:
    head = _header(path, d.get("delimiter"), d.get("encoding", "utf-8"))
    id_col, step_col, label_col = d.get("id_col", "id"), d.get("step_col", "step"), d.get("label_col", "label")
    for c in (id_col, step_col):
        if c not in head:
            raise UserError(f"{path}: no column named {c!r} (the columns are {head}); name the sequence id and "
                            "time step columns with --id-col and --step-col")
    has_label = label_col in head
    if need_labels and not has_label:
        raise UserError(f"{path}: no label column {label_col!r}; the columns are {head}")
    feats = [c for c in head if c not in (id_col, step_col, label_col)]
    if d.get("feature_cols"):
        feats = list(d["feature_cols"])
    if not feats:
        raise UserError(f"{path}: no feature columns besides {id_col!r}, {step_col!r} and {label_col!r}")
    table = read_table(path, [id_col, step_col, *feats] + ([label_col] if has_label else []),
                       d.get("delimiter"), True, d.get("encoding", "utf-8"))
    lines = np.array(table.lines)
    steps = parse_numbers(table.column(1), step_col, table.lines, path)
    x = np.stack([parse_numbers(table.column(2 + j), c, table.lines, path) for j, c in enumerate(feats)], 1)
    empty = np.flatnonzero(np.isnan(np.column_stack([steps, x])).any(1))
    if len(empty):
        raise UserError(f"{path}: line {lines[empty[0]]} has an empty step or feature; fill it")
    codes, uniques = pd.factorize(pd.Series(table.column(0)))
    order = np.lexsort((steps, codes))  # by sequence (first appearance), then by step
    c, s = codes[order], steps[order]
    dup = np.flatnonzero((c[1:] == c[:-1]) & (s[1:] == s[:-1]))
    if len(dup):
        a, b = sorted((lines[order[dup[0]]], lines[order[dup[0] + 1]]))
        raise UserError(f"{path}: sequence {uniques[c[dup[0]]]!r} has step {s[dup[0]]:g} twice (lines {a} and "
                        f"{b}); keep one row per step")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    seqs = np.split(x[order], bounds)
    first_line = [int(v.min()) for v in np.split(lines[order], bounds)]
    labels = None
    if has_label:
        lab = np.array(table.column(len(feats) + 2), dtype=object)[order]
        labels = []
        for i, part in enumerate(np.split(np.arange(len(order)), bounds)):
            vals = lab[part]
            if (vals != vals[0]).any():
                j = part[int(np.flatnonzero(vals != vals[0])[0])]
                raise UserError(f"{path}: sequence {uniques[i]!r} has label {vals[0]!r} and {lab[j]!r} (line "
                                f"{lines[order[j]]}); give one label per sequence")
            if not vals[0]:
                raise UserError(f"{path}: sequence {uniques[i]!r} (line {first_line[i]}) has an empty label")
            labels.append(str(vals[0]))
    return FeatureSet(seqs, labels, [str(u) for u in uniques], first_line, feats)


def read_features(path, d: dict, need_labels: bool = True) -> FeatureSet:
    """Read a long-format CSV/TSV or an .npz of feature sequences; `d` holds the column settings
    (id_col, step_col, label_col, delimiter, encoding)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if path.suffix == ".npz":
        return _read_npz(path, need_labels)
    return _read_long(path, d, need_labels)


def read_labelled(path, d: dict) -> tuple[list[np.ndarray], list[str], list[int] | None]:
    """(sequences, labels, first lines): the feature-sequence counterpart of classify's text reader;
    checks that the feature count matches the training data when `d` records it."""
    fs = read_features(path, d)
    check_width(fs, d, path)
    return fs.seqs, fs.labels, fs.lines


def check_width(fs: FeatureSet, d: dict, path) -> None:
    want = d.get("input_dim")
    got = fs.seqs[0].shape[1] if fs.seqs else 0
    if want and got != want:
        raise UserError(f"{path}: sequences have {got} features, but the model was trained on {want}")


def fit_scaler(seqs: list[np.ndarray]) -> dict:
    """Per-feature mean and std over every step of the training sequences, as JSON for config "data"."""
    return Scaler.fit(np.concatenate(seqs, 0)).to_json()


def encode(seqs: list[np.ndarray], scaler: dict) -> list[torch.Tensor]:
    """Standardised float tensors (time, features), one per sequence."""
    sc = Scaler.from_json(scaler)
    return [torch.tensor(sc.transform(s), dtype=torch.float32) for s in seqs]


class FeatureBatcher(BucketBatcher):
    """BucketBatcher for float sequences (time, features): batches hold ids (batch, time, features),
    zero-padded, with lengths for packing."""

    def make_batch(self, idx: torch.Tensor) -> Batch:
        seqs = [self.seqs[i] for i in idx.tolist()]
        x = pad_sequence(seqs, batch_first=True)
        targets = self.targets[idx] if isinstance(self.targets, torch.Tensor) else None
        return Batch(x, self.lengths[idx], targets, idx)
