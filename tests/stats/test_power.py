"""Sample-size planning (``openmia plan``, src/openmia/stats/power.py).

Published values checked here (sources named at each test):

* Hanley & McNeil (1982, Radiology 143:29), table of AUC standard errors: A = 0.85 with 40/40 cases
  SE = 0.0437, with 60/60 cases SE = 0.0356 (as encoded in the R package presize's test
  "Example from Ref. Hanley, JA and McNeil, BJ (1982)").
* pROC ``power.roc.test`` (its tests/testthat/test-power.roc.test.R, Obuchowski variance):
  ncases = 41, ncontrols = 72, AUC = 0.73 -> power 0.9897453; AUC = 0.7313686 (aSAH s100b),
  power 0.95, kappa 1.7 -> ncases 29.29764, ncontrols 49.806; sig.level for power 0.95 at 41/72 ->
  0.009238584; detectable AUC at 41/72, power 0.95 -> 0.6961054; power 0.9 with kappa 72/41 ->
  ncases 23.5598674, ncontrols 41.3734257, with kappa 1 -> 29.5697422.
* Obuchowski, Lieber & Wians (2004, Clin Chem 50:1118) Table 4: positives/negatives for AUC 0.6-0.95
  against 0.5, kappa 0.25-4, one-sided alpha 0.05, power 0.9 (minimum 10 per group), as pROC encodes
  it (two cells corrected there by one: 340 and 202).
* Newcombe (1998, Stat Med 17:857) Table II, Wilson score interval without continuity correction:
  81/263 -> 0.2553-0.3662, 15/148 -> 0.0624-0.1605, 0/20 -> 0-0.1611, 1/29 -> 0.0061-0.1718.
* Connor (1987, Biometrics 43:207) McNemar sample size, worked example of the HyLown calculator
  (powerandsamplesize.com, "Compare Paired Proportions: McNemar's Z-test", citing Connor 1987 p. 209)
  p01 = 0.45, p10 = 0.05, alpha = 0.05: two-sided power 0.8 -> n = 23 (22.01 before rounding up);
  one-sided power 0.9 -> 23; and MESS ``power_mcnemar_test`` (paid 0.05, psi 9): power 0.8 -> 22,
  one-sided -> 17 (rounded, as MESS's tests).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq

from openmia.cli.main import main
from openmia.errors import ConfigError, OpenmiaError, PredictionError
from openmia.stats import power as P
from openmia.stats import power_pilot as PP  # the resampling internals

S100B_AUC = 0.7313686  # pROC aSAH data set, roc(outcome, s100b)$auc


# ------------------------------------------------------------------------------------------ AUC


def test_hanley_mcneil_se_matches_published_table():
    """Hanley & McNeil 1982: A = 0.85, nA = nN = 40 -> 0.0437; nA = nN = 60 -> 0.0356."""
    assert float(P.hanley_mcneil_se(0.85, 40, 40)) == pytest.approx(0.0437, abs=5e-5)
    assert float(P.hanley_mcneil_se(0.85, 60, 60)) == pytest.approx(0.0356, abs=5e-5)


@pytest.mark.parametrize("n1,n0", [(10, 10), (7, 31), (50, 20)])
def test_hanley_mcneil_at_chance_is_the_exact_mann_whitney_variance(n1, n0):
    """At A = 0.5, Q1 = Q2 = 1/3, so SE^2 = [1/4 + (n1 + n0 - 2)/12] / (n1 n0) = (n1 + n0 + 1) / (12 n1 n0),
    the exact null variance of U / (n1 n0) (hand derivation)."""
    assert float(P.hanley_mcneil_se(0.5, n1, n0)) ** 2 == pytest.approx((n1 + n0 + 1) / (12 * n1 * n0), rel=1e-12)


def test_auc_half_width_plan_is_the_smallest_n_and_round_trips_presize():
    """presize: prec_auc(0.85, prev 0.5, n = 120) gives a CI whose SE is 0.0356 (60/60 cases); asking for
    that CI's half-width must give back 60 positives and 60 negatives."""
    w = 1.959963984540054 * float(P.hanley_mcneil_se(0.85, 60, 60))
    r = P.plan_auc(0.85, half_width=w * (1 + 1e-9), prevalence=0.5)
    assert (r.n_positive, r.n_negative, r.n) == (60, 60, 120)
    assert r.exact["n_positive"] == pytest.approx(60, rel=1e-6)
    r = P.plan_auc(0.85, half_width=0.05, prevalence=0.3)
    k = 0.7 / 0.3
    assert r.n_negative == math.ceil(k * r.exact["n_positive"] - 1e-9)
    assert float(P.auc_half_width(0.85, r.n_positive, r.n_negative)) <= 0.05
    assert float(P.auc_half_width(0.85, r.n_positive - 1, math.ceil(k * (r.n_positive - 1)))) > 0.05
    assert [row[0] for row in r.rows] == sorted(row[0] for row in r.rows) and r.n in [row[0] for row in r.rows]
    ob = P.plan_auc(0.85, half_width=0.05, prevalence=0.3, variance="obuchowski")
    assert ob.exact["n_positive"] == pytest.approx(1.959963984540054 ** 2 * float(P.obuchowski_variance(0.85, k)) / 0.05 ** 2)


