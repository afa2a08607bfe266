"""2D image + mask folders (PNG/JPEG/NPY): BUSI (breast ultrasound), Kvasir-SEG (polyps) and a
generic ``images/`` + ``masks/`` layout.

Policies for upstream quirks (stated, tested, never silent):
- BUSI: an image may have several masks (``name_mask.png``, ``name_mask_1.png``, ...): they are
  OR-ed; masks come as 1-bit, RGB or RGBA PNGs: binarised as ``convert("L") > 0``; "normal"
  images have all-zero masks (kept: the empty-mask conventions of the evaluator apply).
- Kvasir-SEG: masks are JPEGs with compression noise: binarised at ``convert("L") >= 128``.
- A mask whose size differs from its image, a missing mask or an unreadable file is a DataError
  naming the case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openmia.errors import DataError


@dataclass(frozen=True)
class ImageMaskCase:
    case_id: str
    image: Path
    masks: tuple[Path, ...]
    category: str = ""  # e.g. BUSI benign / malignant / normal
    threshold: int = 1  # mask = grey >= threshold
    extra: dict = field(default_factory=dict, compare=False)


def _open(path: Path, case: str, mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except Exception as exc:
        raise DataError(f"case {case!r}: cannot read {path} ({type(exc).__name__}: {exc})") from None


def load_image_mask(case: ImageMaskCase, *, grey: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 ``(C, H, W)`` (C = 1 for ``grey``, else 3) and mask uint8 ``(H, W)`` in {0, 1}."""
    img = _open(case.image, case.case_id, "L" if grey else "RGB")
    img = img[None] if grey else np.moveaxis(img, -1, 0)
    mask = np.zeros(img.shape[1:], dtype=np.uint8)
    for m in case.masks:
        arr = _open(m, case.case_id, "L")
        if arr.shape != mask.shape:
            raise DataError(f"case {case.case_id!r}: mask {m.name} has size {arr.shape[::-1]} but the image is "
                            f"{mask.shape[::-1]} (width x height)")
        mask |= (arr >= case.threshold).astype(np.uint8)
    return np.ascontiguousarray(img), mask


_BUSI = re.compile(r"^(?P<cat>benign|malignant|normal) \((?P<num>\d+)\)(?P<mask>_mask(_\d+)?)?\.png$")


def read_busi(root: str | Path) -> list[ImageMaskCase]:
    """Index ``Dataset_BUSI_with_GT/{benign,malignant,normal}``; case ids ``benign_001`` etc."""
    base = Path(root)
    base = base / "Dataset_BUSI_with_GT" if (base / "Dataset_BUSI_with_GT").is_dir() else base
    if not base.is_dir():
        raise DataError(f"{root}: not a folder; expected BUSI's Dataset_BUSI_with_GT/ with benign/, malignant/, normal/")
    images: dict[str, Path] = {}
    masks: dict[str, list[Path]] = {}
    cats: dict[str, str] = {}
    for cat_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for p in sorted(cat_dir.iterdir()):
            m = _BUSI.match(p.name)
            if not m:
                continue
            cid = f"{m['cat']}_{int(m['num']):03d}"
            cats[cid] = m["cat"]
            (masks.setdefault(cid, []).append(p) if m["mask"] else images.__setitem__(cid, p))
    if not images:
        raise DataError(f"{base}: no BUSI images found (expected files like 'benign (1).png')")
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DataError(f"{base}: mask(s) without an image for case(s) {', '.join(orphans[:5])}")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise DataError(f"{base}: no mask for case(s) {', '.join(missing[:5])}")
    return [ImageMaskCase(cid, images[cid], tuple(sorted(masks[cid])), cats[cid], threshold=1) for cid in sorted(images)]


def read_kvasir(root: str | Path) -> tuple[list[ImageMaskCase], dict[str, list[str]]]:
    """Index Kvasir-SEG (``Kvasir-SEG/images``, ``masks``) and its 880/120 split (``split_880_120``).

    Returns the cases and ``{"train": ids, "val": ids}`` (the authors' split; empty if absent).
    """
    root = Path(root)
    base = root / "Kvasir-SEG" if (root / "Kvasir-SEG").is_dir() else root
    img_dir, mask_dir = base / "images", base / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise DataError(f"{root}: expected Kvasir-SEG/images and Kvasir-SEG/masks")
    cases = []
    for p in sorted(img_dir.glob("*.jpg")):
        m = mask_dir / p.name
        if not m.is_file():
            raise DataError(f"case {p.stem!r}: no mask {m}")
        cases.append(ImageMaskCase(p.stem, p, (m,), threshold=128))
    if not cases:
        raise DataError(f"{img_dir}: no .jpg images")
    split: dict[str, list[str]] = {}
    sdir = root / "split_880_120"
    known = {c.case_id for c in cases}
    for name in ("train", "val"):
        f = sdir / f"{name}.txt"
        if f.is_file():
            ids = [line.strip().removesuffix(".jpg") for line in f.read_text().splitlines() if line.strip()]
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise DataError(f"{f}: id(s) {', '.join(unknown[:5])} are not in {img_dir}")
            split[name] = ids
    return cases, split
