"""Counting, clustering and synthesis metrics: hand-computed values, edge cases, cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmia.errors import PredictionError
from openmia.metrics.clustering import clustering_metrics, purity
from openmia.metrics.counting import count_errors, counting_metrics
from openmia.metrics.synthesis import psnr, synthesis_metrics


def test_counting_hand_computed():
    # errors 2, -1, 0, 3 (t = 10, 5, 0, 3): MAE = 6/4 = 1.5; RMSE = sqrt((4+1+0+9)/4) = sqrt(3.5)
    # relative: 0.2, 0.2, NaN (t = 0), 1.0 -> mean 1.4/3
    m = counting_metrics([12, 4, 0, 6], [10, 5, 0, 3])
    assert m["mae"] == 1.5 and m["rmse"] == pytest.approx(math.sqrt(3.5))
    assert m["mre"] == pytest.approx(1.4 / 3) and m["n_nan_mre"] == 1 and m["bias"] == pytest.approx(1.0)
    from sklearn.metrics import mean_absolute_error, mean_squared_error  # source: scikit-learn

    assert m["mae"] == pytest.approx(mean_absolute_error([10, 5, 0, 3], [12, 4, 0, 6]))
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error([10, 5, 0, 3], [12, 4, 0, 6])))
    assert math.isnan(count_errors([1], [0])["count_rel_error"][0])


def test_counting_errors_name_the_case():
    with pytest.raises(PredictionError, match="case\\(s\\) img7"):
        count_errors([1, -2], [1, 1], case_ids=["img6", "img7"])
    with pytest.raises(PredictionError, match="NaN"):
        count_errors([float("nan")], [1])


def test_clustering_hand_computed_and_sklearn():
    t = [0, 0, 0, 1, 1, 1]
    p = [5, 5, 7, 7, 7, 7]  # cluster 5 = {0,0}, cluster 7 = {0,1,1,1}: purity = (2 + 3)/6
    m = clustering_metrics(t, p)
    assert m["purity"] == pytest.approx(5 / 6) and m["n_clusters"] == 2
    from sklearn.metrics import adjusted_rand_score  # source: scikit-learn (we wrap it)

    assert m["ari"] == pytest.approx(adjusted_rand_score(t, p))
    # ARI by hand: contingency [[2,1],[0,3]]; sum C(n_ij,2) = 1+0+0+3 = 4; rows C(3,2)*2 = 6; cols C(2,2)+C(4,2) = 7
    # expected = 6*7/C(6,2) = 2.8; max = (6+7)/2 = 6.5; ARI = (4-2.8)/(6.5-2.8) = 0.3243
    assert m["ari"] == pytest.approx(1.2 / 3.7)
    perfect = clustering_metrics(t, [1, 1, 1, 0, 0, 0])
    assert perfect["ari"] == pytest.approx(1) and perfect["purity"] == 1 and perfect["nmi"] == pytest.approx(1)


def test_silhouette_needs_embeddings_and_two_clusters():
    x = np.array([[0.0, 0], [0, 1], [10, 10], [10, 11]])
    m = clustering_metrics([0, 0, 1, 1], [0, 0, 1, 1], embeddings=x)
    from sklearn.metrics import silhouette_score

    assert m["silhouette"] == pytest.approx(silhouette_score(x, [0, 0, 1, 1]))
    assert math.isnan(clustering_metrics([0, 0, 1, 1], [3, 3, 3, 3], embeddings=x)["silhouette"])
    with pytest.raises(PredictionError, match="case\\(s\\) b"):
        clustering_metrics([0, 1], [0, 1], embeddings=np.array([[0.0], [np.nan]]), case_ids=["a", "b"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=4, max_size=30), st.integers(0, 1000))
def test_clustering_invariant_to_relabelling(labels, seed):
    rng = np.random.default_rng(seed)
    t = np.array(labels)
    p = rng.integers(0, 3, len(t))
    perm = rng.permutation(10)
    a, b = clustering_metrics(t, p), clustering_metrics(t, perm[p])
    for k in ("ari", "ami", "nmi", "purity"):
        assert a[k] == pytest.approx(b[k], abs=1e-12)
    assert 0 <= a["purity"] <= 1
    assert a["ari"] == pytest.approx(clustering_metrics(p, t)["ari"], abs=1e-12)  # ARI is symmetric


def test_purity_vs_contingency():
    from sklearn.metrics.cluster import contingency_matrix

    t, p = [0, 1, 2, 2, 1, 0, 0], [1, 1, 0, 0, 2, 2, 2]
    c = contingency_matrix(t, p)
    assert purity(t, p) == pytest.approx(c.max(0).sum() / 7)


def test_synthesis_hand_computed_and_skimage():
    t = np.zeros((16, 16))
    p = t.copy()
    p[:4, :4] = 0.5  # 16 pixels off by 0.5: MSE = 16*0.25/256 = 1/64; PSNR = 10 log10(1 / (1/64)) = 18.06 dB
    mask = np.zeros_like(t, bool)
    mask[:8, :8] = True  # inside: 16 of 64 pixels off: MSE = 4/64 = 1/16 -> PSNR = 12.04 dB; MAE = 8/64
    m = synthesis_metrics(p, t, data_range=1.0, mask=mask)
    assert m["psnr"] == pytest.approx(10 * math.log10(64)) and m["psnr_mask"] == pytest.approx(10 * math.log10(16))
    assert m["mae"] == pytest.approx(8 / 256) and m["mae_mask"] == pytest.approx(8 / 64)
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # source: scikit-image

    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=1.0))
    assert m["ssim"] == pytest.approx(structural_similarity(t, p, data_range=1.0))
    assert m["ssim_mask"] < 1 and psnr(t, t, data_range=1.0) == math.inf
    empty = synthesis_metrics(p, t, data_range=1.0, mask=np.zeros_like(mask))
    assert math.isnan(empty["psnr_mask"]) and math.isnan(empty["ssim_mask"])


def test_synthesis_3d_and_errors():
    rng = np.random.default_rng(0)
    t = rng.random((8, 12, 12))
    m = synthesis_metrics(t + 0.01, t, data_range=1.0)
    assert m["mae"] == pytest.approx(0.01) and m["psnr"] == pytest.approx(40.0)
    with pytest.raises(PredictionError, match="data_range"):
        synthesis_metrics(t, t, data_range=None)
    with pytest.raises(PredictionError, match="case 'x'.*shape"):
        synthesis_metrics(t[:, :5], t, data_range=1.0, case="x")
