"""Evaluator scale: 100,000 classification cases (2,000 BCa bootstrap resamples + DeLong) and 200
3D segmentation cases (128^3, 3 classes, every overlap and boundary metric) — seconds and peak
memory, measured in this process.

    python benchmarks/evaluation_scale.py [--cases 100000] [--reference-cases 20000] [--seeds 5]
                                          [--seg-cases 200] [--seg-size 128]

The classification evaluator (one pass over the resamples, ``stats.bootstrap.bootstrap_many``) is
compared in the same process with the straightforward reference: one ``bootstrap_ci`` per metric
(numpy's multinomial resamples, a jackknife per metric) on ``--reference-cases`` cases, both timed
there (the ratio is robust to the machine's load); the intervals of the two are compared against
the seed-to-seed spread of the evaluator's endpoints (``--seeds`` bootstrap seeds).

Writes ``benchmarks/results/evaluation_scale.{md,json}``. Peak memory is the process's peak RSS
(``resource.getrusage``; the 100,000-case evaluation runs first, so its peak is its own); the
Python-level peak from ``tracemalloc`` is not used because numpy buffers dominate.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _binary_data(n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.standard_normal(n))))
    return y, score, [f"c{i}" for i in range(n)]


def classification_scale(n: int, resamples: int) -> dict:
    from openmia.evaluation.classification import evaluate_classification

    y, score, ids = _binary_data(n)
    before = _rss_peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_classification(score, y, ids, task_type="binary", n_resamples=resamples, seed=0)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    auc = res.metric("auc")
    return {"step": f"classification: {n:,} cases, {resamples} BCa resamples + DeLong, {len(res.summary['metrics'])} metrics",
            "seconds": round(sec, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb": round(_rss_peak_mb(), 1),
            "rss_growth_mb": round(_rss_peak_mb() - before, 1),
            "auc": auc["value"], "auc_ci": [auc["ci_low"], auc["ci_high"]]}


def _reference_stats(y: np.ndarray, score: np.ndarray) -> dict:
    """The evaluator's bootstrapped binary metrics written the straightforward way (weights -> values)."""
    from openmia.metrics import classification as M

    probs = np.column_stack([1 - score, score])
    pred = (score >= 0.5).astype(int)
    cm = lambda w: M.confusion(y, pred, 2, w)  # noqa: E731
    brier, nll = M.brier_per_case(y, probs, "binary"), M.nll_per_case(y, probs, "binary")
    return {"ap": lambda w: M.binary_ap(y, score, w), "balanced_acc": lambda w: M.balanced_accuracy_cm(cm(w)),
            "f1": lambda w: M.f1_per_class(cm(w))[:, 1], "mcc": lambda w: M.mcc_cm(cm(w)), "kappa": lambda w: M.kappa_cm(cm(w)),
            "youden_j": lambda w: M.youden(y, score, w)[0], "youden_threshold": lambda w: M.youden(y, score, w)[1],
            "ece": lambda w: M.ece(y, probs, "binary", w), "mce": lambda w: M.mce(y, probs, "binary", w),
            "brier": lambda w: (w @ brier) / w.sum(1), "nll": lambda w: (w @ nll) / w.sum(1)}


