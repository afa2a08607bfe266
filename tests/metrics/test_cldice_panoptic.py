"""clDice (openmia.metrics.segmentation_more.cldice) and lesion-wise panoptic quality
(openmia.metrics.lesions): hand-computed cases and cross-checks against independent implementations.

clDice cross-check: a direct transcription of the paper's formula / reference code (Shit et al.,
CVPR 2021, ``cl_score`` and ``clDice`` of github.com/jocpae/clDice) on the uncropped masks; it
shares skimage's skeletonisation (the paper's choice too). MONAI has only ``SoftclDiceLoss``, a
differentiable loss on soft skeletons (iterated min/max pooling), which is not the hard metric:
no value comparison with it.

Panoptic-quality cross-check: components labelled by ``skimage.measure.label`` (openmia uses
``scipy.ndimage.label``), IoUs from explicit per-pair masks, and an optimal assignment
(``scipy.optimize.linear_sum_assignment``) thresholded at IoU > 0.5, then the formulas of
Kirillov et al. 2019 / ``panopticapi``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from openmia.errors import PredictionError
from openmia.metrics.lesions import component_iou, panoptic_quality
from openmia.metrics.segmentation_more import check_extra_metrics, cldice, more_case_metrics, skeleton


def _blobs(shape, seed, sigma=1.5, level=0.55):
    rng = np.random.default_rng(seed)
    return [ndimage.gaussian_filter(rng.random(shape), sigma) > level for _ in range(2)]


# ----------------------------------------------------------------------------- clDice


def test_cldice_lines_by_hand():
    # one-voxel-wide lines are their own skeletons: truth 9 px, prediction 5 px inside it
    t = np.zeros((5, 13), bool)
    t[2, 2:11] = True
    p = np.zeros_like(t)
    p[2, 4:9] = True
    assert np.array_equal(skeleton(t), t) and np.array_equal(skeleton(p), p)
    m = cldice(p, t)
    # tprec = |S(P) & T| / |S(P)| = 5/5; tsens = |S(T) & P| / |S(T)| = 5/9; clDice = 2 * 1 * 5/9 / (1 + 5/9) = 10/14
    assert m["cldice_tprec"] == 1.0 and m["cldice_tsens"] == pytest.approx(5 / 9)
    assert m["cldice"] == pytest.approx(10 / 14)
    # a prediction disjoint from the truth: both terms 0, clDice 0 (not NaN)
    q = np.zeros_like(t)
    q[0, 0:3] = True
    assert cldice(q, t) == {"cldice": 0.0, "cldice_tprec": 0.0, "cldice_tsens": 0.0}


def test_cldice_thin_prediction_of_thick_vessel():
    # a 3-px bar inside a 7-px bar: S(P) lies in P, P in T, so tprec = 1 (by hand), while Dice = 6/10
    t = np.zeros((11, 30), bool)
    t[2:9, 3:27] = True
    p = np.zeros_like(t)
    p[4:7, 3:27] = True
    m = cldice(p, t)
    assert m["cldice_tprec"] == 1.0
    assert m["cldice"] > 2 * 3 / (3 + 7)  # higher than Dice: the centreline is found


def test_cldice_empty_conventions():
    z = np.zeros((6, 6), bool)
    o = z.copy()
    o[2:4, 1:5] = True
    assert all(math.isnan(v) for v in cldice(z, z).values())
    m = cldice(z, o)  # prediction empty: tprec undefined, tsens 0
    assert m["cldice"] == 0.0 and math.isnan(m["cldice_tprec"]) and m["cldice_tsens"] == 0.0
    m = cldice(o, z)  # truth empty: tsens undefined, tprec 0
    assert m["cldice"] == 0.0 and m["cldice_tprec"] == 0.0 and math.isnan(m["cldice_tsens"])
    # a 2x2x2 block's 3D skeleton vanishes (skimage Lee): the block is its own skeleton
    b = np.zeros((4, 4, 4), bool)
    b[1:3, 1:3, 1:3] = True
    assert cldice(b, b)["cldice"] == 1.0


def _cldice_reference(v_p: np.ndarray, v_l: np.ndarray) -> tuple[float, float, float]:
    """The paper's formula on the uncropped masks (reference-code style)."""
    from skimage.morphology import skeletonize

    def cl_score(v, s):
        return np.sum(v * s) / np.sum(s)

    tprec = cl_score(v_l, skeletonize(v_p))
    tsens = cl_score(v_p, skeletonize(v_l))
    return 2 * tprec * tsens / (tprec + tsens), tprec, tsens


@pytest.mark.parametrize("shape", [(40, 50), (20, 24, 22)])
def test_cldice_matches_reference(shape):
    values = []
    for seed in range(4):
        p, t = _blobs(shape, seed)
        if seed:  # a prediction near the truth (shifted, grown), as well as an unrelated one
            p = np.roll(t, 1, axis=seed % t.ndim)
            p = ndimage.binary_dilation(p) if seed == 2 else p
        ref = _cldice_reference(p, t)
        ours = cldice(p, t)
        assert (ours["cldice"], ours["cldice_tprec"], ours["cldice_tsens"]) == pytest.approx(ref, abs=1e-12)
        values.append(ours["cldice"])
    assert min(values) < 0.5 < max(values) < 1.0


# ----------------------------------------------------------------------------- panoptic quality


