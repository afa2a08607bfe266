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
    from openmia.cli._common import add_restore_options

    add_restore_options(p)


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import report_restore

    res = api.inpaint(args.input, args.mask, args.out, run_dir=args.model, method=args.method, scale=args.scale, device=args.device,
                      overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    return report_restore(args, res, "inpainted")
