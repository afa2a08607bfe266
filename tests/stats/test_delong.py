"""DeLong: fast midrank algorithm vs a direct O(m n) implementation of DeLong et al. (1988)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from openmia.errors import PredictionError
from openmia.stats import delong


def slow_delong(y, scores_list):
    """Direct implementation of DeLong, DeLong & Clarke-Pearson (1988): structural components
    V10, V01 by explicit pair comparison, covariance S = S10/m + S01/n."""
    y = np.asarray(y).astype(bool)
    aucs, v10s, v01s = [], [], []
    for s in scores_list:
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(1))
        v01s.append(psi.mean(0))
    v10, v01 = np.array(v10s), np.array(v01s)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.cov(v10) if len(aucs) > 1 else np.array([[np.var(v10[0], ddof=1)]])
    s01 = np.cov(v01) if len(aucs) > 1 else np.array([[np.var(v01[0], ddof=1)]])
    return np.array(aucs), s10 / m + s01 / n


@pytest.mark.parametrize("seed", range(5))
def test_fast_equals_direct_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.integers(0, 2, n)
    a = np.round(y * 0.5 + rng.random(n), 1)  # rounding creates ties
    b = np.round(y * 0.3 + rng.random(n), 1)
    aucs, cov = slow_delong(y, [a, b])
    auc_a, psi_a = delong.influence(y, a)
    auc_b, psi_b = delong.influence(y, b)
    assert auc_a == pytest.approx(aucs[0]) and auc_a == pytest.approx(roc_auc_score(y, a))
    assert np.sum(psi_a**2) == pytest.approx(cov[0, 0])
    assert np.sum(psi_a * psi_b) == pytest.approx(cov[0, 1])
    t = delong.delong_paired_test(y, a, b)
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert t["se"] == pytest.approx(np.sqrt(var_diff))
    from scipy.stats import norm

    assert t["p_value"] == pytest.approx(2 * norm.sf(abs(aucs[0] - aucs[1]) / np.sqrt(var_diff)))


def test_ci_contains_auc_and_is_clipped():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])  # perfect separation: AUC 1, variance 0
    auc, lo, hi = delong.delong_ci(y, s)
    assert (auc, lo, hi) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(0, 1.5, 200)
    auc, lo, hi = delong.delong_ci(y, s)
    assert 0 <= lo < auc < hi <= 1


def test_identical_models_paired_test_is_null():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 50)
    s = rng.random(50)
    t = delong.delong_paired_test(y, s, s)
    assert t["diff"] == 0 and t["p_value"] == 1.0


def test_ovr_macro_reduces_to_per_class_delong():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    p = rng.dirichlet(np.ones(3), 150)
    macro, psi, aucs, psis = delong.influence_ovr(y, p, "multi-class")
    for k in range(3):
        a, cov = slow_delong((y == k).astype(int), [p[:, k]])
        assert aucs[k] == pytest.approx(a[0]) and np.sum(psis[k] ** 2) == pytest.approx(cov[0, 0])
    assert macro == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))


def test_one_class_only_is_clear_error():
    with pytest.raises(PredictionError, match="AUC is undefined: 0 positive and 4 negative"):
        delong.influence(np.zeros(4), np.arange(4.0))


def test_hanley_mcneil_1982_rating_example():
    """Published worked example: Hanley & McNeil, Radiology 1982, Table 1 (109 CT images rated 1-5).
    They report area 0.893 and SE 0.032 (their exponential approximation); DeLong's SE is the
    exact U-statistic variance, so it agrees to within the approximation (0.0307)."""
    import numpy as np

    from openmia.stats.delong import delong_ci, influence

    neg = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    pos = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    y = np.r_[np.zeros(58), np.ones(51)].astype(int)
    s = np.r_[neg, pos].astype(float)
    auc, psi = influence(y, s)
    assert round(auc, 3) == 0.893
    se = float(np.sqrt((psi**2).sum()))
    assert abs(se - 0.032) < 0.002
    lo, hi = delong_ci(y, s)[1:]
    assert lo < 0.893 < hi
