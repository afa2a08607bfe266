"""openmia denoise: remove noise from images with a trained run or a classical method."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from openmia.models.classical_generative import DENOISE_METHODS

    p = sub.add_parser("denoise", help="denoise images (trained run or classical method)",
                       description="Denoise every image of --input with a denoising or reconstruction run (--model RUN_DIR) "
                                   "or a classical method (--method: nlm = scikit-image non-local means, 2D/3D; bm3d = the "
                                   "bm3d package, 2D; gaussian smoothing). Writes <case>.npy (float32, the input's "
                                   "intensity scale) and restore.json; score with `openmia evaluate --task denoising`.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="run directory of a finished denoising (or reconstruction) run")
    src.add_argument("--method", choices=DENOISE_METHODS, help="classical method")
    p.add_argument("--input", required=True, help="folder of images <case_id>.npy|.png|.nii.gz|...")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sigma", type=float, help="nlm/bm3d: noise standard deviation in the images' unit "
                                               "(default: estimated per image, scikit-image estimate_sigma)")
    from openmia.cli._common import add_restore_options

    add_restore_options(p)


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import report_restore

    res = api.denoise(args.input, args.out, run_dir=args.model, method=args.method, scale=args.scale, sigma=args.sigma, device=args.device,
                      overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    return report_restore(args, res, "denoised")
