"""Aggregating per-case metric values into summary rows with confidence intervals.

Shared by every evaluator whose metrics are computed per case (segmentation, counting,
inpainting, ...): the aggregate is the mean over cases with a defined value; NaN cases (e.g. Dice
when both masks are empty) are counted in ``n_nan`` and excluded. The CI is a BCa bootstrap of
that mean over cases, or over patients (cluster bootstrap) when patient ids are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openmia.stats.bootstrap import bootstrap_ci, resample_weights


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def describe(values: np.ndarray) -> dict[str, Any]:
    """n, n_nan, mean, median, q1, q3 of the finite values (``None`` where undefined)."""
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    out: dict[str, Any] = {"n": int(v.size), "n_nan": int(v.size - ok.size)}
    if ok.size == 0:
        return {**out, "mean": None, "median": None, "q1": None, "q3": None}
    q1, med, q3 = np.quantile(ok, [0.25, 0.5, 0.75])
    return {**out, "mean": float(ok.mean()), "median": float(med), "q1": float(q1), "q3": float(q3)}


def weighted_nanmean(values: np.ndarray):
    """``stat(w)`` for :func:`bootstrap_ci`: the mean of the finite values under case weights ``(B, N)``."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    v0 = np.where(ok, v, 0.0)

    def stat(w: np.ndarray) -> np.ndarray:
        den = w @ ok.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (w @ v0) / np.where(den > 0, den, 1.0), np.nan)

    return stat


def summarise_per_case(
    table: dict[tuple[str, str], np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """Summary rows for ``{(metric, label): values (N,)}`` — one row per key, in key order.

    All rows share one set of bootstrap resamples (so CIs of different metrics are consistent).
    """
    if not table:
        return []
    n = len(next(iter(table.values())))
    W = resample_weights(n, n_resamples, seed, groups)
    rows = []
    for (metric, label), values in table.items():
        desc = describe(values)
        if desc["mean"] is None:
            lo = hi = None
        else:
            r = bootstrap_ci(weighted_nanmean(values), n, weights=W, groups=groups, seed=seed, alpha=alpha)
            lo, hi = _num(r.ci_low), _num(r.ci_high)
        rows.append({"metric": metric, "label": label, "value": desc["mean"], "ci_low": lo, "ci_high": hi,
                     "ci_method": "bca_bootstrap" + ("_patients" if groups is not None else ""), **desc})
    return rows
