"""Shared scenes for the detector tests."""

from __future__ import annotations

import pytest
import torch


def _squares(n=8, size=64, seed=0):
    """``n`` black images with 1-3 bright squares of side 8-15 px (class 0)."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.zeros(n, 1, size, size)
    boxes, labels = [], []
    for i in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        bs = []
        for _ in range(k):
            x, y = (int(v) for v in torch.randint(4, size - 20, (2,), generator=g))
            s = int(torch.randint(8, 16, (1,), generator=g))
            imgs[i, 0, y : y + s, x : x + s] = 1.0
            bs.append([x, y, x + s, y + s])
        boxes.append(torch.tensor(bs, dtype=torch.float32))
        labels.append(torch.zeros(k, dtype=torch.long))
    return imgs, boxes, labels


@pytest.fixture
def square_scene():
    """``square_scene(n, size, seed) -> (images (n, 1, size, size), boxes, labels)``."""
    return _squares
