"""box_iou / nms / batched_nms: hand-computed cases and cross-checks against independent implementations."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from openmia.metrics.detection import box_iou as np_box_iou
from openmia.models.box_ops import batched_nms, box_iou, nms


def _greedy_reference(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, thr: float) -> list[int]:
    """Textbook greedy NMS, one pair at a time in plain Python (independent of box_ops)."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(labels[j] != labels[i] or iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def _random_boxes(n: int, seed: int, size: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3
    wh[:3] = 0  # a few zero-size boxes: overlap nothing
    # coarse scores make ties common
    return torch.cat([xy, xy + wh], 1).double(), torch.randint(0, 10, (n,), generator=g).double()


def test_box_iou_hand_and_against_numpy():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 0, 0]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    expected = torch.tensor([[1.0, 50 / 150, 0, 0], [0, 0, 0, 0]])
    assert torch.allclose(box_iou(a, b), expected)
    x, _ = _random_boxes(60, 0)
    y, _ = _random_boxes(40, 1)
    np.testing.assert_allclose(box_iou(x, y).numpy(), np_box_iou(x.numpy(), y.numpy()), atol=1e-12)
    assert box_iou(x[:0], y).shape == (0, 40)


def test_nms_hand_cases():
    same = torch.tensor([[0.0, 0, 10, 10]] * 3)
    assert nms(same, torch.tensor([0.2, 0.9, 0.5]), 0.5).tolist() == [1]
    disjoint = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    assert nms(disjoint, torch.tensor([0.1, 0.3, 0.2]), 0.0).tolist() == [1, 2, 0]
    # chain: IoU(A, B) = IoU(B, C) = 1/3, IoU(A, C) = 0: A suppresses B, so C survives (greedy, not transitive)
    chain = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]])
    assert nms(chain, torch.tensor([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]
    assert nms(chain, torch.tensor([0.9, 0.8, 0.7]), 0.34).tolist() == [0, 1, 2]
    # IoU exactly at the threshold is kept (suppression needs IoU > threshold)
    half = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5]])
    assert nms(half, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(half, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]
    # ties: input order decides
    assert nms(same, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(disjoint, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0, 1, 2]
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.long and empty.shape == (0,)


def test_batched_nms_is_class_aware():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    labels = torch.tensor([0, 1, 0, 1])
    # box 2 is suppressed by box 0 (same class); box 1 overlaps box 0 but is another class
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [3, 0, 1]
    assert batched_nms(boxes, scores, torch.zeros(4, dtype=torch.long), 0.5).tolist() == [3, 0]
    assert batched_nms(boxes[:0], scores[:0], labels[:0], 0.5).shape == (0,)
    # ties across classes: input order
    assert batched_nms(boxes[[3, 0]], torch.tensor([0.5, 0.5]), torch.tensor([1, 0]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7])
def test_nms_matches_reference(seed, thr):
    boxes, scores = _random_boxes(150, seed)
    labels = torch.randint(0, 3, (150,), generator=torch.Generator().manual_seed(seed + 10))
    b, s, lab = boxes.numpy(), scores.numpy(), labels.numpy()
    assert nms(boxes, scores, thr).tolist() == _greedy_reference(b, s, np.zeros(150, int), thr)
    assert batched_nms(boxes, scores, labels, thr).tolist() == _greedy_reference(b, s, lab, thr)


def test_nms_many_boxes_is_fast():
    torch.manual_seed(0)
    xy = torch.rand(5000, 2) * 1000
    boxes = torch.cat([xy, xy + torch.rand(5000, 2) * 60 + 5], 1)
    scores = torch.rand(5000)
    t = time.perf_counter()
    keep = nms(boxes, scores, 0.5)
    assert time.perf_counter() - t < 5.0  # ~0.3 s on one core
    assert (scores[keep].diff() <= 0).all()
    assert (box_iou(boxes[keep[:300]], boxes[keep[:300]]).triu(1) <= 0.5).all()
