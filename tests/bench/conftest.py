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


@pytest.fixture
def stale_run():
    """``stale_run(run_dir, overrides)``: a run directory holding only the ``config.yaml`` of
    ``overrides`` (no result) — a cached run of some configuration, for the reuse checks."""
    def write(run_dir: Path, overrides: list[str]) -> Path:
        from openmia.config import dump_yaml, load_config

        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(dump_yaml(load_config(None, overrides)))
        return run_dir

    return write
