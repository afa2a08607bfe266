"""Synthetic cells with known counts and the density-map counter."""

from __future__ import annotations

import numpy as np
import torch

from openmia.data.synthetic_cells import cells, density_map
from openmia.models import build_model
from openmia.models.detection import density_loss


def test_synthetic_cells_and_density_integrates_to_count():
    imgs, dots = cells(4, size=64, count_range=(5, 15), seed=1)
    assert imgs.shape == (4, 1, 64, 64) and 0 <= imgs.min() and imgs.max() <= 1
    assert all(5 <= len(d) <= 15 for d in dots)
    assert np.array_equal(cells(4, size=64, count_range=(5, 15), seed=1)[0], imgs)  # deterministic
    for d in dots:
        assert abs(density_map(d, (64, 64)).sum() - len(d)) < 0.05 * len(d) + 0.5


def test_density_counter_learns_counts():
    torch.manual_seed(0)
    imgs, dots = cells(24, size=48, count_range=(3, 25), seed=0)
    dens = torch.as_tensor(np.stack([density_map(d, (48, 48)) for d in dots]))[:, None]
    x = torch.as_tensor(imgs)
    m = build_model("density_counter", in_channels=1, input_size=48, width=8, depth=2)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(150):
        loss = density_loss(m(x), dens)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    counts = m.count(x).numpy()
    true = np.array([len(d) for d in dots])
    mae = np.abs(counts - true).mean()
    assert mae < 0.1 * true.mean(), (mae, true.mean())  # fits its training images: loss, targets, head consistent
