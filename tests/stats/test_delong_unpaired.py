"""Unpaired DeLong (two independent test sets), one-sided alternatives, and the DeLong influence
values of the weighted and one-vs-one (Hand & Till) multi-class AUCs.

Cross-checks: a direct O(m n) implementation of DeLong, DeLong & Clarke-Pearson (Biometrics 1988)
and of pROC's ``delong.unpaired.test`` (D referred to Student's t with Welch-Satterthwaite degrees
of freedom, transcribed from pROC's R/delong.R) written here; pROC's published test expectations
(tests/testthat/test-roc.test.R: the statistic and the two-sided, 'greater' and 'less' p-values of
``roc.test`` on its aSAH data, paired and ``paired = FALSE``); scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

from openmia.stats import delong


def direct_delong(y, s):
    """AUC and DeLong's variance S10/m + S01/n from explicit pair comparisons (1988 formulas)."""
    y = np.asarray(y).astype(bool)
    x, z = s[y], s[~y]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    return psi.mean(), np.var(psi.mean(1), ddof=1) / len(x) + np.var(psi.mean(0), ddof=1) / len(z)


def proc_unpaired(ya, sa, yb, sb):
    """pROC's delong.unpaired.test: D = (theta_R - theta_S) / sqrt(S_R + S_S),
    df = (S_R + S_S)^2 / (S_R^2 / (ntot_R - 1) + S_S^2 / (ntot_S - 1))."""
    (a, sr), (b, ss) = direct_delong(ya, sa), direct_delong(yb, sb)
    d = (a - b) / np.sqrt(sr + ss)
    return a - b, np.sqrt(sr + ss), d, (sr + ss) ** 2 / (sr**2 / (len(ya) - 1) + ss**2 / (len(yb) - 1))


def _set(seed, n, shift):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(y * shift + rng.random(n), 1)  # ties


def test_unpaired_equals_direct_delong_on_two_independent_sets():
    ya, sa = _set(0, 70, 0.6)
    yb, sb = _set(1, 90, 0.3)
    diff, se, d, df = proc_unpaired(ya, sa, yb, sb)
    t = delong.delong_unpaired_test(ya, sa, yb, sb)
    assert t["auc_a"] == pytest.approx(roc_auc_score(ya, sa)) and t["auc_b"] == pytest.approx(roc_auc_score(yb, sb))
    assert t["diff"] == pytest.approx(diff) and t["se"] == pytest.approx(se)
    assert t["z"] == pytest.approx(d) and t["df"] == pytest.approx(df)
    assert t["p_value"] == pytest.approx(2 * student_t.sf(abs(d), df))
    q = student_t.ppf(0.975, df)
    assert (t["ci_low"], t["ci_high"]) == pytest.approx((diff - q * se, diff + q * se))
    assert t["alternative"] == "two-sided"
    # swapping the sets flips the sign and keeps the p-value (pROC's 'reversed' test)
    r = delong.delong_unpaired_test(yb, sb, ya, sa)
    assert r["z"] == pytest.approx(-t["z"]) and r["p_value"] == pytest.approx(t["p_value"])


def test_unpaired_one_sided_and_the_same_set_twice():
    ya, sa = _set(2, 80, 0.8)
    yb, sb = _set(3, 80, 0.1)
    g = delong.delong_unpaired_test(ya, sa, yb, sb, alternative="greater")
    l_ = delong.delong_unpaired_test(ya, sa, yb, sb, alternative="less")
    assert g["z"] == l_["z"] > 0 and g["p_value"] == pytest.approx(student_t.sf(g["z"], g["df"]))
    assert g["p_value"] + l_["p_value"] == pytest.approx(1.0)
    q = student_t.ppf(0.95, g["df"])
    assert g["ci_high"] == 1.0 and g["ci_low"] == pytest.approx(g["diff"] - q * g["se"])
    assert l_["ci_low"] == -1.0 and l_["ci_high"] == pytest.approx(l_["diff"] + q * l_["se"])
    # the same data as two "independent" sets: no difference, variance doubled
    t = delong.delong_unpaired_test(ya, sa, ya, sa)
    assert t["diff"] == 0 and t["p_value"] == 1.0
    assert t["se"] == pytest.approx(np.sqrt(2 * direct_delong(ya, sa)[1]))


def test_paired_p_values_match_proc_published_expectations():
    """pROC test-roc.test.R: roc.test(r.wfns, r.s100b) (paired DeLong, normal) on aSAH gives
    Z = 2.20898359144091 with p 0.0271757822291882 (two-sided), 0.0135878911145941 ('greater') and
    0.986412108885406 ('less'). The data are not shipped here, so the check is the statistic ->
    p-value mapping of each alternative (se = 1)."""
    z = 2.20898359144091
    assert delong.z_test(z, 1.0)["p_value"] == pytest.approx(0.0271757822291882, rel=1e-9)
    assert delong.z_test(z, 1.0, alternative="greater")["p_value"] == pytest.approx(0.0135878911145941, rel=1e-9)
    assert delong.z_test(z, 1.0, alternative="less")["p_value"] == pytest.approx(0.986412108885406, rel=1e-9)


