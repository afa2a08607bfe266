"""openmia evaluate: score prediction files from any tool against truth (DESIGN §4)."""

from __future__ import annotations

import argparse

TASKS = ("classification", "segmentation", "detection", "counting", "clustering", "inpainting", "landmarks", "denoising")


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score prediction files from any tool against truth",
                       description="Score predictions with the evaluation standard: per-case table + summary with 95% CIs. "
                                   "Formats: docs/evaluation.md.")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--pred", required=True, help="classification: CSV case_id,<class probabilities> (binary: case_id,score); "
                   "segmentation: folder of <case_id>.nii.gz|.nii|.mha|.nrrd|.tif|.png|.npy label maps (or --pred-pattern); "
                   "detection: CSV case_id,label,score,x1,y1,x2,y2 (or x,y[,z]) or a COCO results .json")
    p.add_argument("--truth", required=True, help="classification: CSV case_id,label[,patient_id] (multi-label: one 0/1 column "
                   "per label); segmentation: folder of label maps with the same case ids; detection: CSV "
                   "case_id,label,x1,y1,x2,y2 (or x,y[,z]) or a COCO annotations .json")
    p.add_argument("--out", required=True, help="output folder for per_case.csv, summary.json and report.html "
                   "(must not hold the inputs; an existing non-empty folder needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true",
                   help="print summary.json's content on stdout (nothing else; the human text goes to stderr)")
    p.add_argument("--task-type", choices=["binary", "multi-class", "ordinal", "multi-label"],
                   help="default: inferred (ordinal must be given)")
    p.add_argument("--patients", help="CSV case_id,patient_id: bootstrap over patients")
    p.add_argument("--allow-missing", action="store_true", help="score cases missing from --pred as worst case (reported)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--threshold", type=float, help="decision threshold for binary/multi-label (default 0.5)")
    cls = p.add_argument_group("classification")
    cls.add_argument("--sens-at-spec", help="binary: also the sensitivity at specificity >= each value, e.g. 0.9 or 0.9,0.95")
    cls.add_argument("--spec-at-sens", help="binary: also the specificity at sensitivity >= each value, e.g. 0.9")
    cls.add_argument("--pauc-fpr", help="binary: also the partial AUC over this FPR range, e.g. 0,0.2 (McClish-standardised)")
    cls.add_argument("--top-k", default="2,3",
                     help="multi-class: k of the top-k accuracies, those below the class count (default 2,3)")
    seg = p.add_argument_group("segmentation")
    seg.add_argument("--spacing", help="voxel size in mm per axis, e.g. 1.5,0.8,0.8 (default: from the NIfTI/MHA/NRRD header)")
    seg.add_argument("--nsd-tolerance", default="1.0", help="NSD tolerance in mm: 1.5, or per label 1=1.5,2=2.0 (default 1.0)")
    seg.add_argument("--labels", help="foreground labels to score, e.g. 1,2,3 (default: every label in the truth)")
    seg.add_argument("--label-names", help="names used in the outputs, e.g. 1=liver,2=tumour (default: the label values)")
    seg.add_argument("--percentile", type=float, default=95.0, help="percentile of the robust Hausdorff distance (default 95)")
    seg.add_argument("--lesions", action="store_true", help="also lesion-wise metrics on connected components")
    seg.add_argument("--workers", default="1", help="processes scoring cases in parallel: N, or 0 / auto = the available "
                     "CPUs (default 1 = in this process; same results for any N)")
    seg.add_argument("--images", help="folder of <case_id> images (same voxel grid as the truth): the background of the "
                     "report's worst-case overlays (default: a blank background)")
    seg.add_argument("--worst-cases", type=int, default=3, help="how many lowest-Dice cases report.html shows as "
                     "overlays (default 3; 0 = none)")
    seg.add_argument("--pred-pattern", help="file layout under --pred: {case} = the case id, * = any characters in a name, "
                     "e.g. '{case}/{case}_seg.nii.gz' (MONAI SaveImage) (default: <case_id>.<suffix>)")
    seg.add_argument("--truth-pattern", help="file layout under --truth, e.g. 'labelsTr/{case}.nii.gz' (default: <case_id>.<suffix>)")
    seg.add_argument("--resample-pred", action="store_true", help="resample a prediction on another voxel grid than its truth "
                     "(shift, rotation, spacing, extent) onto the truth grid, nearest neighbour (default: an error; "
                     "a flipped or permuted axis order is always reoriented)")
    seg.add_argument("--empty-truth", choices=["worst", "nan"], default="worst",
                     help="a label whose truth is empty in a case: worst (default; scored as the worst case, NaN when the "
                          "prediction is empty too) or nan (MONAI ignore_empty: NaN, excluded from the means and counted)")
    seg.add_argument("--surface", choices=["voxel", "surfel"], default="voxel",
                     help="surface of HD/HD95/ASSD/MASD/NSD: voxel (default; boundary voxels, weight 1 each) or surfel "
                          "(surface elements weighted by area/length: DeepMind surface-distance, MONAI use_subvoxels=True)")
    seg.add_argument("--extra-metrics", default="", help="opt-in metric groups, comma-separated: cldice (clDice, topology "
                     "precision/sensitivity), panoptic (lesion-wise PQ/SQ/RQ at IoU > 0.5 with TP/FP/FN counts)")
    det = p.add_argument_group("detection")
    det.add_argument("--iou-threshold", type=float, default=0.5, help="IoU for a match (boxes; default 0.5)")
    det.add_argument("--distance", type=float, default=5.0, help="match distance for points, in mm with --spacing (default 5)")
    det.add_argument("--score-threshold", type=float, default=0.5, help="operating threshold for F1/precision/recall (default 0.5)")
    det.add_argument("--max-dets", type=int, help="predictions kept per image and class, highest scores first "
                     "(COCOeval's maxDets; default 100 for boxes, no cap for points; 0 = no cap)")
    det.add_argument("--froc-interpolation", choices=["step", "linear"], default="step",
                     help="FROC sensitivity between operating points: step (default; reached by a real threshold) or "
                          "linear (np.interp, as the LUNA16/CAMELYON16 scripts)")
    det.add_argument("--format", choices=["auto", "csv", "coco"], default="auto", help="detection files: CSV or COCO JSON "
                     "(truth: annotations file, pred: results list); auto = COCO for a .json suffix (default auto)")
    lmk = p.add_argument_group("landmarks (points CSV case_id,landmark,x,y[,z] in voxels; docs/landmarks.md)")
    lmk.add_argument("--spacing-from", help="landmarks: CSV case_id,sx,sy[,sz] of voxel sizes in mm (or one --spacing for all)")
    lmk.add_argument("--shapes-from", help="landmarks: CSV case_id,nx,ny[,nz] of image shapes; a point outside is an error")
    lmk.add_argument("--radii", default="2,4", help="landmarks: success radii in mm (default 2,4)")
    other = p.add_argument_group("clustering / inpainting")
    other.add_argument("--embeddings", help="clustering: CSV case_id,<features> for the silhouette")
    other.add_argument("--data-range", type=float, help="inpainting/denoising: intensity range (required, e.g. 1.0 or 255)")
    other.add_argument("--masks", help="inpainting: folder of masks <case_id>.npy|.png|.nii.gz (metrics inside the mask)")


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    from openmia.errors import PredictionError

    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise PredictionError(f"{option}: expected comma-separated numbers, found {text!r}") from None


