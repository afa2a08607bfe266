"""Sliding-window inference: grid, weighting, padding, flips; exact match with MONAI (constant mode)."""

from __future__ import annotations

import pytest
import torch

from openmia.engine.inference import importance_map, sliding_window_inference, window_starts
from openmia.errors import ConfigError


def test_window_grid():
    # size 10, window 4, overlap 0.5: step 2, starts 0, 2, 4, 6 (last flush at 10 - 4 = 6)
    assert window_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert window_starts(11, 4, 0.5) == [0, 2, 4, 6, 7]
    assert window_starts(3, 4, 0.5) == [0]


def test_local_predictor_is_reproduced_exactly():
    # a pointwise predictor gives the same result whatever the windows and weights
    x = torch.randn(2, 1, 23, 17, 9)
    pred = lambda t: torch.cat([2 * t, -t], 1)  # noqa: E731
    for mode in ("constant", "gaussian"):
        y = sliding_window_inference(x, pred, (8, 8, 8), overlap=0.25, mode=mode, batch_size=3)
        assert y.shape == (2, 2, 23, 17, 9) and torch.allclose(y, pred(x), atol=1e-6)
    # flips: a pointwise predictor is flip-equivariant, so TTA changes nothing
    y = sliding_window_inference(x, pred, (8, 8, 8), flip_tta=True)
    assert torch.allclose(y, pred(x), atol=1e-6)
    # an image smaller than the window is padded and cropped back
    small = torch.randn(1, 1, 5, 6)
    assert sliding_window_inference(small, pred, (8, 8)).shape == (1, 2, 5, 6)


def test_gaussian_map():
    w = importance_map((9, 9))
    assert w.max() == 1 and w[4, 4] == 1 and w[0, 0] >= 1e-3 and torch.allclose(w, w.T)


def test_matches_monai_constant_mode():
    """Source: MONAI sliding_window_inference(mode="constant") with the same grid."""
    monai_inferers = pytest.importorskip("monai.inferers")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(3, 2, 3, padding=1)).eval()
    # larger than the window on two axes, smaller on one (padded, centred, on both sides)
    for shape in [(1, 1, 30, 26, 19), (1, 1, 30, 11, 19)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            ours = sliding_window_inference(x, net, (16, 16, 16), overlap=0.5, mode="constant")
            ref = monai_inferers.sliding_window_inference(x, (16, 16, 16), 4, net, overlap=0.5, mode="constant")
        assert ours.shape == ref.shape == (1, 2, *shape[2:])
        assert torch.allclose(ours, ref, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="one window size per axis"):
        sliding_window_inference(torch.zeros(1, 1, 8, 8), lambda t: t, (4, 4, 4))
    with pytest.raises(ConfigError, match="overlap"):
        sliding_window_inference(torch.zeros(1, 1, 8, 8), lambda t: t, (4, 4), overlap=1.0)
    with pytest.raises(ConfigError, match="predictor returned"):
        sliding_window_inference(torch.zeros(1, 1, 8, 8), lambda t: t[:, :, :2], (4, 4))


def test_multiscale_logits_resizes_each_scale_back_and_averages():
    from openmia.engine.inference import multiscale_logits

    x = torch.randn(2, 1, 8, 6, generator=torch.Generator().manual_seed(0))
    seen = []

    def width_map(t):  # logits that state the width the predictor saw
        seen.append(tuple(t.shape[2:]))
        return torch.full((t.shape[0], 2, *t.shape[2:]), float(t.shape[-1]))

    # scale 0.5 sees 4 x 3, scale 1 the image, scale 1.5 sees 12 x 9: mean of 3, 6 and 9 = 6
    out = multiscale_logits(x, width_map, (0.5, 1.0, 1.5))
    assert seen == [(4, 3), (8, 6), (12, 9)]
    assert out.shape == (2, 2, 8, 6) and torch.allclose(out, torch.full_like(out, 6.0))
    # scale 1 alone is the predictor's own output; a 3D image resizes trilinearly and comes back whole
    net = torch.nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        assert torch.equal(multiscale_logits(x, net, (1.0,)), net(x))
        assert multiscale_logits(torch.zeros(1, 1, 5, 6, 7), lambda t: t, (0.6, 1.3)).shape == (1, 1, 5, 6, 7)
        # a predictor that returns its input: the average leaves the caller's image untouched
        before = x.clone()
        multiscale_logits(x, lambda t: t, (1.0, 0.5))
        assert torch.equal(x, before)
    for bad in ([], [0.0], [1.0, -2], [5.0], [True]):
        with pytest.raises(ConfigError, match=r"multi-scale TTA: expected scale factors in \(0, 4\]"):
            multiscale_logits(x, net, bad)
