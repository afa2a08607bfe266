"""Shared fixtures of the few-labels tests: small splits so every run is a few seconds."""

from __future__ import annotations

import pytest


def _cut(monkeypatch, sizes: dict[str, int]) -> dict[str, int]:
    """``openmia.data.catalog.load_split`` cut to the first ``sizes[split]`` cases (classes of the
    synthetic sets are mixed along the split, so each cut holds every class)."""
    import numpy as np

    from openmia.data import catalog
    from openmia.engine.semi import subset_split

    real = catalog.load_split

    def load_split(name, split, **kw):
        s = real(name, split, **kw)
        return subset_split(s, np.arange(min(sizes[split], len(s.case_ids))))

    monkeypatch.setattr(catalog, "load_split", load_split)
    return sizes


@pytest.fixture
def small_data(monkeypatch):
    return _cut(monkeypatch, {"train": 160, "val": 40, "test": 60})


@pytest.fixture
def tiny_data(monkeypatch):
    return _cut(monkeypatch, {"train": 64, "val": 32, "test": 40})
