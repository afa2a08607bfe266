"""MedMNIST v2 benchmark: the paper's recipe ("reference") vs openmia's best configuration,
side by side, same data, same training-time budget, several seeds, with the evaluation standard's
confidence intervals and a paired DeLong test between the two on the test set. The recipes are
``benchmarks/configs/medmnist_*.yaml`` (``openmia train --config`` runs them too).

Usage::

    python benchmarks/medmnist.py                        # retinamnist, adrenalmnist3d, vesselmnist3d
    python benchmarks/medmnist.py --datasets pneumoniamnist --minutes 20 --seeds 0 1 2
    python benchmarks/medmnist.py --root ../shared/data/medmnist --parallel 2 --minutes 6

A thin wrapper over the suite ``benchmarks/suites/medmnist.yaml``: the runs are its cells (models
``reference`` and ``best``; the recipes are the files the suite names), restricted to ``--datasets``,
``--seeds``, ``--minutes`` and ``--only``, and trained by the suite runner into the suite's run
directories and ``suite.sqlite`` (``--runs-dir`` is the suite's ``out_dir``, default
OPENMIA_HOME/suites/medmnist), so a cell finished by ``openmia benchmark run
benchmarks/suites/medmnist.yaml`` is reused here and the other way round; an interrupted benchmark
continues where it stopped. What is the script's own, on top of the finished cells: the table
against the paper's published numbers and the paired DeLong test (best vs reference, per seed,
Holm). Cells run ``--parallel`` at a time in one pool (the script used to keep paper-recipe runs
one at a time: give a 3D ``reference`` cell about 10 GB of RAM). Writes
``benchmarks/results/medmnist.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _runs import SUITES, derived_suite, describe, read_suite, recipe_value, run_cells

ROOT = Path(__file__).resolve().parents[1]

# The paper's published values (REFERENCE.md, Yang et al. 2023): ResNet-18 (28) / ResNet-18 + 3D
# AUC and ACC, and the best AUC of any method in its table for that set.
PAPER = {
    "pathmnist": (0.983, 0.907, 0.990), "chestmnist": (0.768, 0.947, 0.778), "dermamnist": (0.917, 0.735, 0.920),
    "octmnist": (0.943, 0.743, 0.963), "pneumoniamnist": (0.944, 0.854, 0.991), "retinamnist": (0.717, 0.524, 0.750),
    "breastmnist": (0.901, 0.863, 0.919), "bloodmnist": (0.998, 0.958, 0.998), "tissuemnist": (0.930, 0.676, 0.931),
    "organamnist": (0.997, 0.935, 0.997), "organcmnist": (0.992, 0.900, 0.992), "organsmnist": (0.972, 0.782, 0.972),
    "organmnist3d": (0.996, 0.907, 0.996), "nodulemnist3d": (0.863, 0.844, 0.914), "fracturemnist3d": (0.712, 0.508, 0.750),
    "adrenalmnist3d": (0.827, 0.721, 0.839), "vesselmnist3d": (0.874, 0.877, 0.930), "synapsemnist3d": (0.820, 0.745, 0.851),
}


MINUTES = float(recipe_value("medmnist_reference", "train.max_minutes"))  # the published budget (both recipes')
SUITE = SUITES / "medmnist.yaml"
# keys of a cell's overrides that the results table states elsewhere (header, rows) or that say where
DESCRIBE_DROP = ("train.max_minutes", "data.dataset", "data.root", "train.seed", "eval.n_resamples")


def _read_probs(run_dir: Path, split: str = "test") -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """Predictions and truth written by a run (evaluator CSV formats) and the task type."""
    import csv

    with open(run_dir / "predictions" / f"{split}.csv") as f:
        rows = list(csv.reader(f))
    ids = [r[0] for r in rows[1:]]
    p = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    with open(run_dir / "truth" / f"{split}.csv") as f:
        t = list(csv.reader(f))
    truth = {r[0]: [int(v) for v in r[1:]] for r in t[1:]}
    y = np.array([truth[i] for i in ids])
    if t[0][1:] == ["label"]:
        y = y[:, 0]
        task_type = "binary" if p.shape[1] == 1 else "multi-class"
    else:
        task_type = "multi-label"
    if p.shape[1] == 1:  # binary score column
        p = np.column_stack([1 - p[:, 0], p[:, 0]])
    return ids, p, y, task_type


def _metric(summary: dict[str, Any], name: str) -> dict[str, Any]:
    for m in summary["metrics"]:
        if m["metric"] == name and m["label"] == "all":
            return m
    raise KeyError(name)


def summarise(dataset: str, model: str, run_dirs: list[Path], seeds: list[int]) -> dict[str, Any]:
    """One benchmark record over seeds (see the issue's key list)."""
    aucs, accs, secs, lows, highs, extra = [], [], [], [], [], {}
    for rd in run_dirs:
        s = json.loads((rd / "eval" / "test" / "summary.json").read_text())
        res = json.loads((rd / "result.json").read_text())
        auc = _metric(s, "auc")
        aucs.append(auc["value"])
        lows.append(auc["ci_low"])
        highs.append(auc["ci_high"])
        accs.append(_metric(s, "acc")["value"])
        secs.append(res["train_seconds"])
        for name in ("balanced_acc", "kappa", "ece", "f1"):
            try:
                extra.setdefault(name, []).append(_metric(s, name)["value"])
            except KeyError:
                pass
        extra.setdefault("epochs", []).append(res["epochs_done"])
    paper = PAPER.get(dataset, (None, None, None))
    rec = {
        "dataset": dataset, "model": model, "seeds": seeds,
        "auc_mean": float(np.mean(aucs)), "auc_seed_sd": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
        # test-set sampling CI (DeLong per seed), averaged over seeds; seed variance is reported apart
        "auc_ci_low": float(np.mean(lows)), "auc_ci_high": float(np.mean(highs)),
        "acc_mean": float(np.mean(accs)), "acc_seed_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "train_seconds_mean": float(np.mean(secs)),
        "paper_auc": paper[0], "paper_acc": paper[1], "paper_best_auc": paper[2],
        "auc_per_seed": [float(a) for a in aucs],
    }
    for k, v in extra.items():
        rec[f"{k}_mean"] = float(np.mean(v))
    return rec


def paired_tests(ref_dirs: list[Path], best_dirs: list[Path]) -> dict[str, Any]:
    """Paired DeLong test (best vs reference) on the same test cases, per seed, Holm-corrected."""
    from openmia.stats.delong import delong_paired_test_ovr
    from openmia.stats.tests import holm

    per_seed = []
    for a, b in zip(ref_dirs, best_dirs):
        ids_a, pa, y, task_type = _read_probs(a)
        ids_b, pb, yb, _ = _read_probs(b)
        if ids_a != ids_b or not np.array_equal(y, yb):
            raise RuntimeError(f"{a} and {b} were not scored on the same test cases")
        t = delong_paired_test_ovr(y, pb, pa, task_type)  # diff = best - reference
        per_seed.append({"diff": t["diff"], "ci_low": t["ci_low"], "ci_high": t["ci_high"], "p_value": t["p_value"]})
    p_holm = holm([r["p_value"] for r in per_seed])
    for r, p in zip(per_seed, p_holm):
        r["p_holm"] = float(p)
    return {"test": "paired DeLong (one-vs-rest macro AUC for multi-class), best - reference, per seed; Holm over seeds",
            "per_seed": per_seed}


def write_results(records: list[dict[str, Any]], tests: dict[str, Any], out: Path, meta: dict[str, Any]) -> None:
    from openmia import fileio

    fileio.write_json(out / "medmnist.json", records)
    lines = [
        "# MedMNIST v2: the paper's recipe vs openmia's best configuration",
        "",
        f"Budget: {meta['minutes']} CPU-minutes of training per run (train + validation, process CPU time), {meta['threads']} torch thread(s) per run, "
        f"{meta['parallel']} run(s) in parallel on {meta['cpus']} CPU cores; seeds {meta['seeds']}. "
        f"Generated by `{meta['command']}` on {meta['date']} (openmia git {meta['git']}).",
        "",
        "AUC CI: DeLong 95% CI on the test set, averaged over seeds; ± is the SD over training seeds.",
        "",
        "| dataset | model | test AUC (mean ± seed SD) | 95% CI | ACC | balanced ACC | kappa (quadratic) | ECE | epochs | train s | paper ResNet-18 AUC / ACC | paper best AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        kappa = r.get("kappa_mean")
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['auc_mean']:.3f} ± {r['auc_seed_sd']:.3f} | {r['auc_ci_low']:.3f}–{r['auc_ci_high']:.3f} "
            f"| {r['acc_mean']:.3f} ± {r['acc_seed_sd']:.3f} | {r.get('balanced_acc_mean', float('nan')):.3f} "
            f"| {'' if kappa is None else f'{kappa:.3f}'} | {r.get('ece_mean', float('nan')):.3f} | {r.get('epochs_mean', 0):.0f} "
            f"| {r['train_seconds_mean']:.0f} | {r['paper_auc']} / {r['paper_acc']} | {r['paper_best_auc']} |"
        )
    lines += ["", "## Paired test: best - reference (same test cases)", "",
              "| dataset | seed | AUC diff | 95% CI | p (DeLong) | p (Holm) |", "|---|---|---|---|---|---|"]
    for ds, t in tests.items():
        for seed, r in zip(meta["seeds"], t["per_seed"]):
            lines.append(f"| {ds} | {seed} | {r['diff']:+.3f} | {r['ci_low']:+.3f}–{r['ci_high']:+.3f} | {r['p_value']:.3g} | {r['p_holm']:.3g} |")
    lines += ["", "Configurations:", ""]
    for ds, cfgs in meta["configs"].items():
        for name, ov in cfgs.items():
            lines.append(f"- {ds} / {name}: `{describe(ov, drop=DESCRIBE_DROP)}`")
    fileio.write_text(out / "medmnist.md", "\n".join(lines) + "\n")


