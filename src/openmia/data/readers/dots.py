"""Dot annotations for counting: one marked pixel per object (e.g. the VGG cells set, where
``NNNdots.png`` has a red dot on each cell of ``NNNcell.png``).

A dot is a pixel whose red channel is high and green/blue low (``min_red`` / ``max_other``);
touching dot pixels are kept separate (each pixel is one object, as in the annotation), so the
count is the number of dot pixels. Returns point coordinates ``(n, 2)`` as ``(x, y)``.

Points can also come as a CSV table ``image_id,x,y`` (:func:`read_points_csv`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

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


def read_points_csv(path: str | Path, *, image_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Point annotations from a CSV file with a header and columns ``image_id,x,y`` (any order;
    header names are case-insensitive, other columns such as ``label`` are ignored: counting and
    point-detection targets here are class-agnostic).

    Returns ``{image_id: (n, 2) float64 (x, y)}`` in first-appearance order. Images without rows are
    absent, unless listed in ``image_ids``: then the dict has exactly those keys, in that order,
    with ``(0, 2)`` arrays for images without points, and a row for any other image is an error.
    Missing columns, empty ids, and non-numeric, NaN/inf or negative coordinates are
    :class:`~openmia.errors.DataError` naming the file and line.
    """
    p = Path(path)
    known = list(dict.fromkeys(image_ids)) if image_ids is not None else None
    pts: dict[str, list[tuple[float, float]]] = {i: [] for i in known} if known is not None else {}
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark that would corrupt the first header
        with open(p, newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None:
                raise DataError(f"{p}: empty file; expected a header line with columns image_id,x,y")
            cols = [h.strip().lower() for h in header]
            missing = [c for c in ("image_id", "x", "y") if c not in cols]
            if missing:
                raise DataError(f"{p}, line 1: missing column(s) {missing}; expected a header with image_id,x,y, "
                                f"found {header}")
            ii, ix, iy = (cols.index(c) for c in ("image_id", "x", "y"))
            for row in rows:
                if not any(v.strip() for v in row):  # blank line
                    continue
                where = f"{p}, line {rows.line_num}"
                if len(row) <= max(ii, ix, iy):
                    raise DataError(f"{where}: {len(row)} field(s), expected {len(cols)} ({','.join(cols)})")
                iid = row[ii].strip()
                if not iid:
                    raise DataError(f"{where}: empty image_id")
                where += f" (image {iid!r})"
                try:
                    x, y = float(row[ix]), float(row[iy])
                except ValueError:
                    raise DataError(f"{where}: non-numeric coordinates x={row[ix]!r}, y={row[iy]!r}") from None
                if not (math.isfinite(x) and math.isfinite(y)):
                    raise DataError(f"{where}: non-finite coordinates x={x}, y={y}")
                if x < 0 or y < 0:
                    raise DataError(f"{where}: negative coordinates x={x:g}, y={y:g}")
                if known is not None and iid not in pts:
                    raise DataError(f"{where}: unknown image id {iid!r}; expected one of the {len(known)} given image ids")
                pts.setdefault(iid, []).append((x, y))
    except OSError as exc:
        raise DataError(f"{p}: cannot read the points file ({exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{p}: not a readable CSV file ({type(exc).__name__}: {exc})") from None
    return {i: np.asarray(v, float).reshape(-1, 2) for i, v in pts.items()}
