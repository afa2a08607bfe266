"""The MedMNIST benchmark script runs end to end (tiny budget, synthetic data) and writes the
records the issue asks for."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "medmnist.py"
KEYS = {"dataset", "model", "seeds", "auc_mean", "auc_seed_sd", "auc_ci_low", "auc_ci_high", "acc_mean",
        "acc_seed_sd", "train_seconds_mean", "paper_auc", "paper_acc", "paper_best_auc"}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("medmnist_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_writes_records_and_paired_tests(bench, tmp_path, monkeypatch):
    # keep the tiny runs tiny: small models for both configurations
    monkeypatch.setattr(bench, "reference_overrides", lambda ds, dims, m: [f"data.dataset={ds}", "model.name=mlp",
                        "train.epochs=2", f"train.max_minutes={m}", "schedule.name=multistep"])
    monkeypatch.setitem(bench.BEST, "2d", ["model.name=cnn_small", "train.epochs=2", "data.augment=flip"])
    out = tmp_path / "results"
    rc = bench.main(["--datasets", "synthetic/binary", "--minutes", "0.2", "--seeds", "0", "1",
                     "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--resamples", "100"])
    assert rc == 0
    records = json.loads((out / "medmnist.json").read_text())
    assert [r["model"] for r in records] == ["reference", "best"]
    for r in records:
        assert KEYS <= set(r) and r["seeds"] == [0, 1]
        assert 0 <= r["auc_ci_low"] <= r["auc_mean"] + 0.2 and r["auc_ci_high"] <= 1
    tests = records[1]["delong_vs_reference"]["per_seed"]
    assert len(tests) == 2 and all(0 <= t["p_value"] <= 1 and t["p_holm"] >= t["p_value"] for t in tests)
    md = (out / "medmnist.md").read_text()
    assert "| synthetic/binary | best |" in md and "Paired test" in md
    # a second call reuses the complete runs instead of training again
    before = sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/result.json"))
    assert bench.main(["--datasets", "synthetic/binary", "--minutes", "0.2", "--seeds", "0", "1",
                       "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--resamples", "100"]) == 0
    assert sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/result.json")) == before
