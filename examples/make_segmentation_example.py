"""Write a small 3D segmentation example: truth label maps and two "models'" predictions.

    python examples/make_segmentation_example.py OUT_DIR [--cases 8] [--size 64]

OUT_DIR/truth, OUT_DIR/model_a, OUT_DIR/model_b hold NIfTI files <case_id>.nii.gz with 3 labels
and 2.0 x 0.8 x 0.8 mm voxels; model_b is noisier than model_a. Use them to try
`openmia evaluate --task segmentation` and `openmia compare --task segmentation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    import nibabel as nib

    affine = np.diag([2.0, 0.8, 0.8, 1.0])
    for sub in ("truth", "model_a", "model_b"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    for i in range(args.cases):
        rng = np.random.default_rng(i)
        shape = (args.size,) * 3
        f = ndimage.gaussian_filter(rng.standard_normal(shape), args.size / 16)
        f /= f.std()
        truth = np.digitize(f, [0.6, 1.2, 1.8]).astype(np.uint8)
        for sub, noise in (("model_a", 0.4), ("model_b", 0.9)):
            g = f + noise * ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
            pred = np.digitize(g, [0.6, 1.2, 1.8]).astype(np.uint8)
            nib.save(nib.Nifti1Image(pred, affine), str(args.out / sub / f"case{i:02d}.nii.gz"))
        nib.save(nib.Nifti1Image(truth, affine), str(args.out / "truth" / f"case{i:02d}.nii.gz"))
    print(f"wrote {args.cases} cases to {args.out}/truth, model_a, model_b")


if __name__ == "__main__":
    main()
