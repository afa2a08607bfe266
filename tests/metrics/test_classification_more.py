"""More classification metrics (issue 22 §2): PPV/NPV, likelihood ratios, Youden's J, operating
points at a fixed sensitivity/specificity, partial AUC (McClish), micro/weighted/one-vs-one AUC,
top-k accuracy, maximum calibration error and decision curves.

Each metric has a hand-computed value and a cross-check against an independent implementation
named in the test: scikit-learn, SciPy, torchmetrics (MCE), dcurves (decision curves; the
Memorial Sloan Kettering Python port of Vickers' ``dca``) or a published worked example. Values
from torchmetrics and dcurves are stored here (neither is an openmia dependency); the live
comparison runs where the package is importable.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from openmia.metrics import classification as M
from openmia.stats.diagnostic import likelihood_ratios
from openmia.stats.proportions import wilson

# the 8-case example of test_classification_metrics.py: pos 0.9 0.8 0.6 0.4, neg 0.7 0.5 0.3 0.1
Y8 = np.array([1, 1, 1, 1, 0, 0, 0, 0])
S8 = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.1])


def _random_binary(seed: int, n: int = 200, decimals: int | None = 2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    return y, (np.round(s, decimals) if decimals is not None else s)  # rounding makes ties


def _boot_rows(n: int, seed: int = 0, rows: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1 / n), size=rows).astype(float)


# ----------------------------------------------------------------------------- PPV / NPV


def test_ppv_npv_hand_computed_and_sklearn():
    # threshold 0.5 on the 8-case example: TP 3, FP 2, TN 2, FN 1 -> PPV 3/5, NPV 2/3
    cm = M.confusion(Y8, (S8 >= 0.5).astype(int), 2)
    assert M.precision_per_class(cm)[0, 1] == pytest.approx(3 / 5)
    assert M.npv_per_class(cm)[0, 1] == pytest.approx(2 / 3)
    pred = (S8 >= 0.5).astype(int)
    assert M.precision_per_class(cm)[0, 1] == pytest.approx(skm.precision_score(Y8, pred))
    assert M.npv_per_class(cm)[0, 1] == pytest.approx(skm.precision_score(Y8, pred, pos_label=0))
    # Wilson interval of PPV = 3/5 against SciPy's binomtest(...).proportion_ci(method="wilson")
    ci = binomtest(3, 5).proportion_ci(method="wilson")
    assert wilson(3, 5) == pytest.approx((ci.low, ci.high))


def test_ppv_npv_per_class_against_sklearn_multiclass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, 300))
    cm = M.confusion(y, pred, 4)
    assert M.precision_per_class(cm)[0] == pytest.approx(skm.precision_score(y, pred, average=None))
    mcm = skm.multilabel_confusion_matrix(y, pred)  # per class [[tn, fp], [fn, tp]]
    npv = mcm[:, 0, 0] / (mcm[:, 0, 0] + mcm[:, 1, 0])
    assert M.npv_per_class(cm)[0] == pytest.approx(npv)
    for row in _boot_rows(300):  # the bootstrap's weighted form = sample_weight
        cmw = M.confusion(y, pred, 4, row)
        assert M.precision_per_class(cmw)[0] == pytest.approx(skm.precision_score(y, pred, average=None, sample_weight=row))


# ----------------------------------------------------------------------------- likelihood ratios


def test_likelihood_ratio_ci_published_calculator_example():
    """Published worked example: the University of Illinois at Chicago 'Diagnostic test calculator'
    (A. Schwartz, araw.mede.uic.edu/cgi-bin/testcalc.pl, CIs by Simel, Samsa & Matchar, J Clin
    Epidemiol 1991) for the table disease+/test+ 25, disease+/test- 1, disease-/test+ 1,
    disease-/test- 83 prints LR+ 81 [11, 568] and LR- 0.04 [0.01, 0.27]."""
    r = likelihood_ratios(tp=25, fp=1, fn=1, tn=83)
    assert round(r["lr_pos"]) == 81 and round(r["lr_pos_low"]) == 11 and round(r["lr_pos_high"]) == 568
    assert round(r["lr_neg"], 2) == 0.04 and round(r["lr_neg_low"], 2) == 0.01 and round(r["lr_neg_high"], 2) == 0.27
    assert not r["lr_pos_corrected"] and not r["lr_neg_corrected"]


def test_likelihood_ratio_ci_hand_computed_liver_scan():
    """Hand computation of Simel's log method on Altman & Bland's liver-scan table (BMJ 1994;
    308: 1552): TP 231, FP 32, FN 27, TN 54."""
    r = likelihood_ratios(tp=231, fp=32, fn=27, tn=54)
    sens, spec = 231 / 258, 54 / 86
    assert r["lr_pos"] == pytest.approx(sens / (1 - spec)) and r["lr_pos"] == pytest.approx(2.40625)
    se = np.sqrt(1 / 231 - 1 / 258 + 1 / 32 - 1 / 86)  # = 0.14169
    z = 1.959963984540054
    assert (r["lr_pos_low"], r["lr_pos_high"]) == pytest.approx((2.40625 * np.exp(-z * se), 2.40625 * np.exp(z * se)))
    assert (r["lr_pos_low"], r["lr_pos_high"]) == pytest.approx((1.8228, 3.1765), abs=1e-4)
    se_n = np.sqrt(1 / 27 - 1 / 258 + 1 / 54 - 1 / 86)
    assert r["lr_neg"] == pytest.approx((1 - sens) / spec)
    assert r["lr_neg_low"] == pytest.approx(r["lr_neg"] * np.exp(-z * se_n))


def test_likelihood_ratio_zero_cell_uses_haldane_for_the_interval():
    # no false positive: LR+ is infinite; its interval adds 0.5 to every cell (10.5, 0.5, 5.5, 20.5)
    r = likelihood_ratios(tp=10, fp=0, fn=5, tn=20)
    assert r["lr_pos"] == np.inf and r["lr_pos_corrected"] and not r["lr_neg_corrected"]
    est = (10.5 / 16) / (0.5 / 21)
    se = np.sqrt(1 / 10.5 - 1 / 16 + 1 / 0.5 - 1 / 21)
    assert r["lr_pos_low"] == pytest.approx(est * np.exp(-1.959963984540054 * se))
    assert r["lr_neg"] == pytest.approx((5 / 15) / 1.0)


def test_likelihood_ratios_match_sklearn_class_likelihood_ratios():
    y, s = _random_binary(2, decimals=None)
    pred = (s >= 0.5).astype(int)
    lr_pos, lr_neg = M.likelihood_ratios_cm(M.confusion(y, pred, 2))
    ref = skm.class_likelihood_ratios(y, pred)
    assert (lr_pos[0], lr_neg[0]) == pytest.approx(ref)
    tp, fp = int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum())
    fn, tn = int(((pred == 0) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    r = likelihood_ratios(tp, fp, fn, tn)
    assert (r["lr_pos"], r["lr_neg"]) == pytest.approx(ref)


# ----------------------------------------------------------------------------- Youden, fixed-rate operating points


def test_youden_and_operating_points_hand_computed():
    # ROC points (threshold: TP, FP) 0.9: 1,0  0.8: 2,0  0.7: 2,1  0.6: 3,1  0.5: 3,2  0.4: 4,2  0.3: 4,3  0.1: 4,4
    # J = TP/4 - FP/4 is 0.5 at 0.8, 0.6 and 0.4 -> the highest threshold, 0.8
    j, t = M.youden(Y8, S8)
    assert j[0] == pytest.approx(0.5) and t[0] == 0.8
    assert M.operating_point(Y8, S8, "youden") == {"threshold": 0.8, "sensitivity": 0.5, "specificity": 1.0}
    # specificity >= 0.75 allows FP <= 1: best TP 3 (threshold 0.6)
    assert M.sensitivity_at_specificity(Y8, S8, 0.75)[0] == pytest.approx(0.75)
    assert M.operating_point(Y8, S8, "sens_at_spec", 0.75)["threshold"] == 0.6
    assert M.sensitivity_at_specificity(Y8, S8, 0.99)[0] == pytest.approx(0.5)  # FP = 0 only
    # sensitivity >= 0.75 needs TP >= 3: fewest FP then is 1 -> specificity 0.75
    assert M.specificity_at_sensitivity(Y8, S8, 0.75)[0] == pytest.approx(0.75)
    assert M.specificity_at_sensitivity(Y8, S8, 1.0)[0] == pytest.approx(0.5)
    # one class only: undefined
    assert np.isnan(M.youden(np.ones(4, int), np.arange(4.0))[0][0])


@pytest.mark.parametrize("seed", range(3))
def test_youden_and_operating_points_against_sklearn_roc_curve(seed):
    y, s = _random_binary(seed)  # with ties
    for w in [None, *_boot_rows(len(y), seed)]:
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False, sample_weight=w)
        i = int(np.argmax(tpr - fpr))
        j, t = M.youden(y, s, w)
        assert j[0] == pytest.approx((tpr - fpr)[i]) and t[0] == thr[i]
        for target in (0.8, 0.9, 0.95):
            assert M.sensitivity_at_specificity(y, s, target, w)[0] == pytest.approx(tpr[1 - fpr >= target - 1e-9].max())
            assert M.specificity_at_sensitivity(y, s, target, w)[0] == pytest.approx((1 - fpr[tpr >= target - 1e-9]).max())


def test_rate_targets_reached_exactly_count_despite_floating_point():
    # 10 negatives: specificity 0.9 is 9/10, which is not 1 - 0.1 in floating point
    y = np.r_[np.ones(10, int), np.zeros(10, int)]
    s = np.r_[np.linspace(0.5, 0.95, 10), np.linspace(0.0, 0.45, 9), 0.9]  # one negative above most positives
    assert M.sensitivity_at_specificity(y, s, 0.9)[0] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- partial AUC


def test_partial_auc_hand_computed():
    # ROC polyline of the 8-case example: (0,.25) (0,.5) (.25,.5) (.25,.75) (.5,.75) (.5,1) (.75,1) (1,1)
    # FPR 0-0.25 at TPR .5 -> .125; 0.25-0.5 at .75 -> .1875: pAUC[0, .5] = .3125;
    # McClish: min = .5^2/2 = .125, max = .5 -> (1 + (.3125 - .125)/.375)/2 = .75
    assert M.partial_auc(Y8, S8, (0, 0.5), mcclish_correct=False)[0] == pytest.approx(0.3125)
    assert M.partial_auc(Y8, S8, (0, 0.5))[0] == pytest.approx(0.75)
    # FPR 0.1-0.3: .15 * .5 + .05 * .75 = .1125; min = (.09 - .01)/2 = .04, max = .2 -> (1 + .0725/.16)/2
    assert M.partial_auc(Y8, S8, (0.1, 0.3), mcclish_correct=False)[0] == pytest.approx(0.1125)
    assert M.partial_auc(Y8, S8, (0.1, 0.3))[0] == pytest.approx(0.7265625)
    # the whole range is the AUC (13/16); a tie is a diagonal segment (chance): standardised 0.5
    assert M.partial_auc(Y8, S8, (0, 1))[0] == pytest.approx(13 / 16)
    assert M.partial_auc(np.array([1, 0]), np.array([0.5, 0.5]), (0, 0.3))[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_partial_auc_equals_sklearn_max_fpr(seed):
    """scikit-learn's ``roc_auc_score(max_fpr=m)`` is the McClish-standardised pAUC over FPR [0, m]."""
    y, s = _random_binary(seed)
    for m in (0.05, 0.1, 0.2, 0.5):
        assert M.partial_auc(y, s, (0, m))[0] == pytest.approx(skm.roc_auc_score(y, s, max_fpr=m))
        for w in _boot_rows(len(y), seed, rows=2):
            assert M.partial_auc(y, s, (0, m), w)[0] == pytest.approx(skm.roc_auc_score(y, s, max_fpr=m, sample_weight=w))

    def raw(m):  # undo scikit-learn's standardisation: pAUC = min + (max - min)(2 std - 1)
        return m * m / 2 + (m - m * m / 2) * (2 * skm.roc_auc_score(y, s, max_fpr=m) - 1)

    assert M.partial_auc(y, s, (0.1, 0.3), mcclish_correct=False)[0] == pytest.approx(raw(0.3) - raw(0.1))


