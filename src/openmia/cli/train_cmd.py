"""openmia train: train a model, writing a run directory."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model; writes a run directory",
                       description="Train a model (classification, segmentation, detection or counting). Options map to config keys; --set overrides any key.")
    p.add_argument("--config", help="YAML config file (keys: task, data, model, optim, schedule, train, eval, out_dir, name)")
    p.add_argument("--task", help="task family: classification, segmentation, detection or counting (must match the data set)")
    p.add_argument("--dataset", help="data set name, e.g. retinamnist, hippocampus, bccd (default with --task: the task's "
                                     "synthetic set, e.g. synthetic/lesions for detection)")
    p.add_argument("--size", type=int, help="MedMNIST size variant (28, 64, 128, 224)")
    p.add_argument("--model", help="registered model name (openmia list models)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-minutes", type=float, help="wall-clock training budget")
    p.add_argument("--seed", type=int)
    p.add_argument("--deterministic", action="store_true", help="bit-exact CPU training (torch deterministic algorithms)")
    p.add_argument("--out-dir", help="parent folder of the run directory (default: runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.01 --set model.kwargs.width=32")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other options are ignored)")


# the embedded synthetic set of each task family: `openmia train --task counting --model ...` needs no data
DEFAULT_DATASET = {"classification": "synthetic/binary", "segmentation": "synthetic/seg2d", "detection": "synthetic/lesions",
                   "counting": "synthetic/cells"}


def run(args: argparse.Namespace) -> int:
    from openmia import api

    if args.resume:
        res = api.resume(args.resume, progress=not args.quiet)
    else:
        ov = []
        for flag, key in (("task", "task"), ("dataset", "data.dataset"), ("size", "data.size"), ("model", "model.name"),
                          ("epochs", "train.epochs"), ("max_minutes", "train.max_minutes"), ("seed", "train.seed"),
                          ("out_dir", "out_dir")):
            v = getattr(args, flag)
            if v is not None:
                ov.append(f"{key}={v}")
        if args.task in DEFAULT_DATASET and not args.dataset and not args.config \
                and not any(o.startswith("data.dataset=") for o in args.overrides):
            ov.append(f"data.dataset={DEFAULT_DATASET[args.task]}")
        if args.deterministic:
            ov.append("train.deterministic=true")
        res = api.train(args.config, [*ov, *args.overrides], progress=not args.quiet)
    print(res.table)
    print(f"best epoch {res.best_epoch}/{res.epochs_done}, training {res.train_seconds:.1f} s")
    print(f"run directory: {res.run_dir}")
    return 0
