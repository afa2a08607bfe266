"""Lesion-wise panoptic quality (Kirillov et al., CVPR 2019) of one class of a label map.

Lesions are the full-connectivity components (8 in 2D, 26 in 3D, as
:func:`openmia.metrics.segmentation.lesion_metrics`) of the truth mask and of the prediction
mask of one class. A truth lesion and a predicted lesion match when their IoU > 0.5; such a match
is unique (two lesions of one map are disjoint, so at most one partner can cover more than half of
their union), so no assignment step is needed. With TP matched pairs, FP unmatched predicted
lesions and FN unmatched truth lesions:

- ``lesion_sq`` (segmentation quality) = mean IoU over the TP matches,
- ``lesion_rq`` (recognition quality) = TP / (TP + FP/2 + FN/2) = the lesion F1 at IoU > 0.5,
- ``lesion_pq`` = SQ × RQ = (sum of matched IoUs) / (TP + FP/2 + FN/2),
- ``lesion_pq_tp``, ``lesion_pq_fp``, ``lesion_pq_fn``: the counts (per case, not aggregated).

Empty cases: no lesion in either map: PQ, SQ, RQ NaN (nothing to score; counted in ``n_nan``,
counts 0). Lesions present but no match (TP = 0): PQ = RQ = 0 and SQ = 0 (as ``panopticapi``,
which sets SQ = 0 without a TP), so a missed-everything case is the worst case, not excluded.
"""

from __future__ import annotations

import numpy as np

from openmia.errors import PredictionError
from openmia.metrics.segmentation import check_pair

PANOPTIC_METRICS = ("lesion_pq", "lesion_sq", "lesion_rq")
PANOPTIC_COUNTS = ("lesion_pq_tp", "lesion_pq_fp", "lesion_pq_fn")
IOU_MATCH = 0.5


def component_iou(truth_lab: np.ndarray, n_truth: int, pred_lab: np.ndarray, n_pred: int) -> np.ndarray:
    """IoU of every truth component with every predicted component, ``(n_truth, n_pred)``.

    ``truth_lab``/``pred_lab``: integer component maps of the same shape, 0 = background.
    """
    joint = np.bincount(truth_lab.ravel().astype(np.int64) * (n_pred + 1) + pred_lab.ravel(),
                        minlength=(n_truth + 1) * (n_pred + 1)).reshape(n_truth + 1, n_pred + 1)
    inter = joint[1:, 1:].astype(float)
    size_t = joint[1:, :].sum(axis=1).astype(float)
    size_p = joint[:, 1:].sum(axis=0).astype(float)
    return inter / (size_t[:, None] + size_p[None, :] - inter)


def panoptic_quality(pred: np.ndarray, truth: np.ndarray, *, case: str = "") -> dict[str, float]:
    """PQ, SQ, RQ and TP/FP/FN of two binary masks ``(H, W)`` / ``(D, H, W)`` (module conventions)."""
    from scipy import ndimage

    pred, truth = check_pair(pred, truth, case=case)
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    full = np.ones((3,) * pred.ndim, dtype=bool)
    tl, nt = ndimage.label(truth, structure=full)
    pl, npr = ndimage.label(pred, structure=full)
    nan = float("nan")
    if nt == 0 and npr == 0:
        return {"lesion_pq": nan, "lesion_sq": nan, "lesion_rq": nan, "lesion_pq_tp": 0.0, "lesion_pq_fp": 0.0,
                "lesion_pq_fn": 0.0}
    iou = component_iou(tl, nt, pl, npr) if nt and npr else np.zeros((nt, npr))
    match = iou > IOU_MATCH
    if (match.sum(axis=0) > 1).any() or (match.sum(axis=1) > 1).any():  # impossible for disjoint components
        raise PredictionError(f"case {case!r}: a lesion matched twice at IoU > 0.5 (internal error)")
    tp = int(match.sum())
    fp, fn = npr - tp, nt - tp
    denom = tp + 0.5 * fp + 0.5 * fn
    iou_sum = float(iou[match].sum())
    return {"lesion_pq": iou_sum / denom, "lesion_sq": iou_sum / tp if tp else 0.0, "lesion_rq": tp / denom,
            "lesion_pq_tp": float(tp), "lesion_pq_fp": float(fp), "lesion_pq_fn": float(fn)}
