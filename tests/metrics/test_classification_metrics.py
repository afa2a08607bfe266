"""Classification metrics: hand-computed golden values and cross-checks against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from openmia.metrics import classification as M


def test_binary_golden_values():
    # 4 positives, 4 negatives. Scores: pos 0.9 0.8 0.6 0.4 ; neg 0.7 0.5 0.3 0.1
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.1])
    p = np.column_stack([1 - s, s])
    # AUC: pairs (pos > neg): 0.9 beats 4, 0.8 beats 4, 0.6 beats 3 (0.5,0.3,0.1), 0.4 beats 2 -> 13/16
    assert M.auc(y, p, "binary")[0] == pytest.approx(13 / 16)
    # AP: ranking 0.9+ 0.8+ 0.7- 0.6+ 0.5- 0.4+ ... precision at each positive: 1, 1, 3/4, 4/6 -> mean 0.8541666
    assert M.average_precision(y, p, "binary")[0] == pytest.approx((1 + 1 + 0.75 + 4 / 6) / 4)
    cm = M.confusion(y, M.predict(p, "binary"), 2)[0]
    # threshold 0.5: predicted positive = 0.9 0.8 0.6 (TP 3) and 0.7 0.5 (FP 2); TN 2, FN 1
    assert cm.tolist() == [[2, 2], [1, 3]]
    assert M.accuracy_cm(cm[None])[0] == pytest.approx(5 / 8)
    assert M.f1_per_class(cm[None])[0, 1] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (6 - 2) / sqrt(5*4*4*3)
    assert M.mcc_cm(cm[None])[0] == pytest.approx(4 / np.sqrt(240))
    # Brier: mean (s - y)^2
    assert M.brier_per_case(y, p, "binary").mean() == pytest.approx(np.mean((s - y) ** 2))


def test_quadratic_kappa_golden():
    # truth 0 1 2, prediction 0 2 2: observed weighted disagreement 1 cell with w = (1/2)^2
    y = np.array([0, 1, 2])
    pred = np.array([0, 2, 2])
    cm = M.confusion(y, pred, 3)
    # expected matrix = outer(row sums [1,1,1], col sums [1,0,2]) / 3; weights (i-j)^2/4
    w = np.array([[0, 0.25, 1], [0.25, 0, 0.25], [1, 0.25, 0]])
    exp = np.outer([1, 1, 1], [1, 0, 2]) / 3
    kappa = 1 - (w * cm[0]).sum() / (w * exp).sum()
    assert M.kappa_cm(cm, weights="quadratic")[0] == pytest.approx(kappa)
    assert kappa == pytest.approx(skm.cohen_kappa_score(y, pred, weights="quadratic"))


def test_ece_golden():
    # 4 cases, binary; top-label confidence 0.9 0.9 0.6 0.6, correct 1 0 1 1
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.9, 0.6, 0.4])
    p = np.column_stack([1 - s, s])
    # bins: conf 0.9 -> bin 14 (acc 0.5, conf 0.9); conf 0.6 -> bin 9 (acc 1.0, conf 0.6)
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert M.ece(y, p, "binary")[0] == pytest.approx(expected)


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(3)
    n, k = 300, 4
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += rng.uniform(0, 0.6, n)
    p /= p.sum(1, keepdims=True)
    return y, p


def test_cross_check_multiclass_with_sklearn(multiclass):
    y, p = multiclass
    pred = p.argmax(1)
    cm = M.confusion(y, pred, 4)
    assert M.auc(y, p, "multi-class")[0] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    onehot = np.eye(4)[y]
    assert M.average_precision(y, p, "multi-class")[0] == pytest.approx(skm.average_precision_score(onehot, p, average="macro"))
    assert M.balanced_accuracy_cm(cm)[0] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert np.nanmean(M.f1_per_class(cm), 1)[0] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert M.mcc_cm(cm)[0] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert M.kappa_cm(cm)[0] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert M.kappa_cm(cm, weights="quadratic")[0] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="quadratic"))
    assert M.nll_per_case(y, p, "multi-class").mean() == pytest.approx(skm.log_loss(y, p))
    assert np.nanmean(M.recall_per_class(cm), 1)[0] == pytest.approx(skm.recall_score(y, pred, average="macro"))


def test_cross_check_multilabel_and_binary_brier():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (200, 3))
    p = np.clip(y * 0.4 + rng.random((200, 3)) * 0.6, 0, 1)
    assert M.auc(y, p, "multi-label")[0] == pytest.approx(skm.roc_auc_score(y, p, average="macro"))
    assert M.average_precision(y, p, "multi-label")[0] == pytest.approx(skm.average_precision_score(y, p, average="macro"))
    b = rng.integers(0, 2, 100)
    s = rng.random(100)
    pb = np.column_stack([1 - s, s])
    assert M.brier_per_case(b, pb, "binary").mean() == pytest.approx(skm.brier_score_loss(b, s))


def test_weighted_metrics_equal_sklearn_sample_weight(multiclass):
    """The bootstrap's weighted formulation equals scikit-learn with sample_weight."""
    y, p = multiclass
    rng = np.random.default_rng(0)
    w = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=3).astype(float)
    yb = (y == 1).astype(int)
    for row in w:
        assert M.binary_auc(yb, p[:, 1], row)[0] == pytest.approx(skm.roc_auc_score(yb, p[:, 1], sample_weight=row))
        assert M.binary_ap(yb, p[:, 1], row)[0] == pytest.approx(skm.average_precision_score(yb, p[:, 1], sample_weight=row))
        pred = p.argmax(1)
        cm = M.confusion(y, pred, 4, row)
        assert M.mcc_cm(cm)[0] == pytest.approx(skm.matthews_corrcoef(y, pred, sample_weight=row))
        assert M.balanced_accuracy_cm(cm)[0] == pytest.approx(skm.balanced_accuracy_score(y, pred, sample_weight=row))


