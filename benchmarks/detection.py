"""Detection and counting benchmark on real data: BCCD blood cells (boxes) and the VGG cells
counting protocol (dots), with two detectors, a density model and a classical baseline.

Usage::

    python benchmarks/detection.py --data ../shared/data --parallel 2
    python benchmarks/detection.py --data ../shared/data --datasets cells --draws 0 1 --minutes cells=2

* **BCCD** (upstream split 205 / 87 / 72, the two zero-area boxes dropped and reported): CenterNet
  and FCOS, each trained for ``bccd`` CPU-minutes (one torch thread); mAP@0.5, mAP@0.5:0.95,
  per-class AP and per-image count MAE per class (count thresholds chosen on val), BCa CIs over
  test images; the detectors' count errors compared pairwise (Wilcoxon, Holm).
* **VGG cells**: N = 32 training images drawn from 001-100 (16 more for validation), test on
  101-200, for each draw; the U-Net density model, the CenterNet point detector (count =
  detections at the val-chosen threshold) and the Laplacian-of-Gaussian baseline (threshold chosen
  on the same 32 training images). MAE is the mean over draws of each test image's absolute count
  error; its CI is a BCa bootstrap over the 100 test images of those draw-averaged errors, and the
  methods are compared on them pairwise (Wilcoxon signed-rank, Holm).

A thin wrapper over the suite ``benchmarks/suites/detection.yaml``: the trained runs are its cells
(BCCD x centernet, fcos; VGG cells draw k x density_unet, centernet_points, the draw being
``data.fold``), restricted to ``--datasets``, ``--draws``, ``--seed`` and ``--minutes``, plus the two
density-model ablations (``ABLATIONS``: the suite's ``density_unet`` with keys set, added as models
of the derived suite, so they are ordinary cells too). The suite runner trains them into the
suite's run directories and ``suite.sqlite`` (``--runs-dir`` is the suite's ``out_dir``, default
OPENMIA_HOME/suites/detection): a cell finished by ``openmia benchmark run
benchmarks/suites/detection.yaml --data DATA`` is reused here and the other way round; interrupted
cells resume. The script's own part: the Laplacian-of-Gaussian baseline (no training, so not a
cell: its counts go to ``<runs-dir>/script/cells-log_baseline-d<draw>``), the draw-averaged count
errors and the paired tests. The recipes are ``benchmarks/configs/{bccd,cells}_*.yaml``. Writes
``benchmarks/results/detection.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _runs import (SUITES, cell_recipe, derived_suite, describe, override_mapping, parse_budgets, read_suite,
                   recipe_value, run_cells)

ROOT = Path(__file__).resolve().parents[1]
# the published budgets (CPU-minutes per run): the recipes' train.max_minutes
MINUTES = {"bccd": float(recipe_value("bccd_centernet", "train.max_minutes")),
           "cells": float(recipe_value("cells_density_unet", "train.max_minutes"))}
# literature for orientation (different splits / hardware): BCCD YOLO-family mAP@0.5 0.92-0.95;
# VGG cells N=32 MAE 3.5 (density regression, Lempitsky & Zisserman 2010), 2.3 (Count-ception 2017)
REFERENCE = {("bccd", "map50"): 0.92, ("cells", "count_mae"): 3.5}

SUITE = SUITES / "detection.yaml"
# ablations of the density model run beside the suite's models on the VGG cells draws: name ->
# (the suite model it changes, overrides): whole images (the recipe before crops), and that at half
# the peak learning rate
ABLATIONS: dict[str, tuple[str, list[str]]] = {
    "density_unet_whole": ("density_unet", ["counting.crop=null"]),
    "density_unet_lr1e-3": ("density_unet", ["counting.crop=null", "optim.lr=0.001"]),
}
DATASET = {"bccd": "bccd", "cells": "vgg_cells"}  # the script's set names -> catalogue names
DATASET_KEY = {v: k for k, v in DATASET.items()}
LOG_THRESHOLDS = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15)


def _fold(entry: dict[str, Any]) -> int:
    return int((entry.get("set") or {}).get("data.fold", 0))


def restricted_suite(args: argparse.Namespace, budgets: dict[str, float]):
    """The suite file with the command line's sets, draws, seed and budgets, and the ablations as
    models of every VGG cells draw; a cell left as the file declares it keeps its id and run dir."""
    raw = read_suite(args.suite)
    entries = [{"name": d} if isinstance(d, str) else dict(d) for d in raw.get("datasets") or []]
    datasets = []
    for key in args.datasets:
        mine = [e for e in entries if e["name"] == DATASET[key]]
        if not mine:
            raise SystemExit(f"{args.suite}: no data set {DATASET[key]!r} for --datasets {key}")
        if key == "cells":  # one entry per draw: the suite's own, or a copy of its first with data.fold set
            by_fold = {_fold(e): e for e in mine}
            mine = [by_fold.get(d) or {**mine[0], "label": f"vgg_cells-draw{d}", "set": {**(mine[0].get("set") or {}), "data.fold": d}}
                    for d in args.draws]
        for e in mine:
            if budgets[key] != MINUTES[key]:  # the published budget stays the recipes' own (same cells)
                e = {**e, "set": {**(e.get("set") or {}), "train.max_minutes": budgets[key]}}
            datasets.append(e)
    models = dict(raw["models"])
    for name, (source, extra) in ABLATIONS.items():
        m = dict(models[source] or {})
        models[name] = {**m, "set": {**(m.get("set") or {}), **override_mapping(extra)}}
    for e in datasets:
        if e["name"] == DATASET["cells"]:
            own = e.get("models") or [m for m in raw["models"]]
            e["models"] = [x for m in own for x in (m, *(a for a, (src, _) in ABLATIONS.items() if src == m))]
    raw.update(datasets=datasets, models=models, seeds=[args.seed])
    return derived_suite(args.suite, raw, out_dir=args.runs_dir, data_root=args.data,
                         overrides=[f"eval.n_resamples={args.resamples}"])


def log_baseline(root: str, draw: int, out: Path) -> dict[str, Any]:
    """LoG counts for the test images of one draw, threshold chosen on its training images;
    writes ``predictions/test_counts.csv`` and ``truth/test_counts.csv`` like a run."""
    from openmia import fileio
    from openmia.data.catalog import load_split
    from openmia.models.classical_counting import log_blob_points

    if (out / "result.json").is_file():
        return json.loads((out / "result.json").read_text())
    t0 = time.process_time()
    tr = load_split("vgg_cells", "train", root=root, fold=draw)
    imgs = [im.transpose(1, 2, 0) for im in tr.images]
    mae = [np.mean([abs(len(log_blob_points(im, threshold=t)) - n) for im, n in zip(imgs, tr.labels)]) for t in LOG_THRESHOLDS]
    best = LOG_THRESHOLDS[int(np.argmin(mae))]
    te = load_split("vgg_cells", "test", root=root, fold=draw)
    counts = [len(log_blob_points(im.transpose(1, 2, 0), threshold=best)) for im in te.images]
    fileio.write_csv(out / "predictions" / "test_counts.csv", [["case_id", "label", "count"],
                                                               *([c, "cell", n] for c, n in zip(te.case_ids, counts))])
    fileio.write_csv(out / "truth" / "test_counts.csv", [["case_id", "label", "count"],
                                                         *([c, "cell", int(n)] for c, n in zip(te.case_ids, te.labels))])
    res = {"threshold": best, "train_mae_by_threshold": dict(zip(map(str, LOG_THRESHOLDS), map(float, mae))),
           "train_seconds": round(time.process_time() - t0, 3)}
    fileio.write_json(out / "result.json", res)
    return res


def _abs_errors(run_dir: Path) -> dict[str, float]:
    """Per test image (summed over classes) absolute count error."""
    import csv

    def read(p: Path) -> dict[tuple[str, str], float]:
        with open(p) as f:
            return {(r["case_id"], r["label"]): float(r["count"]) for r in csv.DictReader(f)}

    pred, truth = read(run_dir / "predictions" / "test_counts.csv"), read(run_dir / "truth" / "test_counts.csv")
    out: dict[str, float] = {}
    for (cid, lab), t in truth.items():
        out[cid] = out.get(cid, 0.0) + abs(pred[(cid, lab)] - t)
    return out


def _ci(values: np.ndarray, resamples: int) -> tuple[float, float, float]:
    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.stats.bootstrap import bootstrap_ci

    r = bootstrap_ci(weighted_nanmean(values), len(values), n_resamples=resamples, seed=0)
    return r.value, r.ci_low, r.ci_high


def _metric(summary: dict[str, Any], metric: str, label: str = "all") -> dict[str, Any]:
    return next(m for m in summary["metrics"] if m["metric"] == metric and str(m["label"]) == label)


def bccd_records(runs: dict[str, Path], resamples: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records per detector and the paired comparison of their per-image count errors."""
    from openmia.evaluation.compare import pairwise_comparisons
    from openmia.evaluation.compare import ModelPredictions

    records, per_image = [], {}
    for model, rd in runs.items():
        det = json.loads((rd / "eval" / "test" / "summary.json").read_text())
        cnt = json.loads((rd / "eval" / "test" / "counting" / "summary.json").read_text())
        result = json.loads((rd / "result.json").read_text())
        errs = _abs_errors(rd)
        per_image[model] = errs
        mae, lo, hi = _ci(np.array(list(errs.values())), resamples)
        classes = [lab for lab in det["labels"] if lab != "all"]
        records.append({
            "dataset": "bccd", "model": model, "map50": _metric(det, "ap50")["value"],
            "map50_ci_low": _metric(det, "ap50")["ci_low"], "map50_ci_high": _metric(det, "ap50")["ci_high"],
            "map50_95": _metric(det, "map")["value"], "map50_95_ci_low": _metric(det, "map")["ci_low"],
            "map50_95_ci_high": _metric(det, "map")["ci_high"],
            "count_mae": mae, "count_mae_ci_low": lo, "count_mae_ci_high": hi, "count_mae_unit": "objects per image (all classes)",
            "per_class": {c: {"ap50": _metric(det, "ap50", c)["value"], "ap50_ci": [_metric(det, "ap50", c)["ci_low"],
                                                                                  _metric(det, "ap50", c)["ci_high"]],
                              "count_mae": _metric(cnt, "mae", c)["value"],
                              "count_mae_ci": [_metric(cnt, "mae", c)["ci_low"], _metric(cnt, "mae", c)["ci_high"]],
                              "count_threshold": result["count_thresholds"][c]} for c in classes},
            "train_seconds": result["train_seconds"], "epochs": result["epochs_done"], "best_epoch": result["best_epoch"],
            "n_test_images": det["n_cases"], "reference_map50": REFERENCE[("bccd", "map50")],
        })
    ids = sorted(next(iter(per_image.values())))
    models = [ModelPredictions(m, {("count_abs_error", "all"): np.array([e[c] for c in ids])}) for m, e in per_image.items()]
    tests = pairwise_comparisons(models, metrics=[("count_abs_error", "all")], n_resamples=resamples) if len(models) > 1 else []
    return records, [{"dataset": "bccd", **t} for t in tests]