def test_pq_two_lesions_one_missed_one_fp_by_hand():
    t = np.zeros((10, 10), bool)
    t[1:4, 1:4] = True  # lesion A, 9 px
    t[7:9, 7:9] = True  # lesion B, 4 px: missed (FN)
    p = np.zeros_like(t)
    p[1:4, 1:3] = True  # 6 px inside A: IoU 6/9 > 0.5 (TP)
    p[1, 8] = True  # a false positive away from everything
    m = panoptic_quality(p, t)
    assert (m["lesion_pq_tp"], m["lesion_pq_fp"], m["lesion_pq_fn"]) == (1.0, 1.0, 1.0)
    assert m["lesion_sq"] == pytest.approx(6 / 9)
    assert m["lesion_rq"] == pytest.approx(1 / (1 + 0.5 + 0.5))  # = lesion F1 = 2TP / (2TP + FP + FN)
    assert m["lesion_pq"] == pytest.approx((6 / 9) / 2)


def test_pq_iou_threshold_is_strict_and_empty_cases():
    t = np.zeros((6, 6), bool)
    t[2, 2:4] = True  # 2 px
    p = np.zeros_like(t)
    p[2, 2] = True  # IoU exactly 0.5: no match
    m = panoptic_quality(p, t)
    assert (m["lesion_pq_tp"], m["lesion_pq_fp"], m["lesion_pq_fn"]) == (0.0, 1.0, 1.0)
    assert m["lesion_pq"] == m["lesion_sq"] == m["lesion_rq"] == 0.0
    z = np.zeros_like(t)
    both = panoptic_quality(z, z)
    assert all(math.isnan(both[k]) for k in ("lesion_pq", "lesion_sq", "lesion_rq"))
    assert both["lesion_pq_tp"] == both["lesion_pq_fp"] == both["lesion_pq_fn"] == 0.0
    fp_only = panoptic_quality(t, z)
    assert fp_only["lesion_pq"] == 0.0 and fp_only["lesion_pq_fp"] == 1.0 and fp_only["lesion_pq_fn"] == 0.0
    fn_only = panoptic_quality(z, t)
    assert fn_only["lesion_rq"] == 0.0 and fn_only["lesion_pq_fn"] == 1.0
    same = panoptic_quality(t, t)
    assert same["lesion_pq"] == same["lesion_sq"] == same["lesion_rq"] == 1.0
    # diagonal neighbours are one lesion (8-connectivity in 2D)
    d = np.zeros_like(t)
    d[1, 1] = d[2, 2] = True
    assert panoptic_quality(d, d)["lesion_pq_tp"] == 1.0


def _pq_reference(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from scipy.optimize import linear_sum_assignment
    from skimage.measure import label

    tl = label(truth, connectivity=truth.ndim)
    pl = label(pred, connectivity=pred.ndim)
    nt, npr = int(tl.max()), int(pl.max())
    iou = np.zeros((nt, npr))
    for i in range(nt):
        a = tl == i + 1
        for j in range(npr):
            b = pl == j + 1
            iou[i, j] = np.count_nonzero(a & b) / np.count_nonzero(a | b)
    rows, cols = linear_sum_assignment(-iou) if nt and npr else ([], [])
    matched = [iou[r, c] for r, c in zip(rows, cols) if iou[r, c] > 0.5]
    tp, fp, fn = len(matched), npr - len(matched), nt - len(matched)
    if tp + fp + fn == 0:
        return {"lesion_pq_tp": 0.0, "lesion_pq_fp": 0.0, "lesion_pq_fn": 0.0}
    denom = tp + fp / 2 + fn / 2
    return {"lesion_pq": sum(matched) / denom, "lesion_sq": sum(matched) / tp if tp else 0.0, "lesion_rq": tp / denom,
            "lesion_pq_tp": float(tp), "lesion_pq_fp": float(fp), "lesion_pq_fn": float(fn)}


@pytest.mark.parametrize("shape", [(40, 40), (16, 20, 18)])
def test_pq_matches_brute_force(shape):
    n_tp = 0
    for seed in range(6):
        t, _ = _blobs(shape, seed, sigma=1.5, level=0.56)
        # prediction: the truth shifted by a voxel (large lesions still match, small ones do not),
        # grown on odd seeds, plus single-voxel false positives
        rng = np.random.default_rng(100 + seed)
        p = np.roll(t, 1, axis=seed % t.ndim)
        if seed % 2:
            p = ndimage.binary_dilation(p)
        p = p | (rng.random(shape) > 0.997)
        ref = _pq_reference(p, t)
        ours = panoptic_quality(p, t)
        assert {k: ours[k] for k in ref} == pytest.approx(ref, abs=1e-12)
        n_tp += ours["lesion_pq_tp"]
    assert n_tp >= 4  # the cases do contain matches (and FPs, FNs)


def test_component_iou_by_hand():
    t = np.array([[1, 1, 0, 2]])
    p = np.array([[1, 0, 0, 1]])  # two predicted components: {0} and {3}
    pl, npr = ndimage.label(p)
    iou = component_iou(t, 2, pl, npr)  # truth {0, 1} vs {0}: 1/2; truth {3} vs {3}: 1
    assert iou.tolist() == [[0.5, 0.0], [0.0, 1.0]]


def test_extra_metric_groups_and_errors():
    t = np.zeros((8, 8), np.uint8)
    t[1:4, 1:4] = 1
    t[5:7, 5:7] = 2
    per_label, _ = more_case_metrics(t, t, extra=("cldice", "panoptic"))
    assert per_label[1]["cldice"] == 1.0 and per_label[2]["lesion_pq"] == 1.0
    assert "cldice" not in more_case_metrics(t, t)[0][1]
    with pytest.raises(PredictionError, match="unknown metric group"):
        check_extra_metrics(["cldice", "betti"])
    with pytest.raises(PredictionError, match="--surface"):
        more_case_metrics(t, t, surface="mesh")
    with pytest.raises(PredictionError, match="shape"):
        panoptic_quality(t, t[:, :4])
    with pytest.raises(PredictionError, match="shape"):
        cldice(t, t[:4])
