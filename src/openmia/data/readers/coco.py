"""COCO JSON box annotations, read into the same :class:`~openmia.data.readers.voc.VOCImage`
records as Pascal VOC so the rest of openmia treats both formats alike.

COCO boxes ``[x, y, w, h]`` become ``x1 y1 x2 y2 = x, y, x + w, y + h`` (continuous pixel
coordinates, no "+1", as in :mod:`openmia.metrics.detection`).

Policy (the same as :mod:`openmia.data.readers.voc`):

* boxes with ``w <= 0`` or ``h <= 0`` are dropped and *reported* (``VOCImage.dropped`` and a log
  warning): they cannot be matched by IoU;
* ``iscrowd=1`` annotations are skipped and reported in ``dropped`` too: a crowd region is a group
  of objects, not one object, so it is neither a true box nor a false positive (COCO's own
  evaluation ignores them; openmia's box metrics have no "ignore" regions);
* boxes outside the image (``x < 0``, ``y < 0``, ``x + w > width``, ``y + h > height``; only float
  round-off of ``x + w`` is tolerated), unknown category ids, annotations of unknown image ids,
  images whose file is missing (with ``check_images``), missing/NaN/non-numeric boxes, malformed
  JSON and missing keys are :class:`~openmia.errors.DataError` naming the file and the annotation
  id / image.

Images without annotations are kept with zero boxes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.data.readers.voc import VOCImage
from openmia.errors import DataError
from openmia.fileio import write_json

log = logging.getLogger(__name__)

# x + w is a float sum: 0.1 + 99.9 may exceed 100.0 by one ulp. This is round-off, not a real overshoot.
_ROUNDOFF = 1e-6


def _number(v: Any) -> float:
    """``float(v)`` for JSON numbers only (not bools or strings, which ``float`` would accept)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{v!r} is not a number")
    return float(v)