def test_partial_auc_range_is_checked():
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        M.partial_auc(Y8, S8, (0.3, 0.1))


# ----------------------------------------------------------------------------- micro, weighted, one-vs-one AUC


P6 = np.array([[0.6, 0.3, 0.1], [0.4, 0.4, 0.2], [0.3, 0.5, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
Y6 = np.array([0, 0, 1, 1, 2, 2])


def test_ovo_and_micro_auc_hand_computed():
    # Hand & Till: A(0|1) = 3/4, A(1|0) = 2/4 -> .625; pair (0,2): 1 and 1 -> 1; A(1|2) = 3/4, A(2|1) = 1 -> .875
    assert M.auc_ovo(Y6, P6)[0] == pytest.approx((0.625 + 1 + 0.875) / 3)
    # micro: the 6 true-class probabilities against the 12 others, ties 1/2: (12 + 10.5 + 11.5 + 4.5 + 11.5 + 12)/72
    assert M.auc_micro(Y6, P6, "multi-class")[0] == pytest.approx(62 / 72)
    # equal prevalences: weighted = macro
    assert M.auc_weighted(Y6, P6, "multi-class")[0] == pytest.approx(M.auc(Y6, P6, "multi-class")[0])


def test_auc_averages_against_sklearn():
    rng = np.random.default_rng(3)
    n, k = 300, 4
    y = rng.choice(k, n, p=[0.4, 0.3, 0.2, 0.1])
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += rng.uniform(0, 0.6, n)
    p /= p.sum(1, keepdims=True)
    assert M.auc_ovo(y, p)[0] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovo"))  # Hand & Till
    assert M.auc_micro(y, p, "multi-class")[0] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="micro"))
    assert M.auc_weighted(y, p, "multi-class")[0] == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    for w in _boot_rows(n, rows=2):
        assert M.auc_micro(y, p, "multi-class", w)[0] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", average="micro", sample_weight=w))
        assert M.auc_weighted(y, p, "multi-class", w)[0] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", average="weighted", sample_weight=w))
    ym = rng.integers(0, 2, (200, 3))
    pm = np.clip(ym * 0.4 + rng.random((200, 3)) * 0.6, 0, 1)
    assert M.auc_micro(ym, pm, "multi-label")[0] == pytest.approx(skm.roc_auc_score(ym, pm, average="micro"))
    assert M.auc_weighted(ym, pm, "multi-label")[0] == pytest.approx(skm.roc_auc_score(ym, pm, average="weighted"))


def test_ovo_weights_equal_duplicated_cases():
    """No scikit-learn reference with sample weights for ovo: a weight equals repeating the case."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 60)
    p = rng.dirichlet(np.ones(3), 60)
    w = rng.integers(0, 4, 60).astype(float)
    rep = np.repeat(np.arange(60), w.astype(int))
    assert M.auc_ovo(y, p, w)[0] == pytest.approx(skm.roc_auc_score(y[rep], p[rep], multi_class="ovo"))


# ----------------------------------------------------------------------------- top-k accuracy


def test_top_k_hand_computed_with_ties():
    p = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
    y = np.array([1, 0, 1, 0])
    # ranks of the true class: 1, 2, 1 (tied with class 0, which comes first, as argmax), 2
    assert [M.top_k_accuracy(y, p, k)[0] for k in (1, 2, 3)] == pytest.approx([0.0, 0.5, 1.0])
    assert M.top_k_accuracy(y, p, 1)[0] == pytest.approx(np.mean(p.argmax(1) == y))  # top-1 = acc
    # scikit-learn breaks the tie of case 3 towards the higher index (documented difference)
    assert skm.top_k_accuracy_score(y, p, k=1, labels=[0, 1, 2]) == pytest.approx(0.25)


def test_top_k_against_sklearn_without_ties():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 400)
    p = rng.dirichlet(np.ones(5), 400)
    for k in (1, 2, 3, 4):
        assert M.top_k_accuracy(y, p, k)[0] == pytest.approx(skm.top_k_accuracy_score(y, p, k=k))
        w = _boot_rows(400, k, rows=1)[0]
        assert M.top_k_accuracy(y, p, k, w)[0] == pytest.approx(skm.top_k_accuracy_score(y, p, k=k, sample_weight=w))


# ----------------------------------------------------------------------------- maximum calibration error


def _mce_data():
    """Deterministic 3-class and binary data with no confidence on a bin edge and no tied top class
    (edges are where openmia's (a, b] bins and torchmetrics' [a, b) bins differ)."""
    j = np.arange(90)
    raw = np.stack([(j * 7) % 11 + 1.3, (j * 5) % 13 + 1.1, (j * 3) % 7 + 1.7], axis=1)
    p = raw / raw.sum(1, keepdims=True)
    y = (j * 2 + j // 5) % 3
    s = ((j * 29) % 89 + 0.37) / 89.5
    yb = ((j * 13) % 7 < 3).astype(int)
    return y, p, yb, np.column_stack([1 - s, s])


# torchmetrics 1.9.0: multiclass_calibration_error(preds, target, num_classes, n_bins=15, norm="max")
TORCHMETRICS_MCE = {"multi-class": 0.7029103636741638, "binary": 0.552383542060852}


def test_mce_hand_computed():
    # binary, top-label confidence .9 .9 .6 .55 with correct 1 0 1 1; bins of width 1/15:
    # .9 -> bin (13/15, 14/15]: acc .5, conf .9, gap .4; .6 and .55 -> bin (8/15, 9/15]: acc 1, conf .575, gap .425
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.9, 0.6, 0.45])
    p = np.column_stack([1 - s, s])
    assert M.mce(y, p, "binary")[0] == pytest.approx(0.425)
    assert M.ece(y, p, "binary")[0] == pytest.approx(0.5 * 0.4 + 0.5 * 0.425)
    w = np.array([[0.0, 0.0, 1.0, 1.0]])  # weights 0 empty a bin: only the other one counts
    assert M.mce(y, p, "binary", w)[0] == pytest.approx(0.425)


def test_mce_against_torchmetrics():
    y, p, yb, pb = _mce_data()
    assert M.mce(y, p, "multi-class")[0] == pytest.approx(TORCHMETRICS_MCE["multi-class"], abs=1e-6)  # float32 there
    assert M.mce(yb, pb, "binary")[0] == pytest.approx(TORCHMETRICS_MCE["binary"], abs=1e-6)
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    for yy, pp in ((y, p), (yb, pb)):
        ref = tm.multiclass_calibration_error(torch.tensor(pp), torch.tensor(yy), num_classes=pp.shape[1], n_bins=15,
                                              norm="max")
        assert M.mce(yy, pp, "multi-class")[0] == pytest.approx(float(ref), abs=1e-6)


# ----------------------------------------------------------------------------- decision curves


def test_net_benefit_hand_computed_vickers_elkin():
    """Vickers & Elkin (Med Decis Making 2006; 26: 565-574): net benefit = TP/n - FP/n * pt/(1 - pt),
    treating when the predicted risk is >= pt; treat-all = prevalence - (1 - prevalence) pt/(1 - pt).
    10 patients, 3 with the event (risks .9 .6 .3), 7 without (.7 .5 .2 .2 .1 .1 .05)."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.6, 0.3, 0.7, 0.5, 0.2, 0.2, 0.1, 0.1, 0.05])
    nb, nb_all = M.net_benefit(y, s, [0.25, 0.5, 0.2])
    # pt .25: TP 3, FP 2 -> .3 - .2/3; pt .5: TP 2, FP 2 (.5 >= .5 is treated) -> .2 - .2 = 0; pt .2: TP 3, FP 4 -> .3 - .4/4
    assert nb[0] == pytest.approx([0.3 - 0.2 / 3, 0.0, 0.2])
    assert nb_all[0] == pytest.approx([0.3 - 0.7 / 3, 0.3 - 0.7, 0.3 - 0.7 / 4])


def test_treat_all_matches_a_published_decision_curve_table():
    """Treat-all net benefit at prevalence 0.3, as printed in Table 4 of PMC6993280 (hepatocellular
    carcinoma in cirrhotic patients, AFP < 400; 'intervention to all patients')."""
    y = np.array([1] * 3 + [0] * 7)
    pts = [0.03, 0.05, 0.10, 0.20, 0.30, 0.50, 0.90, 0.96]
    published = [0.278, 0.263, 0.222, 0.125, 0.000, -0.400, -6.000, -16.50]
    _, nb_all = M.net_benefit(y, np.linspace(0, 1, 10), pts)
    assert np.round(nb_all[0], 3) == pytest.approx(published)


def _dca_data():
    i = np.arange(60)
    s = ((i * 37) % 60 + 0.5) / 60
    y = (((i * 37) % 60 + (i * 11) % 23) > 45).astype(int)
    return y, s


# dcurves 1.1.7: dca(data, outcome="outcome", modelnames=["model"], thresholds=DCA_T).net_benefit
DCA_T = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
DCURVES_MODEL = [0.4, 0.3625, 0.342857142857, 0.35, 0.333333333333, 0.316666666667]
DCURVES_ALL = [0.388888888889, 0.3125, 0.214285714286, 0.083333333333, -0.1, -0.375]


def test_net_benefit_against_dcurves():
    y, s = _dca_data()
    nb, nb_all = M.net_benefit(y, s, DCA_T)
    assert nb[0] == pytest.approx(DCURVES_MODEL, abs=1e-11)
    assert nb_all[0] == pytest.approx(DCURVES_ALL, abs=1e-11)
    try:
        import pandas as pd
        from dcurves import dca
    except Exception:  # not installed (or its survival dependency lifelines is missing)
        pytest.skip("dcurves is not importable here; the stored values above were produced by dcurves 1.1.7")
    r = dca(data=pd.DataFrame({"outcome": y, "model": s}), outcome="outcome", modelnames=["model"], thresholds=DCA_T)
    assert nb[0] == pytest.approx(r[r.model == "model"].net_benefit.to_numpy())
    assert nb_all[0] == pytest.approx(r[r.model == "all"].net_benefit.to_numpy())


def test_net_benefit_weights_equal_duplicated_cases():
    y, s = _dca_data()
    w = (np.arange(60) % 3).astype(float)
    rep = np.repeat(np.arange(60), w.astype(int))
    a = M.net_benefit(y, s, M.DCA_THRESHOLDS, w)
    b = M.net_benefit(y[rep], s[rep], M.DCA_THRESHOLDS)
    assert a[0] == pytest.approx(b[0]) and a[1] == pytest.approx(b[1])


def test_roc_summary_is_one_pass_of_the_separate_metrics():
    y, s = _random_binary(9)
    w = _boot_rows(len(y), 9)
    r = M.binary_roc_summary(y, s, w, sens_at_spec=(0.9,), spec_at_sens=(0.8,), pauc_fpr=(0, 0.2),
                             dca_thresholds=M.DCA_THRESHOLDS)
    assert r["youden_j"] == pytest.approx(M.youden(y, s, w)[0])
    assert r["sens_at_spec_0.9"] == pytest.approx(M.sensitivity_at_specificity(y, s, 0.9, w))
    assert r["spec_at_sens_0.8"] == pytest.approx(M.specificity_at_sensitivity(y, s, 0.8, w))
    assert r["pauc"] == pytest.approx(M.partial_auc(y, s, (0, 0.2), w))
    assert r["net_benefit"].shape == (3, 99)
