"""Issue 21 fault 13: the test suite never touches the user's OPENMIA_HOME — not even from
module- or session-scoped fixtures, which run before the per-test autouse isolation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openmia.data.paths import openmia_home

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def module_home(pytestconfig) -> tuple[str, Path]:
    """What a module-scoped fixture (like ``seg_run`` in tests/engine/test_predict.py) sees."""
    return os.environ.get("OPENMIA_HOME", ""), openmia_home()


def test_module_scoped_fixtures_see_a_temporary_home(module_home, pytestconfig):
    iso = pytestconfig.openmia_isolation
    env, home = module_home
    assert env and Path(env) == iso.session_home
    assert home.resolve() != iso.real_home.resolve()


def test_per_test_home_is_inside_no_real_home(pytestconfig):
    real = pytestconfig.openmia_isolation.real_home.resolve()
    assert openmia_home().resolve() != real and real not in openmia_home().resolve().parents


def test_a_module_fixture_writing_the_run_index_stays_out_of_the_real_home(tmp_path):
    """End to end: pytest on a test module whose module-scoped fixture records a run, with
    OPENMIA_HOME pointing at a stand-in for the user's real home, leaves that home untouched."""
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(HERE.parent / "conftest.py", suite / "conftest.py")
    (suite / "test_writes_index.py").write_text(
        "import json, pytest\n"
        "from openmia.bench.store import RunStore\n"
        "from openmia.data.paths import openmia_home\n\n"
        "@pytest.fixture(scope='module')\n"
        "def run(tmp_path_factory):\n"
        "    rd = tmp_path_factory.mktemp('run')\n"
        "    (rd / 'config.yaml').write_text('task: classification\\ndata: {dataset: d}\\nmodel: {name: m}\\ntrain: {seed: 0}\\n')\n"
        "    (rd / 'result.json').write_text(json.dumps({'test': {}}))\n"
        "    RunStore.default().record(rd)\n"
        "    (openmia_home() / 'marker').write_text('x')\n"
        "    return rd\n\n"
        "def test_uses_run(run):\n"
        "    assert run.is_dir()\n")
    real = tmp_path / "real_home"
    env = {**os.environ, "OPENMIA_HOME": str(real)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--rootdir", str(suite),
                           str(suite / "test_writes_index.py")], cwd=suite, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not real.exists(), f"the suite wrote into the real OPENMIA_HOME: {sorted(p.name for p in real.rglob('*'))}"


@pytest.mark.order_last
def test_real_home_run_index_gained_no_test_rows(pytestconfig):
    """Runs last (see conftest): no run recorded by this session points into the real index."""
    iso = pytestconfig.openmia_isolation
    new = iso.rows() - iso.rows_at_start
    assert not new, f"runs of pytest's temporary folders were recorded in {iso.real_home / 'runs.sqlite'}: {sorted(new)[:5]}"
