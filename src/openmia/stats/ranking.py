"""Ranking models on the same cases (DESIGN §4.5), as in the Medical Segmentation Decathlon and
challengeR (Wiesenfarth et al., Sci. Rep. 2021).

Schemes, on per-case values ``(N cases, M models)``:

- ``aggregate-then-rank``: mean over cases per model (NaN cases excluded), then rank.
- ``rank-then-aggregate``: rank the models within each case (a NaN value gets the worst rank in
  that case, challengeR's default for a missing value; ``nan_rank="best"`` where NaN means the
  model was right, as a segmentation case whose truth and prediction are both empty), average
  the ranks over cases, then rank the averages. An infinite value is a value, not a missing one:
  PSNR = +inf (a prediction equal to its truth) ranks first in its case.
- ``test-then-rank``: for each model count the models it beats in a one-sided Wilcoxon
  signed-rank test at ``alpha`` (the MSD's significance ranking), rank by that count. A pair with
  a case defined for one model only is tested as ``compare`` does: the one-sided swap-permutation
  test of the difference of the two models' means over their own defined cases.

Rank 1 is best; ties share the average rank. Stability: rank the models on bootstrap resamples of
the cases, report how often each model gets each rank and Kendall's tau between each bootstrap
ranking and the full-data ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from openmia.errors import PredictionError

SCHEMES = ("aggregate-then-rank", "rank-then-aggregate", "test-then-rank")
NAN_RANKS = ("worst", "best")  # rank-then-aggregate: a NaN is a failure (missing) or a success (both empty)


def _check(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 2:
        raise PredictionError(f"ranking needs per-case values of shape (cases, models >= 2), found {v.shape}")
    return v


def _rank(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks (1 = best, ties averaged) of a score vector; NaN scores rank last."""
    s = np.where(np.isfinite(scores), -scores if higher_is_better else scores, np.inf)
    return rankdata(s, method="average")


def aggregate_then_rank(values, *, higher_is_better: bool, aggregate: str = "mean") -> dict[str, np.ndarray]:
    """Aggregate each model over cases (``mean`` or ``median``, NaN excluded), then rank."""
    v = _check(values)
    if aggregate not in ("mean", "median"):
        raise PredictionError(f"aggregate must be mean or median, found {aggregate!r}")
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(v)
        cnt = fin.sum(0)
        if aggregate == "mean":
            scores = np.where(cnt > 0, np.where(fin, v, 0).sum(0) / np.maximum(cnt, 1), np.nan)
        else:
            scores = np.array([np.median(v[fin[:, j], j]) if cnt[j] else np.nan for j in range(v.shape[1])])
    return {"scores": scores, "ranks": _rank(scores, higher_is_better)}


def rank_then_aggregate(values, *, higher_is_better: bool, nan_rank: str = "worst") -> dict[str, np.ndarray]:
    """Rank within each case (NaN = ``nan_rank``: worst or best; ±inf ranked as values), average the
    ranks, rank the averages."""
    v = _check(values)
    # only NaN is missing here: the means exclude PSNR's +inf (evaluate's n_nan), but within a case
    # an exact reconstruction is simply the best
    s = np.where(np.isnan(v), _nan_score(nan_rank), -v if higher_is_better else v)
    per_case = rankdata(s, method="average", axis=1)
    mean_rank = per_case.mean(0)
    return {"scores": mean_rank, "ranks": _rank(mean_rank, higher_is_better=False)}


def _nan_score(nan_rank: str) -> float:
    """The within-case score of a NaN (lower = better rank)."""
    if nan_rank not in NAN_RANKS:
        raise PredictionError(f"nan_rank must be one of {', '.join(NAN_RANKS)}, found {nan_rank!r}")
    return np.inf if nan_rank == "worst" else -np.inf


