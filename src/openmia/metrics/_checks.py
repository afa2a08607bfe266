"""Input validation shared by the metric functions."""

from __future__ import annotations

import numpy as np

from openmia.errors import PredictionError

TASK_TYPES = ("binary", "multi-class", "ordinal", "multi-label")


def as_weights(w: np.ndarray | None, n: int) -> np.ndarray:
    """Case weights as ``(B, N)`` float (``None`` = one row of ones)."""
    if w is None:
        return np.ones((1, n))
    w = np.asarray(w, dtype=float)
    return w[None] if w.ndim == 1 else w


def check_classification(probs, y, task_type: str, *, case_ids=None, label_names=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise ``probs`` and ``y``.

    Returns:
        probs ``(N, K)`` float64 (a binary score vector becomes ``[1 - s, s]``) and ``y`` int64
        ``(N,)`` or ``(N, L)``.

    Raises:
        PredictionError naming the offending case(s) and field.
    """
    if task_type not in TASK_TYPES:
        raise PredictionError(f"task_type must be one of {TASK_TYPES}, found {task_type!r}")
    probs = np.asarray(probs, dtype=float)
    y = np.asarray(y)
    ids = list(case_ids) if case_ids is not None else [f"#{i}" for i in range(len(y))]

    def name(idx) -> str:
        idx = list(np.atleast_1d(idx))
        shown = ", ".join(str(ids[i]) for i in idx[:5])
        return shown + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")

    if task_type == "binary" and (probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1)):
        s = probs.reshape(-1)
        probs = np.column_stack([1 - s, s])
    if probs.ndim != 2:
        raise PredictionError(f"probabilities must be a 2D array (cases x classes), found shape {probs.shape}")
    if len(probs) != len(y) or len(ids) != len(y):
        raise PredictionError(f"{len(probs)} prediction rows but {len(y)} truth labels and {len(ids)} case ids")
    if len(y) == 0:
        raise PredictionError("no cases to evaluate")
    bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
    if bad.size:
        raise PredictionError(f"probability is NaN or infinite for case(s) {name(bad)}")
    bad = np.flatnonzero(((probs < 0) | (probs > 1)).any(axis=1))
    if bad.size:
        raise PredictionError(f"probability outside [0, 1] for case(s) {name(bad)}")
    k = probs.shape[1]
    if label_names is not None and len(label_names) != k:
        raise PredictionError(f"{k} probability columns but {len(label_names)} class names {list(label_names)}")
    if task_type == "multi-label":
        if y.ndim != 2 or y.shape[1] != k:
            raise PredictionError(f"multi-label truth must have one 0/1 column per label ({k}), found shape {y.shape}")
        bad = np.flatnonzero(((y != 0) & (y != 1)).any(axis=1))
        if bad.size:
            raise PredictionError(f"multi-label truth must be 0/1; case(s) {name(bad)} have other values")
        return probs, y.astype(np.int64)
    if task_type == "binary" and k != 2:
        raise PredictionError(f"binary task needs one score column or 2 probability columns, found {k}")
    if k < 2:
        raise PredictionError(f"{task_type} task needs at least 2 probability columns, found {k}")
    if y.ndim != 1:
        raise PredictionError(f"truth labels must be a vector of class indices, found shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        yf = y.astype(float)
        if not np.all(np.isfinite(yf)) or not np.all(yf == np.round(yf)):
            bad = np.flatnonzero(~np.isfinite(yf) | (yf != np.round(yf)))
            raise PredictionError(f"truth label is not an integer for case(s) {name(bad)}")
        y = yf.astype(np.int64)
    bad = np.flatnonzero((y < 0) | (y >= k))
    if bad.size:
        raise PredictionError(f"truth label out of range 0..{k - 1} for case(s) {name(bad)}")
    rows = probs.sum(axis=1)
    bad = np.flatnonzero(np.abs(rows - 1) > 1e-3)
    if bad.size:
        raise PredictionError(f"class probabilities must sum to 1 (tolerance 1e-3); case(s) {name(bad)} sum to "
                              f"{', '.join(f'{rows[i]:.4g}' for i in bad[:5])}")
    return probs, y.astype(np.int64)