def classification_reference(n: int, resamples: int, seeds: int) -> tuple[list[dict], list[dict]]:
    """Same-process timing of the evaluator and of the per-metric reference on ``n`` cases, and the
    agreement of their intervals in units of the evaluator's seed-to-seed endpoint spread."""
    from openmia.evaluation.classification import evaluate_classification
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights

    y, score, ids = _binary_data(n)
    t0, c0 = time.perf_counter(), time.process_time()
    runs = [evaluate_classification(score, y, ids, task_type="binary", n_resamples=resamples, seed=s) for s in range(seeds)]
    fast_sec, fast_cpu = (time.perf_counter() - t0) / seeds, (time.process_time() - c0) / seeds
    # the same evaluator with numpy's multinomial sampler: isolates the sampler (exact in distribution)
    multi = [evaluate_classification(score, y, ids, task_type="binary", n_resamples=resamples, seed=s, sampler="multinomial")
             for s in range(seeds)]
    stats = _reference_stats(y, score)
    t0, c0 = time.perf_counter(), time.process_time()
    W = resample_weights(n, resamples, 0)  # shared by the metrics, as the evaluator did
    ref = {k: bootstrap_ci(stat, n, weights=W) for k, stat in stats.items()}
    ref_sec, ref_cpu = time.perf_counter() - t0, time.process_time() - c0
    recs = [{"step": f"classification, same process: evaluator on {n:,} cases (mean of {seeds} seeds)",
             "seconds": round(fast_sec, 2), "cpu_seconds": round(fast_cpu, 2)},
            {"step": f"classification, same process: reference (one bootstrap_ci per metric) on {n:,} cases",
             "seconds": round(ref_sec, 2), "cpu_seconds": round(ref_cpu, 2),
             "ratio_reference_over_evaluator": round(ref_sec / fast_sec, 1),
             "cpu_ratio_reference_over_evaluator": round(ref_cpu / fast_cpu, 1)}]
    agree = []
    for k, r in ref.items():
        rows = [run.metric(k) for run in runs]
        lo, hi = np.array([x["ci_low"] for x in rows]), np.array([x["ci_high"] for x in rows])
        sd_lo, sd_hi = lo.std(ddof=1), hi.std(ddof=1)
        mrows = [run.metric(k) for run in multi]
        mlo, mhi = np.array([x["ci_low"] for x in mrows]), np.array([x["ci_high"] for x in mrows])

        def welch(a: np.ndarray, b: np.ndarray) -> float | None:
            se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            return float((a.mean() - b.mean()) / se) if se > 0 else None

        agree.append({"metric": k, "value": rows[0]["value"], "value_diff": abs(rows[0]["value"] - r.value),
                      "reference_ci": [r.ci_low, r.ci_high], "evaluator_ci_seed0": [lo[0], hi[0]],
                      "seed_sd": [sd_lo, sd_hi],
                      "z_low": abs(lo.mean() - r.ci_low) / sd_lo if sd_lo > 0 else None,
                      "z_high": abs(hi.mean() - r.ci_high) / sd_hi if sd_hi > 0 else None,
                      "sampler_t": [welch(lo, mlo), welch(hi, mhi)]})
    return recs, agree


