"""Shared fixtures: an isolated OPENMIA_HOME per test, the shared real-data folder, one torch thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("OPENMIA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own OPENMIA_HOME so caches and the run index never leak between tests."""
    home = tmp_path_factory.mktemp("openmia_home")
    monkeypatch.setenv("OPENMIA_HOME", str(home))
    monkeypatch.delenv("OPENMIA_DATA_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real data sets); tests using it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set OPENMIA_SHARED_DATA)")
    return SHARED_DATA


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)  # tests are tiny; one thread avoids oversubscription on 2 cores
    except ImportError:  # pragma: no cover
        pass
