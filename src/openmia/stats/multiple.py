"""Comparing several models across several data sets (Demšar, JMLR 7:1–30, 2006): the Friedman
test, Nemenyi's all-pairs post-hoc test with its critical difference (CD), and comparisons against
a control model (Holm's step-down procedure, Bonferroni–Dunn), plus the groups a CD diagram joins.

Input: ``scores`` of shape ``(N data sets, k models)``, one value per model and data set (e.g. a
mean Dice). Conventions, stated once here and in docs/evaluation.md ("Rankings across data sets"):

- Ranks are taken within each data set, 1 = best, tied scores share the average rank.
- **Friedman, tie-corrected by default**: χ²_F = [12/(N k (k+1)) Σ_j S_j² − 3N(k+1)] / C with S_j
  the rank sum of model j and C = 1 − Σ_i Σ_ties (t³ − t) / (N k (k² − 1)), exactly as
  ``scipy.stats.friedmanchisquare`` and R's ``friedman.test``. ``tie_correction=False`` gives
  Demšar's eq. (C = 1), which is the same number when no data set has tied scores and smaller
  (more conservative) otherwise. Both statistics are always reported. When every data set ties all
  models, C = 0 and the tie-corrected statistic is NaN, as in SciPy and R.
- Iman–Davenport F_F = (N − 1) χ²_F / (N(k − 1) − χ²_F) on F(k − 1, (k − 1)(N − 1)), computed
  from the χ²_F chosen above.
- Nemenyi: z_ij = |R_i − R_j| / SE with SE = √(k(k+1)/(6N)), p_ij = P(Q_{k,∞} ≥ √2 z_ij) from the
  studentized range distribution (as PMCMRplus ``frdAllPairsNemenyiTest`` and scikit-posthocs
  ``posthoc_nemenyi_friedman``); CD = q_α SE with q_α = Q_{k,∞}(1 − α)/√2 (Demšar's Table 5a).
  Two models differ significantly when p ≤ α, i.e. when their average ranks differ by at least CD.
  No tie correction (none of the references applies one).
- Against a control c: z_j = (R_j − R_c)/SE, two-sided normal p-values (PMCMRplus
  ``frdManyOneDemsarTest``, scikit-posthocs ``posthoc_demsar``); Holm's step-down adjusted
  p-values and Bonferroni–Dunn's min(1, (k − 1) p), the latter equivalent to
  CD_BD = z_{1−α/(2(k−1))} SE (Demšar's Table 5b).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openmia.errors import ConfigError, PredictionError, UnknownNameError


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return adj

CONTROL_METHODS = ("holm", "bonferroni-dunn")


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ConfigError(f"alpha must lie strictly between 0 and 1, found {alpha!r}")
    return a


def _check_scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 2:
        raise PredictionError(f"Friedman needs scores of shape (data sets >= 2, models >= 2), found {s.shape}")
    if not np.all(np.isfinite(s)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(s))[:, 0]})
        raise PredictionError(f"Friedman needs a score for every model on every data set; missing/NaN in data set row(s) {bad}")
    return s


def within_dataset_ranks(scores, *, higher_is_better: bool = True) -> np.ndarray:
    """Ranks ``(N, k)`` of the models within each data set: 1 = best, ties share the average rank."""
    from scipy.stats import rankdata

    s = _check_scores(scores)
    return rankdata(-s if higher_is_better else s, axis=1, method="average")


def _standard_error(k: int, n: int) -> float:
    return float(np.sqrt(k * (k + 1) / (6.0 * n)))


def friedman_test(scores, *, higher_is_better: bool = True, tie_correction: bool = True) -> dict[str, Any]:
    """Friedman test of ``scores`` ``(N data sets, k models)``; tie-corrected by default.

    Returns ``chi2`` and ``p_value`` (tie-corrected unless ``tie_correction=False``), both
    ``chi2_tie_corrected`` and ``chi2_uncorrected`` with their p-values, the tie factor ``C``
    (``tie_factor``), ``df`` = k − 1, the Iman–Davenport ``iman_davenport_f`` with ``df1``,
    ``df2`` and ``iman_davenport_p`` (from the chosen χ²), the within-data-set ``ranks``,
    ``rank_sums`` and ``average_ranks``.
    """
    from scipy.stats import chi2 as chi2_dist
    from scipy.stats import f as f_dist

    ranks = within_dataset_ranks(scores, higher_is_better=higher_is_better)
    n, k = ranks.shape
    sums = ranks.sum(0)
    chi_unc = float(12.0 / (n * k * (k + 1)) * np.sum(sums**2) - 3.0 * n * (k + 1))
    chi_unc = max(chi_unc, 0.0)  # rounding can leave -1e-15 when all average ranks are equal
    ties = 0.0
    for row in ranks:  # tied scores have bit-identical average ranks
        _, t = np.unique(row, return_counts=True)
        ties += float(np.sum(t.astype(float) ** 3 - t))
    c = 1.0 - ties / (n * k * (k * k - 1.0))
    chi_cor = chi_unc / c if c > 1e-12 else float("nan")

    def p_of(x: float) -> float:
        return float(chi2_dist.sf(x, k - 1)) if np.isfinite(x) else float("nan")

    chi = chi_cor if tie_correction else chi_unc
    df1, df2 = k - 1, (k - 1) * (n - 1)
    if not np.isfinite(chi):
        f_id, p_id = float("nan"), float("nan")
    else:
        denom = n * (k - 1) - chi
        f_id = float((n - 1) * chi / denom) if denom > 1e-12 * n * k else float("inf")
        p_id = float(f_dist.sf(f_id, df1, df2)) if np.isfinite(f_id) else 0.0
    return {"n_datasets": n, "n_models": k, "higher_is_better": higher_is_better, "tie_correction": tie_correction,
            "ranks": ranks, "rank_sums": sums, "average_ranks": sums / n,
            "chi2": float(chi), "df": k - 1, "p_value": p_of(chi),
            "chi2_tie_corrected": float(chi_cor), "p_value_tie_corrected": p_of(chi_cor),
            "chi2_uncorrected": chi_unc, "p_value_uncorrected": p_of(chi_unc), "tie_factor": float(c),
            "iman_davenport_f": f_id, "df1": df1, "df2": df2, "iman_davenport_p": p_id}


def q_alpha(k: int, alpha: float = 0.05, method: str = "nemenyi") -> float:
    """Critical value q_α of Demšar's Table 5: ``nemenyi`` (5a) = studentized range quantile
    Q_{k,∞}(1 − α)/√2; ``bonferroni-dunn`` (5b) = z_{1 − α/(2(k − 1))}. ``k`` counts all models
    (the control included)."""
    from scipy.stats import norm, studentized_range

    alpha = _check_alpha(alpha)
    if int(k) != k or k < 2:
        raise ConfigError(f"q_alpha needs k >= 2 models, found {k!r}")
    if method == "nemenyi":
        return float(studentized_range.ppf(1 - alpha, int(k), np.inf) / np.sqrt(2))
    if method == "bonferroni-dunn":
        return float(norm.isf(alpha / (2 * (k - 1))))
    raise ConfigError(f"unknown critical-difference method {method!r}; choose nemenyi or bonferroni-dunn")


def critical_difference(k: int, n: int, alpha: float = 0.05, method: str = "nemenyi") -> float:
    """CD = q_α √(k(k+1)/(6N)) for ``k`` models on ``n`` data sets (Demšar 2006, §3.2.2)."""
    if int(n) != n or n < 1:
        raise ConfigError(f"critical_difference needs n >= 1 data sets, found {n!r}")
    return q_alpha(k, alpha, method) * _standard_error(int(k), int(n))


def nemenyi_from_ranks(average_ranks, n_datasets: int, *, alpha: float = 0.05) -> dict[str, Any]:
    """Nemenyi all-pairs test from average ranks ``(k,)`` over ``n_datasets`` data sets.

    Returns ``z`` (|ΔR|/SE) and ``statistic`` (q = √2 z, PMCMRplus's statistic) and ``p_values`` as
    ``(k, k)`` matrices (diagonal: 0, 0 and 1), ``significant`` (p ≤ α, diagonal False),
    ``q_alpha``, ``critical_difference`` and ``standard_error``.
    """
    from scipy.stats import studentized_range

    alpha = _check_alpha(alpha)
    r = np.asarray(average_ranks, dtype=float)
    k = r.size
    if r.ndim != 1 or k < 2 or not np.all(np.isfinite(r)):
        raise PredictionError(f"Nemenyi needs finite average ranks of >= 2 models, found {r!r}")
    se = _standard_error(k, int(n_datasets))
    z = np.abs(r[:, None] - r[None, :]) / se
    q = np.sqrt(2.0) * z
    p = np.clip(studentized_range.sf(q, k, np.inf), 0.0, 1.0)
    np.fill_diagonal(p, 1.0)
    sig = p <= alpha
    np.fill_diagonal(sig, False)
    qa = q_alpha(k, alpha, "nemenyi")
    return {"average_ranks": r, "n_datasets": int(n_datasets), "n_models": k, "alpha": alpha, "standard_error": se,
            "z": z, "statistic": q, "p_values": p, "significant": sig, "q_alpha": qa, "critical_difference": qa * se}


def nemenyi_test(scores, *, higher_is_better: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """Nemenyi all-pairs test on ``scores`` ``(N, k)``; see :func:`nemenyi_from_ranks`."""
    ranks = within_dataset_ranks(scores, higher_is_better=higher_is_better)
    return nemenyi_from_ranks(ranks.mean(0), ranks.shape[0], alpha=alpha)


def control_from_ranks(average_ranks, n_datasets: int, control: int, *, alpha: float = 0.05) -> dict[str, Any]:
    """Every model against the control model (index ``control``) from average ranks (Demšar §3.2.2).

    Returns, for the k − 1 other models in input order (``models``: their indices), ``rank_diff``
    = R_j − R_c (negative: better than the control), ``z`` = rank_diff / SE, the two-sided
    normal ``p_values``, Holm's step-down ``p_holm`` and Bonferroni–Dunn's ``p_bonferroni_dunn``
    with ``significant_holm`` / ``significant_bonferroni_dunn`` (adjusted p ≤ α), and the
    Bonferroni–Dunn ``q_alpha_bonferroni_dunn`` and ``critical_difference_bonferroni_dunn``.
    """
    from scipy.stats import norm


    alpha = _check_alpha(alpha)
    r = np.asarray(average_ranks, dtype=float)
    k = r.size
    if r.ndim != 1 or k < 2 or not np.all(np.isfinite(r)):
        raise PredictionError(f"comparison with a control needs finite average ranks of >= 2 models, found {r!r}")
    if int(control) != control or not 0 <= control < k:
        raise UnknownNameError(f"control index {control!r} is not one of the {k} models (0..{k - 1})")
    control = int(control)
    se = _standard_error(k, int(n_datasets))
    others = np.array([j for j in range(k) if j != control])
    diff = r[others] - r[control]
    z = diff / se
    p = np.clip(2.0 * norm.sf(np.abs(z)), 0.0, 1.0)
    p_holm = holm(p)
    p_bd = np.minimum(1.0, (k - 1) * p)
    qa = q_alpha(k, alpha, "bonferroni-dunn")
    return {"control": control, "models": others, "n_datasets": int(n_datasets), "n_models": k, "alpha": alpha,
            "standard_error": se, "rank_control": float(r[control]), "ranks": r[others], "rank_diff": diff, "z": z,
            "p_values": p, "p_holm": p_holm, "p_bonferroni_dunn": p_bd, "significant_holm": p_holm <= alpha,
            "significant_bonferroni_dunn": p_bd <= alpha, "q_alpha_bonferroni_dunn": qa,
            "critical_difference_bonferroni_dunn": qa * se}


def compare_to_control(scores, control: int, *, higher_is_better: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """Holm and Bonferroni–Dunn comparisons of every model with the column ``control`` of
    ``scores`` ``(N, k)``; see :func:`control_from_ranks`."""
    ranks = within_dataset_ranks(scores, higher_is_better=higher_is_better)
    return control_from_ranks(ranks.mean(0), ranks.shape[0], control, alpha=alpha)


def nonsignificant_groups(average_ranks, significant) -> list[tuple[int, ...]]:
    """The groups a CD diagram joins with a bar: maximal runs of models, in average-rank order,
    with no significant difference between any two of them (``significant``: ``(k, k)`` bool).
    Returns model indices per group (best rank first); single models are not groups."""
    r = np.asarray(average_ranks, dtype=float)
    sig = np.asarray(significant, dtype=bool)
    order = [int(j) for j in np.argsort(r, kind="stable")]
    k = len(order)
    groups: list[tuple[int, ...]] = []
    last_end = -1
    for a in range(k):
        b = a
        while b + 1 < k and not any(sig[order[i], order[b + 1]] for i in range(a, b + 1)):
            b += 1
        if b > a and b > last_end:  # not inside the previous group
            groups.append(tuple(order[a:b + 1]))
            last_end = b
    return groups


def friedman_nemenyi(scores, *, higher_is_better: bool = True, alpha: float = 0.05,
                     tie_correction: bool = True) -> dict[str, Any]:
    """Friedman test and Nemenyi critical difference for ``scores`` ``(N data sets, k models)``.

    ``chi2``/``p_value`` are tie-corrected by default (as SciPy and R's ``friedman.test``);
    ``tie_correction=False`` gives Demšar's uncorrected χ²_F. Also returns the Iman–Davenport F,
    the Nemenyi ``q_alpha``, ``critical_difference`` and pairwise ``nemenyi_p_values``. Two models
    differ significantly when their average ranks differ by at least CD.
    """
    fr = friedman_test(scores, higher_is_better=higher_is_better, tie_correction=tie_correction)
    nem = nemenyi_from_ranks(fr["average_ranks"], fr["n_datasets"], alpha=alpha)
    return {**{k: v for k, v in fr.items() if k not in ("ranks",)}, "alpha": alpha, "q_alpha": nem["q_alpha"],
            "critical_difference": float(nem["critical_difference"]), "nemenyi_p_values": nem["p_values"],
            "nemenyi_significant": nem["significant"]}
