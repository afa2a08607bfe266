"""Write two small data sets laid out the way a user would make them by hand.

    python examples/make_folder_dataset.py OUT_DIR [--images 60] [--seed 0]

OUT_DIR/shapes      classification: one sub-folder per class (``round/``, ``spiky/``) of grey PNGs
                    of different sizes (48-80 px) -> ``--dataset folder:OUT_DIR/shapes``
OUT_DIR/lesions     segmentation: ``images/`` + ``masks/`` PNGs with the same file names (masks
                    0 = background, 255 = lesion) -> ``--dataset folder:OUT_DIR/lesions``

Then, for example:

    openmia data verify folder:OUT_DIR/shapes
    openmia train --task classification --dataset folder:OUT_DIR/shapes --epochs 40 --set optim.lr=3e-3
    openmia train --task segmentation --dataset folder:OUT_DIR/lesions --model unet

openmia resizes the images to ``data.size`` (default 64) and, with fewer than 100 images, makes
seeded stratified 5-fold splits (``data.fold`` picks the test fold); see docs/data.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _blob(rng: np.random.Generator, h: int, w: int, spiky: bool) -> tuple[np.ndarray, np.ndarray]:
    """A grey ultrasound-like image ``(h, w)`` uint8 with one lesion, and its 0/255 mask."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    r = rng.uniform(0.15, 0.25) * min(h, w)
    angle = np.arctan2(yy - cy, xx - cx)
    k = int(rng.integers(5, 9))
    edge = r * (1 + (0.5 * np.abs(np.sin(k * angle / 2)) if spiky else 0.06 * np.sin(3 * angle)))
    mask = np.hypot(yy - cy, xx - cx) < edge
    # the lesion is darker or brighter than the tissue by 40-70 grey levels (never invisible)
    contrast = rng.choice((-1.0, 1.0)) * rng.uniform(40, 70)
    img = rng.normal(90, 18, (h, w)) + np.where(mask, contrast, 0) + 20 * np.sin(xx / w * np.pi)
    return np.clip(img, 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--images", type=int, default=60, help="images per data set (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from PIL import Image

    rng = np.random.default_rng(args.seed)
    for i in range(args.images):
        spiky = i % 2 == 1
        h, w = (int(v) for v in rng.integers(48, 81, 2))
        img, _ = _blob(rng, h, w, spiky)
        folder = args.out / "shapes" / ("spiky" if spiky else "round")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"img_{i:03d}.png")
    for sub in ("images", "masks"):
        (args.out / "lesions" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(args.images):
        h, w = (int(v) for v in rng.integers(48, 81, 2))
        img, mask = _blob(rng, h, w, bool(rng.integers(2)))
        Image.fromarray(img).save(args.out / "lesions" / "images" / f"case_{i:03d}.png")
        Image.fromarray(mask).save(args.out / "lesions" / "masks" / f"case_{i:03d}.png")
    print(f"wrote {args.images} classification images to {args.out / 'shapes'} and {args.images} image/mask pairs "
          f"to {args.out / 'lesions'}")


if __name__ == "__main__":
    main()
