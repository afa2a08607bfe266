"""The boundary-metric benchmark script runs, checks values against MONAI and writes its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "surface_distance.py"


def test_surface_distance_benchmark_small(tmp_path, capsys):
    pytest.importorskip("monai")
    spec = importlib.util.spec_from_file_location("surface_distance_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = ["--sizes", "32", "--cases", "2", "--out", str(tmp_path)]
    if importlib.util.find_spec("medpy") is None:
        args.append("--no-medpy")
    assert mod.main(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("32^3: openmia ") and line.endswith("x") and "MONAI" in line
    rec = json.loads((tmp_path / "surface_distance.json").read_text())["records"][0]
    by = rec["max_rel_diff_vs_monai_by_metric"]
    assert max(by["hd"], by["assd"], by["nsd"]) <= 1e-6 and by["hd95"] <= 2e-5 and rec["speedup_vs_monai"] > 0
    assert "| 32^3 |" in (tmp_path / "surface_distance.md").read_text()
