"""Comparing several models across several data sets: Friedman test + Nemenyi critical difference
(Demšar, JMLR 2006), and the critical-difference diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import chi2, rankdata, studentized_range

from openmia.errors import PredictionError


def friedman_nemenyi(scores, *, higher_is_better: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """Friedman test and Nemenyi critical difference for ``scores`` ``(N data sets, k models)``.

    Ranks within each data set (1 = best, ties averaged), average ranks R_j, then
    chi²_F = 12N / (k(k+1)) · (Σ R_j² − k(k+1)²/4) with k−1 degrees of freedom, the Iman–Davenport
    F statistic, and CD = q_α · sqrt(k(k+1) / (6N)) with q_α = studentized range(1−α; k, ∞) / √2.
    Two models differ significantly when their average ranks differ by more than CD.
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 2:
        raise PredictionError(f"Friedman needs scores of shape (data sets >= 2, models >= 2), found {s.shape}")
    if not np.all(np.isfinite(s)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(s))[:, 0]})
        raise PredictionError(f"Friedman needs a score for every model on every data set; missing/NaN in data set row(s) {bad}")
    n, k = s.shape
    ranks = rankdata(-s if higher_is_better else s, axis=1, method="average")
    avg = ranks.mean(0)
    chi_f = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)
    p = float(chi2.sf(chi_f, k - 1))
    denom = n * (k - 1) - chi_f
    f_id = float((n - 1) * chi_f / denom) if denom > 0 else float("inf")
    q = float(studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))
    cd = q * np.sqrt(k * (k + 1) / (6 * n))
    return {"n_datasets": n, "n_models": k, "average_ranks": avg, "chi2": float(chi_f), "p_value": p,
            "iman_davenport_f": f_id, "q_alpha": q, "critical_difference": float(cd), "alpha": alpha,
            "higher_is_better": higher_is_better}


def plot_critical_difference(result: dict[str, Any], model_names: Sequence[str], path: str | Path) -> Path:
    """Demšar-style diagram: average ranks on an axis, the CD as a bar, cliques of models whose
    ranks differ by less than CD joined by thick lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openmia.fileio import save_figure

    avg, cd, k = np.asarray(result["average_ranks"]), result["critical_difference"], result["n_models"]
    order = np.argsort(avg)
    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.32 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(k + 2), 2)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black")
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.25, color="black")
        ax.text(r, 0.45, str(r), ha="center", fontsize=8)
    ax.hlines(1.4, 1, 1 + cd, color="tab:red", linewidth=2)
    ax.text(1 + cd / 2, 1.6, f"CD = {cd:.2f}", ha="center", fontsize=8, color="tab:red")
    for i, j in enumerate(order):
        y = -(i + 1)
        ax.plot([avg[j], avg[j]], [0, y], color="gray", linewidth=0.8)
        ax.text(k + 0.45 if i >= k / 2 else 0.55, y, f"{model_names[j]} ({avg[j]:.2f})",
                ha="right" if i >= k / 2 else "left", va="center", fontsize=8)
    # cliques: maximal runs of rank-ordered models within CD of each other
    line_y = -0.4
    last_end = -1
    for a in range(k):
        b = a
        while b + 1 < k and avg[order[b + 1]] - avg[order[a]] < cd:
            b += 1
        if b > a and b > last_end:
            ax.hlines(line_y, avg[order[a]] - 0.03, avg[order[b]] + 0.03, color="black", linewidth=3)
            line_y -= 0.3
            last_end = b
    ax.set_title(f"Friedman p = {result['p_value']:.3g}, N = {result['n_datasets']} data sets", fontsize=9)
    out = save_figure(fig, Path(path))
    plt.close(fig)
    return out
