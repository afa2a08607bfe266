"""Write test images of the embedded synthetic cell set as PNG files, with their true cell counts.

    python examples/make_cell_images.py OUT_DIR [--n 2]

OUT_DIR/cells<i>.png are the first ``n`` images of ``synthetic/cells``' test split (generated from a
seed, no download); each printed line gives the number of cells marked in it. Use them to try
`openmia count` with a counting run or `--method log`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=2, help="how many images (default 2)")
    args = ap.parse_args()
    from PIL import Image

    from openmia.data.catalog import load_split

    cells = load_split("synthetic/cells", "test")
    if not 1 <= args.n <= len(cells.images):
        ap.error(f"--n {args.n}: the test split has {len(cells.images)} images")
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        path = args.out / f"cells{i}.png"
        Image.fromarray(cells.images[i, 0]).save(path)
        print(f"{path}: {len(cells.objects[i])} cells")


if __name__ == "__main__":
    main()
