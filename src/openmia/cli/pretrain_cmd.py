"""openmia pretrain: self-supervised pre-training of a backbone on a data set's training images."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from openmia.tasks.pretrain import METHODS

    p = sub.add_parser("pretrain", help="self-supervised pre-training (SimCLR, BYOL, masked images) on training images",
                       description="Pre-train a backbone without labels on the training split's images (2D or 3D), "
                                   "then report a linear probe and k-NN on its frozen embeddings (test AUC/accuracy "
                                   "with CIs). Fine-tune it with `openmia train --set train.init_from=RUN_DIR`. "
                                   "See docs/few-labels.md.")
    p.add_argument("--method", choices=METHODS, default="simclr", help="simclr (NT-Xent), byol, or mim (masked-image modelling)")
    p.add_argument("--dataset", help="data set (catalogue name or folder:/msd:... PATH); any task's set")
    p.add_argument("--split", default="train", help="the images to pre-train on: train (the only one allowed)")
    p.add_argument("--config", help="YAML config file (task: pretrain)")
    p.add_argument("--model", help="backbone: a registered model of the data set's task (default cnn_small)")
    p.add_argument("--size", type=int, help="image size (MedMNIST variant; 2D folder sets are resized to it)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-minutes", type=float, help="pre-training budget in minutes")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--out-dir", help="parent folder of the run directory (default: runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set pretrain.temperature=0.5 --set model.kwargs.width=16")
    p.add_argument("--json", action="store_true", help="print the result (run directory, probe and k-NN headlines) as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from openmia import api
    from openmia.cli._common import human_echo, print_json

    ov = []
    for flag, key in (("model", "model.name"), ("size", "data.size"), ("epochs", "train.epochs"),
                      ("max_minutes", "train.max_minutes"), ("seed", "train.seed"), ("device", "train.device"),
                      ("out_dir", "out_dir")):
        v = getattr(args, flag)
        if v is not None:
            ov.append(f"{key}={v}")
    res = api.pretrain(args.method, args.dataset, [*ov, *args.overrides], config=args.config, split=args.split,
                       progress=not args.quiet and not args.json)
    result = json.loads((res.run_dir / "result.json").read_text())
    if args.json:
        print_json({"run_dir": str(res.run_dir), "encoder": str(res.run_dir / "encoder.pt"), "probe": result.get("test"),
                    "knn": result.get("knn", {}).get("test"), "train_seconds": res.train_seconds})
        return 0
    echo = human_echo(args)
    if res.table:
        echo("linear probe on the frozen embeddings (test):")
        echo(res.table)
    knn = result.get("knn", {}).get("test", {})
    if knn:
        echo("k-NN (test): " + ", ".join(f"{m} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
                                        for m, v in knn.items() if m in ("auc", "acc")))
    echo(f"pre-training {res.train_seconds:.1f} s, {res.epochs_done} epochs")
    echo(f"encoder: {res.run_dir / 'encoder.pt'}  (fine-tune: openmia train --set train.init_from={res.run_dir})")
    return 0
