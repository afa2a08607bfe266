"""The conventions table in docs/evaluation.md is generated from code (docs/conventions.py): every
openmia value and every peer value is recomputed here, so the table cannot drift from either."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_conventions_table_matches_the_code():
    pytest.importorskip("monai")
    pytest.importorskip("sklearn")
    res = subprocess.run([sys.executable, "-W", "ignore", str(REPO / "docs" / "conventions.py"), "--check"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def test_every_row_shows_a_difference_or_states_an_equality():
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import conventions
    finally:
        sys.path.pop(0)
    pytest.importorskip("monai")
    for row in conventions.ROWS:
        topic, _ours, _peer, _example, ours_value, peer_value = row()
        # a row documents a difference: the two values must differ on its worked example
        assert ours_value != peer_value, f"{topic}: the worked example shows no difference ({ours_value})"