def restricted_suite(args: argparse.Namespace):
    """The suite file with the command line's choices put in (data sets, seeds, budget, models),
    as :func:`_runs.derived_suite` builds it; options left out keep the file's own."""
    raw = read_suite(args.suite)
    if args.datasets is not None:
        known = {str(d if isinstance(d, str) else d.get("label") or d["name"]): d for d in raw.get("datasets") or []}
        raw["datasets"] = [known.get(ds, {"name": ds}) for ds in args.datasets]
    if args.root is not None:  # every set from this folder (its .npz files), not the suite's data root
        raw["datasets"] = [{**({"name": d} if isinstance(d, str) else d), "root": str(Path(args.root).resolve())}
                           for d in raw["datasets"]]
    elif args.suite == SUITE:  # the shipped suite's roots are relative to --data of `openmia benchmark`: use the default folder
        raw["datasets"] = [{k: v for k, v in ({"name": d} if isinstance(d, str) else d).items() if k != "root"}
                           for d in raw["datasets"]]
    if args.seeds is not None:
        raw["seeds"] = args.seeds
    if args.minutes is not None and not (args.suite == SUITE and args.minutes == MINUTES):
        raw["budgets"] = [args.minutes]  # the published budget stays the recipes' own: the suite's cells, same run dirs
    if args.only is not None:
        raw["models"] = {args.only: raw["models"][args.only]}
    overrides = [f"eval.n_resamples={args.resamples}"] if args.resamples is not None else []
    return derived_suite(args.suite, raw, out_dir=args.runs_dir, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", type=Path, default=SUITE, help="the suite whose cells are trained (models reference and best)")
    ap.add_argument("--datasets", nargs="+", default=None, help="default: the suite's (retinamnist, adrenalmnist3d, vesselmnist3d)")
    ap.add_argument("--minutes", type=float, default=None, help=f"training budget per run (default: the recipes', {MINUTES:g})")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the suite's (0 1 2)")
    ap.add_argument("--root", default=None, help="folder with the .npz files (default: OPENMIA_HOME/medmnist)")
    ap.add_argument("--parallel", type=int, default=1, help="runs at once (threads are split between them)")
    ap.add_argument("--runs-dir", default=None, help="the suite's out_dir: run directories and suite.sqlite "
                                                     "(default OPENMIA_HOME/suites/medmnist, as `openmia benchmark run`)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--resamples", type=int, default=None, help="eval.n_resamples of every cell (default: the suite's, 2000)")
    ap.add_argument("--only", choices=["reference", "best"], help="run just one of the two configurations")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import os

    from openmia.bench.runner import cell_threads
    from openmia.engine.provenance import git_commit

    suite = restricted_suite(args)
    cpus = len(os.sched_getaffinity(0))
    threads = cell_threads("local", args.parallel, None)
    t0 = time.time()
    dirs = run_cells(suite, parallel=args.parallel)

    datasets = list(dict.fromkeys(c.dataset for c in suite.cells))
    names = list(dict.fromkeys(c.model for c in suite.cells))
    seeds = sorted({c.seed for c in suite.cells})
    missing = {"reference", "best"} - set(names) if args.only is None else set()
    if missing:
        raise SystemExit(f"{args.suite}: the benchmark compares models 'reference' and 'best'; missing {sorted(missing)}")
    records, tests, configs = [], {}, {}
    for ds in datasets:
        run_dirs = {n: [dirs[(ds, n, s)] for s in seeds] for n in names}
        for n in names:
            records.append(summarise(ds, n, run_dirs[n], seeds))
        if len(names) == 2:
            tests[ds] = paired_tests(run_dirs["reference"], run_dirs["best"])
            records[-1]["delong_vs_reference"] = tests[ds]
        configs[ds] = {c.model: list(c.overrides) for c in suite.cells if c.dataset == ds and c.seed == seeds[0]}
    minutes = suite.cells[0].config["train"]["max_minutes"]
    meta = {"minutes": minutes, "threads": threads, "parallel": args.parallel, "cpus": cpus, "seeds": seeds,
            "command": "python benchmarks/medmnist.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "git": git_commit(ROOT), "configs": configs}
    out = Path(args.out)
    write_results(records, tests, out, meta)
    logging.info("wrote %s and %s in %.0f s", out / "medmnist.md", out / "medmnist.json", time.time() - t0)
    print((out / "medmnist.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
