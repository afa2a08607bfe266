"""benchmarks/label_efficiency.py: the over-seeds summary the target is judged on (hand-computed,
and the t interval against SciPy), and the written table and figure of constructed results (no
training)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("label_efficiency")


def _out():
    pts, paired = [], []
    for seed, (scr, ssl) in enumerate([(0.60, 0.65), (0.62, 0.70), (0.64, 0.69)]):
        for arm, v in (("scratch", scr), ("ssl", ssl)):
            pts.append({"arm": arm, "fraction": 0.1, "seed": seed, "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05,
                        "epochs_done": 10, "train_seconds": 60.0, "run_dir": "x"})
        paired.append({"fraction": 0.1, "seed": seed, "model_a": "ssl", "model_b": "scratch", "diff": ssl - scr,
                       "ci_low": ssl - scr - 0.02, "ci_high": ssl - scr + 0.02, "test": "delong", "p_holm": 0.01})
    return {"dataset": "synthetic/binary", "task": "classification", "metric": "auc", "model": "cnn_small",
            "budget_cpu_minutes": 1.0, "quick": False, "fractions": [0.1], "seeds": [0, 1, 2],
            "pretrain": {"method": "simclr", "run_dir": "p", "cpu_seconds": 30.0, "probe_test": None},
            "points": pts, "paired": paired, "cpu_seconds_total": 400.0}


def test_over_seeds_by_hand_and_against_scipy(bench):
    from scipy import stats

    out = _out()
    rows = {r["arm"]: r for r in bench.over_seeds(out)}
    assert rows["scratch"]["metric"]["mean"] == pytest.approx(0.62) and rows["scratch"]["difference_to_scratch"] is None
    d = rows["ssl"]["difference_to_scratch"]  # differences 0.05, 0.08, 0.05: mean 0.06, sd 0.01732
    assert d["mean"] == pytest.approx(0.06)
    assert d["ci_high"] - d["mean"] == pytest.approx(4.302653 * 0.0173205 / 3**0.5, rel=1e-4)
    ref = stats.ttest_1samp([0.05, 0.08, 0.05], 0.0)  # independent implementation
    lo, hi = ref.confidence_interval(0.95)
    assert (d["ci_low"], d["ci_high"], d["p"]) == pytest.approx((lo, hi, ref.pvalue), rel=1e-9)


def test_write_gives_the_seed_table_and_the_figure(bench, tmp_path):
    out = _out()
    out["over_seeds"] = bench.over_seeds(out)
    stem = tmp_path / "le"
    bench.write(out, stem)
    md = stem.with_suffix(".md").read_text()
    assert "| 0.1 | ssl | 3 | 0.680 [" in md and "| +0.060 [" in md  # seeds, mean over them; difference to scratch
    assert stem.with_suffix(".png").stat().st_size > 1000
    assert json.loads(stem.with_suffix(".json").read_text())["over_seeds"][1]["arm"] == "ssl"


def test_an_interval_past_the_metric_range_is_kept_in_the_table_and_said(bench, tmp_path):
    """Two seeds far apart: the t interval (12.706 x sd / sqrt 2) reaches past AUC 1; the table keeps the
    honest interval and says the plot draws it within [0, 1]; within range, nothing is said."""
    out = _out()
    out["seeds"] = [0, 1]
    out["points"] = [p for p in out["points"] if p["seed"] < 2]
    out["paired"] = [r for r in out["paired"] if r["seed"] < 2]
    for p in out["points"]:
        if p["arm"] == "ssl":
            p["value"] = {0: 0.90, 1: 0.99}[p["seed"]]
    out["over_seeds"] = bench.over_seeds(out)
    ssl = next(r for r in out["over_seeds"] if r["arm"] == "ssl")["metric"]
    assert ssl["ci_high"] == pytest.approx(0.945 + 12.7062 * 0.0636396 / 2**0.5, rel=1e-4) and ssl["ci_high"] > 1
    assert bench.outside_range(ssl) and not bench.outside_range({"ci_low": 0.2, "ci_high": 0.9})
    assert not bench.outside_range({"ci_low": None, "ci_high": None})
    bench.write(out, tmp_path / "le")
    md = (tmp_path / "le.md").read_text()
    assert f"0.945 [{ssl['ci_low']:.3f}, {ssl['ci_high']:.3f}]" in md and "the plot draws it within [0, 1]" in md
    bench.write({**_out(), "over_seeds": bench.over_seeds(_out())}, tmp_path / "ok")
    assert "draws it within" not in (tmp_path / "ok.md").read_text()


def test_seeds_at_gives_one_fraction_its_own_seeds(bench, tmp_path):
    import argparse

    ap = argparse.ArgumentParser()
    assert bench._seeds_at(["1.0=0,1,2", "0.25=4"], ap) == {1.0: [0, 1, 2], 0.25: [4]}
    with pytest.raises(SystemExit):  # argparse's usage error, naming the item
        bench._seeds_at(["1.0:0,1"], ap)
    # a point on fewer seeds is summarised over its own seeds (n in the table)
    out = _out()
    out["fractions"] = [0.1, 1.0]
    for seed, v in ((0, 0.70), (1, 0.74)):
        out["points"].append({"arm": "scratch", "fraction": 1.0, "seed": seed, "value": v, "ci_low": v - 0.05,
                              "ci_high": v + 0.05, "epochs_done": 10, "train_seconds": 60.0, "run_dir": "x"})
    out["over_seeds"] = bench.over_seeds(out)
    full = next(r for r in out["over_seeds"] if r["fraction"] == 1.0)
    assert full["metric"]["n"] == 2 and full["metric"]["mean"] == pytest.approx(0.72)
    bench.write(out, tmp_path / "le")
    assert "| 1 | scratch | 2 | 0.720 [" in (tmp_path / "le.md").read_text()


def test_seeds_at_a_fraction_that_is_not_trained_is_a_usage_error(bench, capsys):
    with pytest.raises(SystemExit) as exc:  # before any run starts
        bench.main(["--fractions", "0.1", "0.25", "--seeds-at", "1.0=0,1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "fraction(s) 1 " in err and "--fractions (0.1 0.25)" in err


def test_a_cached_run_of_another_configuration_is_refused(bench, tmp_path, stale_run):
    """A finished or partial run in --runs is reused only when it was made with the same settings;
    one made with another budget is an error naming the key, not a stale number in the table."""
    runs = tmp_path / "runs"
    stale_run(runs / "pretrain-simclr", ["task=pretrain", "pretrain.method=simclr", "data.dataset=synthetic/binary",
                                         "train.max_minutes=7"])
    with pytest.raises(RuntimeError, match=r"pretrain-simclr holds a run of another configuration.*train\.max_minutes"):
        bench.main(["--quick", "--runs", str(runs)])


def test_merge_keeps_earlier_points_and_checks_their_settings(bench, tmp_path):
    """--merge: a later session adds fractions or seeds to a results file whose runs are gone; the
    file's points come back by (fraction, seed) with the pre-training run their ssl arm used, and a
    file made with other settings is refused, naming what differs."""
    import argparse

    old = _out()  # written before settings and pre-training ids were recorded
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    args = argparse.Namespace(merge=path, dataset="synthetic/binary", model="cnn_small", minutes=1.0, method="simclr")
    kept, pool = bench._kept_points(args, {"train": ["x=1"]})
    assert sorted(kept) == [(0.1, 0), (0.1, 1), (0.1, 2)]
    assert [p["arm"] for p in kept[(0.1, 1)]["points"]] == ["scratch", "ssl"] and len(kept[(0.1, 1)]["paired"]) == 1
    (pid,) = pool
    assert kept[(0.1, 1)]["points"][1]["pretrain_id"] == pid == "p@30.000"
    # legacy rows of arm - scratch held scratch's estimate in estimate_a: put right on merge
    old["paired"][1].update(estimate_a=0.62, estimate_b=0.70)
    path.write_text(json.dumps(old))
    row = bench._kept_points(args, {})[0][(0.1, 1)]["paired"][0]
    assert (row["model_a"], row["estimate_a"], row["estimate_b"]) == ("ssl", 0.70, 0.62)
    with pytest.raises(SystemExit, match="budget_cpu_minutes: kept 1.0, now 5.0"):
        bench._kept_points(argparse.Namespace(**{**vars(args), "minutes": 5.0}), {})
    old["settings"] = {"train": ["x=1"], "pretrain": ["y=2"]}
    path.write_text(json.dumps(old))
    with pytest.raises(SystemExit, match=r"pretrain: kept \['y=2'\], now \['y=3'\]"):
        bench._kept_points(args, {"train": ["x=1"], "pretrain": ["y=3"]})


def test_two_pretraining_runs_are_named_and_each_ssl_point_counts_its_own(bench, tmp_path):
    out = _out()
    out["pretrains"] = [{"id": "a", "method": "simclr", "cpu_seconds": 30.0}, {"id": "b", "method": "simclr", "cpu_seconds": 40.0}]
    for p in out["points"]:
        if p["arm"] == "ssl":
            p["pretrain_id"] = "a" if p["seed"] < 2 else "b"
    out["over_seeds"] = bench.over_seeds(out)
    bench.write(out, tmp_path / "le")
    md = (tmp_path / "le.md").read_text()
    assert "in 2 runs with the same settings" in md
    assert "run 1 30 CPU-s served the ssl points at 0.1 (seeds 0, 1); run 2 40 CPU-s served the ssl points at 0.1 (seed 2)" in md
    assert "| 0.1 | 1 | ssl | 0.700 [0.650, 0.750] | 10 | 60.0 | 90.0 |" in md
    assert "| 0.1 | 2 | ssl | 0.690 [0.640, 0.740] | 10 | 60.0 | 100.0 |" in md
