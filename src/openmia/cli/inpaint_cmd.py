"""openmia inpaint: fill masked holes in images with a trained run or a classical method."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from openmia.models.classical_generative import INPAINT_METHODS

    p = sub.add_parser("inpaint", help="fill masked holes in images (trained run or classical method)",
                       description="Inpaint every image of --input whose mask (same case id in --mask, nonzero = hole) "
                                   "is given, with an inpainting run (--model RUN_DIR) or a classical method (--method: "
                                   "biharmonic = scikit-image, 2D/3D; telea / ns = OpenCV, 2D, needs opencv-python-headless; "
                                   "mean / nearest fill). Writes <case>.npy (float32, the input's intensity scale) and "
                                   "restore.json (seconds per case); score with `openmia evaluate --task inpainting`.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="run directory of a finished inpainting run")
    src.add_argument("--method", choices=INPAINT_METHODS, help="classical method")
    p.add_argument("--input", required=True, help="folder of images <case_id>.npy|.png|.nii.gz|...")
    p.add_argument("--mask", required=True, help="folder of masks with the same case ids (nonzero = hole)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--scale", choices=("auto", "unit", "uint8", "minmax"), default="auto",
                   help="--model: how the images map to the run's [0, 1] scale: unit (already on it, e.g. the run's own "
                        "inputs/ files), uint8 (/255), minmax (of the known voxels), auto (uint8 for runs trained on uint8 "
                        "images, else minmax; default)")
    p.add_argument("--device", help="--model: auto, cpu, cuda, cuda:N or mps (default: the run's train.device)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (the human text goes to stderr)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    res = api.inpaint(args.input, args.mask, args.out, run_dir=args.model, method=args.method, scale=args.scale, device=args.device,
                      overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    echo(f"inpainted {res['cases']} image(s) with {res['method']} ({res['mean_seconds_per_case']:.3g} s per image); "
         f"wrote {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
