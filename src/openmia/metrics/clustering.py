"""Clustering metrics against reference classes (e.g. patient subtypes).

ARI, AMI, NMI, homogeneity, completeness and V-measure come from scikit-learn; purity (the
fraction of cases whose cluster's majority class is their class) is computed from scikit-learn's
contingency matrix. Silhouette (scikit-learn, Euclidean) needs embeddings and 2 <= clusters <= N-1,
otherwise it is NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from openmia.errors import PredictionError


def purity(labels_true: Sequence, labels_pred: Sequence) -> float:
    """Σ over clusters of the largest class count in the cluster, divided by N."""
    from sklearn.metrics.cluster import contingency_matrix

    c = contingency_matrix(labels_true, labels_pred)
    return float(c.max(axis=0).sum() / c.sum())


def clustering_metrics(labels_true: Sequence, labels_pred: Sequence, *, embeddings: np.ndarray | None = None,
                       case_ids: Sequence[str] | None = None) -> dict[str, float]:
    """All clustering metrics for one partition (cluster ids are arbitrary labels)."""
    from sklearn import metrics as skm

    t, p = np.asarray(labels_true), np.asarray(labels_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise PredictionError(f"cluster assignments must be 1-D and aligned: {p.shape} predicted, {t.shape} true")
    if len(t) < 2:
        raise PredictionError(f"clustering metrics need at least 2 cases, found {len(t)}")
    h, c, v = skm.homogeneity_completeness_v_measure(t, p)
    out = {
        "ari": float(skm.adjusted_rand_score(t, p)),
        "ami": float(skm.adjusted_mutual_info_score(t, p)),
        "nmi": float(skm.normalized_mutual_info_score(t, p)),
        "homogeneity": float(h), "completeness": float(c), "v_measure": float(v),
        "purity": purity(t, p),
        "n_clusters": int(len(np.unique(p))),
        "silhouette": float("nan"),
    }
    if embeddings is not None:
        x = np.asarray(embeddings, dtype=float)
        if x.ndim != 2 or len(x) != len(p):
            raise PredictionError(f"embeddings must be (cases, features) with {len(p)} rows, found shape {x.shape}")
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            ids = [str(case_ids[i]) if case_ids is not None else f"#{i}" for i in bad[:5]]
            raise PredictionError(f"embedding contains NaN or infinite values for case(s) {', '.join(ids)}")
        if 2 <= out["n_clusters"] <= len(p) - 1:
            out["silhouette"] = float(skm.silhouette_score(x, p))
    return out
