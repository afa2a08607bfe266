"""Counting metrics (e.g. tumour cells per image): per-case errors and their aggregates.

Per case: ``count_abs_error`` |p - t|, ``count_sq_error`` (p - t)², ``count_rel_error`` |p - t| / t
(NaN when t = 0: a relative error of a zero count is undefined, counted in ``n_nan``).
Aggregates: MAE = mean |p - t|, RMSE = sqrt(mean (p - t)²), mean relative error over t > 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from openmia.errors import PredictionError


def _check(pred, truth, case_ids) -> tuple[np.ndarray, np.ndarray, list[str]]:
    p, t = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    ids = [str(c) for c in case_ids] if case_ids is not None else [f"#{i}" for i in range(len(t))]
    if p.shape != t.shape or p.ndim != 1 or len(ids) != len(t):
        raise PredictionError(f"counts must be 1-D and aligned: {p.shape} predicted, {t.shape} true, {len(ids)} case ids")
    for name, a in (("predicted", p), ("true", t)):
        bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
        if bad.size:
            raise PredictionError(f"{name} count is NaN, infinite or negative for case(s) {', '.join(ids[i] for i in bad[:5])}")
    return p, t, ids


def count_errors(pred: Sequence[float], truth: Sequence[float], *, case_ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per-case errors ``{metric: (N,)}`` for predicted and true counts ``(N,)``."""
    p, t, _ = _check(pred, truth, case_ids)
    d = p - t
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(t > 0, np.abs(d) / np.where(t > 0, t, 1.0), np.nan)
    return {"count_abs_error": np.abs(d), "count_sq_error": d**2, "count_rel_error": rel, "count_error": d}


def counting_metrics(pred: Sequence[float], truth: Sequence[float], *, case_ids: Sequence[str] | None = None) -> dict[str, float]:
    """MAE, RMSE, mean relative error (over true counts > 0), mean signed error (bias) and n_nan."""
    e = count_errors(pred, truth, case_ids=case_ids)
    rel = e["count_rel_error"]
    ok = np.isfinite(rel)
    return {
        "mae": float(e["count_abs_error"].mean()),
        "rmse": float(np.sqrt(e["count_sq_error"].mean())),
        "mre": float(rel[ok].mean()) if ok.any() else float("nan"),
        "bias": float(e["count_error"].mean()),
        "n": int(len(rel)),
        "n_nan_mre": int((~ok).sum()),
    }