def test_then_rank(values, *, higher_is_better: bool, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Significance ranking: wins = number of models beaten in a one-sided Wilcoxon test at ``alpha``
    (the swap-permutation test of the two means where a case is defined for one model only)."""
    from scipy.stats import wilcoxon

    from openmia.stats.paired import nanmean_difference_permutation_test

    v = _check(values)
    m = v.shape[1]
    wins = np.zeros(m)
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            if (np.isfinite(v[:, i]) != np.isfinite(v[:, j])).any():
                t = nanmean_difference_permutation_test(v[:, i], v[:, j], n_resamples=1000,
                                                        alternative="greater" if higher_is_better else "less")
                wins[i] += t["p_value"] < alpha
                continue
            ok = np.isfinite(v[:, i]) & np.isfinite(v[:, j])
            d = v[ok, i] - v[ok, j]
            if not higher_is_better:
                d = -d
            if d.size == 0 or not np.any(d != 0):
                continue
            if wilcoxon(d, zero_method="pratt", alternative="greater").pvalue < alpha:
                wins[i] += 1
    return {"scores": wins, "ranks": _rank(wins, higher_is_better=True)}


test_then_rank.__test__ = False  # not a pytest test, despite the name


def rank_models(values, scheme: str, *, higher_is_better: bool, alpha: float = 0.05,
                nan_rank: str = "worst") -> dict[str, np.ndarray]:
    """Dispatch to one of :data:`SCHEMES` (``nan_rank``: rank-then-aggregate's NaN, worst or best)."""
    if scheme == "aggregate-then-rank":
        return aggregate_then_rank(values, higher_is_better=higher_is_better)
    if scheme == "rank-then-aggregate":
        return rank_then_aggregate(values, higher_is_better=higher_is_better, nan_rank=nan_rank)
    if scheme == "test-then-rank":
        return test_then_rank(values, higher_is_better=higher_is_better, alpha=alpha)
    raise PredictionError(f"unknown ranking scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def rank_stability(values, scheme: str, *, higher_is_better: bool, n_resamples: int = 1000, seed: int = 0,
                   alpha: float = 0.05, groups: np.ndarray | None = None,
                   ranker: Callable[[np.ndarray], np.ndarray] | None = None, nan_rank: str = "worst") -> dict[str, Any]:
    """Bootstrap rank distribution and Kendall's tau against the full-data ranking.

    Args:
        values: ``(N, M)`` per-case values (ignored by a custom ``ranker`` except for its shape).
        ranker: optional ``case weights (N,) -> ranks (M,)`` for statistics that are not per-case
            means (e.g. AUC); by default the scheme is applied to the resampled rows.
        groups: patient id per case: resample patients instead of cases.

    Returns:
        ``ranks`` (M,) on all data, ``boot_ranks`` (B, M), ``rank_frequency`` (M, M) — row = model,
        column = rank 1..M, fraction of resamples — ``kendall_tau`` (B,) and its median.
    """
    from scipy.stats import kendalltau

    from openmia.stats.bootstrap import resample_weights

    v = _check(values)
    n, m = v.shape
    if ranker is None:
        def ranker(w: np.ndarray) -> np.ndarray:
            idx = np.repeat(np.arange(n), w.astype(int))
            return rank_models(v[idx], scheme, higher_is_better=higher_is_better, alpha=alpha,
                               nan_rank=nan_rank)["ranks"]

    full = ranker(np.ones(n))
    W = resample_weights(n, n_resamples, seed, groups)
    boot = np.array([ranker(w) for w in W])
    freq = np.zeros((m, m))
    for j in range(m):
        r = np.clip(np.round(boot[:, j]).astype(int), 1, m)  # tied (x.5) ranks are counted at the rounded rank
        freq[j] = np.bincount(r - 1, minlength=m) / len(boot)
    with np.errstate(invalid="ignore"):
        taus = np.array([kendalltau(full, b).statistic if np.ptp(b) > 0 and np.ptp(full) > 0 else np.nan for b in boot])
    return {"scheme": scheme, "ranks": full, "boot_ranks": boot, "rank_frequency": freq, "kendall_tau": taus,
            "kendall_tau_median": float(np.nanmedian(taus)) if np.isfinite(taus).any() else float("nan"),
            "n_resamples": n_resamples, "seed": seed}


def plot_rank_stability(result: dict[str, Any], model_names: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Blob plot: model (x) by bootstrap rank (y), area = frequency; the full-data rank is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from openmia.fileio import save_figure

    freq, full = result["rank_frequency"], result["ranks"]
    m = len(model_names)
    order = np.argsort(full, kind="stable")
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * m, 3.2 + 0.2 * m))
    for x, j in enumerate(order):
        ys = np.arange(1, m + 1)
        ax.scatter(np.full(m, x), ys, s=900 * freq[j], color="tab:blue", alpha=0.6, edgecolors="none")
        ax.scatter([x], [full[j]], marker="x", color="black", s=40, zorder=3)
    ax.set_xticks(range(m), [model_names[j] for j in order], rotation=30, ha="right")
    ax.set_yticks(range(1, m + 1))
    ax.invert_yaxis()
    ax.set_ylabel("rank (bootstrap)")
    tau = result.get("kendall_tau_median", float("nan"))
    ax.set_title(title or f"{result['scheme']}: median Kendall tau {tau:.2f} over {result['n_resamples']} resamples", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = save_figure(fig, Path(path))
    plt.close(fig)
    return out
