"""benchmarks/dbn_pretraining.py: the over-seeds summary (hand-computed, and against SciPy's paired
t-test), the written tables of constructed results (no training), and a cached run of another
configuration refused."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("dbn_pretraining")


def _out():
    runs = []
    aucs = {"none": [0.720, 0.725, 0.719], "rbm": [0.724, 0.733, 0.727], "autoencoder": [0.722, 0.719, 0.727]}
    for arm, vals in aucs.items():
        for seed, v in enumerate(vals):
            runs.append({"arm": arm, "seed": seed, "run_dir": "x", "train_seconds": 50.0, "pretrain_seconds": 3.0,
                         "epochs_done": 300, "auc": {"value": v, "ci_low": v - 0.04, "ci_high": v + 0.04},
                         "acc": {"value": 0.5, "ci_low": 0.45, "ci_high": 0.55}})
    return {"dataset": "retinamnist", "hidden": [500, 250], "budget_cpu_minutes": 2.0, "pretrain_epochs": 10,
            "quick": False, "seeds": [0, 1, 2], "runs": runs, "paired": []}


def test_over_seeds_by_hand_and_against_scipy(bench):
    from scipy import stats

    rows = {(r["metric"], r["arm"]): r for r in bench.over_seeds(_out())}
    assert rows["auc", "none"]["difference_to_none"] is None
    assert rows["auc", "none"]["value"]["mean"] == pytest.approx((0.720 + 0.725 + 0.719) / 3)
    d = rows["auc", "rbm"]["difference_to_none"]  # 0.004, 0.008, 0.008: mean 0.006667, sd 0.002309
    assert d["mean"] == pytest.approx(0.02 / 3) and d["n"] == 3
    assert d["ci_high"] - d["mean"] == pytest.approx(4.302653 * 0.0023094 / 3**0.5, rel=1e-4)
    ref = stats.ttest_rel([0.724, 0.733, 0.727], [0.720, 0.725, 0.719])  # independent implementation
    lo, hi = ref.confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"], d["p"]) == pytest.approx((lo, hi, ref.pvalue), rel=1e-6)
    same = rows["acc", "rbm"]["difference_to_none"]  # equal accuracies: difference 0, p 1
    assert same["mean"] == 0 and same["p"] == 1.0


def test_write_gives_the_run_and_seed_tables(bench, tmp_path):
    out = _out()
    out["over_seeds"] = bench.over_seeds(out)
    bench.write(out, tmp_path / "dbn")
    md = (tmp_path / "dbn.md").read_text()
    assert "| rbm | 1 | 0.733 [0.693, 0.773] |" in md
    assert "| auc | rbm | 3 | 0.728 [" in md and "| +0.0067 [" in md
    assert json.loads((tmp_path / "dbn.json").read_text())["over_seeds"][1]["arm"] == "rbm"


def test_a_cached_run_of_another_configuration_is_refused(bench, tmp_path, stale_run):
    runs = tmp_path / "runs"
    stale_run(runs / "none-s0", ["data.dataset=synthetic/binary", "model.name=dbn", "model.kwargs.hidden=[64, 32]",
                                 "train.max_minutes=9"])
    with pytest.raises(RuntimeError, match=r"none-s0 holds a run of another configuration.*train\.max_minutes"):
        bench.main(["--quick", "--runs", str(runs)])
