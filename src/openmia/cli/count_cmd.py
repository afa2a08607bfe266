"""openmia count: count and mark objects (cells, lesions) in images."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("count", help="count and mark objects in images (trained run or classical baseline)",
                       description="Count objects with a detection/counting run (--model RUN_DIR) or the classical "
                                   "Laplacian-of-Gaussian baseline (--method log). Writes counts.csv, detections.csv and "
                                   "overlays/<case>.png (the counted points/boxes and the count drawn on the image).")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF, ...); the case id is the file name stem")
    p.add_argument("--model", help="run directory of a finished detection or counting run")
    p.add_argument("--method", choices=("model", "log"), default="model", help="model (default) or log (classical baseline)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--score-threshold", type=float,
                   help="count detections with at least this score (default: the run's per-class threshold chosen on validation)")
    p.add_argument("--log-threshold", type=float, default=0.05, help="--method log: blob_log's detection threshold (default 0.05)")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the run's train.device)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true",
                   help="print the result (cases, out, counts) as JSON on stdout (nothing else; the human text goes to stderr)")


def run(args: argparse.Namespace) -> int:
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    from openmia import api

    res = api.count(args.images, args.out, run_dir=args.model, method=args.method, score_threshold=args.score_threshold,
                    log_threshold=args.log_threshold, overlays=not args.no_overlays, device=args.device,
                    overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    for cid, c in list(res["counts"].items())[:20]:
        echo(f"{cid}: " + ", ".join(f"{k} {v:g}" for k, v in c.items()))
    if res["cases"] > 20:
        echo(f"... {res['cases'] - 20} more")
    echo(f"counted {res['cases']} image(s); wrote counts.csv, overlays to {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
