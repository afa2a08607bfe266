"""The benchmark scripts import their helpers (``_runs``, ...) as siblings, which works because
``python benchmarks/<name>.py`` puts the script's folder on ``sys.path``; the tests load the
scripts from their files, so they put that folder on the path the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))


import importlib.util  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def load_script():
    """``load_script("medmnist")``: a benchmark script loaded from its file as a module."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_script_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
