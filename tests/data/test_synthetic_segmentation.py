"""Synthetic segmentation phantoms: deterministic, labelled, and not solvable by a threshold."""

from __future__ import annotations

import numpy as np
import pytest

from openmia.data.synthetic_segmentation import phantoms
from openmia.metrics.segmentation import dice


def test_deterministic_shapes_and_labels():
    a_img, a_mask = phantoms(6, dims=2, size=48, seed=3)
    b_img, b_mask = phantoms(6, dims=2, size=48, seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_img.shape == (6, 1, 48, 48) and a_img.dtype == np.float32 and a_mask.dtype == np.uint8
    assert set(np.unique(a_mask)) <= {0, 1, 2} and (a_mask == 2).any() and (a_mask == 1).any()
    assert 0 <= a_img.min() and a_img.max() <= 1
    img3, mask3 = phantoms(2, dims=3, size=24, seed=0)
    assert img3.shape == (2, 1, 24, 24, 24) and (mask3 > 0).any()
    assert not np.array_equal(phantoms(1, size=32, seed=1)[1], phantoms(1, size=32, seed=2)[1])
    with pytest.raises(ValueError, match="dims 2 or 3"):
        phantoms(1, dims=4)


def test_a_global_threshold_does_not_segment_the_organ():
    img, mask = phantoms(12, dims=2, size=64, seed=0)
    fg = mask > 0
    best = max(np.mean([dice((img[i, 0] > t).astype(np.uint8), fg[i].astype(np.uint8)) for i in range(12)])
               for t in np.linspace(0.05, 0.95, 37))
    # the organ is not an intensity class: the best single threshold stays far from a learned model
    assert best < 0.8, best
