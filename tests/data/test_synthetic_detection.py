"""Synthetic lesion boxes: deterministic, valid and tight boxes, empty images, two visibly different
classes, and not solvable by a global threshold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from openmia.data.synthetic_detection import lesions


@pytest.fixture(scope="module")
def data():
    return lesions(24, size=96, seed=0, return_masks=True)


def test_deterministic_types_and_shapes(data):
    img, boxes, labels, masks = data
    a_img, a_boxes, a_labels = lesions(6, size=64, seed=3)
    b_img, b_boxes, b_labels = lesions(6, size=64, seed=3)
    assert np.array_equal(a_img, b_img) and all(np.array_equal(x, y) for x, y in zip(a_boxes, b_boxes))
    assert all(np.array_equal(x, y) for x, y in zip(a_labels, b_labels))
    assert not np.array_equal(a_img, lesions(6, size=64, seed=4)[0])
    assert img.shape == (24, 1, 96, 96) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert len(boxes) == len(labels) == len(masks) == 24
    for b, lab, m in zip(boxes, labels, masks):
        assert b.dtype == np.float32 and b.shape == (len(lab), 4) and lab.dtype == np.int64
        assert m.shape == (len(lab), 96, 96) and m.dtype == bool
    with pytest.raises(ValueError, match="1 or 2 classes"):
        lesions(1, classes=("a", "b", "c"))


def test_boxes_valid_tight_and_counts(data):
    img, boxes, labels, masks = data
    n = np.array([len(b) for b in boxes])
    assert (n == 0).any() and (n >= 2).any() and n.max() <= 4  # some images have no lesion
    allb, alll = np.concatenate(boxes), np.concatenate(labels)
    assert set(alll.tolist()) == {0, 1}
    assert (allb[:, :2] >= 0).all() and (allb[:, 2:] <= 96).all() and (allb[:, 2:] > allb[:, :2]).all()
    side = np.maximum(allb[:, 2] - allb[:, 0], allb[:, 3] - allb[:, 1])
    assert 8 <= side.min() and side.max() <= 44 and np.ptp(side) > 15  # varied sizes, ~8-40 px
    for b, m in zip(boxes, masks):
        assert not (m.sum(0) > 1).any()  # lesions do not overlap
        for (x1, y1, x2, y2), mk in zip(b.astype(int), m):
            ys, xs = np.nonzero(mk)
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # tight around the mask


def _contrast(img, mask):
    ring = ndimage.binary_dilation(mask, iterations=4) & ~ndimage.binary_dilation(mask, iterations=1)
    return img[mask].mean() - img[ring].mean()


def test_classes_look_different_and_are_visible(data):
    img, boxes, labels, masks = data
    c = {0: [], 1: []}
    for i in range(len(img)):
        for lab, mk in zip(labels[i], masks[i]):
            c[int(lab)].append(_contrast(img[i, 0], mk))
    # class 0 is darker than its surroundings, class 1 brighter: every lesion is visible locally
    assert max(c[0]) < -0.03 and min(c[1]) > 0.03, (max(c[0]), min(c[1]))


def test_a_global_threshold_does_not_find_the_lesions(data):
    img, _, _, masks = data
    fg = np.stack([m.any(0) for m in masks])
    x = img[:, 0]
    best = max(((x > t) & fg).sum() / ((x > t) | fg).sum() for t in np.linspace(0.05, 0.95, 19))
    best = max(best, max(((x < t) & fg).sum() / ((x < t) | fg).sum() for t in np.linspace(0.05, 0.95, 19)))
    assert best < 0.3, best