def segmentation_scale(n_cases: int, size: int, resamples: int) -> dict:
    import importlib.util

    # the sibling script benchmarks/surface_distance.py, by path: an installed package of that name
    # (DeepMind's surface-distance) would shadow it on sys.path
    spec = importlib.util.spec_from_file_location("_bench_surface_distance", Path(__file__).with_name("surface_distance.py"))
    sd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sd)
    LABELS, SPACING, TOLERANCE, make_case = sd.LABELS, sd.SPACING, sd.TOLERANCE, sd.make_case

    from openmia.evaluation.segmentation import evaluate_segmentation

    # a pool of distinct cases reused cyclically keeps generation time out of the measurement
    pool = [make_case(size, s, "smooth" if s % 2 == 0 else "noisy") for s in range(min(n_cases, 8))]
    cases = [f"case{i:03d}" for i in range(n_cases)]

    def load(cid: str):
        p, t = pool[int(cid[4:]) % len(pool)]
        return p, t, SPACING

    before = _rss_peak_mb()
    t0 = time.perf_counter()
    res = evaluate_segmentation(cases, load, labels=LABELS, tolerance=TOLERANCE, n_resamples=resamples)
    sec = time.perf_counter() - t0
    return {"step": f"segmentation: {n_cases} cases of {size}^3, {len(LABELS)} classes, 11 metrics each, {resamples} BCa resamples",
            "seconds": round(sec, 2), "seconds_per_case": round(sec / n_cases, 3), "peak_rss_mb": round(_rss_peak_mb(), 1),
            "rss_growth_mb": round(_rss_peak_mb() - before, 1), "dice_all": res.metric("dice", "all")["value"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--reference-cases", type=int, default=20_000, help="cases of the same-process reference comparison")
    ap.add_argument("--seeds", type=int, default=5, help="bootstrap seeds for the endpoints' Monte-Carlo spread")
    ap.add_argument("--seg-cases", type=int, default=200)
    ap.add_argument("--seg-size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    recs = [classification_scale(args.cases, args.resamples)]
    print(f"{recs[-1]['step']}: {recs[-1]['seconds']} s, peak RSS {recs[-1]['peak_rss_mb']} MB", flush=True)
    ref_recs, agree = classification_reference(args.reference_cases, args.resamples, args.seeds)
    for r in ref_recs:
        print(f"{r['step']}: {r['seconds']} s", flush=True)
    recs += ref_recs
    recs.append(segmentation_scale(args.seg_cases, args.seg_size, args.resamples))
    print(f"{recs[-1]['step']}: {recs[-1]['seconds']} s, peak RSS {recs[-1]['peak_rss_mb']} MB", flush=True)

    from openmia import fileio

    meta = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "load_average_1min": round(os.getloadavg()[0], 2),
            "command": "python benchmarks/evaluation_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    fileio.write_json(args.out / "evaluation_scale.json", {"meta": meta, "records": recs, "agreement": agree})
    lines = ["# Evaluator scale", "",
             f"{meta['cpus']} CPU cores (shared; 1-minute load average {meta['load_average_1min']} at the end); "
             f"generated by `{meta['command']}` on {meta['date']}.", "",
             "| step | seconds (wall) | CPU seconds | peak RSS (MB) | RSS growth (MB) |", "|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['seconds']} | {r.get('cpu_seconds', '')} | {r.get('peak_rss_mb', '')} | "
              f"{r.get('rss_growth_mb', '')} |" for r in recs]
    ratio, cpu_ratio = ref_recs[1]["ratio_reference_over_evaluator"], ref_recs[1]["cpu_ratio_reference_over_evaluator"]
    lines += ["", f"Same process, {args.reference_cases:,} cases: the reference takes {ratio}x the evaluator's wall time "
              f"({cpu_ratio}x its CPU time).", "",
              f"Agreement on {args.reference_cases:,} cases, {args.resamples} resamples: |point difference| and the distance of "
              f"the evaluator's mean endpoint over {args.seeds} seeds from the reference endpoint, in units of the "
              "seed-to-seed sd of the evaluator's endpoint (one reference seed: ~N(0, 1 + 1/seeds) if they agree; a "
              "rough guide where an endpoint is an extreme quantile, see below). Sampler t: Welch t of the endpoints "
              f"over {args.seeds} seeds of the evaluator with the fast sampler against {args.seeds} seeds with numpy's "
              "multinomial (the same code otherwise; ~t distributed if the samplers agree in distribution).", "",
              "| metric | value | abs. diff. to reference | reference CI | evaluator CI (seed 0) | seed sd (low, high) | z low | "
              "z high | sampler t (low, high) |", "|---|---|---|---|---|---|---|---|---|"]

    def f(x):
        return "n/a" if x is None else f"{x:.4g}"

    for a in agree:
        lines.append(f"| {a['metric']} | {a['value']:.6g} | {a['value_diff']:.1e} | [{a['reference_ci'][0]:.6g}, "
                     f"{a['reference_ci'][1]:.6g}] | [{a['evaluator_ci_seed0'][0]:.6g}, {a['evaluator_ci_seed0'][1]:.6g}] | "
                     f"{f(a['seed_sd'][0])}, {f(a['seed_sd'][1])} | {f(a['z_low'])} | {f(a['z_high'])} | "
                     f"{f(a['sampler_t'][0])}, {f(a['sampler_t'][1])} |")
    lines += ["", "youden_threshold is an argmax: one jackknife block moves it while the others do not, so its BCa "
              "acceleration is about -1/6 and its lower endpoint the ~0.2% quantile of the resamples (heavy-tailed Monte-Carlo "
              "error that 5 seeds estimate poorly); the same holds for the reference. The tolerance used in "
              "tests/stats/test_fast_bootstrap.py is 6 sqrt(2) sqrt(q(1-q)/B)/phi(z_q) bootstrap SEs (0.51 SE at B = 2000)."]
    fileio.write_text(args.out / "evaluation_scale.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
