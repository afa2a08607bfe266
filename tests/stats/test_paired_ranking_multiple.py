"""Paired tests, rankings and Friedman/Nemenyi: hand-computed values, SciPy cross-checks, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from openmia.errors import PredictionError
from openmia.evaluation.cd_diagram import plot_critical_difference
from openmia.stats.multiple import friedman_nemenyi
from openmia.stats.paired import nanmean_difference_permutation_test, paired_permutation_test, wilcoxon_signed_rank
from openmia.stats.ranking import (
    aggregate_then_rank,
    plot_rank_stability,
    rank_models,
    rank_stability,
    rank_then_aggregate,
    test_then_rank,
)


def test_wilcoxon_matches_scipy_and_handles_ties_and_nan():
    rng = np.random.default_rng(0)
    a = rng.normal(0.8, 0.05, 40)
    b = a - rng.normal(0.01, 0.02, 40)
    b[:5] = a[:5]  # exact ties (zero differences)
    a[7] = np.nan
    r = wilcoxon_signed_rank(a, b)
    ok = np.isfinite(a)
    ref = stats.wilcoxon(a[ok] - b[ok], zero_method="pratt")  # source: SciPy
    assert r["p_value"] == pytest.approx(ref.pvalue) and r["n"] == 39 and r["n_dropped"] == 1
    same = wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0])
    assert same["p_value"] == 1.0


def test_permutation_exact_hand_computed():
    # d = (1, 2, 3): 8 sign patterns, means 2, 4/3, 2/3, 0, 0, -2/3, -4/3, -2. |mean| >= 2 for 2 of 8
    r = paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert r["estimate"] == pytest.approx(2.0) and r["p_value"] == pytest.approx(2 / 8)
    assert paired_permutation_test([1.0, 2.0, 3.0], [0, 0, 0], alternative="greater")["p_value"] == pytest.approx(1 / 8)


def test_permutation_monte_carlo_close_to_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 1, 30), rng.normal(0, 1, 30)
    ours = paired_permutation_test(a, b, n_resamples=20000, seed=0)["p_value"]
    ref = stats.permutation_test((a - b,), np.mean, permutation_type="samples", n_resamples=20000, random_state=0).pvalue
    assert ours == pytest.approx(ref, abs=0.02)  # source: SciPy's permutation_test (sign flips)


def test_nanmean_difference_permutation_hand_computed():
    # case 1 is defined for b only (a: NaN, b: 0), case 3 ties. a's mean 0.7, b's 0.4333: obs 0.2667.
    # swap patterns of cases (1, 2): none +0.2667, 1 -0.1833, 2 +0.1833, both -0.2667 (x2 for case 3)
    a, b = [np.nan, 0.8, 0.6], [0.0, 0.7, 0.6]
    r = nanmean_difference_permutation_test(a, b)
    assert r["estimate"] == pytest.approx(0.7 - 1.3 / 3) and r["p_value"] == pytest.approx(4 / 8)
    assert r["n"] == 3 and r["n_one_sided"] == 1 and r["method"].startswith("exact")
    assert nanmean_difference_permutation_test(a, b, alternative="greater")["p_value"] == pytest.approx(2 / 8)
    # same NaN pattern in both: the sign-flip test of the mean paired difference
    same = nanmean_difference_permutation_test([1.0, 2.0, 3.0, np.nan], [0.0, 0.0, 0.0, np.nan])
    assert same["p_value"] == pytest.approx(paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])["p_value"])
    with pytest.raises(PredictionError, match="equal length"):
        nanmean_difference_permutation_test([1.0], [1.0, 2.0])


def test_nanmean_difference_permutation_close_to_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.75, 0.1, 40), rng.normal(0.7, 0.1, 40)
    a[:4], b[:2], b[2:4] = np.nan, np.nan, 0.0  # empty truths 0-3: a predicts nothing there; b false positives on 2, 3
    ours = nanmean_difference_permutation_test(a, b, n_resamples=20000, seed=0)
    ref = stats.permutation_test((a, b), lambda x, y: np.nanmean(x) - np.nanmean(y), permutation_type="samples",
                                 vectorized=False, n_resamples=20000, random_state=0)  # source: SciPy (pair swaps)
    assert ours["estimate"] == pytest.approx(ref.statistic) and ours["p_value"] == pytest.approx(ref.pvalue, abs=0.02)
    assert ours["n_one_sided"] == 2


def test_bootstrap_of_the_nanmean_difference_close_to_scipy():
    """The CI compare gives a pair with one-sided cases: the paired BCa bootstrap of
    nanmean(a) - nanmean(b), against SciPy's paired BCa bootstrap of the same statistic."""
    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.stats.bootstrap import paired_bootstrap_diff

    rng = np.random.default_rng(4)
    a, b = rng.normal(0.8, 0.1, 50), rng.normal(0.75, 0.1, 50)
    a[:6], b[:3], b[3:6] = np.nan, np.nan, 0.0
    ours = paired_bootstrap_diff(weighted_nanmean(a), weighted_nanmean(b), len(a), n_resamples=4000, seed=0)
    ref = stats.bootstrap((a, b), lambda x, y: np.nanmean(x) - np.nanmean(y), paired=True, vectorized=False,
                          n_resamples=4000, method="BCa", random_state=0).confidence_interval  # source: SciPy
    assert ours.value == pytest.approx(np.nanmean(a) - np.nanmean(b))
    assert ours.ci_low == pytest.approx(ref.low, abs=0.01) and ours.ci_high == pytest.approx(ref.high, abs=0.01)


