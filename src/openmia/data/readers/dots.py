"""Dot annotations for counting: one marked pixel per object (e.g. the VGG cells set, where
``NNNdots.png`` has a red dot on each cell of ``NNNcell.png``).

A dot is a pixel whose red channel is high and green/blue low (``min_red`` / ``max_other``);
touching dot pixels are kept separate (each pixel is one object, as in the annotation), so the
count is the number of dot pixels. Returns point coordinates ``(n, 2)`` as ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openmia.errors import DataError


@dataclass
class DotImage:
    case_id: str
    image: Path
    points: np.ndarray  # (n, 2) x, y

    @property
    def count(self) -> int:
        return int(len(self.points))


def read_dots(dot_png: str | Path, *, min_red: int = 128, max_other: int = 100) -> np.ndarray:
    """Points ``(n, 2)`` (x, y) of the red dots in an annotation image."""
    from PIL import Image

    p = Path(dot_png)
    try:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB")).astype(int)
    except Exception as exc:
        raise DataError(f"{p}: cannot read the dot annotation ({type(exc).__name__}: {exc})") from None
    mask = (rgb[..., 0] >= min_red) & (rgb[..., 1] <= max_other) & (rgb[..., 2] <= max_other)
    ys, xs = np.nonzero(mask)
    return np.column_stack([xs, ys]).astype(float)


def read_vgg_cells(root: str | Path) -> list[DotImage]:
    """The VGG synthetic cells: ``NNNcell.png`` images with ``NNNdots.png`` annotations, ids ``NNN``."""
    root = Path(root)
    base = root / "cells" if (root / "cells").is_dir() else root
    cells = sorted(base.glob("*cell.png"))
    if not cells:
        raise DataError(f"{base}: no NNNcell.png images")
    out = []
    for c in cells:
        cid = c.name[: -len("cell.png")]
        dots = base / f"{cid}dots.png"
        if not dots.is_file():
            raise DataError(f"case {cid!r}: no dot annotation {dots.name} for {c.name}")
        out.append(DotImage(cid, c, read_dots(dots)))
    return out
