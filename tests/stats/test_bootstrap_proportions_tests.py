"""Bootstrap, Wilson/Clopper-Pearson, McNemar and Holm against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from openmia.stats.bootstrap import bootstrap_ci, jackknife_weights, resample_weights
from openmia.stats.proportions import clopper_pearson, wilson
from openmia.stats.tests import holm, mcnemar_exact


@pytest.mark.parametrize("x, n", [(0, 10), (3, 10), (10, 10), (57, 80)])
def test_wilson_and_clopper_pearson_match_scipy(x, n):
    ref = stats.binomtest(x, n).proportion_ci(method="wilson")
    assert wilson(x, n) == pytest.approx((ref.low, ref.high))
    ref = stats.binomtest(x, n).proportion_ci(method="exact")
    assert clopper_pearson(x, n) == pytest.approx((ref.low, ref.high))


def test_wilson_hand_value():
    # x = 8, n = 10, z = 1.959964: centre (0.8 + z^2/20)/(1 + z^2/10), half z sqrt(0.016 + z^2/400)/(1 + z^2/10)
    z = 1.959963984540054
    d = 1 + z * z / 10
    c = (0.8 + z * z / 20) / d
    h = z * np.sqrt(0.8 * 0.2 / 10 + z * z / 400) / d
    assert wilson(8, 10) == pytest.approx((c - h, c + h))


def test_mean_bca_close_to_scipy():
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, 200)
    ours = bootstrap_ci(lambda w: (w @ x) / w.sum(1), len(x), n_resamples=4000, seed=1)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="BCa", random_state=1).confidence_interval
    assert ours.value == pytest.approx(x.mean())
    assert ours.ci_low == pytest.approx(ref.low, abs=0.02) and ours.ci_high == pytest.approx(ref.high, abs=0.02)


def test_acceleration_uses_jackknife_and_degenerate_ci():
    jw = jackknife_weights(4)
    assert jw.tolist() == [[0, 1, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]
    r = bootstrap_ci(lambda w: np.full(len(w), 0.7), 10, n_resamples=50)
    assert (r.value, r.ci_low, r.ci_high) == (0.7, 0.7, 0.7)


def test_cluster_bootstrap_moves_patients_together():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    w = resample_weights(6, 100, seed=0, groups=groups)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 4]) and np.all(w[:, 4] == w[:, 5])
    # each resample draws 3 patients
    per_patient = w[:, [0, 2, 3]]
    assert np.all(per_patient.sum(1) == 3)
    jw = jackknife_weights(6, groups)
    assert jw.shape == (3, 6) and jw[0].tolist() == [0, 0, 1, 1, 1, 1]


def test_undefined_resamples_are_dropped_and_counted():
    def stat(w):
        out = (w @ np.arange(5.0)) / w.sum(1)
        out[w[:, 0] > 1] = np.nan  # pretend the statistic is undefined there
        return out

    r = bootstrap_ci(stat, 5, n_resamples=300, seed=0)
    assert 0 < r.n_dropped < 300 and np.isfinite(r.ci_low)


def test_mcnemar_exact_matches_binomial_test():
    a = np.array([1] * 10 + [0] * 3 + [1] * 20 + [0] * 5)
    b = np.array([0] * 10 + [1] * 3 + [1] * 20 + [0] * 5)
    r = mcnemar_exact(a, b)
    assert (r["b"], r["c"]) == (10, 3)
    assert r["p_value"] == pytest.approx(stats.binomtest(3, 13, 0.5).pvalue)


def test_holm_hand_example():
    # p = 0.01, 0.04, 0.03 (m = 3): sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.slow
def test_bca_coverage_simulation():
    """Nominal 95% -> observed 93-97% for the mean of a skewed distribution (n = 60)."""
    rng = np.random.default_rng(0)
    hits, reps = 0, 400
    for r in range(reps):
        x = rng.gamma(2.0, 1.0, 60)  # true mean 2
        ci = bootstrap_ci(lambda w: (w @ x) / w.sum(1), len(x), n_resamples=1000, seed=r)
        hits += ci.ci_low <= 2.0 <= ci.ci_high
    assert 0.93 <= hits / reps <= 0.97


def test_lazy_resamples_replay_identically_and_match_full_matrix():
    from openmia.stats.bootstrap import Resamples

    r = Resamples(50, 1000, seed=3, chunk=128)
    a = np.concatenate(list(r.chunks()))
    b = np.concatenate(list(r.chunks()))  # second pass replays the cached counts
    assert a.shape == (1000, 50) and np.array_equal(a, b) and np.all(a.sum(1) == 50)
    # chunking does not change the statistic: weighted mean via chunks == via the full matrix
    x = np.arange(50.0)
    stat = lambda w: (w @ x) / w.sum(1)  # noqa: E731
    res_lazy = bootstrap_ci(stat, 50, weights=r)
    res_full = bootstrap_ci(stat, 50, weights=np.asarray(r))
    assert (res_lazy.ci_low, res_lazy.ci_high) == (res_full.ci_low, res_full.ci_high)


def test_grouped_jackknife_above_limit():
    jw = jackknife_weights(10, max_rows=4)
    assert jw.shape == (4, 10) and np.all((1 - jw).sum(0) == 1)  # every case left out exactly once
    # a large bootstrap still works in bounded memory (no N x N jackknife)
    n = 30_000
    x = np.random.default_rng(0).normal(size=n)
    r = bootstrap_ci(lambda w: (w @ x) / w.sum(1), n, n_resamples=100)
    assert r.ci_low < x.mean() < r.ci_high
