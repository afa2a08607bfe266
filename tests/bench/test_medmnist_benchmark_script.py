"""The MedMNIST benchmark script runs end to end (tiny budget, synthetic data) and writes the
records the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

KEYS = {"dataset", "model", "seeds", "auc_mean", "auc_seed_sd", "auc_ci_low", "auc_ci_high", "acc_mean",
        "acc_seed_sd", "train_seconds_mean", "paper_auc", "paper_acc", "paper_best_auc"}


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("medmnist")


TINY_SUITE = """
name: medmnist-tiny
base:
  train: {epochs: 2}
datasets: [synthetic/binary]
models:
  reference: {set: {model.name: mlp, schedule.name: multistep}}
  best: {set: {model.name: cnn_small, data.augment: flip}}
seeds: [5]
"""


def test_script_writes_records_and_paired_tests(bench, tmp_path):
    # the script runs a suite's cells: a tiny one with small models for both configurations
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    out, runs = tmp_path / "results", tmp_path / "runs"
    argv = ["--suite", str(suite), "--minutes", "0.2", "--seeds", "0", "1", "--runs-dir", str(runs), "--out", str(out),
            "--resamples", "100"]
    assert bench.main(argv) == 0
    records = json.loads((out / "medmnist.json").read_text())
    assert [r["model"] for r in records] == ["reference", "best"]
    for r in records:
        assert KEYS <= set(r) and r["seeds"] == [0, 1]
        assert 0 <= r["auc_ci_low"] <= r["auc_mean"] + 0.2 and r["auc_ci_high"] <= 1
    tests = records[1]["delong_vs_reference"]["per_seed"]
    assert len(tests) == 2 and all(0 <= t["p_value"] <= 1 and t["p_holm"] >= t["p_value"] for t in tests)
    md = (out / "medmnist.md").read_text()
    assert "| synthetic/binary | best |" in md and "Paired test" in md and "model.name=cnn_small" in md
    # the runs are the suite's cells: `openmia benchmark status` with the same choices reports them done,
    # in the run directories the script read
    from openmia import api

    derived = tmp_path / "derived.yaml"  # the suite as the command line restricted it
    derived.write_text(TINY_SUITE.replace("seeds: [5]", "seeds: [0, 1]\nbudgets: [0.2]"))
    status = api.benchmark_status(derived, out_dir=runs, overrides=["eval.n_resamples=100"])
    assert len(status) == 4 and {r["status"] for r in status} == {"done"}
    assert {Path(r["run_dir"]).parent for r in status} == {runs / "cells"}
    assert (runs / "suite.sqlite").is_file()
    # a second call reuses the complete runs instead of training again
    before = sorted(p.stat().st_mtime for p in runs.glob("cells/*/result.json"))
    assert len(before) == 4
    assert bench.main(argv) == 0
    assert sorted(p.stat().st_mtime for p in runs.glob("cells/*/result.json")) == before


def test_a_cell_finished_by_the_suite_is_reused_by_the_script(bench, tmp_path):
    """`openmia benchmark run` trains the cell; the script then finds it done (no training) and reports it."""
    from openmia import api

    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    runs, out = tmp_path / "runs", tmp_path / "results"
    res = api.benchmark_run(suite, out_dir=runs, threads=1)
    assert res["counts"]["done"] == 2
    before = sorted(p.stat().st_mtime for p in runs.glob("cells/*/result.json"))
    assert bench.main(["--suite", str(suite), "--runs-dir", str(runs), "--out", str(out)]) == 0
    assert sorted(p.stat().st_mtime for p in runs.glob("cells/*/result.json")) == before
    records = json.loads((out / "medmnist.json").read_text())
    by_model = {r["model"]: r for r in records}
    for r in api.benchmark_status(suite, out_dir=runs):  # the table's numbers are the cells' own
        assert by_model[r["model"]]["auc_per_seed"] == [r["metrics"]["test"]["auc"]["value"]]