def test_proc_one_curve_power_sample_size_alpha_and_auc():
    """pROC power.roc.test (Obuchowski variance) examples, values from pROC's own tests."""
    assert float(P.auc_power(41, 0.73, null=0.5, kappa=72 / 41, variance="obuchowski")) == pytest.approx(0.9897453, abs=1e-6)
    r = P.plan_auc(S100B_AUC, null=0.5, power=0.95, prevalence=1 / 2.7, variance="obuchowski")
    assert r.exact["n_positive"] == pytest.approx(29.29764, rel=1e-6)
    assert r.exact["n_negative"] == pytest.approx(49.806, rel=1e-5)
    assert (r.n_positive, r.n_negative) == (30, 50)
    r = P.plan_auc(S100B_AUC, null=0.5, power=0.9, prevalence=41 / 113, variance="obuchowski")
    assert r.exact["n_positive"] == pytest.approx(23.5598674, rel=1e-6)
    assert r.exact["n_negative"] == pytest.approx(41.3734257, rel=1e-6)
    r = P.plan_auc(S100B_AUC, null=0.5, power=0.9, prevalence=0.5, variance="obuchowski")
    assert r.exact["n_positive"] == pytest.approx(29.5697422, rel=1e-6)
    # sig.level solved from nd = (z_a sqrt(v0) + z_b sqrt(va))^2 / delta^2
    k = 72 / 41
    v0, va = float(P.obuchowski_variance(0.5, k)), float(P.obuchowski_variance(0.73, k))
    z_a = (math.sqrt(41 * 0.23 ** 2) - stats.norm.ppf(0.95) * math.sqrt(va)) / math.sqrt(v0)
    assert 2 * stats.norm.sf(z_a) == pytest.approx(0.009238584, rel=1e-6)
    auc = brentq(lambda a: float(P.auc_power(41, a, null=0.5, kappa=k, variance="obuchowski")) - 0.95, 0.51, 0.99, xtol=1e-12)
    assert auc == pytest.approx(0.6961054, abs=2e-5)  # pROC solves with uniroot's default tolerance (~1.2e-4)


def test_obuchowski_2004_table_4():
    """Obuchowski et al. 2004 Table 4 (via pROC's test): one-sided alpha 0.05, power 0.9, AUC vs 0.5;
    rows kappa = negatives/positives, columns AUC; at least 10 per group as the table reports."""
    kappas, thetas = [0.25, 0.5, 1, 2, 4], [0.6, 0.7, 0.8, 0.9, 0.95]
    negatives = [[84, 20, 10, 10, 10], [101, 25, 10, 10, 10], [135, 33, 14, 10, 10], [203, 50, 21, 20, 20],
                 [340, 84, 40, 40, 40]]
    positives = [[334, 80, 40, 40, 40], [202, 49, 20, 20, 20], [135, 33, 14, 10, 10], [102, 25, 11, 10, 10],
                 [85, 21, 10, 10, 10]]
    for i, k in enumerate(kappas):
        for j, t in enumerate(thetas):
            r = P.plan_auc(t, null=0.5, power=0.9, prevalence=1 / (1 + k), variance="obuchowski", alternative="one-sided")
            assert (r.n_positive, r.n_negative) == (math.ceil(r.exact["n_positive"]), math.ceil(r.exact["n_negative"]))
            neg = max(10, (10 if r.n_positive < 10 else 0) * k, r.n_negative)
            pos = max(10, (10 if r.n_negative < 10 else 0) / k, r.n_positive)
            assert (pos, neg) == (positives[i][j], negatives[i][j]), (k, t)