def cells_records(runs: dict[str, list[Path]], resamples: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records per method (errors averaged over draws per test image) and pairwise tests."""
    from openmia.evaluation.compare import ModelPredictions, pairwise_comparisons

    records, avg = [], {}
    for model, dirs in runs.items():
        per_draw = [_abs_errors(d) for d in dirs]
        ids = sorted(per_draw[0])
        truth = _truth_counts(dirs[0])
        e = np.mean([[pd[c] for c in ids] for pd in per_draw], axis=0)
        avg[model] = e
        mae, lo, hi = _ci(e, resamples)
        rel = np.mean([[pd[c] / truth[c] for c in ids] for pd in per_draw], axis=0)
        res = [json.loads((d / "result.json").read_text()) for d in dirs]
        records.append({
            "dataset": "cells", "model": model, "map50": None, "map50_95": None, "count_mae": mae, "count_mae_ci_low": lo,
            "count_mae_ci_high": hi, "count_mae_per_draw": [float(np.mean(list(pd.values()))) for pd in per_draw],
            "relative_error": float(rel.mean()), "draws": len(dirs), "n_train": 32, "n_test_images": len(ids),
            "train_seconds": float(np.mean([r["train_seconds"] for r in res])),
            "reference_count_mae": REFERENCE[("cells", "count_mae")],
            **({"log_thresholds": [r["threshold"] for r in res]} if model == "log_baseline" else {}),
        })
    models = [ModelPredictions(m, {("count_abs_error", "all"): e}) for m, e in avg.items()]
    tests = pairwise_comparisons(models, metrics=[("count_abs_error", "all")], n_resamples=resamples) if len(models) > 1 else []
    return records, [{"dataset": "cells", **t} for t in tests]


def _truth_counts(run_dir: Path) -> dict[str, float]:
    import csv

    with open(run_dir / "truth" / "test_counts.csv") as f:
        out: dict[str, float] = {}
        for r in csv.DictReader(f):
            out[r["case_id"]] = out.get(r["case_id"], 0.0) + float(r["count"])
    return out


def write_results(records: list[dict[str, Any]], tests: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    from openmia import fileio

    fileio.write_json(out / "detection.json", records)
    f = lambda v, d=3: "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"  # noqa: E731
    lines = [
        "# Detection and counting on real data: BCCD and VGG cells", "",
        f"Budgets: {meta['budgets']} CPU-minutes of training per run (train + validation, process CPU time), one torch "
        f"thread per run, {meta['parallel']} run(s) in parallel on {meta['cpus']} cores; cells: draws {meta['draws']}. "
        f"Generated by `{meta['command']}` on {meta['date']} (openmia git {meta['git']}). Test splits scored once; CIs are "
        f"BCa bootstraps over test images ({meta['resamples']:,} resamples).", "",
        "| dataset | model | mAP@0.5 | 95% CI | mAP@0.5:0.95 | count MAE / image | 95% CI | rel. error | train s | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ci = f"{f(r.get('map50_ci_low'))}–{f(r.get('map50_ci_high'))}" if r.get("map50") is not None else "–"
        lines.append(f"| {r['dataset']} | {r['model']} | {f(r['map50'])} | {ci} | {f(r['map50_95'])} | {f(r['count_mae'], 2)} "
                     f"| {f(r['count_mae_ci_low'], 2)}–{f(r['count_mae_ci_high'], 2)} | {f(r.get('relative_error'))} "
                     f"| {f(r['train_seconds'], 0)} | {r.get('epochs', '')} |")
    per_class = [r for r in records if r.get("per_class")]
    if per_class:
        lines += ["", "## BCCD per class (test, 72 images)", "",
                  "| model | class | AP@0.5 | 95% CI | count MAE / image | 95% CI | count threshold (val) |", "|---|---|---|---|---|---|---|"]
        for r in per_class:
            for c, v in r["per_class"].items():
                lines.append(f"| {r['model']} | {c} | {f(v['ap50'])} | {f(v['ap50_ci'][0])}–{f(v['ap50_ci'][1])} | "
                             f"{f(v['count_mae'], 2)} | {f(v['count_mae_ci'][0], 2)}–{f(v['count_mae_ci'][1], 2)} | {v['count_threshold']:.2f} |")
    cells = [r for r in records if r["dataset"] == "cells"]
    if cells:
        lines += ["", "## VGG cells: MAE per draw", "", "| model | " + " | ".join(f"draw {d}" for d in meta["draws"]) + " |",
                  "|---|" + "---|" * len(meta["draws"])]
        for r in cells:
            lines.append(f"| {r['model']} | " + " | ".join(f(v, 2) for v in r["count_mae_per_draw"]) + " |")
    if tests:
        lines += ["", "## Paired comparisons of per-image absolute count errors (A - B; Wilcoxon signed-rank, Holm)", "",
                  "| dataset | A | B | MAE A | MAE B | diff | 95% CI | p | Holm p |", "|---|---|---|---|---|---|---|---|---|"]
        for t in tests:
            lines.append(f"| {t['dataset']} | {t['model_a']} | {t['model_b']} | {f(t['estimate_a'], 2)} | {f(t['estimate_b'], 2)} "
                         f"| {t['diff']:+.2f} | {t['ci_low']:+.2f}–{t['ci_high']:+.2f} | {t['p_value']:.3g} | {t['p_holm']:.3g} |")
    lines += ["", "Configurations:", ""]
    for key, ov in meta["configs"].items():
        lines.append(f"- {key}: `{describe(ov)}`")
    fileio.write_text(out / "detection.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding bccd/ and cells/")
    ap.add_argument("--datasets", nargs="+", default=list(MINUTES), choices=list(MINUTES))
    ap.add_argument("--minutes", nargs="*", default=[], metavar="SET=MIN", help="override a budget, e.g. bccd=10")
    ap.add_argument("--draws", nargs="+", type=int, default=[0, 1, 2], help="VGG cells draws (data.fold) to run")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suite", type=Path, default=SUITE, help="the suite whose cells are trained")
    ap.add_argument("--runs-dir", default=None, help="the suite's out_dir: run directories and suite.sqlite "
                                                     "(default OPENMIA_HOME/suites/detection, as `openmia benchmark run`)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from openmia.engine.provenance import git_commit

    budgets = parse_budgets(ap, MINUTES, args.minutes)
    suite = restricted_suite(args, budgets)
    t0 = time.time()
    dirs = run_cells(suite, parallel=args.parallel, threads=1)
    sets = {c.dataset: DATASET_KEY[c.config["data"]["dataset"]] for c in suite.cells}

    records, tests = [], []
    if "bccd" in args.datasets:
        r, t = bccd_records({c.model: dirs[(c.dataset, c.model, c.seed)] for c in suite.cells if sets[c.dataset] == "bccd"},
                            args.resamples)
        records, tests = records + r, tests + t
    if "cells" in args.datasets:
        root = str(Path(args.data) / "cells")
        runs: dict[str, list[Path]] = {}
        for c in suite.cells:  # draws in --draws order, models in the suite's
            if sets[c.dataset] == "cells":
                runs.setdefault(c.model, []).append(dirs[(c.dataset, c.model, c.seed)])
        runs["log_baseline"] = []
        for d in dict.fromkeys(int(c.config["data"]["fold"]) for c in suite.cells if sets[c.dataset] == "cells"):
            out = suite.out_dir / "script" / f"cells-log_baseline-d{d}"  # not a cell: no training, no config
            log_baseline(root, d, out)
            runs["log_baseline"].append(out)
        r, t = cells_records(runs, args.resamples)
        records, tests = records + r, tests + t
    configs = {}
    for c in suite.cells:
        configs.setdefault(f"{sets[c.dataset]} / {c.model}", cell_recipe(c, drop=("data.root", "train.seed", "eval.n_resamples",
                                                                                   "data.fold")))
    if "cells" in args.datasets:
        configs["cells / log_baseline"] = [f"skimage.feature.blob_log(min_sigma=2, max_sigma=6, num_sigma=5), threshold from "
                                           f"{list(LOG_THRESHOLDS)} by training-image MAE"]
    meta = {"budgets": ", ".join(f"{d} {budgets[d]:g}" for d in args.datasets), "parallel": args.parallel,
            "cpus": len(os.sched_getaffinity(0)), "date": time.strftime("%Y-%m-%d"), "git": git_commit(ROOT),
            "command": "python benchmarks/detection.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "configs": configs, "resamples": args.resamples, "draws": args.draws}
    out = Path(args.out)
    write_results(records, tests, out, meta)
    logging.info("wrote %s in %.0f s", out / "detection.md", time.time() - t0)
    print((out / "detection.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
