"""Friedman (tie-corrected by default), Nemenyi, Holm / Bonferroni–Dunn against a control.

Every function: a hand-computed value and a cross-check against an independent source named at
the assertion — scipy.stats.friedmanchisquare, R's friedman.test help page, Demšar (JMLR 7, 2006)
Tables 5a/5b/6 and §3.2.2, scikit-posthocs (posthoc_nemenyi_friedman, posthoc_demsar), and
PMCMRplus's formulas (frdAllPairsNemenyiTest, frdManyOneDemsarTest) evaluated here by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from openmia.errors import ConfigError, PredictionError, UnknownNameError
from openmia.stats.multiple import (
    compare_to_control,
    control_from_ranks,
    critical_difference,
    friedman_nemenyi,
    friedman_test,
    nemenyi_from_ranks,
    nemenyi_test,
    nonsignificant_groups,
    q_alpha,
    within_dataset_ranks,
)

# Demšar 2006, Table 6: AUC of C4.5, C4.5+m, C4.5+cf, C4.5+m+cf on 14 data sets, and the ranks he
# printed in parentheses. The ranks are the input of his worked example: in "voting" the two 0.975
# are ranked 2 and 3 (the printed AUCs are rounded), which gives his average ranks 3.143, 2.000,
# 2.893, 1.964; the rounded AUCs tie there and give 2.929 and 1.929 instead.
NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967], [0.628, 0.661, 0.654, 0.657],
    [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931], [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625],
    [0.775, 0.838, 0.866, 0.875], [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970]])
DEMSAR_RANKS = np.array([
    [4, 3, 2, 1], [1, 2, 3, 4], [4, 1, 2, 3], [4, 1, 3, 2], [4, 2, 3, 1], [1, 2.5, 4, 2.5], [3, 2, 4, 1], [2.5, 2.5, 4, 1],
    [4, 3, 2, 1], [2.5, 2.5, 2.5, 2.5], [4, 2.5, 1, 2.5], [3, 2, 4, 1], [4, 1, 2, 3], [3, 1, 4, 2]])

# R: example(friedman.test), Hollander & Wolfe's RoundingTimes (22 players x 3 methods, with ties)
ROUNDING_TIMES = np.array([
    5.40, 5.50, 5.55, 5.85, 5.70, 5.75, 5.20, 5.60, 5.50, 5.55, 5.50, 5.40, 5.90, 5.85, 5.70, 5.45, 5.55, 5.60,
    5.40, 5.40, 5.35, 5.45, 5.50, 5.35, 5.25, 5.15, 5.00, 5.85, 5.80, 5.70, 5.25, 5.20, 5.10, 5.65, 5.55, 5.45,
    5.60, 5.35, 5.45, 5.05, 5.00, 4.95, 5.50, 5.50, 5.40, 5.45, 5.55, 5.50, 5.55, 5.55, 5.35, 5.45, 5.50, 5.55,
    5.50, 5.45, 5.25, 5.65, 5.60, 5.40, 5.70, 5.65, 5.55, 6.30, 6.30, 6.25]).reshape(22, 3)


def _ptukey_inf(q: float, k: int) -> float:
    """P(Q <= q) for the studentized range of k means with infinite df, by quadrature of
    k ∫ φ(z) [Φ(z) − Φ(z − q)]^(k−1) dz — the integral R's ptukey evaluates (Copenhaver & Holland
    1988); written out here so that it does not depend on scipy.stats.studentized_range."""
    z = np.linspace(-9.0, 9.0 + q, 20001)
    phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    cdf_shift = 0.5 * (1 + np.vectorize(math.erf)((z - q) / math.sqrt(2)))
    y = k * phi * (cdf - cdf_shift) ** (k - 1)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(z)))


# ------------------------------------------------------------------------------------------ Friedman


def test_friedman_tie_corrected_by_hand_and_scipy():
    # 3 data sets x 3 models, higher is better; ranks (1,2,3), (1.5,1.5,3), (2,1,3)
    s = np.array([[0.9, 0.8, 0.7], [0.9, 0.9, 0.7], [0.8, 0.9, 0.7]])
    r = friedman_test(s)
    # rank sums 4.5, 4.5, 9: chi2 = 12/(3*3*4) * (4.5² + 4.5² + 9²) - 3*3*4 = 121.5/3 - 36 = 4.5 (uncorrected)
    # one tie of t = 2: C = 1 - (2³ - 2)/(3*3*(3² - 1)) = 1 - 6/72 = 11/12; chi2 = 4.5 * 12/11 = 54/11
    assert list(r["rank_sums"]) == [4.5, 4.5, 9.0]
    assert r["chi2_uncorrected"] == pytest.approx(4.5) and r["tie_factor"] == pytest.approx(11 / 12)
    assert r["tie_correction"] is True and r["chi2"] == pytest.approx(54 / 11)
    # df = 2: the chi-square tail is exp(-x/2)
    assert r["p_value"] == pytest.approx(math.exp(-27 / 11)) and r["p_value_uncorrected"] == pytest.approx(math.exp(-2.25))
    # Iman-Davenport from the corrected chi2: F = 2*(54/11)/(6 - 54/11) = 9 on (2, 4); F(2, d) tail = (1 + 2x/d)^(-d/2)
    assert r["iman_davenport_f"] == pytest.approx(9.0) and (r["df1"], r["df2"]) == (2, 4)
    assert r["iman_davenport_p"] == pytest.approx(5.5**-2)
    ref = stats.friedmanchisquare(*s.T)  # source: SciPy (tie-corrected)
    assert r["chi2"] == pytest.approx(ref.statistic, rel=1e-12) and r["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    # the documented alternative: Demšar's uncorrected statistic on request
    u = friedman_test(s, tie_correction=False)
    assert u["chi2"] == pytest.approx(4.5) and u["p_value"] == pytest.approx(math.exp(-2.25)) and u["tie_correction"] is False
    assert u["chi2_tie_corrected"] == pytest.approx(54 / 11)  # both are always reported


def test_friedman_matches_r_friedman_test_rounding_times():
    # R's ?friedman.test prints for friedman.test(RoundingTimes):
    #   Friedman chi-squared = 11.143, df = 2, p-value = 0.003805   (R applies the tie correction)
    r = friedman_test(ROUNDING_TIMES, higher_is_better=False)
    assert r["chi2"] == pytest.approx(11.143, abs=5e-4) and r["df"] == 2 and r["p_value"] == pytest.approx(0.003805, abs=5e-7)
    assert r["chi2_uncorrected"] < r["chi2"]  # there are ties: uncorrected is smaller
    ref = stats.friedmanchisquare(*ROUNDING_TIMES.T)  # source: SciPy
    assert r["chi2"] == pytest.approx(ref.statistic, rel=1e-12) and r["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    # direction does not change the statistic, only which end is rank 1
    assert friedman_test(ROUNDING_TIMES, higher_is_better=True)["chi2"] == pytest.approx(r["chi2"])


def test_friedman_demsar_worked_example():
    # Demšar 2006 §3.2.2 (uncorrected formula): chi2_F = 9.28, F_F = 3.69 on F(3, 39), critical value 2.85 at 0.05
    r = friedman_test(DEMSAR_RANKS, higher_is_better=False, tie_correction=False)
    assert np.round(r["average_ranks"], 3).tolist() == [3.143, 2.000, 2.893, 1.964]
    assert r["chi2"] == pytest.approx(9.28, abs=5e-3) and r["iman_davenport_f"] == pytest.approx(3.69, abs=5e-3)
    assert (r["df1"], r["df2"]) == (3, 39) and r["iman_davenport_p"] < 0.05
    assert stats.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=5e-3)
    # with the tie correction (iris, lung cancer, mushroom and primary tumor hold ties) as SciPy
    c = friedman_test(DEMSAR_RANKS, higher_is_better=False)
    ref = stats.friedmanchisquare(*DEMSAR_RANKS.T)  # source: SciPy
    assert c["chi2"] == pytest.approx(ref.statistic, rel=1e-12) and c["chi2"] > r["chi2"]
    # the printed (rounded) AUCs: ranks 3.143, 2.000, 2.929, 1.929 (voting ties), tie-corrected as SciPy
    a = friedman_test(DEMSAR_AUC)
    assert np.round(a["average_ranks"], 3).tolist() == [3.143, 2.000, 2.929, 1.929]
    assert a["chi2"] == pytest.approx(stats.friedmanchisquare(*DEMSAR_AUC.T).statistic, rel=1e-12)


def test_friedman_degenerate_and_bad_input():
    # every data set ties every model: C = 0, the tie-corrected statistic is NaN (as SciPy and R)
    r = friedman_test(np.ones((3, 3)))
    assert math.isnan(r["chi2"]) and math.isnan(r["p_value"]) and r["chi2_uncorrected"] == 0.0 and r["p_value_uncorrected"] == 1.0
    # perfect agreement: chi2 = N(k - 1) and the Iman-Davenport F is infinite
    p = friedman_test(np.tile([3.0, 2.0, 1.0], (5, 1)))
    assert p["chi2"] == pytest.approx(10.0) and p["iman_davenport_f"] == math.inf and p["iman_davenport_p"] == 0.0
    with pytest.raises(PredictionError, match=r"row\(s\) \[1\]"):
        friedman_test(np.array([[0.9, 0.8], [0.8, np.nan]]))
    with pytest.raises(PredictionError, match="shape"):
        friedman_test(np.array([[0.9, 0.8, 0.7]]))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(3, 6), st.integers(0, 10_000))
def test_friedman_equals_scipy_with_ties_and_is_invariant(n, k, seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, size=(n, k)).astype(float)  # few levels: many ties
    r = friedman_test(s)
    ref = stats.friedmanchisquare(*s.T)  # source: SciPy (tie-corrected)
    if np.isnan(ref.statistic):
        assert math.isnan(r["chi2"])
    else:
        assert r["chi2"] == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
        assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    # order of data sets and a monotone transform of the scores do not matter; permuting models permutes ranks
    perm_rows, perm_cols = rng.permutation(n), rng.permutation(k)
    r2 = friedman_test(np.exp(s[perm_rows][:, perm_cols]))
    assert r2["chi2_uncorrected"] == pytest.approx(r["chi2_uncorrected"], abs=1e-9)
    assert r2["average_ranks"] == pytest.approx(r["average_ranks"][perm_cols])


# ------------------------------------------------------------------------------------------ Nemenyi


def test_q_alpha_and_cd_match_demsar_tables_5a_5b():
    # Demšar 2006, Table 5(a) (Nemenyi) and 5(b) (Bonferroni-Dunn), k = 2..10
    t5a_05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    t5a_10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]
    t5b_05 = [1.960, 2.241, 2.394, 2.498, 2.576, 2.638, 2.690, 2.724, 2.773]
    t5b_10 = [1.645, 1.960, 2.128, 2.241, 2.326, 2.394, 2.450, 2.498, 2.539]
    for k in range(2, 11):
        assert q_alpha(k, 0.05) == pytest.approx(t5a_05[k - 2], abs=1e-3)
        assert q_alpha(k, 0.10) == pytest.approx(t5a_10[k - 2], abs=1e-3)
        assert q_alpha(k, 0.10, "bonferroni-dunn") == pytest.approx(t5b_10[k - 2], abs=1e-3)
        if k != 9:
            assert q_alpha(k, 0.05, "bonferroni-dunn") == pytest.approx(t5b_05[k - 2], abs=1e-3)
    # Table 5(b) prints 2.724 for k = 9 at 0.05, a misprint: z_{1 - 0.05/16} = 2.734 (its neighbours fit)
    assert q_alpha(9, 0.05, "bonferroni-dunn") == pytest.approx(stats.norm.isf(0.05 / 16)) == pytest.approx(2.734, abs=1e-3)
    # k = 2: the studentized range of two means is sqrt(2)|N(0,1)|, so q_alpha = z_{1 - alpha/2} (1.960)
    assert q_alpha(2, 0.05) == pytest.approx(stats.norm.isf(0.025), abs=1e-9)
    # §3.2.2: CD = 2.569 sqrt(4*5/(6*14)) = 1.25 at 0.05, 2.291 * ... = 1.12 at 0.10, Bonferroni-Dunn 2.394 * ... = 1.16
    assert critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=5e-3)
    assert critical_difference(4, 14, 0.10) == pytest.approx(1.12, abs=5e-3)
    assert critical_difference(4, 14, 0.05, "bonferroni-dunn") == pytest.approx(1.16, abs=1e-2)
    with pytest.raises(ConfigError, match="alpha"):
        q_alpha(4, 1.5)
    with pytest.raises(ConfigError, match="unknown critical-difference method"):
        q_alpha(4, 0.05, "tukey")


def test_nemenyi_two_models_by_hand():
    # k = 2, N = 4, A always better: average ranks 1 and 2, SE = sqrt(2*3/(6*4)) = 0.5, z = 2, q = 2 sqrt(2);
    # P(Q_{2,inf} >= sqrt(2) z) = P(|N(0,1)| >= z) = 2 Phi(-2) = 0.0455003
    r = nemenyi_test(np.array([[0.9, 0.8], [0.7, 0.6], [0.8, 0.5], [0.95, 0.9]]))
    assert r["standard_error"] == pytest.approx(0.5) and r["z"][0, 1] == pytest.approx(2.0)
    assert r["statistic"][0, 1] == pytest.approx(2 * math.sqrt(2))
    assert r["p_values"][0, 1] == pytest.approx(0.0455003, abs=1e-7) and r["p_values"][1, 0] == r["p_values"][0, 1]
    assert r["significant"][0, 1] and not r["significant"][0, 0] and r["p_values"][0, 0] == 1.0


def test_nemenyi_demsar_example_and_independent_implementations():
    avg = friedman_test(DEMSAR_RANKS, higher_is_better=False)["average_ranks"]
    r05 = nemenyi_from_ranks(avg, 14, alpha=0.05)
    r10 = nemenyi_from_ranks(avg, 14, alpha=0.10)
    # Demšar §3.2.2: at 0.05 no pair differs (largest gap 1.179 < CD 1.25); at 0.10 (CD 1.12) C4.5 is worse than
    # C4.5+m and C4.5+m+cf, nothing else differs
    assert not r05["significant"].any()
    sig10 = {(NAMES[i], NAMES[j]) for i in range(4) for j in range(i + 1, 4) if r10["significant"][i, j]}
    assert sig10 == {("C4.5", "C4.5+m"), ("C4.5", "C4.5+m+cf")}
    # significance by p <= alpha is the same as |Delta R| >= CD
    diff = np.abs(avg[:, None] - avg[None, :])
    assert np.array_equal(r10["significant"], (diff >= r10["critical_difference"]) & ~np.eye(4, dtype=bool))
    # PMCMRplus frdAllPairsNemenyiTest by hand: p = 1 - ptukey(sqrt(2)|R_i - R_j|/sqrt(k(k+1)/(6n)), k, Inf)
    for i, j in ((0, 1), (0, 2), (0, 3), (2, 3)):
        q = math.sqrt(2) * abs(avg[i] - avg[j]) / math.sqrt(4 * 5 / (6 * 14))
        assert r05["p_values"][i, j] == pytest.approx(1 - _ptukey_inf(q, 4), abs=1e-6)
    sp = pytest.importorskip("scikit_posthocs")
    # source: scikit-posthocs posthoc_nemenyi_friedman (same block design, its own ranks)
    for data in (DEMSAR_RANKS, DEMSAR_AUC, np.random.default_rng(5).random((9, 6))):
        ref = sp.posthoc_nemenyi_friedman(data).to_numpy()
        ours = nemenyi_test(data)["p_values"]
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_nonsignificant_groups_by_hand():
    # ranks 1, 2, 3, 4 and "significant when |Delta| >= 2": runs {1,2}, {2,3}, {3,4}
    avg = np.array([1.0, 2.0, 3.0, 4.0])
    sig = np.abs(avg[:, None] - avg[None, :]) >= 2
    assert nonsignificant_groups(avg, sig) == [(0, 1), (1, 2), (2, 3)]
    assert nonsignificant_groups(avg[::-1], sig[::-1, ::-1]) == [(3, 2), (2, 1), (1, 0)]  # best first
    assert nonsignificant_groups(avg, np.zeros((4, 4), bool)) == [(0, 1, 2, 3)]
    assert nonsignificant_groups(avg, ~np.eye(4, dtype=bool)) == []
    # Demšar's Figure 1(a) at p = 0.10: {C4.5+m+cf, C4.5+m, C4.5+cf} and {C4.5+cf, C4.5}
    r = friedman_test(DEMSAR_RANKS, higher_is_better=False)
    nem = nemenyi_from_ranks(r["average_ranks"], 14, alpha=0.10)
    groups = nonsignificant_groups(r["average_ranks"], nem["significant"])
    assert [[NAMES[j] for j in g] for g in groups] == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]


# ------------------------------------------------------------------------------------------ control


def test_control_demsar_holm_and_bonferroni_dunn():
    avg = friedman_test(DEMSAR_RANKS, higher_is_better=False)["average_ranks"]
    r = control_from_ranks(avg, 14, 0, alpha=0.05)
    assert [NAMES[j] for j in r["models"]] == ["C4.5+m", "C4.5+cf", "C4.5+m+cf"]
    # Demšar §3.2.2: SE = 0.488; z = (R_0 - R_i)/SE = 2.342, 0.512, 2.416; p = 0.019, 0.607, 0.016
    assert r["standard_error"] == pytest.approx(0.488, abs=5e-4)
    assert -r["z"] == pytest.approx([2.342, 0.512, 2.416], abs=2e-3)
    assert r["p_values"] == pytest.approx([0.019, 0.607, 0.016], abs=2e-3)
    # Holm: 0.016 < 0.05/3 and 0.019 < 0.05/2 are rejected, 0.607 retained. Adjusted by hand:
    # sorted p (0.01572, 0.01917, 0.6084) -> 3*0.01572 = 0.04716, max(0.04716, 2*0.01917) = 0.04716, 0.6084
    p = r["p_values"]
    assert r["p_holm"] == pytest.approx([3 * p[2], p[1], 3 * p[2]]) and list(r["significant_holm"]) == [True, False, True]
    # Bonferroni-Dunn: CD = 2.394 * 0.488 = 1.16; only C4.5+m+cf (1.179 > 1.16); C4.5+m (1.143) just misses
    assert r["critical_difference_bonferroni_dunn"] == pytest.approx(1.16, abs=1e-2)
    assert r["p_bonferroni_dunn"] == pytest.approx(np.minimum(1, 3 * p))
    assert list(r["significant_bonferroni_dunn"]) == [False, False, True]
    assert np.array_equal(r["significant_bonferroni_dunn"], np.abs(r["rank_diff"]) >= r["critical_difference_bonferroni_dunn"])
    # PMCMRplus frdManyOneDemsarTest by hand: z = (R_j - R_1)/sqrt(k(k+1)/(6n)), p = 2 pnorm(|z|, lower = FALSE)
    z = (avg[1:] - avg[0]) / math.sqrt(4 * 5 / (6 * 14))
    assert r["z"] == pytest.approx(z) and r["p_values"] == pytest.approx([math.erfc(abs(v) / math.sqrt(2)) for v in z])


def test_control_matches_scikit_posthocs_demsar():
    sp = pytest.importorskip("scikit_posthocs")
    data = np.random.default_rng(11).random((12, 5))
    for control in (0, 3):
        ours = compare_to_control(data, control, higher_is_better=False)  # scikit-posthocs ranks ascending
        for adjust, key in ((None, "p_values"), ("holm", "p_holm"), ("bonferroni", "p_bonferroni_dunn")):
            # source: scikit-posthocs posthoc_demsar (statsmodels' multipletests for the adjustment)
            ref = sp.posthoc_demsar(data, control=control, p_adjust=adjust, to_matrix=False).to_numpy()
            np.testing.assert_allclose(ours[key], ref, rtol=1e-9, atol=1e-12)
    with pytest.raises(UnknownNameError, match="control index 7"):
        control_from_ranks([1.0, 2.0, 3.0], 5, 7)


def test_friedman_nemenyi_keeps_its_keys_and_is_tie_corrected_by_default():
    r = friedman_nemenyi(DEMSAR_AUC)
    assert r["chi2"] == pytest.approx(stats.friedmanchisquare(*DEMSAR_AUC.T).statistic)  # source: SciPy
    assert r["critical_difference"] == pytest.approx(critical_difference(4, 14)) and r["q_alpha"] == pytest.approx(2.569, abs=1e-3)
    u = friedman_nemenyi(DEMSAR_AUC, tie_correction=False)
    assert u["chi2"] == pytest.approx(r["chi2_uncorrected"]) and u["critical_difference"] == r["critical_difference"]
    assert within_dataset_ranks(DEMSAR_AUC)[9].tolist() == [2.5, 2.5, 2.5, 2.5]  # mushroom: all tied