def test_two_correlated_aucs():
    """r = 0: Var(A1 - A2) = SE1^2 + SE2^2 (independent; hand formula); the AUC-estimate correlation is 1
    for identical models (r = 1, same AUC), grows with r, and a higher r needs fewer cases."""
    assert P.auc_estimate_correlation(0.8, 0.8, 1.0, 1.5) == pytest.approx(1.0, abs=1e-12)
    rhos = [P.auc_estimate_correlation(0.8, 0.85, r, 1.0) for r in (0.0, 0.3, 0.6, 0.9)]
    assert rhos[0] == 0 and all(a < b for a, b in zip(rhos, rhos[1:]))
    assert P.auc_estimate_correlation(0.8, 0.85, 0.5, 2.0) == pytest.approx(P.auc_estimate_correlation(0.85, 0.8, 0.5, 2.0))
    n1, k = 80, 1.5
    s1, s2 = P.hanley_mcneil_se(0.8, n1, k * n1), P.hanley_mcneil_se(0.86, n1, k * n1)
    z = stats.norm.ppf(0.975)
    hand = stats.norm.cdf((0.06 - z * math.sqrt(2) * s1) / math.sqrt(s1 ** 2 + s2 ** 2))
    assert float(P.auc_power(n1, 0.8, auc_b=0.86, kappa=k)) == pytest.approx(float(hand), rel=1e-12)
    ns = [P.plan_auc(0.8, delta=0.06, correlation=r, prevalence=0.4).n for r in (0.0, 0.4, 0.8)]
    assert ns[0] > ns[1] > ns[2]
    r = P.plan_auc(0.8, delta=0.06, correlation=0.4, prevalence=0.4, power=0.9)
    assert float(P.auc_power(r.n_positive, 0.8, auc_b=0.86, correlation=0.4, kappa=r.n_negative / r.n_positive)) >= 0.9
    assert float(P.auc_power(r.n_positive - 1, 0.8, auc_b=0.86, correlation=0.4, kappa=1.5)) < 0.9


@pytest.mark.parametrize("kwargs,flag", [
    ({"auc": 1.2, "half_width": 0.05}, "--auc"), ({"auc": 0.5, "half_width": 0.05}, "--auc"),
    ({"auc": 0.45, "delta": 0.1}, "--auc"), ({"auc": 0.8, "half_width": 0.0}, "--half-width"),
    ({"auc": 0.8, "half_width": -0.1}, "--half-width"), ({"auc": 0.8}, "--half-width"),
    ({"auc": 0.8, "half_width": 0.05, "delta": 0.05}, "--delta"), ({"auc": 0.9, "delta": 0.15}, "--auc + --delta"),
    ({"auc": 0.8, "delta": 0.05, "correlation": 1.5}, "--correlation"), ({"auc": 0.8, "delta": 0.05, "power": 1.2}, "--power"),
    ({"auc": 0.8, "half_width": 0.05, "prevalence": 0}, "--prevalence"), ({"auc": 0.8, "half_width": 0.05, "alpha": 0.7}, "--alpha"),
    ({"auc": 0.8, "half_width": 0.05, "variance": "delong"}, "--variance"), ({"auc": 0.8, "null": 0.8}, "--null"),
])
def test_auc_bad_input_is_a_config_error_naming_the_option(kwargs, flag):
    with pytest.raises(ConfigError, match=flag.replace("+", r"\+")):
        P.plan_auc(**kwargs)


# ------------------------------------------------------------------------------------- proportions


@pytest.mark.parametrize("x,n,lo,hi", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
                                       (1, 29, 0.0061, 0.1718)])
def test_wilson_half_width_matches_newcombe_1998(x, n, lo, hi):
    """Newcombe 1998 Table II (Wilson, no continuity correction); the evaluator's own Wilson CI agrees."""
    from openmia.stats.proportions import wilson

    assert float(P.wilson_half_width(x / n, n)) == pytest.approx((hi - lo) / 2, abs=1e-4)
    a, b = wilson(x, n)
    assert float(P.wilson_half_width(x / n, n)) == pytest.approx((b - a) / 2, rel=1e-12)


