"""COCO JSON files for the detection evaluator: annotations (truth) and results (predictions) in,
both written out so the same data can be fed to pycocotools.

Formats (https://cocodataset.org/#format-data, "Object Detection" and "Results Format"):

- truth: ``{"images": [{"id", ...}], "annotations": [{"id", "image_id", "category_id",
  "bbox": [x, y, w, h], "area", "iscrowd"}], "categories": [{"id", "name"}]}``. ``area`` defaults
  to w·h and ``iscrowd`` to 0; ``categories`` may be left out (then the labels are the ids).
- predictions: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.

Case ids are the image ids as text (``"397133"``), in the order of the sorted ids (COCOeval's
image order, which breaks ties between images). Labels are the category names when every category
has a distinct name, else the ids as text; a prediction's ``category_id`` is looked up in the
truth's categories (an id the truth does not list becomes the label ``str(id)``: a class without
truth objects). Boxes ``[x, y, w, h]`` become ``x1, y1, x2, y2 = x, y, x + w, y + h``; a zero-size
box is allowed (it overlaps nothing, as in pycocotools). Every violation is a PredictionError naming
the file and the entry.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.errors import PredictionError


def _load(path: str | Path) -> tuple[Any, str]:
    p = Path(path)
    if not p.is_file():
        raise PredictionError(f"{p}: file not found")
    try:
        raw = p.read_bytes()
        return json.loads(raw.decode("utf-8-sig")), hashlib.sha256(raw).hexdigest()
    except OSError as exc:
        raise PredictionError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictionError(f"{p}: not a valid JSON file ({exc}); expected COCO JSON") from None


def _is_id(v: Any) -> bool:
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TypeError
    return float(v)


def _box(p: Path, where: str, bb: Any) -> list[float]:
    try:
        if not isinstance(bb, (list, tuple)) or len(bb) != 4:
            raise TypeError
        x, y, w, h = (_number(v) for v in bb)
    except TypeError:
        raise PredictionError(f"{p}, {where}: 'bbox' must be four finite numbers [x, y, w, h], found {bb!r}") from None
    if w < 0 or h < 0:
        raise PredictionError(f"{p}, {where}: 'bbox' {bb!r} has a negative width or height; expected [x, y, w, h] with w, h >= 0")
    return [x, y, x + w, y + h, w * h]


def _label_map(p: Path, cats: Any) -> dict[Any, str]:
    if cats is None:
        return {}
    if not isinstance(cats, list):
        raise PredictionError(f"{p}: 'categories' must be a list, found {type(cats).__name__}")
    ids: list[Any] = []
    names: list[Any] = []
    for k, c in enumerate(cats):
        if not isinstance(c, dict) or not _is_id(c.get("id")):
            raise PredictionError(f"{p}, categories[{k}]: needs an integer or string 'id', found {c!r}")
        if c["id"] in ids:
            raise PredictionError(f"{p}, categories[{k}]: duplicate category id {c['id']!r}")
        ids.append(c["id"])
        names.append(c.get("name"))
    named = all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)
    return {i: (n if named else str(i)) for i, n in zip(ids, names)}


def read_coco_truth(path: str | Path) -> dict[str, Any]:
    """The truth of a COCO annotations file.

    Returns a dict: ``det`` (:class:`~openmia.metrics.detection.Detections`), ``images`` (case ids),
    ``image_ids`` (the COCO ids, same order), ``area`` and ``crowd`` per object, ``categories``
    (label -> category id), ``sha256``.
    """
    from openmia.metrics.detection import Detections

    p = Path(path)
    data, sha = _load(p)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise PredictionError(f"{p}: a COCO annotations (truth) file is an object with 'images' and 'annotations' lists "
                              f"(and 'categories'), found {found}"
                              + ("; a list is a COCO *results* file (predictions): pass it as --pred" if isinstance(data, list) else ""))
    ids: dict[Any, int] = {}
    as_text: set[str] = set()
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not _is_id(im.get("id")):
            raise PredictionError(f"{p}, images[{k}]: needs an integer or string 'id', found {im!r}")
        if str(im["id"]) in as_text:
            raise PredictionError(f"{p}, images[{k}]: duplicate image id {im['id']!r}")
        ids[im["id"]] = k
        as_text.add(str(im["id"]))
    if len({type(i) for i in ids}) > 1:
        raise PredictionError(f"{p}: image ids must be all integers or all strings")
    image_ids = sorted(ids)  # COCOeval's image order
    index = {i: n for n, i in enumerate(image_ids)}
    labels = _label_map(p, data.get("categories"))
    img, lab, xy, area, crowd = [], [], [], [], []
    seen: set[Any] = set()
    for k, a in enumerate(data["annotations"]):
        if not isinstance(a, dict):
            raise PredictionError(f"{p}, annotations[{k}]: expected an object, found {a!r}")
        where = f"annotations[{k}]" + (f" (id {a['id']!r})" if _is_id(a.get("id")) else "")
        if _is_id(a.get("id")):
            if a["id"] in seen:
                raise PredictionError(f"{p}, {where}: duplicate annotation id")
            seen.add(a["id"])
        if a.get("image_id") not in index:
            raise PredictionError(f"{p}, {where}: image_id {a.get('image_id')!r} is not in 'images'")
        if not _is_id(a.get("category_id")):
            raise PredictionError(f"{p}, {where}: needs an integer or string 'category_id', found {a.get('category_id')!r}")
        box = _box(p, where, a.get("bbox"))
        ar = a.get("area", box[4])
        try:
            ar = _number(ar)
            if ar < 0:
                raise TypeError
        except TypeError:
            raise PredictionError(f"{p}, {where}: 'area' must be a finite number >= 0, found {a.get('area')!r}") from None
        c = a.get("iscrowd", 0)
        if c not in (0, 1, True, False):
            raise PredictionError(f"{p}, {where}: 'iscrowd' must be 0 or 1, found {c!r}")
        img.append(index[a["image_id"]])
        lab.append(labels.get(a["category_id"], str(a["category_id"])))
        xy.append(box[:4])
        area.append(ar)
        crowd.append(bool(c))
    det = Detections(np.asarray(img, dtype=np.int64), np.asarray(lab, dtype=object).astype(str), np.asarray(xy, float).reshape(-1, 4))
    cats = {name: cid for cid, name in labels.items()}
    return {"det": det, "images": [str(i) for i in image_ids], "image_ids": image_ids, "area": np.asarray(area, float),
            "crowd": np.asarray(crowd, bool), "categories": cats, "sha256": sha}


def read_coco_results(path: str | Path, images: Sequence[str], categories: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predictions of a COCO results file, on the truth's ``images`` (case ids).

    ``categories`` (label -> category id, from a COCO truth) names the classes; without it the label
    is the category id as text. Returns ``det``, ``area`` (w·h per row) and ``sha256``.
    """
    from openmia.metrics.detection import Detections

    p = Path(path)
    data, sha = _load(p)
    if not isinstance(data, list):
        hint = "; an object with 'images'/'annotations' is a COCO annotations (truth) file" if isinstance(data, dict) else ""
        raise PredictionError(f"{p}: a COCO results file (predictions) is a list of "
                              f"{{image_id, category_id, bbox, score}}, found a {type(data).__name__}{hint}")
    index = {c: n for n, c in enumerate(images)}
    names = {str(cid): lab for lab, cid in (categories or {}).items()}
    img, lab, xy, score, area = [], [], [], [], []
    for k, d in enumerate(data):
        where = f"entry {k}"
        if not isinstance(d, dict):
            raise PredictionError(f"{p}, {where}: expected an object {{image_id, category_id, bbox, score}}, found {d!r}")
        if not _is_id(d.get("image_id")) or str(d["image_id"]) not in index:
            raise PredictionError(f"{p}, {where}: image_id {d.get('image_id')!r} is not an image of the truth "
                                  "(every predicted image must be listed there)")
        if not _is_id(d.get("category_id")):
            raise PredictionError(f"{p}, {where}: needs an integer or string 'category_id', found {d.get('category_id')!r}")
        box = _box(p, where, d.get("bbox"))
        try:
            s = _number(d.get("score"))
        except TypeError:
            raise PredictionError(f"{p}, {where}: 'score' must be a finite number, found {d.get('score')!r}") from None
        img.append(index[str(d["image_id"])])
        lab.append(names.get(str(d["category_id"]), str(d["category_id"])))
        xy.append(box[:4])
        area.append(box[4])
        score.append(s)
    det = Detections(np.asarray(img, dtype=np.int64), np.asarray(lab, dtype=object).astype(str),
                     np.asarray(xy, float).reshape(-1, 4), np.asarray(score, float))
    return {"det": det, "area": np.asarray(area, float), "sha256": sha}


