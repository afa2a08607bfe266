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
- rankings: the three schemes on the test cases of *every* seed that has all the block's models;
  per model ``rank`` = the mean over those seeds of its rank, ``ranks_per_seed`` the seeds' own,
  and the bootstrap rank stability (``p_rank1``, ``mean_bootstrap_rank``, ``kendall_tau_median``)
  averaged over the seeds (each seed's own in ``rankings_per_seed``);
- across data sets, ``value`` per data set and model.

What a task family contributes (its Task class, looked up in :mod:`openmia.tasks.registry`): where
a finished run keeps its test predictions and truth (``Task.compare_inputs``; None: values
without paired tests or rankings), the default metrics (``Task.leaderboard_metrics``) and the
``result.json`` names of compare's metrics (``Task.leaderboard_aliases``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from openmia.bench.suite import Cell, Suite
from openmia.errors import PredictionError

log = logging.getLogger(__name__)

# /2: rankings over every seed (rank = mean rank; ranks_per_seed, rankings_per_seed, rank_seeds
# instead of /1's rank_seed); the fields /1 had keep their names
SCHEMA = "openmia.leaderboard/2"


def _task_class(task: str) -> Any:
    """The registered Task class of ``task`` (None for a name no family registers)."""
    from openmia.tasks.registry import TASKS, get_task

    return get_task(task) if task in TASKS.names() else None


def _compare_inputs(suite: Suite, cell: Cell) -> Any:
    """The Task's :class:`~openmia.tasks.base.CompareInputs` of a finished cell, or None."""
    from openmia.config import RunConfig

    task_cls = _task_class(cell.task)
    if task_cls is None:
        return None
    return task_cls.compare_inputs(suite.run_dir(cell), RunConfig.from_dict(cell.config))


def _t_ci(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None, None
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def _cell_value(test: dict[str, Any], metric: str, aliases: dict[str, str] | None = None) -> dict[str, Any] | None:
    """A cell's ``result.json`` test entry of ``metric`` (or of its alias, the Task's
    ``leaderboard_aliases``: the same value under the evaluator's summary name), if it has a value."""
    m = test.get(metric)
    if m is None and aliases and metric in aliases:
        m = test.get(aliases[metric])
    return m if isinstance(m, dict) and m.get("value") is not None else None


def _mean(values: list[Any]) -> float:
    """Mean of the finite values (NaN when there are none): per-seed statistics averaged over seeds."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def _seed_averaged(per_seed: dict[int, dict[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{scheme: {model: record}}`` averaged over seeds from ``{seed: {scheme: {model: record}}}``:
    ``rank`` = mean rank over the seeds, ``ranks_per_seed``, and the bootstrap rank stability
    (``p_rank1``, ``mean_bootstrap_rank``, ``kendall_tau_median``) averaged over the seeds."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    schemes = dict.fromkeys(sc for by_scheme in per_seed.values() for sc in by_scheme)
    for scheme in schemes:
        models = dict.fromkeys(m for by_scheme in per_seed.values() for m in by_scheme.get(scheme, {}))
        for m in models:
            recs = {seed: by_scheme[scheme][m] for seed, by_scheme in per_seed.items() if m in by_scheme.get(scheme, {})}
            out.setdefault(scheme, {})[m] = {
                "rank": _mean([r["rank"] for r in recs.values()]),
                "ranks_per_seed": {int(seed): r["rank"] for seed, r in recs.items()},
                "mean_bootstrap_rank": _mean([r["mean_bootstrap_rank"] for r in recs.values()]),
                "p_rank1": _mean([r["p_rank1"] for r in recs.values()]),
                "kendall_tau_median": _mean([r["kendall_tau_median"] for r in recs.values()]),
                "n_resamples": next(iter(recs.values()))["n_resamples"], "n_seeds": len(recs)}
    return out


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
        task_cls = _task_class(task)
        aliases = dict(getattr(task_cls, "leaderboard_aliases", {}) or {})
        models = list(dict.fromkeys(c.model for c in cells))
        seeds = sorted({c.seed for c in cells})
        default = tuple(getattr(task_cls, "leaderboard_metrics", ()) or ())
        metrics = [m for m in (suite.metrics or default) if any(_cell_value(tests[c.id], m, aliases) for c in cells)
                   or m in HIGHER_IS_BETTER]
        name = dataset if not multi_budget else f"{dataset} @ {'recipe' if budget is None else f'{budget:g} min'}"
        by = {(c.model, c.seed): c for c in cells}
        # paired tests (every seed with >= 2 models) and rankings (every seed with all models):
        # compare's machinery on each seed's test predictions, where the Task says they are
        comparisons: dict[int, dict[str, Any]] = {}
        seed_rankings: dict[int, list[dict[str, Any]]] = {}
        block_label: dict[str, str] = {}
        if len(models) >= 2:
            for seed in seeds:
                present = [m for m in models if (m, seed) in by]
                if len(present) < 2:
                    continue
                inputs = {m: _compare_inputs(suite, by[(m, seed)]) for m in present}
                if any(v is None for v in inputs.values()):
                    continue
                first = inputs[present[0]]
                kw, labels = dict(first.kwargs), tuple(first.labels)
                preds = {m: v.predictions for m, v in inputs.items()}
                block_label = {m: labels[0] for m in metrics}
                try:
                    comparisons[seed] = compare_files(first.task, first.truth, preds, None, metrics=metrics, labels=labels,
                                                      n_resamples=suite.resamples, rank_resamples=suite.rank_resamples,
                                                      seed=0, alpha=suite.alpha, **kw)
                    if len(present) == len(models):  # the three ranking schemes on every seed with every model
                        rows_ = []
                        for scheme in SCHEMES:
                            r = comparisons[seed] if scheme == "aggregate-then-rank" else compare_files(
                                first.task, first.truth, preds, None, metrics=metrics, labels=labels, n_resamples=200,
                                rank_resamples=suite.rank_resamples, seed=0, alpha=suite.alpha, scheme=scheme, **kw)
                            rows_ += r["ranking"]
                        seed_rankings[seed] = rows_
                except PredictionError as exc:
                    log.warning("%s seed %d: no paired tests (%s)", name, seed, exc)
        for metric in metrics:
            hib = HIGHER_IS_BETTER.get(metric, True)
            rows = []
            for m in models:
                vals = [(s, _cell_value(tests[by[(m, s)].id], metric, aliases)) for s in seeds if (m, s) in by]
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
            # per seed {scheme: {model: record}}; a metric ranked by one scheme only (AUC: no per-case
            # values) comes back once per requested scheme under the scheme compare used
            per_seed: dict[int, dict[str, dict[str, dict[str, Any]]]] = {}
            for seed, table in seed_rankings.items():
                for rr in table:
                    if rr["metric"] == metric and rr["label"] == block_label.get(metric, "all"):
                        per_seed.setdefault(seed, {}).setdefault(rr["scheme"], {})[rr["model"]] = {
                            "rank": rr["rank"], "mean_bootstrap_rank": rr["mean_bootstrap_rank"], "p_rank1": rr["p_rank1"],
                            "kendall_tau_median": rr["kendall_tau_median"], "n_resamples": rr["n_resamples"]}
            blocks.append({"dataset": name, "task": task, "budget": budget, "metric": metric, "higher_is_better": hib,
                           "best": best, "seeds": seeds, "rank_seeds": sorted(per_seed), "rows": rows,
                           "rankings": _seed_averaged(per_seed),
                           "rankings_per_seed": {int(k): v for k, v in sorted(per_seed.items())}})
    across = _across(blocks, suite)
    cards = [{**{k: status[c.id][k] for k in ("cell_id", "dataset", "model", "seed", "budget", "task", "run_dir",
                                                 "wall_seconds", "nproc")}} for c in done]
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
                "rankings": "three schemes (openmia compare) on every seed's test cases where the seed has every model; "
                            "rank = mean over those seeds of the seed's rank (per-seed ranks: ranks_per_seed, "
                            "rankings_per_seed); bootstrap rank stability = P(rank 1), mean bootstrap rank and median "
                            "Kendall tau of each seed's bootstrap, averaged over the seeds",
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
