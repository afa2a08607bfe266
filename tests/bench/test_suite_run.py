"""Running a suite end to end (issue 25): a tiny suite (2 synthetic sets x 2 models x 1 seed, one
epoch) trained once per module on the local process pool; re-running reuses it; a run directory
deleted by hand is trained again; an interrupted cell resumes; a changed cell is retrained with
the reason; a failed cell keeps its log and does not stop the others; Ray gives the same metrics
as the local pool with --deterministic; the report opens in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from openmia import api

# trains 4 + 4 + 6 small cells (1-2 minutes on 2 busy cores): run with `pytest -m slow tests/bench`
pytestmark = pytest.mark.slow
from openmia.bench.suite import load_suite
from openmia.bench.suite_store import SuiteStore

TINY = """
name: tiny
description: two synthetic sets x two small models, one epoch
base:
  data: {batch_size: 64}
  train: {epochs: 1}
  eval: {n_resamples: 200}
datasets: [synthetic/binary, synthetic/multiclass]
models:
  cnn: {set: {model.name: cnn_small, model.kwargs: {width: 4}}}
  mlp: {set: {model.name: mlp}}
seeds: [0]
metrics: [auc, acc]
resamples: 200
rank_resamples: 50
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny suite trained with --deterministic on the local pool (2 workers, 1 thread each)."""
    root = tmp_path_factory.mktemp("suite")
    path = root / "tiny.yaml"
    path.write_text(TINY)
    t0 = time.perf_counter()
    res = api.benchmark_run(path, parallel=2, threads=1, deterministic=True, out_dir=root / "out")
    return {"path": path, "out": root / "out", "res": res, "wall": time.perf_counter() - t0, "root": root}


def _metrics(out: Path, path: Path) -> dict[str, dict]:
    return {(c["dataset"], c["model"]): c["metrics"]["test"]
            for c in api.benchmark_status(path, deterministic=True, out_dir=out)}


def test_cells_are_ordinary_runs(tiny):
    res = tiny["res"]
    assert res["counts"] == {"pending": 0, "running": 0, "done": 4, "failed": 0}
    assert [s["action"] for s in res["steps"]] == ["train"] * 4 and {s["reason"] for s in res["steps"]} == {"new"}
    suite = load_suite(tiny["path"], deterministic=True, out_dir=tiny["out"])
    for c in suite.cells:
        rd = suite.run_dir(c)
        prov = json.loads((rd / "provenance.json").read_text())
        assert prov["config"]["train"]["deterministic"] is True and prov["torch_threads"] == 1
        assert (rd / "metrics.jsonl").is_file() and (rd / "predictions" / "test.csv").is_file()
        row = SuiteStore(suite.store_path).get(c.id)
        assert row["status"] == "done" and row["attempts"] == 1
        auc = row["metrics"]["test"]["auc"]
        assert auc == json.loads((rd / "result.json").read_text())["test"]["auc"]
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
        assert "cell " + c.id in suite.log_path(c).read_text()


def test_running_again_reuses_every_cell(tiny):
    res = api.benchmark_run(tiny["path"], parallel=2, deterministic=True, out_dir=tiny["out"])
    assert [s["action"] for s in res["steps"]] == ["reuse"] * 4 and res["results"] == []
    assert res["counts"]["done"] == 4


def test_status_cli_shows_a_progress_bar(tiny, capsys):
    from openmia.cli.main import main

    assert main(["benchmark", "status", str(tiny["path"]), "--deterministic", "--out-dir", str(tiny["out"])]) == 0
    out = capsys.readouterr().out
    assert "[" + "#" * 30 + "] 4/4 done, 0 running, 0 failed, 0 pending" in out
    assert main(["benchmark", "status", str(tiny["path"]), "--out-dir", str(tiny["out"])]) == 0  # no --deterministic: other ids
    assert "0/4 done" in capsys.readouterr().out


@pytest.fixture(scope="module")
def report(tiny):
    out = tiny["root"] / "report"
    board = api.benchmark_report(tiny["path"], out, deterministic=True, out_dir=tiny["out"])
    return {"board": board, "out": out}


def test_report_files(report, tiny):
    board, out = report["board"], report["out"]
    assert {p.name for p in out.iterdir()} == {"report.html", "leaderboard.csv", "leaderboard.json", "figures"}
    lines = (out / "leaderboard.csv").read_text().splitlines()
    assert lines[0].startswith("dataset,task,metric,higher_is_better,position,model,value,ci_low,ci_high")
    assert len(lines) == 1 + 2 * 2 * 2  # data sets x metrics x models
    blocks = {(b["dataset"], b["metric"]): b for b in board["blocks"]}
    assert set(blocks) == {(d, m) for d in ("synthetic/binary", "synthetic/multiclass") for m in ("auc", "acc")}
    status = _metrics(tiny["out"], tiny["path"])
    for (ds, metric), b in blocks.items():
        vals = {r["model"]: r["value"] for r in b["rows"]}
        assert vals == {m: status[(ds, m)][metric]["value"] for m in ("cnn", "mlp")}  # one seed: the cell's value
        best = max(vals, key=vals.get)
        assert b["best"] == best and b["rows"][0]["model"] == best
        other = next(r for r in b["rows"] if r["model"] != best)
        (t,) = other["tests_vs_best"]
        assert t["diff"] == pytest.approx(other["value"] - vals[best], abs=1e-9)  # paired on the same cases
        assert t["ci_low"] <= t["diff"] <= t["ci_high"] and t["p_holm"] == pytest.approx(t["p_value"])  # one test: Holm = raw
    # the paired test is openmia compare's on the cells' prediction files
    suite = load_suite(tiny["path"], deterministic=True, out_dir=tiny["out"])
    cells = {(c.dataset, c.model): c for c in suite.cells}
    rd = {m: suite.run_dir(cells[("synthetic/binary", m)]) for m in ("cnn", "mlp")}
    comp = api.compare("classification", rd["cnn"] / "truth" / "test.csv",
                       {m: rd[m] / "predictions" / "test.csv" for m in rd}, tiny["root"] / "cmp", metrics=["auc"],
                       n_resamples=200, rank_resamples=50)
    b = blocks[("synthetic/binary", "auc")]
    t = next(r for r in b["rows"] if r["model"] != b["best"])["tests_vs_best"][0]
    assert t["p_value"] == pytest.approx(comp["comparisons"][0]["p_value"])
    assert board["across"]["auc"]["n_datasets"] == 2 and set(board["across"]["auc"]["models"]) == {"cnn", "mlp"}
    assert set(b["rankings"]) == {"aggregate-then-rank"}  # AUC has no per-case values: one scheme
    assert set(blocks[("synthetic/binary", "acc")]["rankings"]) == {"aggregate-then-rank", "rank-then-aggregate",
                                                                    "test-then-rank"}
    html = (out / "report.html").read_text()
    imgs = re.findall(r"<img src='([^']+)'", html)
    assert len(imgs) >= 2 + 4 * 2 + 2  # CD diagrams, forest + rank plots, learning curves
    assert all((out / i).is_file() and (out / i).stat().st_size > 1000 for i in imgs)
    assert html.count("<table class=leaderboard") == 4 and html.count("<details>") == 4  # a model card per cell


def test_report_refuses_unfinished_cells(tiny, tmp_path):
    from openmia.errors import PredictionError

    with pytest.raises(PredictionError, match=r"4 of 4 cell\(s\) are not finished .*pending.*--allow-missing"):
        api.benchmark_report(tiny["path"], tmp_path / "r", out_dir=tiny["out"])  # without --deterministic: other cells


def test_report_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    page = (report["out"] / "report.html").resolve().as_uri()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr",
             "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_img = len(re.findall(r"<img ", dom.stdout))
    m = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"', dom.stdout)
    assert m is not None, "the page's load handler did not run"
    assert int(m.group(1)) == int(m.group(2)) == n_img > 0  # every image decoded
    assert '<table class="leaderboard"' in dom.stdout
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln or "Failed to load" in ln]
    assert console == []
    shot = tmp_path / "shot.png"
    r = subprocess.run([*flags, "--hide-scrollbars", "--window-size=1200,900", f"--screenshot={shot}", page],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.stat().st_size > 10_000


def test_deleted_resumed_changed_and_failed_cells(tiny, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny["out"], out)
    before = _metrics(out, tiny["path"])
    suite = load_suite(tiny["path"], deterministic=True, out_dir=out)
    c0, c1 = suite.cells[0], suite.cells[1]
    shutil.rmtree(suite.run_dir(c0))  # deleted by hand
    (suite.run_dir(c1) / "result.json").unlink()  # killed before it finished: config and checkpoints, no result
    SuiteStore(suite.store_path).mark_running(c1.id, pid=2**22 + 4321)  # ... by a process that is gone
    status = {c["cell_id"]: c["status"] for c in api.benchmark_status(tiny["path"], deterministic=True, out_dir=out)}
    assert status[c0.id] == "pending" and status[c1.id] == "failed"
    lines: list[str] = []
    # train.threads is not part of a cell's id, but the thread count changes the floating-point
    # sums: bit-exact reruns need the same --threads as the first run
    res = api.benchmark_run(tiny["path"], threads=1, deterministic=True, out_dir=out, echo=lines.append)
    steps = {s["cell_id"]: s for s in res["steps"]}
    assert steps[c0.id]["action"] == "train" and "was deleted by hand" in steps[c0.id]["reason"]
    assert steps[c1.id]["action"] == "resume" and "interrupted" in steps[c1.id]["reason"]
    assert [s["action"] for s in res["steps"][2:]] == ["reuse", "reuse"]
    assert res["counts"]["done"] == 4 and any("was deleted by hand" in ln for ln in lines)
    assert _metrics(out, tiny["path"]) == before  # deterministic: the same numbers as the first run

    # a changed recipe for one data set: its cells are trained again, saying what changed
    changed = tmp_path / "changed.yaml"
    changed.write_text(TINY.replace("datasets: [synthetic/binary, synthetic/multiclass]",
                                    "datasets: [synthetic/binary, {name: synthetic/multiclass, set: {optim.lr: 0.002}}]")
                       .replace("  mlp: {set: {model.name: mlp}}",
                                "  mlp: {set: {model.name: mlp}}\n  broken: {set: {model.name: mlp, model.kwargs: {no_such: 1}}}"))
    res = api.benchmark_run(changed, threads=1, deterministic=True, out_dir=out)
    steps = {(s["label"].split(" x ")[0], s["label"].split(" x ")[1]): s for s in res["steps"]}
    assert steps[("synthetic/binary", "cnn")]["action"] == "reuse"
    for m in ("cnn", "mlp"):
        s = steps[("synthetic/multiclass", m)]
        assert s["action"] == "train" and re.search(r"changed since cell \w+: optim.lr: 0.001 -> 0.002", s["reason"])
    # the broken model fails in its cells without stopping the others; its log keeps the traceback
    assert res["counts"] == {"pending": 0, "running": 0, "done": 4, "failed": 2}
    failed = [c for c in api.benchmark_status(changed, deterministic=True, out_dir=out) if c["status"] == "failed"]
    assert {c["model"] for c in failed} == {"broken"}
    assert "no_such" in failed[0]["note"] and "Traceback" in Path(failed[0]["log"]).read_text()


def test_ray_gives_the_local_metrics(tiny, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'openmia[ray]')")
    t0 = time.perf_counter()
    res = api.benchmark_run(tiny["path"], executor="ray", parallel=2, threads=1, deterministic=True, out_dir=tmp_path / "ray")
    wall = time.perf_counter() - t0
    assert res["counts"]["done"] == 4 and [s["action"] for s in res["steps"]] == ["train"] * 4
    local, ray = _metrics(tiny["out"], tiny["path"]), _metrics(tmp_path / "ray", tiny["path"])
    assert ray == local  # bit-identical metrics and CIs, cell by cell
    print(f"\nwall: local pool {tiny['wall']:.1f} s, ray {wall:.1f} s")
