"""Pascal VOC XML box annotations (e.g. BCCD blood cells).

Policy for degenerate boxes (BCCD has two zero-area RBC boxes upstream): boxes with
``xmax <= xmin`` or ``ymax <= ymin`` are dropped and *reported* (``VOCImage.dropped`` and a log
warning), since they cannot be matched by IoU; ``openmia data verify`` lists them. Boxes outside
the image, unknown class names and annotation files whose image is missing are errors naming the
file and object.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from openmia.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class VOCImage:
    """One annotation file: image path and size, boxes ``(n, 4)`` x1 y1 x2 y2 (VOC pixel
    coordinates as written), class names, and the degenerate boxes that were dropped."""

    case_id: str
    image: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: list[str]
    dropped: list[str] = field(default_factory=list)


def read_voc_file(xml_path: str | Path, *, image_dir: str | Path | None = None, classes: Sequence[str] | None = None,
                  check_image: bool = True) -> VOCImage:
    """Parse one VOC XML file (the ``<path>`` element is ignored; the image is looked up by
    ``<filename>`` in ``image_dir``, default ``../JPEGImages``)."""
    p = Path(xml_path)
    try:
        root = ET.parse(p).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{p}: not a readable VOC XML file ({exc})") from None
    fname = (root.findtext("filename") or "").strip()
    if not fname:
        raise DataError(f"{p}: no <filename> element")
    img_dir = Path(image_dir) if image_dir else p.parent.parent / "JPEGImages"
    img = img_dir / fname
    if check_image and not img.is_file():
        raise DataError(f"{p}: the annotated image {img} does not exist")
    try:
        w = int(float(root.findtext("size/width")))
        h = int(float(root.findtext("size/height")))
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise DataError(f"{p}: missing or invalid <size><width>/<height>") from None
    boxes, labels, dropped = [], [], []
    for k, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        where = f"{p}, object {k} ({name or 'no name'})"
        if classes is not None and name not in classes:
            raise DataError(f"{where}: unknown class {name!r}; expected one of {list(classes)}")
        try:
            x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise DataError(f"{where}: missing or non-numeric <bndbox> coordinates") from None
        if not all(np.isfinite([x1, y1, x2, y2])):
            raise DataError(f"{where}: non-finite box coordinates")
        if x2 <= x1 or y2 <= y1:
            dropped.append(f"{where}: zero or negative size box ({x1:g},{y1:g},{x2:g},{y2:g}) dropped")
            log.warning(dropped[-1])
            continue
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            raise DataError(f"{where}: box ({x1:g},{y1:g},{x2:g},{y2:g}) lies outside the {w}x{h} image")
        boxes.append([x1, y1, x2, y2])
        labels.append(name)
    return VOCImage(p.stem, img, w, h, np.asarray(boxes, float).reshape(-1, 4), labels, dropped)


def read_voc_split(root: str | Path, split: str, *, classes: Sequence[str] | None = None) -> list[VOCImage]:
    """The images of ``ImageSets/Main/<split>.txt`` under a VOC root (``Annotations/``, ``JPEGImages/``)."""
    root = Path(root)
    base = root / "BCCD" if (root / "BCCD" / "Annotations").is_dir() else root
    f = base / "ImageSets" / "Main" / f"{split}.txt"
    if not f.is_file():
        raise DataError(f"{base}: no split file {f}")
    ids = [line.strip() for line in f.read_text().splitlines() if line.strip()]
    return [read_voc_file(base / "Annotations" / f"{i}.xml", image_dir=base / "JPEGImages", classes=classes) for i in ids]
