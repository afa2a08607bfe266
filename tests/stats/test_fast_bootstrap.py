"""The one-pass bootstrap (stats.bootstrap.bootstrap_many) and its exact Poissonised multinomial
sampler: same resamples -> the same intervals as the reference per-metric bootstrap_ci (index
resampling via numpy's multinomial), to 1e-12; the fast sampler's counts follow Multinomial(n,
uniform) (checked against scipy.stats.binom and the multinomial covariance); the classification
evaluator's point estimates equal the plain metric functions and its intervals equal a
straightforward per-metric BCa bootstrap within Monte-Carlo error; nominal coverage holds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss

from openmia.evaluation.classification import evaluate_classification
from openmia.metrics import classification as M
from openmia.stats.bootstrap import (MAX_JACKKNIFE, LinearStat, Resamples, bootstrap_ci, bootstrap_many,
                                     multinomial_counts, resample_weights)


@pytest.mark.parametrize("n", [7, 60, 3000])
def test_poissonized_counts_are_multinomial(n):
    """Row sums are n; a cell's count is Binomial(n, 1/n) (chi-square against scipy.stats.binom);
    two cells have the multinomial covariance -1/n; n = 7 draws everything uniformly (lam = 0)."""
    rng = np.random.default_rng(1)
    rows = max(2000, 1_000_000 // n)
    c = multinomial_counts(n, rows, rng)
    assert c.dtype == np.uint8 and c.shape == (rows, n) and np.all(c.sum(1, dtype=np.int64) == n)
    vals = c.ravel().astype(int)
    kmax = 5
    obs = np.bincount(np.minimum(vals, kmax), minlength=kmax + 1)
    pmf = ss.binom.pmf(np.arange(kmax), n, 1 / n)
    exp = np.r_[pmf, 1 - pmf.sum()] * vals.size
    assert ss.chisquare(obs, exp).pvalue > 1e-3
    a, b = c[:, 0].astype(float), c[:, 1].astype(float)
    se = np.sqrt(1.0 / rows)  # sd of the sample covariance ~ var(a) sd(b) / sqrt(rows) ~ 1/sqrt(rows)
    assert np.cov(a, b)[0, 1] == pytest.approx(-1 / n, abs=5 * se)
    assert a.var() == pytest.approx((n - 1) / n, abs=5 * np.sqrt(2.0 / rows))


def test_poissonized_resamples_replay_and_expand_clusters():
    groups = np.repeat(np.arange(40), 3)
    r = Resamples(120, 300, seed=5, groups=groups, sampler="poissonized")
    a, b = np.concatenate(list(r.count_chunks())), np.concatenate(list(r.count_chunks()))
    assert np.array_equal(a, b)  # deterministic from the seed
    assert np.all(a.sum(1) == 120) and np.all(a[:, 0::3] == a[:, 1::3])  # a patient's cases move together
    with pytest.raises(ValueError, match="sampler must be one of"):
        Resamples(10, 10, 0, sampler="bernoulli")


def _data(n, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + rng.standard_normal(n))))
    return y, (np.round(s, 2) if ties else s)


@pytest.mark.parametrize("grouped", [False, True])
def test_bootstrap_many_equals_bootstrap_ci_on_the_same_resamples(grouped):
    """LinearStat (closed-form jackknife), a plain statistic and a block statistic, n above the
    2,000-row jackknife limit: identical to one bootstrap_ci per statistic (reference path)."""
    n, B = 2600, 100
    y, s = _data(n, ties=True)
    o = np.argsort(-s, kind="mergesort")
    y, s = y[o], s[o]
    groups = np.arange(n) // 2 if grouped else None
    pred = (s >= 0.5).astype(int)
    F = np.zeros((n, 4))
    F[np.arange(n), 2 * y + pred] = 1
    linear = {"mcc": LinearStat(F, lambda S: M.mcc_cm(S.reshape(-1, 2, 2))),
              "brier": LinearStat(np.column_stack([np.ones(n), (s - y) ** 2]), lambda S: S[:, 1] / S[:, 0])}
    plain = {"auc": lambda w: M.binary_auc(y, s, w)}
    ranks = M.SortedRankStats(y, s, sens_at_spec=(0.9,))
    reps = bootstrap_many({**linear, **plain}, n, block_stats=[ranks], n_resamples=B, seed=3, groups=groups,
                          sampler="multinomial", row_jackknife=MAX_JACKKNIFE)
    W = resample_weights(n, B, 3, groups)
    ref = {"mcc": lambda w: M.mcc_cm(M.confusion(y, pred, 2, w)), "brier": lambda w: (w @ ((s - y) ** 2)) / w.sum(1),
           "auc": plain["auc"], "ap": lambda w: M.binary_ap(y, s, w), "youden_j": lambda w: M.youden(y, s, w)[0],
           "youden_threshold": lambda w: M.youden(y, s, w)[1],
           "sens_at_spec_0.9": lambda w: M.sensitivity_at_specificity(y, s, 0.9, w)}
    for key, stat in ref.items():
        r, f = bootstrap_ci(stat, n, weights=W, groups=groups), reps[key].ci()
        assert (f.value, f.ci_low, f.ci_high) == pytest.approx((r.value, r.ci_low, r.ci_high), rel=1e-12, abs=1e-14), key


def test_fewer_jackknife_rows_barely_move_the_interval():
    """The row jackknife of rank statistics may use fewer blocks at scale; the acceleration changes
    little and the interval far less than its Monte-Carlo error."""
    n = 6000
    y, s = _data(n, seed=2)
    o = np.argsort(-s, kind="mergesort")
    ranks = M.SortedRankStats(y[o], s[o])
    full = bootstrap_many({}, n, block_stats=[ranks], n_resamples=1000, seed=0, row_jackknife=2000)["ap"]
    few = bootstrap_many({}, n, block_stats=[ranks], n_resamples=1000, seed=0, row_jackknife=200)["ap"]
    se = full.boot.std()
    a, b = full.ci(), few.ci()
    assert abs(a.ci_low - b.ci_low) < 0.02 * se and abs(a.ci_high - b.ci_high) < 0.02 * se


@pytest.mark.slow
def test_fast_bca_coverage_simulation():
    """Nominal 95% -> observed 93-97% for the mean of a skewed distribution (n = 60), fast path."""
    rng = np.random.default_rng(0)
    hits, reps = 0, 400
    for r in range(reps):
        x = rng.gamma(2.0, 1.0, 60)  # true mean 2
        stat = LinearStat(np.column_stack([np.ones(60), x]), lambda S: S[:, 1] / S[:, 0])
        ci = bootstrap_many({"mean": stat}, 60, n_resamples=1000, seed=r)["mean"].ci()
        hits += ci.ci_low <= 2.0 <= ci.ci_high
    assert 0.93 <= hits / reps <= 0.97


def mc_tolerance(n_resamples: int) -> float:
    """Tolerance, in bootstrap standard errors, for CI endpoints of two independent bootstraps (fast
    sampler vs numpy's multinomial): an endpoint (the 2.5% or 97.5% quantile of B replicates) has
    Monte-Carlo sd ~ sqrt(q (1 - q) / B) / phi(z_q) = 0.06 SE at B = 2000 for a normal statistic,
    a difference of two sqrt(2) times that; 6 sd (benchmarks/results/evaluation_scale.md measures
    the seed-to-seed spread at scale)."""
    q = 0.025
    sd = np.sqrt(q * (1 - q) / n_resamples) / ss.norm.pdf(ss.norm.ppf(q))
    return 6 * np.sqrt(2) * sd


def test_evaluator_matches_the_straightforward_bootstrap():
    """Point estimates: the plain metric functions (1e-12). Intervals: a per-metric BCa bootstrap
    over the cases in input order with numpy's multinomial resamples (the straightforward way),
    within :func:`mc_tolerance` bootstrap standard errors."""
    n, B = 1200, 1000
    tol = mc_tolerance(B)
    y, s = _data(n, seed=4, ties=True)
    probs = np.column_stack([1 - s, s])
    res = evaluate_classification(s, y, range(n), task_type="binary", n_resamples=B, seed=11)
    pred = (s >= 0.5).astype(int)
    cm = lambda w: M.confusion(y, pred, 2, w)  # noqa: E731
    ref = {"ap": lambda w: M.binary_ap(y, s, w), "balanced_acc": lambda w: M.balanced_accuracy_cm(cm(w)),
           "f1": lambda w: M.f1_per_class(cm(w))[:, 1], "mcc": lambda w: M.mcc_cm(cm(w)),
           "kappa": lambda w: M.kappa_cm(cm(w)), "youden_j": lambda w: M.youden(y, s, w)[0],
           "youden_threshold": lambda w: M.youden(y, s, w)[1], "ece": lambda w: M.ece(y, probs, "binary", w),
           "mce": lambda w: M.mce(y, probs, "binary", w), "brier": lambda w: M.brier_per_case(y, probs, "binary") @ w.T / w.sum(1),
           "nll": lambda w: M.nll_per_case(y, probs, "binary") @ w.T / w.sum(1)}
    W = resample_weights(n, B, 0)
    for key, stat in ref.items():
        row = res.metric(key)
        assert row["ci_method"] == "bca_bootstrap"
        assert row["value"] == pytest.approx(float(stat(np.ones((1, n)))[0]), rel=1e-12, abs=1e-15), key
        se = float(np.std(np.concatenate([stat(w) for w in W.chunks()])))
        r = bootstrap_ci(stat, n, weights=W)
        assert abs(row["ci_low"] - r.ci_low) <= tol * se and abs(row["ci_high"] - r.ci_high) <= tol * se, \
            (key, row["ci_low"], r.ci_low, row["ci_high"], r.ci_high, se)
    # and the decision curve: the net benefit at each threshold equals the plain function
    nb, nb_all = M.net_benefit(y, s, M.DCA_THRESHOLDS)
    got = res.summary["decision_curve"]["rows"]
    assert [r["net_benefit"] for r in got] == pytest.approx(list(nb[0]), rel=1e-12, abs=1e-15)
    assert [r["treat_all"] for r in got] == pytest.approx(list(nb_all[0]), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("weights", ["counts", "fractional"])
def test_sorted_rank_stats_equal_the_plain_roc_functions(weights):
    """Every key of SortedRankStats equals binary_ap / binary_roc_summary (which sort per call), with
    tied scores, integer counts or fractional weights, and rows without a positive or a negative."""
    rng = np.random.default_rng(6)
    n = 400
    y, s = _data(n, seed=6, ties=True)
    o = np.argsort(-s, kind="mergesort")
    y, s = y[o], s[o]
    w = multinomial_counts(n, 200, rng) if weights == "counts" else rng.random((200, n)) * (rng.random((200, n)) < 0.6)
    w[0] = w[0] * y  # no negative case
    w = w.astype(float) if weights == "fractional" else w
    kw = dict(sens_at_spec=(0.9,), spec_at_sens=(0.8, 0.95), pauc_fpr=(0.0, 0.2), dca_thresholds=M.DCA_THRESHOLDS)
    got = M.SortedRankStats(y, s, **kw)(w)
    ref = M.binary_roc_summary(y, s, np.asarray(w, dtype=float), **kw)
    ref["ap"] = M.binary_ap(y, s, np.asarray(w, dtype=float))
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, atol=1e-15, equal_nan=True, err_msg=key)
    assert np.isnan(got["youden_j"][0]) and not np.isnan(got["ap"][0])  # positives only: AP defined, ROC not
    with pytest.raises(ValueError, match="decreasing order"):
        M.SortedRankStats(y, s[::-1])


def test_bootstrap_pass_restores_numpys_huge_page_setting():
    """The pass switches numpy's huge-page madvise off while it runs and restores it after, also
    when a statistic raises (the setting is process-wide)."""
    from openmia.stats import bootstrap as B

    try:
        from numpy._core import multiarray as ma
    except ImportError:
        from numpy.core import multiarray as ma
    switch = getattr(ma, "_set_madvise_hugepage", None)
    if switch is None:
        pytest.skip("this numpy has no madvise switch")
    seen = []

    def stat(w):
        seen.append(switch(False))  # returns the setting in force inside the pass
        return w.sum(axis=1).astype(float)

    before = switch(True)
    try:
        B.bootstrap_many({"s": stat}, 50, n_resamples=20)
        assert seen and not any(seen)
        assert switch(True) is True  # restored to on
        with pytest.raises(ZeroDivisionError):
            B.bootstrap_many({"s": lambda w: 1 / 0}, 50, n_resamples=20)
        assert switch(True) is True
    finally:
        switch(before)
