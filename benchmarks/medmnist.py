"""MedMNIST v2 benchmark: the paper's recipe ("reference") vs openmia's best configuration,
side by side, same data, same training-time budget, several seeds, with the evaluation standard's
confidence intervals and a paired DeLong test between the two on the test set. The recipes are
``benchmarks/configs/medmnist_*.yaml`` (``openmia train --config`` runs them too).

Usage::

    python benchmarks/medmnist.py                        # retinamnist, adrenalmnist3d, vesselmnist3d
    python benchmarks/medmnist.py --datasets pneumoniamnist --minutes 20 --seeds 0 1 2
    python benchmarks/medmnist.py --root ../shared/data/medmnist --parallel 2 --minutes 6

Runs already complete in ``--runs-dir`` are reused, so an interrupted benchmark continues where
it stopped. Writes ``benchmarks/results/medmnist.{md,json}``.
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
from _runs import describe, recipe, recipe_value, train_or_reuse

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


def reference_overrides(dataset: str, dims: int, minutes: float) -> list[str]:
    """The paper's recipe (``configs/medmnist_reference.yaml``: ResNet-18, Adam 1e-3, batch 128, no
    augmentation, 100 epochs, lr x0.1 at 50% and 75% of the budget, model chosen by best
    validation AUC) on ``dataset`` within ``minutes`` of training."""
    return [*recipe("medmnist_reference"), f"data.dataset={dataset}", f"train.max_minutes={minutes}"]


# openmia's best configuration per set, chosen on the validation split (the reasons are in each
# file); sets not listed use the generic 2D / 3D entry.
BEST: dict[str, list[str]] = {"retinamnist": recipe("medmnist_best_retinamnist"), "2d": recipe("medmnist_best_2d"),
                              "3d": recipe("medmnist_best_3d")}
MINUTES = float(recipe_value("medmnist_reference", "train.max_minutes"))  # the published budget


def best_overrides(dataset: str, dims: int, minutes: float) -> list[str]:
    key = dataset if dataset in BEST else f"{dims}d"
    return [*BEST[key], f"data.dataset={dataset}", f"train.max_minutes={minutes}"]


def job_config(job: dict[str, Any]):
    """The RunConfig of one (dataset, configuration, seed) job."""
    from openmia.config import load_config

    return load_config(None, [*job["overrides"], f"train.seed={job['seed']}", f"train.threads={job['threads']}",
                              f"eval.n_resamples={job['resamples']}"] + ([f"data.root={job['root']}"] if job["root"] else []))


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (dataset, config, seed) in a worker process; reuse a complete run."""
    return {**job, "reused": train_or_reuse(job_config(job), job["run_dir"])}


def _execute(jobs: list[dict[str, Any]], names: list[str], parallel: int) -> None:
    """Run the jobs, ``parallel`` at a time: one queue per configuration, so at most one paper-recipe
    run at a time (a 3D ResNet-18 at batch 128 needs about 10 GB of RAM on its own)."""
    def report(done: dict[str, Any]) -> None:
        logging.info("done %s %s seed %d%s", done["dataset"], done["name"], done["seed"], " (reused)" if done["reused"] else "")

    if parallel <= 1:
        for job in jobs:
            report(_run_one(job))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    pools = {n: ProcessPoolExecutor(max(1, parallel // len(names)), mp_context=ctx) for n in names}
    futures = [pools[j["name"]].submit(_run_one, j) for j in jobs]
    for fut in futures:
        report(fut.result())
    for pool in pools.values():
        pool.shutdown()


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
            lines.append(f"- {ds} / {name}: `{describe([o for o in ov if not o.startswith('data.dataset=')])}`")
    fileio.write_text(out / "medmnist.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["retinamnist", "adrenalmnist3d", "vesselmnist3d"])
    ap.add_argument("--minutes", type=float, default=MINUTES, help=f"training budget per run (default {MINUTES:g}, as published)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--root", default=None, help="folder with the .npz files (default: OPENMIA_HOME/medmnist)")
    ap.add_argument("--parallel", type=int, default=1, help="runs at once (threads are split between them)")
    ap.add_argument("--runs-dir", default=None, help="where run directories go (default OPENMIA_HOME/bench/medmnist)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--only", choices=["reference", "best"], help="run just one of the two configurations")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import os

    from openmia.bench.store import openmia_home
    from openmia.data.catalog import get_spec
    from openmia.engine.provenance import git_commit

    cpus = len(os.sched_getaffinity(0))
    threads = max(1, cpus // args.parallel)
    runs_dir = Path(args.runs_dir) if args.runs_dir else openmia_home() / "bench" / "medmnist"
    jobs, configs = [], {}
    names = ["reference", "best"] if args.only is None else [args.only]
    for ds in args.datasets:
        spec = get_spec(ds)
        configs[ds] = {}
        for name in names:
            ov = (reference_overrides if name == "reference" else best_overrides)(ds, spec.dims, args.minutes)
            configs[ds][name] = ov
            for seed in args.seeds:
                rd = runs_dir / f"{ds}-{name}-{args.minutes:g}cpumin-s{seed}"
                jobs.append({"dataset": ds, "name": name, "seed": seed, "overrides": ov, "run_dir": str(rd),
                             "threads": threads, "root": args.root, "resamples": args.resamples})
    t0 = time.time()
    logging.info("%d runs, %d at a time, %.1f min each", len(jobs), args.parallel, args.minutes)
    _execute(jobs, names, args.parallel)

    records, tests = [], {}
    for ds in args.datasets:
        dirs = {n: [runs_dir / f"{ds}-{n}-{args.minutes:g}cpumin-s{s}" for s in args.seeds] for n in names}
        for n in names:
            records.append(summarise(ds, n, dirs[n], args.seeds))
        if len(names) == 2:
            tests[ds] = paired_tests(dirs["reference"], dirs["best"])
            records[-1]["delong_vs_reference"] = tests[ds]
    meta = {"minutes": args.minutes, "threads": threads, "parallel": args.parallel, "cpus": cpus, "seeds": args.seeds,
            "command": "python benchmarks/medmnist.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "git": git_commit(ROOT), "configs": configs}
    out = Path(args.out)
    write_results(records, tests, out, meta)
    logging.info("wrote %s and %s in %.0f s", out / "medmnist.md", out / "medmnist.json", time.time() - t0)
    print((out / "medmnist.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
