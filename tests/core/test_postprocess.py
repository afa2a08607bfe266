"""Largest-component post-processing: hand-made cases and a cross-check with scikit-image."""

import numpy as np
import pytest

from openmia.errors import ConfigError
from openmia.transforms.postprocess import keep_largest_component, postprocess_labels


def test_keeps_the_largest_component_of_each_class_by_hand():
    lab = np.zeros((6, 8), np.uint8)
    lab[0:2, 0:2] = 1  # class 1: 4 pixels, removed
    lab[3:6, 0:3] = 1  # class 1: 9 pixels, kept
    lab[0, 5:8] = 2  # class 2: 3 pixels, kept
    lab[5, 7] = 2  # class 2: 1 pixel, removed
    lab[2, 4] = 2  # touches nothing of class 2 face-wise (diagonal neighbours are separate)
    out = postprocess_labels(lab, "largest", 3)
    want = np.zeros_like(lab)
    want[3:6, 0:3] = 1
    want[0, 5:8] = 2
    np.testing.assert_array_equal(out, want)
    assert out.dtype == lab.dtype and lab[0, 0] == 1  # the input is not modified
    assert postprocess_labels(lab, "none", 3) is lab


def test_agrees_with_skimage_in_3d():
    from skimage.measure import label as sk_label

    rng = np.random.default_rng(0)
    lab = (rng.random((12, 13, 14)) < 0.35).astype(np.uint8) * rng.integers(1, 3, (12, 13, 14)).astype(np.uint8)
    out = keep_largest_component(lab, [1, 2])
    for k in (1, 2):
        comp = sk_label(lab == k, connectivity=1)
        sizes = np.bincount(comp.ravel())[1:]
        np.testing.assert_array_equal(out == k, comp == int(np.argmax(sizes)) + 1)


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="segmentation.postprocess: expected one of"):
        postprocess_labels(np.zeros((2, 2), np.uint8), "biggest", 2)


def test_fill_empty_takes_the_region_around_the_peak_by_hand():
    lab = np.zeros((5, 7), np.uint8)
    lab[0, 0] = 2  # class 2 is present: untouched
    p1 = np.zeros((5, 7), np.float32)
    p1[1:3, 1:3] = 0.4  # a blob above half the peak, connected to the peak
    p1[2, 2] = 0.6  # the peak
    p1[4, 5:7] = 0.45  # above half the peak but not connected to it: left out
    p1[3, 1] = 0.2  # connected but below half the peak: left out
    out = postprocess_labels(lab, "none", 3, fill_empty=0.5, prob=lambda k: {1: p1, 2: np.zeros_like(p1)}[k])
    want = lab.copy()
    want[1:3, 1:3] = 1
    np.testing.assert_array_equal(out, want)
    assert lab[1, 1] == 0  # the input is not modified
    # nothing missing: the label map comes back as it is, probabilities never asked for
    full = want.copy()
    assert postprocess_labels(full, "none", 3, fill_empty=0.5, prob=lambda k: pytest.fail("asked")) is full


def test_fill_empty_agrees_with_skimage_in_3d_after_largest():
    from skimage.measure import label as sk_label

    rng = np.random.default_rng(1)
    p = rng.random((9, 10, 11)).astype(np.float32)
    lab = np.zeros(p.shape, np.uint8)
    out = postprocess_labels(lab, "largest", 2, fill_empty=0.7, prob=lambda k: p)
    peak = np.unravel_index(np.argmax(p), p.shape)
    comp = sk_label(p >= 0.7 * p[peak], connectivity=1)
    np.testing.assert_array_equal(out == 1, comp == comp[peak])
    assert out[peak] == 1 and (out == 1).sum() > 1


def test_fill_empty_needs_probabilities_of_the_right_shape():
    lab = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="needs the class probabilities"):
        postprocess_labels(lab, "none", 2, fill_empty=0.5)
    with pytest.raises(ValueError, match=r"prob\(1\) has shape \(3, 4\)"):
        postprocess_labels(lab, "none", 2, fill_empty=0.5, prob=lambda k: np.ones((3, 4)))