def _is_id(v: Any) -> bool:
    """COCO ids are integers (strings are accepted too); lists/floats/bools/None are not ids."""
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def _load(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{p}: cannot read the COCO file ({exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{p}: a COCO file is a JSON object with 'images', 'annotations' and 'categories', "
                        f"found a {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise DataError(f"{p}: missing key(s) {missing}; a COCO file needs 'images', 'annotations' and 'categories'")
    for k in ("images", "annotations", "categories"):
        if not isinstance(data[k], list):
            raise DataError(f"{p}: {k!r} must be a list, found a {type(data[k]).__name__}")
    return data


def _categories(p: Path, cats: list[Any]) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for k, c in enumerate(cats, start=1):
        if not isinstance(c, dict) or not _is_id(c.get("id")) or not isinstance(c.get("name"), str) or not c["name"]:
            raise DataError(f"{p}, category {k}: needs an 'id' and a non-empty 'name', found {c!r}")
        if c["id"] in out:
            raise DataError(f"{p}, category id {c['id']} ({c['name']!r}): duplicate category id "
                            f"(also {out[c['id']]!r})")
        if c["name"] in out.values():
            raise DataError(f"{p}, category id {c['id']}: duplicate category name {c['name']!r}")
        out[c["id"]] = c["name"]
    if len({type(i) for i in out}) > 1:
        raise DataError(f"{p}: category ids must be all integers or all strings, found {list(out)}")
    return dict(sorted(out.items()))  # category order = sorted by id (COCO's contiguous-label convention)


def read_coco(json_path: str | Path, *, image_dir: str | Path | None = None, classes: Sequence[str] | None = None,
              check_images: bool = True) -> tuple[list[VOCImage], list[str]]:
    """Parse a COCO detection JSON file.

    Images are looked up as ``image_dir / file_name`` (default: the JSON file's folder).

    Returns one :class:`VOCImage` per entry of ``images`` (file order): ``case_id`` = file stem,
    ``boxes`` ``(n, 4)`` float64 x1 y1 x2 y2, ``labels`` the ``n`` category names, ``dropped`` the
    zero-size and crowd annotations; and the class names — the categories sorted by id, or
    ``list(classes)`` when given, in which case every annotated category must be one of ``classes``
    (an unused category outside ``classes`` is fine).
    """
    p = Path(json_path)
    data = _load(p)
    cats = _categories(p, data["categories"])
    img_dir = Path(image_dir) if image_dir is not None else p.parent

    records: dict[Any, VOCImage] = {}
    for k, im in enumerate(data["images"], start=1):
        if not isinstance(im, dict) or not _is_id(im.get("id")):
            raise DataError(f"{p}, image {k}: needs an integer or string 'id', found {im!r}")
        where = f"{p}, image id {im['id']}"
        fname = im.get("file_name")
        if not isinstance(fname, str) or not fname:
            raise DataError(f"{where}: no 'file_name'")
        where += f" ({fname!r})"
        if im["id"] in records:
            raise DataError(f"{where}: duplicate image id (also {records[im['id']].image.name!r})")
        try:
            w, h = _number(im.get("width")), _number(im.get("height"))
        except TypeError:
            raise DataError(f"{where}: missing or non-numeric 'width'/'height'") from None
        if not all(math.isfinite(v) and v > 0 and v == int(v) for v in (w, h)):
            raise DataError(f"{where}: width/height must be positive integers, found {w:g}x{h:g}")
        img = img_dir / fname
        if check_images and not img.is_file():
            raise DataError(f"{where}: the annotated image {img} does not exist")
        records[im["id"]] = VOCImage(Path(fname).stem, img, int(w), int(h), np.zeros((0, 4)), [], [])

    boxes: dict[Any, list[list[float]]] = {i: [] for i in records}
    seen: set[Any] = set()
    for k, a in enumerate(data["annotations"], start=1):
        if not isinstance(a, dict) or not _is_id(a.get("id")):
            raise DataError(f"{p}, annotation {k}: needs an integer or string 'id', found {a!r}")
        aid = a["id"]
        if aid in seen:
            raise DataError(f"{p}, annotation id {aid}: duplicate annotation id")
        seen.add(aid)
        iid, cid = a.get("image_id"), a.get("category_id")
        rec = records.get(iid) if _is_id(iid) else None
        name = cats.get(cid) if _is_id(cid) else None
        where = (f"{p}, annotation id {aid} (image {repr(rec.image.name) if rec else iid}, "
                 f"category {repr(name) if name else cid})")
        if rec is None:
            raise DataError(f"{where}: unknown image id {iid!r}; it is not in 'images'")
        if name is None:
            raise DataError(f"{where}: unknown category id {cid!r}; 'categories' has ids {list(cats)}")
        if classes is not None and name not in classes:
            raise DataError(f"{where}: unknown class {name!r}; expected one of {list(classes)}")
        if a.get("iscrowd", 0) not in (0, False):
            rec.dropped.append(f"{where}: iscrowd annotation skipped (a crowd region is not one object)")
            log.warning(rec.dropped[-1])
            continue
        bb = a.get("bbox")
        try:
            if not isinstance(bb, (list, tuple)) or len(bb) != 4:
                raise TypeError
            x, y, bw, bh = (_number(v) for v in bb)
        except TypeError:
            raise DataError(f"{where}: 'bbox' must be four numbers [x, y, w, h], found {bb!r}") from None
        if not all(math.isfinite(v) for v in (x, y, bw, bh)):
            raise DataError(f"{where}: non-finite box coordinates {bb!r}")
        x2, y2 = x + bw, y + bh
        if bw <= 0 or bh <= 0:
            rec.dropped.append(f"{where}: zero or negative size box [x, y, w, h] = [{x:g}, {y:g}, {bw:g}, {bh:g}] dropped")
            log.warning(rec.dropped[-1])
            continue
        if x < 0 or y < 0 or x2 > rec.width + _ROUNDOFF or y2 > rec.height + _ROUNDOFF:
            raise DataError(f"{where}: box ({x:g},{y:g},{x2:g},{y2:g}) lies outside the {rec.width}x{rec.height} image")
        boxes[iid].append([x, y, min(x2, rec.width), min(y2, rec.height)])
        rec.labels.append(name)
    for iid, rec in records.items():
        rec.boxes = np.asarray(boxes[iid], float).reshape(-1, 4)
    return list(records.values()), list(classes) if classes is not None else list(cats.values())


def write_coco(records: Sequence[VOCImage], classes: Sequence[str], json_path: str | Path) -> Path:
    """Write ``records`` (e.g. from :func:`~openmia.data.readers.voc.read_voc_split`) as a COCO
    detection JSON file, atomically.

    Image ids are ``1..len(records)``, category ids ``1..len(classes)`` in ``classes`` order,
    annotation ids ``1..``; images are referenced by file *name* (``record.image.name``), so read
    the result back with ``image_dir`` set to the images' folder. ``dropped`` boxes are not written.
    """
    out = Path(json_path)
    cid = {c: k for k, c in enumerate(classes, start=1)}
    if len(cid) != len(classes):
        raise DataError(f"{out}: duplicate class names in {list(classes)}")
    images, anns = [], []
    for iid, r in enumerate(records, start=1):
        b = np.asarray(r.boxes, float)
        if b.ndim != 2 or b.shape[1] != 4 or len(b) != len(r.labels):
            raise DataError(f"{out}, case {r.case_id!r}: boxes {b.shape} and {len(r.labels)} labels do not match "
                            f"(expected (n, 4) boxes and n labels)")
        images.append({"id": iid, "file_name": r.image.name, "width": int(r.width), "height": int(r.height)})
        for (x1, y1, x2, y2), lab in zip(b.tolist(), r.labels):
            if lab not in cid:
                raise DataError(f"{out}, case {r.case_id!r}: unknown class {lab!r}; expected one of {list(classes)}")
            w, h = x2 - x1, y2 - y1
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cid[lab], "bbox": [x1, y1, w, h],
                         "area": w * h, "iscrowd": 0})
    cats = [{"id": k, "name": c, "supercategory": "none"} for c, k in cid.items()]
    return write_json(out, {"images": images, "annotations": anns, "categories": cats})