def test_auc_undefined_with_one_class_is_nan():
    y = np.zeros(5, int)
    s = np.linspace(0, 1, 5)
    assert np.isnan(M.binary_auc(y, s)[0]) and np.isnan(M.binary_ap(y, s)[0])


@settings(max_examples=40, deadline=None)
# scores on a 1/100 grid so that the transform stays strictly increasing in floating point
@given(st.lists(st.integers(0, 100), min_size=6, max_size=40), st.integers(0, 2**31 - 1))
def test_auc_invariant_to_monotone_transform_and_case_order(scores, seed):
    s = np.array(scores) / 100
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, len(s))
    y[0], y[1] = 0, 1
    a = M.binary_auc(y, s)[0]
    assert M.binary_auc(y, np.exp(3 * s) - 7)[0] == pytest.approx(a)  # strictly increasing map
    perm = rng.permutation(len(s))
    assert M.binary_auc(y[perm], s[perm])[0] == pytest.approx(a)
    assert a == pytest.approx(skm.roc_auc_score(y, s))


def test_classwise_ece_hand_computed_and_loop_reference():
    from openmia.metrics.classification import classwise_ece

    # 2 classes, 4 cases, 2 bins. class 1 probabilities 0.2, 0.4, 0.7, 0.9, truth class 1 for cases 3, 4 and 2
    # bin (0, .5]: p = .2, .4 -> mean .3, freq 1/2 -> |.5 - .3| * 2/4 = .1
    # bin (.5, 1]: p = .7, .9 -> mean .8, freq 1   -> |1 - .8| * 2/4 = .1   => class-1 ECE = .2
    # class 0 probabilities .8, .6, .3, .1 (truth 0 for case 1 only): bin (0,.5]: mean .2, freq 0 -> .1;
    # bin (.5,1]: mean .7, freq 1/2 -> .1 => .2
    p1 = np.array([0.2, 0.4, 0.7, 0.9])
    probs = np.column_stack([1 - p1, p1])
    y = np.array([0, 1, 1, 1])
    assert classwise_ece(y, probs, "multi-class", n_bins=2)[0] == pytest.approx([0.2, 0.2])
    # against a direct per-bin loop on random data (independent implementation written here)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 200)
    y = rng.integers(0, 3, 200)
    ref = []
    for k in range(3):
        s, t = probs[:, k], (y == k).astype(float)
        b = np.clip(np.ceil(s * 15).astype(int) - 1, 0, 14)
        ref.append(sum((b == j).mean() * abs(t[b == j].mean() - s[b == j].mean()) for j in range(15) if (b == j).any()))
    assert classwise_ece(y, probs, "multi-class")[0] == pytest.approx(ref)