def test_unpaired_tails_match_proc_published_expectations():
    """pROC: roc.test(r.wfns, r.s100b, paired = FALSE) -> D = 1.43490640926908, p 0.152825378808796
    (two-sided), 0.076412689404398 ('greater'), 0.923587310595602 ('less'), from Student's t. With
    the df implied by the two-sided p (aSAH has 113 cases, so pROC's df lies in [112, 224]) the
    one-sided p-values must follow; the normal distribution would give 0.1513, not 0.1528."""
    from scipy.optimize import brentq

    d = 1.43490640926908
    df = brentq(lambda v: delong.z_test(d, 1.0, df=v)["p_value"] - 0.152825378808796, 1, 1e6)
    assert 112 <= df <= 224
    assert delong.z_test(d, 1.0, alternative="greater", df=df)["p_value"] == pytest.approx(0.076412689404398, rel=1e-9)
    assert delong.z_test(d, 1.0, alternative="less", df=df)["p_value"] == pytest.approx(0.923587310595602, rel=1e-9)
    assert abs(delong.z_test(d, 1.0)["p_value"] - 0.152825378808796) > 1e-3


def test_paired_test_one_sided_and_unchanged_default():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 100)
    a = y * 0.8 + rng.random(100)
    b = y * 0.4 + rng.random(100)
    two = delong.delong_paired_test(y, a, b)
    assert set(two) == {"auc_a", "auc_b", "diff", "se", "z", "p_value", "ci_low", "ci_high"}  # as before
    g = delong.delong_paired_test(y, a, b, alternative="greater")
    assert g["z"] == pytest.approx(two["z"]) and g["p_value"] == pytest.approx(two["p_value"] / 2)
    assert g["alternative"] == "greater"
    assert delong.delong_paired_test(y, a, b, alternative="less")["p_value"] == pytest.approx(1 - two["p_value"] / 2)
    probs_a, probs_b = np.column_stack([1 - a / 2, a / 2]), np.column_stack([1 - b / 2, b / 2])
    ovr = delong.delong_paired_test_ovr(y, probs_a, probs_b, alternative="greater")
    assert ovr["p_value"] == pytest.approx(g["p_value"])
    with pytest.raises(ValueError, match="alternative must be one of"):
        delong.delong_paired_test(y, a, b, alternative="bigger")


def test_degenerate_se_zero():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9])  # AUC 1, variance 0 in both sets
    t = delong.delong_unpaired_test(y, s, y, s, alternative="greater")
    assert t["p_value"] == 1.0
    assert delong.z_test(0.1, 0.0, alternative="greater")["p_value"] == 0.0
    assert delong.z_test(0.1, 0.0, alternative="less")["p_value"] == 1.0


def test_unpaired_ovr_macro_and_binary_agree():
    ya, sa = _set(5, 60, 0.5)
    yb, sb = _set(6, 75, 0.5)
    pa, pb = np.column_stack([1 - sa / 2, sa / 2]), np.column_stack([1 - sb / 2, sb / 2])
    binary = delong.delong_unpaired_test(ya, sa, yb, sb)
    ovr = delong.delong_unpaired_test_ovr(ya, pa, yb, pb)
    assert ovr["z"] == pytest.approx(binary["z"]) and ovr["p_value"] == pytest.approx(binary["p_value"])
    rng = np.random.default_rng(7)
    y3a, y3b = rng.integers(0, 3, 90), rng.integers(0, 3, 120)
    p3a, p3b = rng.dirichlet(np.ones(3), 90), rng.dirichlet(np.ones(3), 120)
    t = delong.delong_unpaired_test_ovr(y3a, p3a, y3b, p3b)
    ma, psa, _, _ = delong.influence_ovr(y3a, p3a, "multi-class")
    mb, psb, _, _ = delong.influence_ovr(y3b, p3b, "multi-class")
    assert t["diff"] == pytest.approx(roc_auc_score(y3a, p3a, multi_class="ovr") - roc_auc_score(y3b, p3b, multi_class="ovr"))
    assert t["se"] == pytest.approx(np.sqrt((psa**2).sum() + (psb**2).sum()))


def test_weighted_and_ovo_influence():
    rng = np.random.default_rng(8)
    n = 240
    y = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    p = rng.dirichlet(np.ones(3), n)
    p[np.arange(n), y] += 0.3
    p /= p.sum(1, keepdims=True)
    a, psi = delong.influence_weighted(y, p, "multi-class")
    assert a == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    m, psi_o = delong.influence_ovo(y, p)
    assert m == pytest.approx(roc_auc_score(y, p, multi_class="ovo"))
    # two classes: ovo is the binary AUC and its influence DeLong's (direct formulas)
    y2 = (y == 0).astype(int)
    p2 = np.column_stack([1 - p[:, 0], p[:, 0]])
    m2, psi2 = delong.influence_ovo(y2, p2)
    a2, v2 = direct_delong(y2, p[:, 0])
    assert m2 == pytest.approx(a2) and (psi2**2).sum() == pytest.approx(v2)
    # the influence-function SE agrees with the bootstrap SE of M (Monte Carlo, loose)
    from openmia.metrics.classification import auc_ovo

    w = rng.multinomial(n, np.full(n, 1 / n), size=400).astype(float)
    boot_se = np.std(auc_ovo(y, p, w), ddof=1)
    assert np.sqrt((psi_o**2).sum()) == pytest.approx(boot_se, rel=0.2)
