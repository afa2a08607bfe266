"""openmia compare: paired tests of every model pair, Holm correction and rankings (DESIGN §4.4–4.5)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare models on the same cases: paired tests, Holm, rankings",
                       description="Compare several models' predictions on the same truth: a paired test for every pair "
                                   "and metric (DeLong for AUC, exact McNemar for ACC, Wilcoxon signed-rank for per-case "
                                   "metrics, paired bootstrap over images for detection AP/mAP) with a CI of the "
                                   "difference, Holm-corrected per metric; rankings with "
                                   "bootstrap rank distributions and Kendall's tau. Writes comparisons.csv, ranking.csv, "
                                   "rank_stability.png, forest_plot.png (paired differences with CIs) and compare.json.")
    p.add_argument("--task", required=True, choices=["classification", "segmentation", "detection", "counting", "inpainting",
                                                          "landmarks", "denoising"])
    p.add_argument("--truth", required=True, help="truth CSV (classification) or folder of label maps (segmentation)")
    p.add_argument("--pred", required=True, action="append", metavar="NAME=PATH",
                   help="a model's predictions; repeat for every model (at least two)")
    p.add_argument("--out", required=True, help="output folder (must not hold the inputs; an existing non-empty folder "
                                                 "needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true",
                   help="print compare.json's content on stdout (nothing else; the human text goes to stderr)")
    p.add_argument("--metrics", help="comma-separated metric ids (default: classification auc,acc,brier,nll; "
                                     "segmentation dice,hd95,assd,nsd; detection ap50,map,count_abs_error for boxes, "
                                     "ap,froc,count_abs_error for points)")
    p.add_argument("--labels", default="all", help="segmentation/detection: labels to compare, e.g. all,1,2 (default all)")
    p.add_argument("--scheme", default="aggregate-then-rank",
                   choices=["aggregate-then-rank", "rank-then-aggregate", "test-then-rank"])
    p.add_argument("--task-type", choices=["binary", "multi-class", "ordinal", "multi-label"])
    p.add_argument("--patients", help="CSV case_id,patient_id: bootstrap over patients")
    p.add_argument("--unpaired", action="store_true",
                   help="classification AUC: the models were scored on independent test sets (disjoint case ids, all in "
                        "--truth): DeLong's unpaired test (variance = sum of the two DeLong variances, Student's t as pROC)")
    p.add_argument("--alternative", choices=["two-sided", "greater", "less"], default="two-sided",
                   help="classification AUC: DeLong's alternative, greater = AUC of the first model of a pair > the "
                        "second's (default two-sided)")
    p.add_argument("--spacing", help="segmentation: voxel size in mm per axis (default: NIfTI header)")
    p.add_argument("--nsd-tolerance", default="1.0", help="segmentation: NSD tolerance in mm, or per label 1=1.0,2=2.0")
    seg = p.add_argument_group("segmentation (as openmia evaluate)")
    seg.add_argument("--surface", choices=["voxel", "surfel"], default="voxel",
                     help="surface of HD/HD95/ASSD/MASD/NSD: voxel (default) or surfel (area-weighted surface elements)")
    seg.add_argument("--percentile", type=float, default=95.0, help="percentile of the robust Hausdorff distance (default 95)")
    seg.add_argument("--empty-truth", choices=["worst", "nan"], default="worst",
                     help="a label whose truth is empty in a case: worst (default) or nan (excluded)")
    seg.add_argument("--extra-metrics", default="", help="opt-in metric groups cldice, panoptic (also switched on by "
                     "--metrics naming one of their metrics, e.g. cldice or lesion_pq)")
    p.add_argument("--workers", default="1", help="segmentation: processes scoring cases in parallel, N or 0 / auto = "
                   "the available CPUs (default 1; same results)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for CIs of differences (default 2000)")
    p.add_argument("--rank-resamples", type=int, default=1000, help="bootstrap resamples for rank stability (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spacing-from", help="landmarks: CSV case_id,sx,sy[,sz] of voxel sizes in mm (or --spacing)")
    p.add_argument("--data-range", type=float, help="inpainting/denoising: intensity range (required)")
    p.add_argument("--masks", help="inpainting: mask folder")
    det = p.add_argument_group("detection (as openmia evaluate)")
    det.add_argument("--iou-threshold", type=float, default=0.5, help="IoU for a match (boxes; default 0.5)")
    det.add_argument("--distance", type=float, default=5.0, help="match distance for points, in mm with --spacing (default 5)")
    det.add_argument("--score-threshold", type=float, default=0.5, help="score threshold of the per-image counts (default 0.5)")
    det.add_argument("--max-dets", type=int, help="predictions kept per image and class (default 100 for boxes, no cap for "
                     "points; 0 = no cap)")
    det.add_argument("--format", choices=["auto", "csv", "coco"], default="auto", help="CSV or COCO JSON (auto: by suffix)")
    det.add_argument("--froc-interpolation", choices=["step", "linear"], default="step", help="FROC rule (default step)")


def run(args: argparse.Namespace) -> int:
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    from pathlib import Path

    from openmia.cli._common import format_table
    from openmia.cli.evaluate_cmd import _floats
    from openmia.errors import PredictionError
    from openmia import api

    preds: dict[str, str] = {}
    for item in args.pred:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise PredictionError(f"--pred expects NAME=PATH, found {item!r}")
        if name in preds:
            raise PredictionError(f"--pred: model name {name!r} given twice")
        preds[name] = path
    if len(preds) < 2:  # argument errors before the output folder is looked at
        raise PredictionError(f"compare needs at least two --pred NAME=PATH, got {len(preds)}")
    from openmia.fileio import prepare_output_dir

    prepare_output_dir(args.out, inputs=[args.truth, args.patients, args.masks, *preds.values()], overwrite=args.overwrite)
    kwargs = {}
    if args.task == "segmentation":
        from openmia.evaluation.segmentation import parse_tolerance

        from openmia.evaluation.parallel import parse_workers

        from openmia.metrics.segmentation import LESION_METRICS
        from openmia.metrics.segmentation_more import EXTRA_METRICS

        wanted = set() if args.metrics is None else {m.strip() for m in args.metrics.split(",")}
        extra = [e.strip() for e in args.extra_metrics.split(",") if e.strip()]
        extra += [g for g, (ms, _) in EXTRA_METRICS.items() if wanted & set(ms) and g not in extra]
        kwargs = {"spacing": _floats(args.spacing, "--spacing"), "tolerance": parse_tolerance(args.nsd_tolerance),
                  "workers": parse_workers(args.workers), "surface": args.surface, "percentile": args.percentile,
                  "empty_truth": args.empty_truth, "extra_metrics": extra,
                  "lesions": bool(wanted & set(LESION_METRICS[:2]))}
    elif args.task == "landmarks":
        kwargs = {"spacing": _floats(args.spacing, "--spacing"), "spacing_csv": args.spacing_from}
    elif args.task in ("inpainting", "denoising"):
        kwargs = {"data_range": args.data_range, "mask_dir": args.masks}
    elif args.task == "detection":
        kwargs = {"iou_threshold": args.iou_threshold, "distance": args.distance, "score_threshold": args.score_threshold,
                  "max_dets": args.max_dets, "format": args.format, "spacing": _floats(args.spacing, "--spacing"),
                  "froc_interpolation": args.froc_interpolation}
    res = api.compare(args.task, args.truth, preds, args.out,
                        metrics=None if args.metrics is None else [m.strip() for m in args.metrics.split(",")],
                        labels=[s.strip() for s in args.labels.split(",")], scheme=args.scheme, task_type=args.task_type,
                        patients_csv=args.patients, n_resamples=args.resamples, rank_resamples=args.rank_resamples,
                        seed=args.seed, progress=not getattr(args, "quiet", False), unpaired=args.unpaired,
                        alternative=args.alternative, **kwargs)

    def f(x: float) -> str:
        return f"{x:.4g}" if x == x else "nan"

    rows = [[r["metric"], r["label"], f"{r['model_a']} - {r['model_b']}", f(r["diff"]), f"[{f(r['ci_low'])}, {f(r['ci_high'])}]",
             r["test"], f(r["p_value"]), f(r["p_holm"])] for r in res["comparisons"]]
    echo(format_table(["metric", "label", "pair", "diff", "95% CI", "test", "p", "p (Holm)"], rows))
    echo()
    rrows = [[r["metric"], r["label"], r["scheme"], r["model"], f(r["score"]), f"{r['rank']:g}", f"{r['p_rank1']:.2f}",
              f"{r['kendall_tau_median']:.2f}"] for r in res["ranking"]]
    echo(format_table(["metric", "label", "scheme", "model", "score", "rank", "P(rank 1)", "Kendall tau"], rrows))
    out = Path(args.out)
    echo(f"wrote {out / 'comparisons.csv'}, {out / 'ranking.csv'}, {out / 'rank_stability.png'}, "
         f"{out / 'forest_plot.png'} and {out / 'compare.json'}")
    if args.json:
        from openmia.cli._common import print_json

        print_json((out / "compare.json").read_text())
    return 0
