"""openmia embed: one feature vector per case, from a trained run or from raw pixels (PCA)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="one feature vector per case from a trained run or raw-pixel PCA",
                       description="Writes embeddings.npy (float32, cases x d), cases.csv (case_id[, label, label_name]"
                                   "[, patient_id]) and embed.json (provenance). From a run: its task's features "
                                   "(classifier: penultimate layer; segmentation: pooled bottleneck; autoencoder: code). "
                                   "--method pixels-pca: no model, PCA of the normalised pixels.")
    p.add_argument("--model", help="run directory of a finished training run (--method model)")
    p.add_argument("--method", default="model", choices=("model", "pixels-pca"), help="default: model")
    p.add_argument("--dataset", help="data set to embed (default: the run's)")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"), help="default: test")
    p.add_argument("--fit-split", default="train", choices=("train", "val", "test", "all"),
                   help="pixels-pca: the split the PCA is fitted on (default: train)")
    p.add_argument("--dims", type=int, default=50, help="pixels-pca: principal components (default 50)")
    p.add_argument("--size", type=int, help="image size variant of the data set (default: the run's / the set's)")
    p.add_argument("--root", help="folder of the data set's files (default: the run's data.root / the cache)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the run's train.device)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (human text on stderr)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    res = api.embed(args.out, run_dir=args.model, method=args.method, dataset=args.dataset, split=args.split,
                    fit_split=args.fit_split, dims=args.dims, size=args.size, root=args.root, batch_size=args.batch_size,
                    device=args.device, overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    echo(f"embedded {res['cases']} case(s) of {res['dataset']} {res['split']} as {res['dims']}-dimensional vectors "
         f"({res['layer']}); wrote {', '.join(res['files'])} to {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
