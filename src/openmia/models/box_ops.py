"""Box operations for the detectors, pure PyTorch: pairwise IoU and greedy (class-aware) NMS.

Boxes are ``(n, 4)`` ``x1, y1, x2, y2`` in continuous pixel coordinates; area = (x2 - x1)(y2 - y1)
with no "+1" (the convention of :mod:`openmia.metrics.detection`); a zero-size box overlaps nothing.
"""

from __future__ import annotations

import numpy as np
import torch

_CHUNK = 1024  # rows of the overlap matrix computed at once (bounds the temporaries to ~20 MB at 5000 boxes)


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)


def _intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection areas ``(n, m)`` (1D broadcasts: cheaper than ``(n, m, 2)`` corner tensors)."""
    w = torch.minimum(a[:, None, 2], b[None, :, 2]).sub_(torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_(min=0)
    h = torch.minimum(a[:, None, 3], b[None, :, 3]).sub_(torch.maximum(a[:, None, 1], b[None, :, 1])).clamp_(min=0)
    return w.mul_(h)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(n, m)`` of boxes ``a`` ``(n, 4)`` and ``b`` ``(m, 4)`` (0 where the union is 0)."""
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None] - inter
    return torch.where(union > 0, inter / union.clamp_min(torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


def _overlaps(a: torch.Tensor, b: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """``box_iou(a, b) > iou_threshold`` as a bool ``(n, m)``, without the division:
    inter / (A + B - inter) > t  <=>  inter (1 + t) > t (A + B)."""
    return _intersection(a, b).mul_(1 + iou_threshold) > (_area(a)[:, None] + _area(b)[None]).mul_(iou_threshold)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices ``(k,)`` into ``boxes`` of the kept ones, by decreasing score.

    ``boxes`` ``(n, 4)``, ``scores`` ``(n,)``, ``iou_threshold`` in [0, 1]. A box is dropped when its
    IoU with a kept, higher-ranked box is ``> iou_threshold``. Tied scores rank in input order
    (stable sort). The overlaps are computed in vectorised row chunks against the lower-ranked boxes
    only, skipping rows already suppressed; the greedy pass is a cheap numpy loop.
    """
    n = len(boxes)
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order] if boxes.is_floating_point() else boxes[order].float()
    alive = np.ones(n, dtype=bool)
    for start in range(0, n, _CHUNK):
        rows = start + np.flatnonzero(alive[start : start + _CHUNK])  # suppressed boxes never come back
        if len(rows) == 0:
            continue
        over = _overlaps(b[torch.from_numpy(rows).to(b.device)], b[start:], iou_threshold).cpu().numpy()
        for r, i in enumerate(rows):  # over[r, j - start] = box i overlaps box j
            if alive[i]:
                alive[i + 1 :] &= ~over[r, i + 1 - start :]
    return order[torch.from_numpy(np.flatnonzero(alive)).to(order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-aware NMS: a box only suppresses boxes of its own label. Kept indices by decreasing score
    (ties in input order).

    A per-class loop: the coordinate-offset trick is equivalent but builds one IoU matrix over all
    classes, and the large offsets cost float precision.
    """
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = [idx[nms(boxes[idx], scores[idx], iou_threshold)]
            for idx in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))]
    keep = torch.cat(kept).sort().values  # input order first, so the stable sort keeps it among ties
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