def _label_names(text: str | None) -> dict[int, str] | None:
    from openmia.errors import PredictionError

    if not text:
        return None
    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not k.strip().isdigit() or not v.strip():
            raise PredictionError(f"--label-names: expected e.g. 1=liver,2=tumour, found {part!r}")
        out[int(k)] = v.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    from pathlib import Path

    from openmia import api
    from openmia.fileio import prepare_output_dir

    # checked before scoring: a refused or unwritable --out fails in a second, not after the bootstrap
    prepare_output_dir(args.out, inputs=[args.pred, args.truth, args.patients, args.masks, args.embeddings,
                                         getattr(args, "spacing_from", None), getattr(args, "shapes_from", None),
                                         getattr(args, "images", None)],
                       overwrite=args.overwrite)
    common = dict(patients_csv=args.patients, allow_missing=args.allow_missing, n_resamples=args.resamples, seed=args.seed)
    if args.task == "segmentation":
        from openmia.evaluation.parallel import parse_workers
        from openmia.evaluation.segmentation import parse_tolerance

        if args.worst_cases < 0:
            from openmia.errors import ConfigError

            raise ConfigError(f"--worst-cases: expected a number of cases >= 0, found {args.worst_cases}")
        labels = _floats(args.labels, "--labels")
        res = api.evaluate("segmentation", args.pred, args.truth, args.out, **common,
                           spacing=_floats(args.spacing, "--spacing"), tolerance=parse_tolerance(args.nsd_tolerance),
                           labels=None if labels is None else [int(v) for v in labels], percentile=args.percentile,
                           lesions=args.lesions, workers=parse_workers(args.workers), images_dir=args.images,
                           worst_cases=args.worst_cases, label_names=_label_names(args.label_names),
                           pred_pattern=args.pred_pattern, truth_pattern=args.truth_pattern, resample_pred=args.resample_pred,
                           empty_truth=args.empty_truth, surface=args.surface,
                           extra_metrics=[e for e in args.extra_metrics.split(",") if e.strip()],
                           progress=not getattr(args, "quiet", False))
        s = res.summary
        echo(f"{s['n_cases']} cases, labels {', '.join(map(str, s['label_values']))}"
              + (f", {s['n_patients']} patients (bootstrap over patients)" if s.get("n_patients") else ""))
        table = res.table(metrics=["dice", "iou", "hd95", "assd", "nsd"] + (["lesion_f1"] if args.lesions else [])
                          + [m for e, m in (("cldice", "cldice"), ("panoptic", "lesion_pq")) if e in s["extra_metrics"]])
        worst = res.extras.get("worst_cases") or []
        if worst:
            echo("lowest Dice: " + ", ".join(f"{e['case']} {e['dice']:.3f}" for e in worst)
                 + f" (overlays in report.html and {Path(args.out) / 'worst_cases'})")
    elif args.task == "landmarks":
        if args.patients:
            from openmia.errors import PredictionError

            raise PredictionError("--patients is not supported for --task landmarks in this version")
        common.pop("patients_csv")
        res = api.evaluate("landmarks", args.pred, args.truth, args.out, **common, spacing=_floats(args.spacing, "--spacing"),
                           spacing_csv=args.spacing_from, shapes_csv=args.shapes_from, radii=_floats(args.radii, "--radii"))
        s = res.summary
        echo(f"{s['n_cases']} cases, landmarks {', '.join(s['landmarks'])}")
        table = "\n\n".join(f"landmark {lab}\n" + res.table(label=lab) for lab in s["labels"])
    elif args.task in ("detection", "counting", "clustering", "inpainting", "denoising"):
        if args.patients:
            from openmia.errors import PredictionError

            raise PredictionError(f"--patients is not supported for --task {args.task} in this version")
        common.pop("patients_csv")
        extra = {"detection": dict(iou_threshold=args.iou_threshold, distance=args.distance, score_threshold=args.score_threshold,
                                   max_dets=args.max_dets, froc_interpolation=args.froc_interpolation, format=args.format,
                                   spacing=_floats(args.spacing, "--spacing")),
                 "counting": {}, "clustering": dict(embeddings_csv=args.embeddings),
                 "inpainting": dict(data_range=args.data_range, mask_dir=args.masks),
                 "denoising": dict(data_range=args.data_range, mask_dir=args.masks)}[args.task]
        res = api.evaluate(args.task, args.pred, args.truth, args.out, **common, **extra)
        s = res.summary
        echo(f"{s['n_cases']} cases ({args.task})")
        table = "\n\n".join(f"label {lab}\n" + res.table(label=lab) for lab in s["labels"]) if len(s["labels"]) > 1 else res.table()
    else:
        pauc = _floats(args.pauc_fpr, "--pauc-fpr")
        if pauc is not None and len(pauc) != 2:
            from openmia.errors import PredictionError

            raise PredictionError(f"--pauc-fpr: expected two numbers low,high, found {args.pauc_fpr!r}")
        res = api.evaluate(args.task, args.pred, args.truth, args.out, task_type=args.task_type, threshold=args.threshold,
                           sens_at_spec=_floats(args.sens_at_spec, "--sens-at-spec"),
                           spec_at_sens=_floats(args.spec_at_sens, "--spec-at-sens"), pauc_fpr=pauc,
                           top_k=[int(v) for v in _floats(args.top_k, "--top-k")], **common)
        s = res.summary
        echo(f"{s['n_cases']} cases, task type {s['task_type']}"
              + (f", {s['n_patients']} patients (bootstrap over patients)" if s.get("n_patients") else ""))
        table = res.table()
    if s["missing_cases"]:
        echo(f"WARNING: {len(s['missing_cases'])} case(s) missing from the predictions were scored as worst case")
    echo(table)
    out = Path(args.out)
    echo(f"wrote {out / 'per_case.csv'}, {out / 'summary.json'} and {out / 'report.html'}")
    if args.task == "detection":
        if s.get("n_predictions_over_max_dets"):
            echo(f"NOTE: {s['n_predictions_over_max_dets']} prediction(s) beyond --max-dets {s['max_dets']} per image and "
                  "class were not scored")
        if s.get("coco_files"):
            echo("and " + ", ".join(str(out / f) for f in s["coco_files"]) + " (COCO format, for pycocotools)")
    if args.json:
        from openmia.cli._common import print_json

        print_json((out / "summary.json").read_text())
    return 0
