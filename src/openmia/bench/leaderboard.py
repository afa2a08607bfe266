"""The leaderboard of a suite: per data set and metric, every model's value with its CI, the
spread over seeds, paired tests against the best model (Holm), three ranking schemes with
bootstrap rank stability; across data sets, Friedman + Nemenyi (Demšar 2006).

The statistics are openmia's own, reused: paired tests and rankings come from
:func:`openmia.evaluation.compare.compare_files` on each cell's test predictions (the same files
``openmia compare`` reads), the cross-data-set ranking from
:func:`openmia.evaluation.multi_dataset.rank_table` (as ``openmia rank``).

Conventions (stated in the outputs):

- ``value`` = mean over seeds of the cell's test value; ``ci_low``/``ci_high`` = mean over seeds of
  the cell's 95% CI over test cases (the test-set sampling uncertainty; DeLong / BCa / Wilson as
  the evaluator chose);
- ``seed_sd`` = SD over seeds (ddof 1); ``seed_mean_ci`` = Student-t 95% CI of the seed mean;
- paired tests: for every seed, each model against the best (best = best ``value``) on the same
  test cases with compare's test for the metric; Holm over the k-1 comparisons of that seed;
- rankings on the first seed's test cases; across data sets, ``value`` per data set and model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia.bench.suite import Cell, Suite
from openmia.errors import PredictionError

log = logging.getLogger(__name__)

SCHEMA = "openmia.leaderboard/1"


def _spacing(cell: Cell) -> tuple[float, ...] | None:
    from openmia.data.catalog import get_spec

    try:
        spec = get_spec(cell.config["data"]["dataset"])
        return tuple(spec.spacing) if spec.spacing else None
    except Exception:  # user data without a catalogue spec: the evaluator's default
        return None


def _classification_files(rd: Path, cell: Cell) -> tuple[str, Path, Path, dict[str, Any]]:
    return "classification", rd / "predictions" / "test.csv", rd / "truth" / "test.csv", {}


def _segmentation_files(rd: Path, cell: Cell) -> tuple[str, Path, Path, dict[str, Any]]:
    sp = _spacing(cell)
    return "segmentation", rd / "predictions" / "test", rd / "truth" / "test", ({"spacing": sp} if sp else {})


def _detection_files(rd: Path, cell: Cell) -> tuple[str, Path, Path, dict[str, Any]]:
    return "detection", rd / "predictions" / "test.csv", rd / "truth" / "test.csv", {}


def _counting_files(rd: Path, cell: Cell) -> tuple[str, Path, Path, dict[str, Any]]:
    import csv

    truth = rd / "truth" / "test_counts.csv"
    with open(truth, newline="") as f:
        labels = sorted({row["label"] for row in csv.DictReader(f)})
    # one object class: its per-case rows carry the class name, not "all"
    return "counting", rd / "predictions" / "test_counts.csv", truth, {"labels": tuple(labels) if len(labels) == 1 else ("all",)}


# where a finished run of each task family keeps its test predictions and truth, in the formats
# `openmia compare` reads (the run directory layout the Tasks write: tasks/*.py)
COMPARE_INPUTS: dict[str, Callable[[Path, Cell], tuple[str, Path, Path, dict[str, Any]]]] = {
    "classification": _classification_files, "segmentation": _segmentation_files, "detection": _detection_files,
    "counting": _counting_files,
}
# leaderboard metrics when the suite names none: compare's per-case defaults, or the Task's headline
DEFAULT_METRICS = {"classification": ("auc", "acc"), "segmentation": ("dice", "hd95"), "detection": ("ap50", "map"),
                   "counting": ("count_abs_error",)}


def _t_ci(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None, None
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def _cell_value(test: dict[str, Any], metric: str) -> dict[str, Any] | None:
    m = test.get(metric)
    if m is None and metric == "count_abs_error":  # the counting summary calls the mean absolute error count_mae
        m = test.get("count_mae")
    return m if isinstance(m, dict) and m.get("value") is not None else None


def build_leaderboard(suite: Suite, *, allow_missing: bool = False) -> dict[str, Any]:
    """The leaderboard dict of a suite's finished cells (see the module docstring)."""
    from openmia.bench.runner import suite_status
    from openmia.evaluation.compare import HIGHER_IS_BETTER, compare_files
    from openmia.stats.multiple import holm
    from openmia.stats.ranking import SCHEMES

    status = {r["cell_id"]: r for r in suite_status(suite)}
    missing = [c for c in suite.cells if status[c.id]["status"] != "done"]
    if missing and not allow_missing:
        shown = "; ".join(f"{c.label} ({status[c.id]['status']})" for c in missing[:5])
        raise PredictionError(f"suite {suite.name}: {len(missing)} of {len(suite.cells)} cell(s) are not finished ({shown}"
                              f"{' ...' if len(missing) > 5 else ''}); run `openmia benchmark run {suite.path}` first, "
                              "or report the finished ones with --allow-missing")
    done = [c for c in suite.cells if status[c.id]["status"] == "done"]
    tests: dict[str, dict[str, Any]] = {}
    for c in done:
        tests[c.id] = json.loads((suite.run_dir(c) / "result.json").read_text()).get("test") or {}
    # one leaderboard block per (data set, budget): models compete within it
    blocks_in: dict[tuple[str, float | None], list[Cell]] = {}
    for c in done:
        blocks_in.setdefault((c.dataset, c.budget), []).append(c)
    multi_budget = len({c.budget for c in suite.cells}) > 1
    blocks = []
    for (dataset, budget), cells in blocks_in.items():
        task = cells[0].task
        models = list(dict.fromkeys(c.model for c in cells))
        seeds = sorted({c.seed for c in cells})
        metrics = [m for m in (suite.metrics or DEFAULT_METRICS.get(task, ())) if any(_cell_value(tests[c.id], m) for c in cells)
                   or m in HIGHER_IS_BETTER]
        name = dataset if not multi_budget else f"{dataset} @ {'recipe' if budget is None else f'{budget:g} min'}"
        by = {(c.model, c.seed): c for c in cells}
        # paired tests and rankings: compare's machinery on each seed's test predictions
        compare_task = COMPARE_INPUTS.get(task)
        comparisons: dict[int, dict[str, Any]] = {}
        rankings: dict[str, Any] = {}
        rank_seed = None
        block_label: dict[str, str] = {}
        if compare_task is not None and len(models) >= 2:
            for seed in seeds:
                present = [m for m in models if (m, seed) in by]
                if len(present) < 2:
                    continue
                files = {m: compare_task(suite.run_dir(by[(m, seed)]), by[(m, seed)]) for m in present}
                ctask, _, truth, kw = files[present[0]]
                kw = dict(kw)
                labels = kw.pop("labels", ("all",))
                preds = {m: f[1] for m, f in files.items()}
                block_label = {m: labels[0] for m in metrics}
                try:
                    comparisons[seed] = compare_files(ctask, truth, preds, None, metrics=metrics, labels=labels,
                                                      n_resamples=suite.resamples, rank_resamples=suite.rank_resamples,
                                                      seed=0, alpha=suite.alpha, **kw)
                    if rank_seed is None:  # the three ranking schemes on the first seed with every model
                        rank_seed = seed
                        for scheme in SCHEMES:
                            r = comparisons[seed] if scheme == "aggregate-then-rank" else compare_files(
                                ctask, truth, preds, None, metrics=metrics, labels=labels, n_resamples=200,
                                rank_resamples=suite.rank_resamples, seed=0, alpha=suite.alpha, scheme=scheme, **kw)
                            rankings[scheme] = r["ranking"]
                except PredictionError as exc:
                    log.warning("%s seed %d: no paired tests (%s)", name, seed, exc)
        for metric in metrics:
            hib = HIGHER_IS_BETTER.get(metric, True)
            rows = []
            for m in models:
                vals = [(s, _cell_value(tests[by[(m, s)].id], metric)) for s in seeds if (m, s) in by]
                vals = [(s, v) for s, v in vals if v is not None]
                if not vals:
                    continue
                v = np.array([x["value"] for _, x in vals], dtype=float)
                lo = [x.get("ci_low") for _, x in vals]
                hi = [x.get("ci_high") for _, x in vals]
                clo, chi = _t_ci(v)
                rows.append({"model": m, "n_seeds": len(vals), "value": float(v.mean()),
                             "ci_low": float(np.mean(lo)) if all(x is not None for x in lo) else None,
                             "ci_high": float(np.mean(hi)) if all(x is not None for x in hi) else None,
                             "seed_sd": float(v.std(ddof=1)) if len(v) > 1 else None,
                             "seed_mean_ci_low": clo, "seed_mean_ci_high": chi,
                             "per_seed": {int(s): x["value"] for s, x in vals},
                             "cells": [by[(m, s)].id for s, _ in vals]})
            if not rows:
                continue
            rows.sort(key=lambda r: -r["value"] if hib else r["value"])
            best = rows[0]["model"]
            for i, r in enumerate(rows, 1):
                r["position"] = i
                r["tests_vs_best"] = []
            # paired tests against the best, Holm over the k-1 tests of each seed
            for seed, comp in comparisons.items():
                vs = []
                for row in comp["comparisons"]:
                    if row["metric"] != metric or best not in (row["model_a"], row["model_b"]):
                        continue
                    other = row["model_b"] if row["model_a"] == best else row["model_a"]
                    sign = 1.0 if row["model_a"] == other else -1.0  # diff = other - best
                    lo_, hi_ = sorted((sign * row["ci_low"], sign * row["ci_high"]))
                    vs.append({"model": other, "seed": seed, "diff": sign * row["diff"], "ci_low": lo_, "ci_high": hi_,
                               "test": row["test"], "p_value": row["p_value"]})
                ps = np.array([t["p_value"] for t in vs], dtype=float)
                ok = np.isfinite(ps)
                adj = np.full(len(ps), np.nan)
                if ok.any():
                    adj[ok] = holm(ps[ok])
                for t, p in zip(vs, adj):
                    t["p_holm"] = float(p)
                    next(r for r in rows if r["model"] == t["model"])["tests_vs_best"].append(t)
            for r in rows:
                sig = [t for t in r["tests_vs_best"] if np.isfinite(t["p_holm"]) and t["p_holm"] <= suite.alpha]
                r["seeds_worse_than_best"] = len(sig)
                r["seeds_tested"] = len(r["tests_vs_best"])
            ranks = {}
            for scheme, table in rankings.items():
                for rr in table:
                    if rr["metric"] == metric and rr["label"] == block_label.get(metric, "all"):
                        ranks.setdefault(rr["scheme"], {})[rr["model"]] = {
                            "rank": rr["rank"], "mean_bootstrap_rank": rr["mean_bootstrap_rank"], "p_rank1": rr["p_rank1"],
                            "kendall_tau_median": rr["kendall_tau_median"], "n_resamples": rr["n_resamples"]}
            blocks.append({"dataset": name, "task": task, "budget": budget, "metric": metric, "higher_is_better": hib,
                           "best": best, "seeds": seeds, "rank_seed": rank_seed, "rows": rows, "rankings": ranks})
    across = _across(blocks, suite)
    cards = [{**{k: status[c.id][k] for k in ("cell_id", "dataset", "model", "seed", "budget", "task", "run_dir",
                                                 "wall_seconds")}} for c in done]
    import os

    shown = os.path.relpath(suite.path) if suite.path.is_relative_to(Path.cwd()) else str(suite.path)
    return {"schema": SCHEMA, "suite": suite.name, "suite_file": shown, "alpha": suite.alpha,
            "n_cells": len(suite.cells), "n_done": len(done),
            "missing": [{"cell_id": c.id, "label": c.label, "status": status[c.id]["status"]} for c in missing],
            "blocks": blocks, "across": across, "cells": cards,
            "conventions": {
                "value": "mean over seeds of each cell's test value",
                "ci": "mean over seeds of each cell's 95% CI over test cases (DeLong / BCa bootstrap / Wilson, as the "
                      "evaluator reports it)",
                "seed_spread": "SD over seeds (ddof 1) and the Student-t 95% CI of the seed mean",
                "tests_vs_best": "per seed, each model vs the best on the same test cases (openmia compare's test for the "
                                 "metric); diff = model - best; Holm over the k-1 tests of a seed",
                "rankings": "three schemes with bootstrap rank stability on the first seed's test cases (openmia compare)",
                "across": "Friedman (tie-corrected) + Nemenyi over data sets on the seed-mean values (openmia rank)"}}


def _across(blocks: list[dict[str, Any]], suite: Suite) -> dict[str, Any]:
    """Friedman + Nemenyi per metric over the data sets where every model of that metric has a value."""
    from openmia.evaluation.multi_dataset import ScoreTable, rank_table

    out: dict[str, Any] = {}
    for metric in dict.fromkeys(b["metric"] for b in blocks):
        bs = [b for b in blocks if b["metric"] == metric]
        models = sorted(set.intersection(*[{r["model"] for r in b["rows"]} for b in bs]))
        if len(bs) < 2 or len(models) < 2:
            out[metric] = {"skipped": f"needs >= 2 data sets and >= 2 models in common; found {len(bs)} data set(s), "
                                      f"{len(models)} common model(s)"}
            continue
        scores = np.array([[next(r["value"] for r in b["rows"] if r["model"] == m) for m in models] for b in bs])
        table = ScoreTable.from_array(scores, [b["dataset"] for b in bs], models, metric=metric,
                                      higher_is_better=bs[0]["higher_is_better"])
        res = rank_table(table, alpha=suite.alpha)
        out[metric] = json.loads(json.dumps(res, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    return out