def test_wilson_half_width_by_hand_and_the_plan():
    """p = 0.9, n = 100, z = 1.959964: sqrt(0.09/100 + 3.841459/40000) = sqrt(0.000996036) = 0.0315600,
    times z = 0.0618565, over 1 + 0.0384146 -> 0.0595682."""
    z = 1.959963984540054
    assert float(P.wilson_half_width(0.9, 100)) == pytest.approx(z * math.sqrt(0.0009 + z * z / 40000) / (1 + z * z / 100), rel=1e-14)
    assert float(P.wilson_half_width(0.9, 100)) == pytest.approx(0.0595682, abs=1e-7)
    for p, w in ((0.9, 0.03), (0.5, 0.05), (0.02, 0.01), (0.0, 0.05)):
        exact = P.wilson_n(p, w)
        assert float(P.wilson_half_width(p, exact)) == pytest.approx(w, rel=1e-9)
        r = P.plan_proportion(p, half_width=w)
        assert float(P.wilson_half_width(p, r.n)) <= w < float(P.wilson_half_width(p, r.n - 1))
    r = P.plan_proportion(0.9, half_width=0.03, among="positives", prevalence=0.2)
    assert r.n_positive is not None and r.n == math.ceil(r.n_positive / 0.2)
    with pytest.raises(ConfigError, match="--half-width"):
        P.plan_proportion(0.9, half_width=0)
    with pytest.raises(ConfigError, match="--p "):
        P.plan_proportion(1.1, half_width=0.05)
    with pytest.raises(ConfigError, match="--prevalence"):
        P.plan_proportion(0.9, half_width=0.05, prevalence=0.3)


# ---------------------------------------------------------------------------------------- McNemar


def test_mcnemar_connor_published_examples():
    """Connor 1987 via the HyLown calculator and MESS power_mcnemar_test (module docstring)."""
    assert P.mcnemar_n(0.05, 0.45, 0.8) == pytest.approx(22.0113, abs=1e-4)
    r = P.plan_mcnemar(p10=0.05, p01=0.45, power=0.8)
    assert r.n == 23 and r.exact["n"] == pytest.approx(22.0113, abs=1e-4)
    assert P.plan_mcnemar(p10=0.05, p01=0.45, power=0.9, alternative="one-sided").n == 23
    assert round(P.mcnemar_n(0.05, 0.45, 0.8)) == 22
    assert round(P.mcnemar_n(0.05, 0.45, 0.8, alternative="one-sided")) == 17
    assert float(P.mcnemar_power(r.exact["n"], 0.05, 0.45)) == pytest.approx(0.8, abs=1e-12)
    assert r.notes and "discordant" in r.notes[0]  # only ~12 discordant pairs: said


def test_mcnemar_miettinen_by_hand_and_inputs():
    """Miettinen 1968 (as transcribed in STPLAN's pmpd.f): psi = 0.3, delta = 0.1, alpha 0.05, power 0.8:
    [1.959964 * 0.3 + 0.841621 * sqrt(0.09 - 0.01 * 3.3 / 4)]^2 / (0.3 * 0.01)
    = (0.587989 + 0.841621 * 0.285920)^2 / 0.003 = 0.828628^2 / 0.003 = 228.875.
    Connor for the same: (1.959964 * 0.547723 + 0.841621 * 0.538516)^2 / 0.01 = 233.09."""
    assert P.mcnemar_n(0.2, 0.1, 0.8, method="miettinen") == pytest.approx(228.875, abs=2e-3)
    assert P.mcnemar_n(0.2, 0.1, 0.8, method="connor") == pytest.approx(233.09, abs=1e-2)
    r = P.plan_mcnemar(p10=0.2, p01=0.1, method="miettinen")
    assert r.n == 229 and float(P.mcnemar_power(r.exact["n"], 0.2, 0.1, method="miettinen")) == pytest.approx(0.8)
    # accuracies + discordance -> discordant cells: p10 - p01 = acc_a - acc_b, p10 + p01 = discordant
    r2 = P.plan_mcnemar(acc_a=0.9, acc_b=0.8, discordant=0.3, method="miettinen")
    assert r2.params["p10"] == pytest.approx(0.2) and r2.params["p01"] == pytest.approx(0.1) and r2.n == 229
    with pytest.raises(ConfigError, match="--discordant"):
        P.plan_mcnemar(acc_a=0.9, acc_b=0.8, discordant=0.05)
    with pytest.raises(ConfigError, match="no difference"):
        P.plan_mcnemar(p10=0.1, p01=0.1)
    with pytest.raises(ConfigError, match="--p10"):
        P.plan_mcnemar(p01=0.1)
    with pytest.raises(ConfigError, match="--method"):
        P.plan_mcnemar(p10=0.2, p01=0.1, method="exact")


# ------------------------------------------------------------------------------ per-case metrics


