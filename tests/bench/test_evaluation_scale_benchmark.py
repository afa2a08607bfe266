"""The evaluator-scale benchmark runs end to end on a tiny size and writes its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluation_scale.py"


def test_evaluation_scale_small(tmp_path):
    spec = importlib.util.spec_from_file_location("evaluation_scale_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--cases", "3000", "--resamples", "100", "--reference-cases", "600", "--seeds", "2",
                     "--seg-cases", "3", "--seg-size", "24", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "evaluation_scale.json").read_text())
    recs = out["records"]
    assert recs[0]["seconds"] > 0 and 0.5 < recs[0]["auc"] < 1 and recs[-1]["seconds_per_case"] > 0
    assert recs[2]["ratio_reference_over_evaluator"] > 0
    # the evaluator's point estimates are the reference's (same metric, same cases)
    assert {a["metric"] for a in out["agreement"]} >= {"ap", "mcc", "ece", "brier", "youden_j"}
    assert max(a["value_diff"] for a in out["agreement"]) < 1e-12
    text = (tmp_path / "evaluation_scale.md").read_text()
    assert "| classification: 3,000 cases" in text and "the reference takes" in text
