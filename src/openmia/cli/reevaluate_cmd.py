"""openmia reevaluate: score a finished run's kept model again with other evaluation settings."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("reevaluate", help="score a finished run again with other evaluation settings (new run directory)",
                       description="Re-score a finished run's kept weights with other eval.*, train.device or the task's "
                                   "inference options (e.g. --set segmentation.tta=true) into a new run directory; the "
                                   "training history and budget stay the source run's.")
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--out", required=True, help="the new run directory (must not exist)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an evaluation setting, e.g. --set segmentation.tta=true --set eval.n_resamples=5000")


def run(args: argparse.Namespace) -> int:
    from openmia import api

    ov = [*args.overrides, *([f"train.device={args.device}"] if args.device else [])]
    res = api.reevaluate(args.run, args.out, ov)
    print(res.table)
    print(f"run directory: {res.run_dir}")
    return 0
