"""openmia predict: apply a trained run to a folder of images."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="apply a trained run to a folder of images",
                       description="Segmentation runs write a label map per image (NIfTI keeps the input's geometry; "
                                   "large images use sliding-window inference); classification runs write predictions.csv "
                                   "in the evaluator's format; landmark runs write points.csv (case_id,landmark,x,y[,z]) "
                                   "with shapes.csv and spacing.csv for `openmia evaluate --task landmarks`.")
    p.add_argument("--model", required=True, help="run directory of a finished training run")
    p.add_argument("--input", required=True, help="folder of images <case_id>.nii.gz|.nii|.png|.npy")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tta", action="store_true", help="segmentation: average over all axis flips")
    p.add_argument("--tta-scales", type=float, nargs="+", default=None, metavar="S",
                   help="segmentation: also average over these input scale factors, e.g. 1 1.25 "
                        "(default: the run's segmentation.tta_scales)")
    p.add_argument("--overlap", type=float, default=0.5, help="segmentation: sliding-window overlap (default 0.5)")
    p.add_argument("--batch-size", type=int, default=4, help="segmentation: windows per forward pass (default 4)")
    p.add_argument("--spacing", type=_spacing, default=None, metavar="SX,SY[,SZ]",
                   help="landmarks: voxel size in mm per axis (formats without one, e.g. PNG; overrides NIfTI headers)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the run's train.device)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true",
                   help="print the result (cases, written, out, task) as JSON on stdout (nothing else; the human text goes to stderr)")


def _spacing(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,0.5, found {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    from openmia import api

    res = api.predict(args.model, args.input, args.out, tta=args.tta, scales=args.tta_scales, overlap=args.overlap,
                      batch_size=args.batch_size, device=args.device, overwrite=args.overwrite,
                      progress=not getattr(args, "quiet", False), spacing=args.spacing)
    echo(f"predicted {res['cases']} case(s); wrote {res['written']} to {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
