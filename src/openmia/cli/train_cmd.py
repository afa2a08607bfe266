"""openmia train: train a model, writing a run directory."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from openmia.tasks.registry import task_names

    tasks = task_names()
    p = sub.add_parser("train", help="train a model; writes a run directory",
                       description="Train a model (" + ", ".join(tasks) + "). Options map to config keys; --set overrides "
                                   "any key. Without --dataset/--model the task's synthetic set and default model are used.")
    p.add_argument("--config", help="YAML config file (keys: task, data, model, optim, schedule, train, eval, the task's "
                                    "own section, out_dir, name); benchmarks/configs/ holds the published recipes")
    p.add_argument("--task", choices=tasks, help="task family (must match the data set; default classification)")
    p.add_argument("--dataset", help="catalogue name (openmia data list) or your own data: folder:PATH, msd:PATH, "
                                     "nnunet:PATH, coco:PATH, voc:PATH, dots:PATH")
    p.add_argument("--size", type=int, help="image size (MedMNIST variant 28/64/128/224; 2D folder sets are resized to it)")
    p.add_argument("--model", help="registered model name (openmia list models); default: the task's")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-minutes", type=float, help="training budget in minutes")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default: CUDA if available, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--deterministic", action="store_true", help="bit-exact training (torch deterministic algorithms)")
    p.add_argument("--out-dir", help="parent folder of the run directory (default: runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-4 --set model.kwargs.width=32")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other options are ignored)")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes (torchrun DDP: gloo on CPU, nccl on CUDA); data.batch_size is the "
                        "global batch, train.threads is split between them; only rank 0 writes (also with --resume)")


def run(args: argparse.Namespace) -> int:
    from openmia import api

    if args.resume:
        res = api.resume(args.resume, progress=not args.quiet, nproc=args.nproc)
    else:
        ov = []
        for flag, key in (("task", "task"), ("dataset", "data.dataset"), ("size", "data.size"), ("model", "model.name"),
                          ("epochs", "train.epochs"), ("max_minutes", "train.max_minutes"), ("seed", "train.seed"),
                          ("device", "train.device"), ("out_dir", "out_dir")):
            v = getattr(args, flag)
            if v is not None:
                ov.append(f"{key}={v}")
        if args.deterministic:
            ov.append("train.deterministic=true")
        res = api.train(args.config, [*ov, *args.overrides], progress=not args.quiet, nproc=args.nproc)
    print(res.table)
    print(f"best epoch {res.best_epoch}/{res.epochs_done}, training {res.train_seconds:.1f} s")
    print(f"run directory: {res.run_dir}")
    return 0