def test_rank_then_aggregate_nan_worst_or_best_hand_computed():
    # 3 cases x 2 models; case 0: model A NaN (e.g. both masks empty), model B 0.0 (a false positive)
    v = np.array([[np.nan, 0.0],
                  [0.9, 0.8],
                  [0.7, 0.8]])
    # NaN worst: case ranks A (2, 1, 2), B (1, 2, 1) -> means 5/3, 4/3 -> B first
    worst = rank_then_aggregate(v, higher_is_better=True)
    assert list(worst["scores"]) == pytest.approx([5 / 3, 4 / 3]) and list(worst["ranks"]) == [2, 1]
    # NaN best: A (1, 1, 2), B (2, 2, 1) -> 4/3, 5/3 -> A first
    best = rank_then_aggregate(v, higher_is_better=True, nan_rank="best")
    assert list(best["scores"]) == pytest.approx([4 / 3, 5 / 3]) and list(best["ranks"]) == [1, 2]
    with pytest.raises(PredictionError, match="nan_rank must be one of worst, best"):
        rank_then_aggregate(v, higher_is_better=True, nan_rank="ignore")


def test_test_then_rank_counts_one_sided_cases_with_the_swap_test():
    rng = np.random.default_rng(3)
    good = rng.normal(0.85, 0.02, 30)
    poor = good - 0.01
    good[:10], poor[:10] = np.nan, 0.0  # empty truths: good leaves them empty, poor draws on every one
    # complete pairs alone favour good by 0.01 on 20 cases (Wilcoxon p tiny) — and the 10 zeros must
    # not be dropped: the swap test of the means (0.85 vs 0.56) says the same with more evidence
    r = test_then_rank(np.column_stack([good, poor]), higher_is_better=True)
    assert list(r["scores"]) == [1, 0] and list(r["ranks"]) == [1, 2]
    flipped = test_then_rank(np.column_stack([poor, good]) * -1, higher_is_better=False)
    assert list(flipped["scores"]) == [0, 1]


def test_schemes_hand_computed():
    # 3 cases x 3 models (higher is better)
    v = np.array([[0.9, 0.8, 0.7],
                  [0.6, 0.9, 0.5],
                  [0.8, 0.7, 0.6]])
    # means 0.767, 0.8, 0.6 -> ranks B=1, A=2, C=3
    assert list(aggregate_then_rank(v, higher_is_better=True)["ranks"]) == [2, 1, 3]
    # per-case ranks: (1,2,3), (2,1,3), (1,2,3) -> mean ranks 4/3, 5/3, 3 -> A=1, B=2, C=3
    r = rank_then_aggregate(v, higher_is_better=True)
    assert r["scores"] == pytest.approx([4 / 3, 5 / 3, 3]) and list(r["ranks"]) == [1, 2, 3]
    # lower is better flips it
    assert list(aggregate_then_rank(v, higher_is_better=False)["ranks"]) == [2, 3, 1]
    with pytest.raises(PredictionError, match="unknown ranking scheme"):
        rank_models(v, "vote", higher_is_better=True)


def test_test_then_rank_counts_significant_wins():
    rng = np.random.default_rng(2)
    base = rng.normal(0.7, 0.05, 60)
    v = np.column_stack([base + 0.10, base + 0.05, base, base + rng.normal(0, 1e-4, 60)])
    r = test_then_rank(v, higher_is_better=True)
    # A beats B, C, D; B beats C, D; C and D are indistinguishable
    assert list(r["scores"]) == [3, 2, 0, 0] and list(r["ranks"]) == [1, 2, 3.5, 3.5]