def _long_csv(path, values_by_label, metric="dice"):
    lines = ["case_id,label,metric,value"]
    for label, values in values_by_label.items():
        for i, v in enumerate(values):
            lines.append(f"c{i:03d},{label},{metric},{float(v)!r}")
            lines.append(f"c{i:03d},{label},hd95,{float(10 * (1 - v))!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def pilots(tmp_path):
    rng = np.random.default_rng(3)
    a = np.clip(rng.beta(8, 2, 40), 0, 1)
    b = np.clip(a - rng.normal(0.03, 0.05, 40), 0, 1)
    b[:4] = a[:4]  # exact ties (zero differences), as with two perfect segmentations
    return _long_csv(tmp_path / "a.csv", {"1": a, "2": a}), _long_csv(tmp_path / "b.csv", {"1": b, "2": b}), a, b


def test_vectorised_signed_rank_equals_scipy():
    """Every simulated study's p-value equals scipy.stats.wilcoxon(zero_method='pratt', asymptotic, no
    continuity correction) on the explicit resample — the test openmia compare runs once ties exist."""
    rng = np.random.default_rng(0)
    d = np.round(rng.normal(0.1, 1, 30), 1)
    d[:4] = 0.0
    counts = rng.multinomial(40, np.full(30, 1 / 30), size=25)
    got = PP._SignedRankGroups(d).p_values(counts)
    ref = [stats.wilcoxon(np.repeat(d, c), zero_method="pratt", method="asymptotic", correction=False).pvalue for c in counts]
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    got_t = PP._paired_t_p(counts, d)
    ref_t = [stats.ttest_1samp(np.repeat(d, c), 0.0).pvalue for c in counts]
    np.testing.assert_allclose(got_t, ref_t, rtol=1e-9)


def test_simulated_power_and_half_width_against_closed_forms():
    """A large normal pilot (mean 0.5, sd 1, standardised exactly): the paired-t power equals the
    noncentral-t power, and the mean half-width t s / sqrt(n) equals t sigma c4(n) / sqrt(n),
    within Monte-Carlo error (4 SE)."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal(1500)
    d = 0.5 + (z - z.mean()) / z.std(ddof=0)
    n, R = 30, 3000
    tc = stats.t.ppf(0.975, n - 1)
    nc = 0.5 * math.sqrt(n)
    exact = stats.nct.sf(tc, n - 1, nc) + stats.nct.cdf(-tc, n - 1, nc)
    got = P.simulate_power(d, n, test="t", resamples=R, seed=2)
    assert abs(got - exact) < 4 * math.sqrt(exact * (1 - exact) / R)
    hw = P.simulate_half_width(d, n, resamples=R, seed=2)
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    assert hw.mean() == pytest.approx(tc * c4 / math.sqrt(n), rel=4 * hw.std() / math.sqrt(R) / hw.mean())


def test_simulation_is_seeded_and_independent_of_search_path(pilots):
    a_csv, b_csv, a, b = pilots
    d = a - b
    assert P.simulate_power(d, 37, resamples=500, seed=5) == P.simulate_power(d, 37, resamples=500, seed=5)
    r = P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", label="1", resamples=500, seed=5)
    for n, v in zip(r.curve["n"], r.curve["value"]):
        assert v == P.simulate_power(d, n, resamples=500, seed=5)
    assert r.n is not None and r.curve["value"][r.curve["n"].index(r.n)] >= 0.8
    below = [v for n, v in zip(r.curve["n"], r.curve["value"]) if n == r.n - 1]
    assert not below or below[0] < 0.8  # the search ends next to a failing size
    r2 = P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", label="1", resamples=500, seed=5, ns=[10, 20, 40])
    assert [row[0] for row in r2.rows] == [10, 20, 40] and r2.n == r.n


def test_plan_metric_modes_and_label_all(pilots, tmp_path):
    a_csv, b_csv, a, b = pilots
    r = P.plan_metric(a_csv, metric="dice", half_width=0.02, resamples=400)
    assert r.goal == "half-width" and r.params["labels_averaged"] == ["1", "2"]
    assert any("mean dice over labels 1, 2" in note for note in r.notes)
    k = r.curve["n"].index(r.n)
    assert r.curve["value"][k] <= 0.02
    guess = (1.96 * a.std(ddof=1) / 0.02) ** 2
    assert 0.8 * guess < r.n < 1.25 * guess
    r = P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", label="2", half_width=0.01, resamples=400)
    assert r.params["pilot_mean"] == pytest.approx(float(np.mean(a - b)))
    # --delta shifts the differences: a bigger effect needs fewer cases; the t-test is offered too
    big = P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", label="1", delta=0.06, resamples=400)
    small = P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", label="1", delta=0.02, resamples=400, test="t")
    assert big.n < small.n and big.params["delta"] == 0.06 and small.params["test"] == "t"
    # wide tables (one column per metric) are read too; NaN cases are left out and counted
    wide = tmp_path / "wide.csv"
    wide.write_text("case_id,dice,hd95\n" + "".join(f"w{i},{v!r},1.0\n" for i, v in enumerate(a.tolist())) + "w99,nan,2.0\n")
    r = P.plan_metric(wide, metric="dice", half_width=0.03, resamples=200)
    assert r.params["pilot_cases"] == 40 and any("1 pilot case" in note for note in r.notes)


def test_plan_metric_bad_input_names_file_column_or_option(pilots, tmp_path):
    a_csv, b_csv, a, b = pilots
    with pytest.raises(PredictionError, match="no such file"):
        P.plan_metric(tmp_path / "nope.csv", metric="dice", half_width=0.1)
    with pytest.raises(PredictionError, match=r"metrics in the file: dice, hd95 \(--metric\)"):
        P.plan_metric(a_csv, metric="nsd", half_width=0.1)
    with pytest.raises(PredictionError, match=r"labels: 1, 2 \(--label\)"):
        P.plan_metric(a_csv, metric="dice", label="3", half_width=0.1)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,dice\nx,0.5\n")
    with pytest.raises(PredictionError, match="no case_id column"):
        P.plan_metric(bad, metric="dice", half_width=0.1)
    bad.write_text("case_id,dice\nx,0.5\ny,oops\nz,0.7\n")
    with pytest.raises(PredictionError, match="case 'y'.*'oops' is not a number"):
        P.plan_metric(bad, metric="dice", half_width=0.1)
    bad.write_text("case_id,dice\nx,0.5\nx,0.6\nz,0.7\n")
    with pytest.raises(PredictionError, match="case 'x' is listed twice"):
        P.plan_metric(bad, metric="dice", half_width=0.1)
    bad.write_text("case_id,dice\nx,0.5\ny,0.6\n")
    with pytest.raises(PredictionError, match="at least 3"):
        P.plan_metric(bad, metric="dice", half_width=0.1)
    other = _long_csv(tmp_path / "other.csv", {"1": a[:30]})
    with pytest.raises(PredictionError, match="same cases.*only in"):
        P.plan_metric(a_csv, pilot_b=other, metric="dice", label="1")
    with pytest.raises(ConfigError, match="--pilot-b"):
        P.plan_metric(a_csv, metric="dice", power=0.8)
    with pytest.raises(PredictionError, match="all 0"):
        P.plan_metric(a_csv, pilot_b=a_csv, metric="dice")
    with pytest.raises(ConfigError, match="--half-width"):
        P.plan_metric(a_csv, pilot_b=b_csv, metric="dice", half_width=0.1, power=0.8)
    with pytest.raises(ConfigError, match="--resamples"):
        P.plan_metric(a_csv, metric="dice", half_width=0.1, resamples=10)


def test_plan_metric_on_a_real_evaluator_per_case_csv(tmp_path):
    """The evaluator's own per_case.csv (segmentation, two labels, no 'all' rows; written by the
    evaluator's writer, without the HTML report to keep the test fast) is a valid pilot."""
    from openmia import api
    from openmia.evaluation.io import write_per_case

    rng = np.random.default_rng(0)
    for folder in ("a", "b", "truth"):
        (tmp_path / folder).mkdir()
    for i in range(8):
        t = np.zeros((24, 24), np.uint8)
        t[4:16, 4:16] = 1
        t[18:22, 2:8] = 2
        np.save(tmp_path / "truth" / f"case{i}.npy", t)
        for model, extra in (("a", 0), ("b", 2)):
            p = t.copy()
            k = int(rng.integers(0, 4)) + extra
            p[4:4 + k, 4:12] = 0
            np.save(tmp_path / model / f"case{i}.npy", p)
    for model in ("a", "b"):
        res = api.evaluate("segmentation", tmp_path / model, tmp_path / "truth", None, spacing=(1.0, 1.0), n_resamples=50)
        write_per_case(tmp_path / f"{model}_per_case.csv", res.per_case)
    pa, pb = tmp_path / "a_per_case.csv", tmp_path / "b_per_case.csv"
    assert pa.read_text().startswith("case_id,label,metric,value\n")
    vals = P.read_pilot(pa, "dice", "1")
    assert len(vals) == 8 and all(0 <= v <= 1 for v in vals.values())
    r = P.plan_metric(pa, pilot_b=pb, metric="dice", resamples=300)
    assert r.params["labels_averaged"] == ["1", "2"] and r.params["pilot_mean"] > 0 and r.n is not None


# ------------------------------------------------------------------------------------------ CLI


def test_cli_auc_prints_table_and_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "auc", "--auc", "0.85", "--half-width", "0.05", "--prevalence", "0.3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "positives" in text and "CI half-width" in text and "n = 339 cases (102 positive + 237 negative)" in text
    doc = json.loads((out / "plan.json").read_text())
    assert doc["schema"] == "openmia.plan/1" and doc["n"] == 339 and doc["kind"] == "auc"
    assert doc["table"]["columns"][0] == "n" and len(doc["curve"]["n"]) == len(doc["curve"]["value"]) > 10
    assert (out / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a non-empty --out needs --overwrite; with it the files are replaced
    assert main(["plan", "auc", "--auc", "0.85", "--half-width", "0.04", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["plan", "auc", "--auc", "0.85", "--half-width", "0.04", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "plan.json").read_text())["target"] == 0.04


def test_cli_other_kinds(tmp_path, capsys, pilots):
    a_csv, b_csv, _, _ = pilots
    assert main(["plan", "mcnemar", "--p10", "0.05", "--p01", "0.45"]) == 0
    out = capsys.readouterr().out
    assert "n = 23 pairs" in out and "discordant pairs" in out and "Connor" in out
    assert main(["plan", "proportion", "--p", "0.9", "--half-width", "0.03", "--n", "100,400"]) == 0
    out = capsys.readouterr().out
    assert "n = 388 cases" in out and "\n100 " in out and "\n400 " in out
    assert main(["plan", "metric", "--pilot", str(a_csv), "--pilot-b", str(b_csv), "--metric", "dice", "--label", "1",
                 "--resamples", "300", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "Wilcoxon signed-rank" in out and "power" in out and (tmp_path / "m" / "plan.png").is_file()
    assert json.loads((tmp_path / "m" / "plan.json").read_text())["params"]["test"] == "wilcoxon"


@pytest.mark.parametrize("argv,needle", [
    (["auc", "--auc", "1.2", "--half-width", "0.05"], "--auc must lie strictly between 0.5 and 1"),
    (["auc", "--auc", "0.8", "--half-width", "0"], "--half-width must be > 0"),
    (["auc", "--auc", "0.8"], "exactly one of --half-width"),
    (["proportion", "--p", "0.9", "--half-width", "0.03", "--n", "10,x"], "--n expects whole numbers"),
    (["mcnemar", "--acc-a", "0.9"], "--acc-b"),
    (["metric", "--pilot", "PILOT", "--metric", "nsd", "--half-width", "0.1"], "no rows with metric 'nsd'"),
])
def test_cli_errors_exit_2_naming_the_problem(argv, needle, capsys, pilots):
    argv = [str(pilots[0]) if a == "PILOT" else a for a in argv]
    assert main(["plan", *argv]) == 2
    assert needle in capsys.readouterr().err


def test_plan_is_registered_and_light():
    assert main([]) == 0
    code = ("import sys, openmia.stats.power, openmia.cli.plan_cmd; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert issubclass(ConfigError, OpenmiaError) and issubclass(PredictionError, OpenmiaError)


def test_api_plan_dispatches_and_checks_out_first(tmp_path):
    from openmia import api

    r = api.plan("mcnemar", p10=0.05, p01=0.45)
    assert r.n == 23 and r.to_dict()["schema"] == "openmia.plan/1"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(OpenmiaError, match="overwrite"):
        api.plan("mcnemar", p10=0.05, p01=0.45, out=tmp_path / "full")
    with pytest.raises(ConfigError, match="unknown plan kind"):
        api.plan("dice")


# ------------------------------------------------------------------------------- slow cross-checks


@pytest.mark.slow
def test_pilot_simulation_against_brute_force_monte_carlo():
    """Brute force: draw explicit resamples of a 50-case pilot pair and run, one study at a time,
    openmia compare's own test (openmia.stats.paired.wilcoxon_signed_rank) and scipy's paired t; the
    vectorised count-based powers (about 0.13, 0.38 and 0.64 at n = 20, 60, 120) must agree within
    Monte-Carlo error. Then the same for the half-width (scipy.stats.t.interval on each resample)."""
    from openmia.stats.paired import wilcoxon_signed_rank

    rng = np.random.default_rng(5)
    a = np.clip(rng.beta(8, 2, 50), 0, 1)
    b = np.clip(a - rng.normal(0.006, 0.04, 50), 0, 1)
    b[:5] = a[:5]  # zero differences
    d = a - b
    rng = np.random.default_rng(123)
    for n in (20, 60, 120):
        R = 1500
        idx = rng.integers(0, d.size, size=(R, n))
        p_w = np.array([wilcoxon_signed_rank(a[i], b[i])["p_value"] for i in idx])
        p_t = np.array([stats.ttest_rel(a[i], b[i]).pvalue for i in idx])
        for test, brute in (("wilcoxon", np.mean(p_w < 0.05)), ("t", np.mean(p_t < 0.05))):
            fast = P.simulate_power(d, n, test=test, resamples=6000, seed=9)
            se = math.sqrt(brute * (1 - brute) / R + fast * (1 - fast) / 6000)
            assert 0.1 < fast < 0.9 and abs(fast - brute) < 4 * se, (n, test, fast, brute)
        hw = np.array([np.diff(stats.t.interval(0.95, n - 1, loc=a[i].mean(), scale=stats.sem(a[i])))[0] / 2 for i in idx])
        fast_hw = P.simulate_half_width(a, n, resamples=6000, seed=9)
        assert abs(fast_hw.mean() - hw.mean()) < 4 * math.hypot(hw.std() / math.sqrt(R), fast_hw.std() / math.sqrt(6000))


@pytest.mark.slow
def test_pilot_power_against_monte_carlo_from_the_population():
    """A pilot that represents a known skewed population exactly (4000 quantiles of Gamma(2, 0.05) - 0.06,
    rounded to 0.01 so that ties and zeros occur): the planned n must reach the target power when
    studies are drawn from the population itself and tested with openmia compare's test (brute-force
    MC). (A random pilot carries its own sampling error into the plan, which this test avoids.)"""
    from openmia.stats.paired import wilcoxon_signed_rank

    m = 4000
    pilot = np.round(stats.gamma.ppf((np.arange(m) + 0.5) / m, 2.0, scale=0.05) - 0.06, 2)
    n = PP._smallest_n(lambda k: P.simulate_power(pilot, k, resamples=4000, seed=1) >= 0.8, 30, 5, 5000)
    rng = np.random.default_rng(7)
    R = 2000
    reject = [wilcoxon_signed_rank(np.round(rng.gamma(2.0, 0.05, n) - 0.06, 2), np.zeros(n))["p_value"] < 0.05
              for _ in range(R)]
    brute = float(np.mean(reject))
    assert abs(brute - 0.8) < 4 * math.sqrt(0.16 / R) + 0.01, (n, brute)


@pytest.mark.slow
def test_paired_auc_plan_against_delong_monte_carlo():
    """Binormal scores of two models correlated r in positives and negatives: the AUC-estimate
    correlation and Var(A1 - A2) of the plan agree with simulation, and at the planned n openmia's
    DeLong paired test reaches the planned power (Hanley-McNeil is slightly conservative)."""
    from scipy.special import ndtri

    from openmia.stats.delong import delong_paired_test

    rng = np.random.default_rng(11)
    auc1, auc2, r, prev = 0.80, 0.88, 0.5, 0.4
    plan = P.plan_auc(auc1, delta=auc2 - auc1, correlation=r, prevalence=prev, power=0.8)
    n1, n0 = plan.n_positive, plan.n_negative
    a1, a2 = math.sqrt(2) * ndtri(auc1), math.sqrt(2) * ndtri(auc2)
    chol = np.linalg.cholesky(np.array([[1.0, r], [r, 1.0]]))
    y = np.r_[np.ones(n1), np.zeros(n0)]
    R, p, diffs = 1500, [], []
    for _ in range(R):
        s = rng.standard_normal((n1 + n0, 2)) @ chol.T
        s[:n1] += [a1, a2]
        t = delong_paired_test(y, s[:, 1], s[:, 0])
        p.append(t["p_value"])
        diffs.append(t["diff"])
    power = float(np.mean(np.array(p) < 0.05))
    assert 0.8 - 0.04 < power < 0.8 + 0.10, (n1, n0, power)
    s1, s2 = P.hanley_mcneil_se(auc1, n1, n0), P.hanley_mcneil_se(auc2, n1, n0)
    rho = P.auc_estimate_correlation(auc1, auc2, r, n0 / n1)
    var_plan = s1 ** 2 + s2 ** 2 - 2 * rho * s1 * s2
    assert 0.85 < var_plan / np.var(diffs) < 1.35
