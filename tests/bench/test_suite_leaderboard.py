"""The leaderboard's rankings over every seed and the Task hooks it reads (issue 25).

The cells here are constructed run directories (``result.json`` + test predictions and truth in
the classification task's layout), so the statistics run on known data without training: three
models x three seeds on 40 binary cases, where seed 0 ranks the models a > b > c and seeds 1 and
2 rank them b > a > c. The mean ranks are worked out by hand below."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmia.bench.leaderboard import SCHEMA, build_leaderboard
from openmia.bench.suite import load_suite

SUITE = """
name: seeds
datasets: [synthetic/binary]
models:
  a: {set: {model.name: mlp}}
  b: {set: {model.name: cnn_small}}
  c: {set: {model.name: resnet18}}
seeds: [0, 1, 2]
metrics: [acc]
resamples: 200
rank_resamples: 100
"""
N = 40
# correct cases per model and seed; each model's correct cases are a prefix of the same case
# order, so a worse model's correct set lies inside a better one's (every per-case ranking agrees)
CORRECT = {0: {"a": 38, "b": 28, "c": 16}, 1: {"a": 28, "b": 38, "c": 16}, 2: {"a": 28, "b": 38, "c": 16}}


def _write_cell(rd, n_correct: int) -> None:
    """A finished classification run directory whose test accuracy is ``n_correct / N``."""
    from openmia import fileio
    from openmia.evaluation.writers import write_classification_predictions, write_classification_truth

    ids = [f"case{i:02d}" for i in range(N)]
    y = np.arange(N) % 2
    right = np.arange(N) < n_correct
    p1 = np.where(right, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.2, 0.8))  # P(positive); 0.5 threshold
    names = {"task_type": "binary", "label_names": ["neg", "pos"]}
    write_classification_predictions(rd / "predictions" / "test.csv", ids, np.stack([1 - p1, p1], 1), **names)
    write_classification_truth(rd / "truth" / "test.csv", ids, y, **names)
    acc = n_correct / N
    fileio.write_json(rd / "result.json", {"test": {"acc": {"value": acc, "ci_low": acc - 0.1, "ci_high": acc + 0.1}}})


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "seeds.yaml"
    path.write_text(SUITE)
    s = load_suite(path, out_dir=tmp_path / "out")
    for c in s.cells:
        _write_cell(s.run_dir(c), CORRECT[c.seed][c.model])
    return s


def test_rankings_average_every_seed(suite):
    board = build_leaderboard(suite)
    assert board["schema"] == SCHEMA == "openmia.leaderboard/2"
    (b,) = board["blocks"]
    assert b["rank_seeds"] == [0, 1, 2] and set(b["rankings_per_seed"]) == {0, 1, 2}
    # by hand: seed 0 ranks a 1, b 2, c 3; seeds 1 and 2 rank b 1, a 2, c 3
    expected = {"a": (1 + 2 + 2) / 3, "b": (2 + 1 + 1) / 3, "c": 3.0}
    for scheme in ("aggregate-then-rank", "rank-then-aggregate"):
        got = {m: r["rank"] for m, r in b["rankings"][scheme].items()}
        assert got == pytest.approx(expected), scheme
        assert b["rankings"][scheme]["a"]["ranks_per_seed"] == {0: 1.0, 1: 2.0, 2: 2.0}
        assert all(r["n_seeds"] == 3 for r in b["rankings"][scheme].values())
    assert set(b["rankings"]) == {"aggregate-then-rank", "rank-then-aggregate", "test-then-rank"}
    # the first seed alone would have put a first: the averaged ranking does not
    assert b["rankings_per_seed"][0]["aggregate-then-rank"]["a"]["rank"] == 1
    # rank stability = the seeds' own bootstrap statistics, averaged over the seeds
    agg = b["rankings"]["aggregate-then-rank"]
    for m in "abc":
        per = [b["rankings_per_seed"][s]["aggregate-then-rank"][m] for s in (0, 1, 2)]
        assert agg[m]["p_rank1"] == pytest.approx(np.mean([r["p_rank1"] for r in per]))
        assert agg[m]["mean_bootstrap_rank"] == pytest.approx(np.mean([r["mean_bootstrap_rank"] for r in per]))
    # gaps of 10-12 cases of 40: each seed's best ranks first in (nearly) every resample
    assert agg["b"]["p_rank1"] == pytest.approx(2 / 3, abs=0.05) and agg["a"]["p_rank1"] == pytest.approx(1 / 3, abs=0.05)
    assert agg["c"]["p_rank1"] == pytest.approx(0.0, abs=0.02)
    # values: the seed means; paired tests against the best on every seed
    rows = {r["model"]: r for r in b["rows"]}
    assert rows["b"]["value"] == pytest.approx((28 + 38 + 38) / 3 / N) and b["best"] == "b"
    assert {t["seed"] for t in rows["a"]["tests_vs_best"]} == {0, 1, 2}
    assert "every seed" in board["conventions"]["rankings"]


def test_seeds_without_every_model_are_not_ranked(suite):
    import shutil

    gone = next(c for c in suite.cells if c.model == "c" and c.seed == 2)
    shutil.rmtree(suite.run_dir(gone))
    board = build_leaderboard(suite, allow_missing=True)
    (b,) = board["blocks"]
    assert b["rank_seeds"] == [0, 1]
    got = {m: r["rank"] for m, r in b["rankings"]["aggregate-then-rank"].items()}
    assert got == pytest.approx({"a": 1.5, "b": 1.5, "c": 3.0})
    rows = {r["model"]: r for r in b["rows"]}
    assert {t["seed"] for t in rows["a"]["tests_vs_best"]} == {0, 1, 2}  # seed 2 still has a paired test (a vs b)


def test_report_shows_seed_averaged_ranks(suite, tmp_path):
    from openmia.bench.report import leaderboard_rows, write_report

    board = build_leaderboard(suite)
    files = write_report(suite, board, tmp_path / "report")
    rows = {r["model"]: r for r in leaderboard_rows(board)}
    assert rows["a"]["rank_aggregate_then_rank"] == pytest.approx(5 / 3)
    assert rows["a"]["ranks_per_seed_aggregate_then_rank"] == "0:1 1:2 2:2" and rows["a"]["rank_seeds"] == "0 1 2"
    html = files["html"].read_text()
    assert "1.67 / 1.67" in html and "seed 0: 1.0 / 1.0" in html and "averaged over those seeds" in html
    assert json.loads(files["json"].read_text())["schema"] == "openmia.leaderboard/2"


def test_a_task_without_compare_inputs_gets_values_only(suite, monkeypatch):
    from openmia.tasks.classification import ClassificationTask

    monkeypatch.setattr(ClassificationTask, "compare_inputs", classmethod(lambda cls, run_dir, cfg: None))
    (b,) = build_leaderboard(suite)["blocks"]
    assert b["rankings"] == {} and b["rank_seeds"] == []
    assert all(r["tests_vs_best"] == [] for r in b["rows"]) and len(b["rows"]) == 3


def test_default_metrics_come_from_the_task(suite, monkeypatch):
    from openmia.tasks.classification import ClassificationTask

    suite.metrics = None
    monkeypatch.setattr(ClassificationTask, "leaderboard_metrics", ("acc",))
    board = build_leaderboard(suite)
    assert [b["metric"] for b in board["blocks"]] == ["acc"]


# -- the Task hooks of the families whose run directories compare reads (constructed files)

def _cfg(task: str, dataset: str):
    from openmia.config import RunConfig

    return RunConfig.from_dict({"task": task, "data": {"dataset": dataset}})


def test_generative_and_landmark_hooks_feed_compare(tmp_path):
    from openmia import fileio
    from openmia.evaluation.compare import compare_files
    from openmia.evaluation.landmarks import write_case_vectors, write_points
    from openmia.tasks.registry import get_task

    rng = np.random.default_rng(0)
    truth = {f"c{i}": rng.random((8, 8)).astype(np.float32) for i in range(6)}
    for task, noise in (("inpainting", (0.05, 0.2)), ("denoising", (0.05, 0.2)), ("reconstruction", (0.05, 0.2))):
        runs = {}
        for name, sd in zip(("good", "bad"), noise):
            rd = tmp_path / task / name
            for cid, img in truth.items():
                fileio.save_npy(rd / "truth" / "test" / f"{cid}.npy", img)
                fileio.save_npy(rd / "predictions" / "test" / f"{cid}.npy",
                                np.clip(img + sd * rng.standard_normal(img.shape), 0, 1).astype(np.float32))
                fileio.save_npy(rd / "masks" / "test" / f"{cid}.npy", (np.arange(64).reshape(8, 8) % 3 == 0).astype(np.uint8))
            runs[name] = get_task(task).compare_inputs(rd, _cfg(task, "synthetic/seg2d"))
        ci = runs["good"]
        metrics = list(get_task(task).leaderboard_metrics)
        res = compare_files(ci.task, ci.truth, {k: v.predictions for k, v in runs.items()}, None, metrics=metrics,
                            labels=ci.labels, n_resamples=50, rank_resamples=20, **ci.kwargs)
        ranks = {r["model"]: r["rank"] for r in res["ranking"] if r["metric"] == metrics[0]}
        assert ranks == {"good": 1, "bad": 2}, task
    assert get_task("denoising").compare_inputs(tmp_path / "nothing", _cfg("denoising", "synthetic/seg2d")) is None

    runs = {}
    ids = [f"c{i}" for i in range(8)]
    true_pts = {c: rng.uniform(5, 25, 2) for c in ids}
    for name, sd in (("good", 0.5), ("bad", 4.0)):
        rd = tmp_path / "landmarks" / name
        write_points(rd / "truth" / "test.csv", [(c, "tip", p) for c, p in true_pts.items()])
        write_points(rd / "predictions" / "test.csv", [(c, "tip", p + sd * rng.standard_normal(2)) for c, p in true_pts.items()])
        write_case_vectors(rd / "truth" / "test_spacing.csv", "s", {c: (1.0, 1.0) for c in ids})
        write_case_vectors(rd / "truth" / "test_shapes.csv", "n", {c: (32, 32) for c in ids})
        runs[name] = get_task("landmarks").compare_inputs(rd, _cfg("landmarks", "synthetic/landmarks2d"))
    ci = runs["good"]
    res = compare_files(ci.task, ci.truth, {k: v.predictions for k, v in runs.items()}, None, metrics=["radial_error"],
                        labels=ci.labels, n_resamples=50, rank_resamples=20, **ci.kwargs)
    assert {r["model"]: r["rank"] for r in res["ranking"]} == {"good": 1, "bad": 2}


def test_cli_report_prints_the_mean_rank(suite, tmp_path, capsys):
    from openmia.cli.main import main

    assert main(["benchmark", "report", str(suite.path), "--out", str(tmp_path / "rep"), "--out-dir", str(suite.out_dir)]) == 0
    out = capsys.readouterr().out
    assert "mean rank (3 seeds)" in out
    line_a = next(x for x in out.splitlines() if x.split()[1:2] == ["a"])
    assert line_a.rstrip().endswith("1.67")
