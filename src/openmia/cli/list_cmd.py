"""openmia list models|datasets."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list registered models, data sets or tasks")
    p.add_argument("what", choices=["models", "datasets", "tasks"])
    p.add_argument("--task", help="only this task family (e.g. classification)")
    p.add_argument("--no-params", action="store_true", help="skip building models to count parameters (faster)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import format_table

    if args.what == "datasets":
        specs = api.list_datasets(task=args.task)
        print(format_table(["name", "task type", "dims", "channels", "classes", "licence"],
                           [[s.name, s.task_type, f"{s.dims}D", s.channels, s.num_classes, s.licence] for s in specs]))
        return 0
    if args.what == "tasks":
        rows = [[t.name, t.default_dataset, t.default_model, ", ".join(t.select_metrics), ", ".join(t.augments)]
                for t in api.list_tasks() if not args.task or t.name == args.task]
        print(format_table(["task", "default data set", "default model", "select_metric", "data.augment"], rows))
        return 0
    rows = []
    for e in api.list_models(task=args.task):
        dims = e.meta.get("dims", (2,))
        params = "" if args.no_params else _param_count(e.name, dims)
        rows.append([e.name, e.meta.get("task", ""), "/".join(f"{d}D" for d in dims), params, e.doc])
    print(format_table(["model", "task", "dims", "params (2D, 1ch, 28px, 2 classes)", "description"], rows))
    return 0


def _param_count(name: str, dims) -> str:
    import torch

    from openmia.models import build_model

    d = 2 if 2 in dims else dims[0]
    with torch.device("meta"):  # no memory, no init cost
        m = build_model(name, in_channels=1, num_classes=2, dims=d, input_size=28)
    n = sum(p.numel() for p in m.parameters())
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"