def test_infinite_psnr_ranks_first_in_rank_then_aggregate():
    # PSNR: model A equals the truth on case 0 (+inf); B is better on case 1. Ranks A (1, 2),
    # B (2, 1) -> a tie at 1.5 (treating +inf as missing would have put A last on case 0: 2, 2)
    v = np.array([[np.inf, 30.0], [25.0, 31.0]])
    assert list(rank_then_aggregate(v, higher_is_better=True)["scores"]) == pytest.approx([1.5, 1.5])
    # lower is better (an error): +inf is the worst value; two +inf share the rank
    e = np.array([[np.inf, 1.0, np.inf], [0.5, 1.0, 2.0]])
    assert list(rank_then_aggregate(e, higher_is_better=False)["scores"]) == pytest.approx([(2.5 + 1) / 2, (1 + 2) / 2, (2.5 + 3) / 2])


def test_nan_is_worst_in_rank_then_aggregate():
    v = np.array([[np.nan, 0.5], [0.9, 0.5]])
    assert rank_then_aggregate(v, higher_is_better=True)["scores"] == pytest.approx([1.5, 1.5])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_rankings_invariant_to_case_order_and_monotone_transforms(seed):
    rng = np.random.default_rng(seed)
    v = rng.random((12, 4))
    perm = rng.permutation(12)
    for scheme in ("aggregate-then-rank", "rank-then-aggregate"):
        a = rank_models(v, scheme, higher_is_better=True)["ranks"]
        assert list(a) == list(rank_models(v[perm], scheme, higher_is_better=True)["ranks"])
    # rank-then-aggregate only sees within-case order: invariant to a monotone transform
    r1 = rank_then_aggregate(v, higher_is_better=True)["ranks"]
    assert list(r1) == list(rank_then_aggregate(np.exp(3 * v), higher_is_better=True)["ranks"])


def test_rank_stability_and_figure(tmp_path):
    rng = np.random.default_rng(3)
    v = np.column_stack([rng.normal(m, 0.1, 50) for m in (0.9, 0.85, 0.5)])
    res = rank_stability(v, "aggregate-then-rank", higher_is_better=True, n_resamples=200, seed=0)
    assert list(res["ranks"]) == [1, 2, 3]
    assert res["rank_frequency"].shape == (3, 3) and np.allclose(res["rank_frequency"].sum(1), 1)
    assert res["rank_frequency"][2, 2] == 1.0  # the clearly worst model is always last
    assert 0.3 < res["kendall_tau_median"] <= 1.0
    out = plot_rank_stability(res, ["A", "B", "C"], tmp_path / "stability.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_friedman_hand_computed_and_scipy():
    # 4 data sets x 3 models, ranks per data set: (1,2,3), (1,3,2), (1,2,3), (2,1,3)
    s = np.array([[0.9, 0.8, 0.7], [0.9, 0.7, 0.8], [0.95, 0.9, 0.85], [0.8, 0.85, 0.7]])
    r = friedman_nemenyi(s)
    # average ranks 1.25, 2, 2.75; chi2 = 12*4/(3*4) * (1.5625 + 4 + 7.5625 - 3*16/4) = 4 * 1.125 = 4.5
    assert r["average_ranks"] == pytest.approx([1.25, 2.0, 2.75]) and r["chi2"] == pytest.approx(4.5)
    ref = stats.friedmanchisquare(*s.T)  # source: SciPy (no ties here, so identical)
    assert r["chi2"] == pytest.approx(ref.statistic) and r["p_value"] == pytest.approx(ref.pvalue)
    # Demšar 2006, Table 5: q_0.05 = 2.343 for k = 3; CD = 2.343 * sqrt(3*4/(6*4)) = 1.657
    assert r["q_alpha"] == pytest.approx(2.343, abs=1e-3) and r["critical_difference"] == pytest.approx(1.657, abs=1e-3)
    with pytest.raises(PredictionError, match="row"):
        friedman_nemenyi(np.array([[0.9, np.nan], [0.8, 0.7]]))


def test_critical_difference_plot(tmp_path):
    r = friedman_nemenyi(np.random.default_rng(0).random((8, 4)))
    out = plot_critical_difference(r, ["a", "b", "c", "d"], tmp_path / "cd.png")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