def category_ids(labels: Sequence[str], known: dict[str, Any] | None = None) -> dict[str, Any]:
    """COCO category id of every label: ``known`` ones kept; the others get the label itself when
    each is a non-negative integer not taken yet, else 1, 2, ... in label order (ids not taken)."""
    out = dict(known or {})
    rest = [lab for lab in labels if lab not in out]
    if rest and all(str(lab).isdigit() for lab in rest) and not {int(lab) for lab in rest} & set(out.values()):
        return {**out, **{lab: int(lab) for lab in rest}}
    nxt = max([int(v) for v in out.values() if isinstance(v, int)] + [0]) + 1
    for lab in sorted(rest, key=str):
        while nxt in out.values():
            nxt += 1
        out[lab] = nxt
        nxt += 1
    return out


def coco_documents(pred, truth, images: Sequence[str], *, image_ids: Sequence[Any] | None = None,
                   categories: dict[str, Any] | None = None, truth_area: np.ndarray | None = None,
                   truth_crowd: np.ndarray | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(annotations document, results list) of 2D boxes, ready for ``COCO()`` / ``loadRes``.

    Image ids are ``image_ids`` (a COCO truth's) or 1..n in image order; annotation ids 1..G;
    every prediction is written (pycocotools applies its own ``maxDets``).
    """
    ids = list(image_ids) if image_ids is not None else list(range(1, len(images) + 1))
    labels = sorted({*map(str, truth.label.tolist()), *map(str, pred.label.tolist())}, key=str)
    cat = category_ids(labels, categories)

    def xywh(b: np.ndarray) -> list[float]:
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    anns = []
    for g, (i, lab, b) in enumerate(zip(truth.image.tolist(), truth.label.tolist(), truth.coords)):
        box = xywh(b)
        anns.append({"id": g + 1, "image_id": ids[i], "category_id": cat[str(lab)], "bbox": box,
                     "area": float(truth_area[g]) if truth_area is not None else box[2] * box[3],
                     "iscrowd": int(truth_crowd[g]) if truth_crowd is not None else 0})
    doc = {"info": {"description": "truth written by openmia evaluate (COCO annotations format)"},
           "images": [{"id": ids[n], "file_name": c} for n, c in enumerate(images)], "annotations": anns,
           "categories": [{"id": cat[lab], "name": lab} for lab in sorted(cat, key=lambda k: (str(type(cat[k])), cat[k]))]}
    results = [{"image_id": ids[i], "category_id": cat[str(lab)], "bbox": xywh(b), "score": float(s)}
               for i, lab, b, s in zip(pred.image.tolist(), pred.label.tolist(), pred.coords, pred.score.tolist())]
    return doc, results
