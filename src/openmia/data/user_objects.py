"""User detection and counting sets: ``coco:PATH``, ``voc:PATH`` (boxes) and ``dots:PATH`` (points).

Layouts (``docs/data.md``):

- ``coco:PATH``: a folder with ``annotations.json`` (one COCO file: openmia makes the splits) or
  ``train.json`` [+ ``val.json``] + ``test.json`` (the splits); images in ``images/`` (or beside the
  JSON). PATH may also be the JSON file itself.
- ``voc:PATH``: Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/``; ``ImageSets/Main/test.txt``
  (with ``train.txt``/``trainval.txt`` and optional ``val.txt``) gives the splits. Classes: the
  object names found, sorted.
- ``dots:PATH``: ``images/`` + ``points.csv`` (``image_id,x,y``, one row per object, image_id =
  the file stem), or ``images/`` + ``dots/`` (a PNG per image with a red pixel per object), or the
  VGG-cells layout (``NNNcell.png`` + ``NNNdots.png``).

Images (PNG/JPEG, grey or RGB: all must agree) are resized (bilinear) to an input whose longer side
is ``size`` (default 256; the shorter side keeps the aspect ratio, rounded to a multiple of 16, when
every image has the same one; otherwise square) and kept uint8; objects are scaled to that grid
and ``scales`` keeps original pixels per input pixel, as for the catalogue's BCCD. Zero-size and
crowd boxes follow the readers' drop-and-report policy (``dropped``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from openmia.data.problems import RAISE, Problems
from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import ConfigError, DataError, OpenmiaError

DEFAULT_SIZE = 256
KIND = {"coco": "box", "voc": "box", "dots": "point"}


@dataclass(frozen=True)
class ObjCase:
    """One image: ``objects`` boxes ``(k, 4)`` x1 y1 x2 y2 or points ``(k, 2)`` x y in original pixels."""

    case_id: str
    image: Path
    width: int
    height: int
    objects: np.ndarray = field(compare=False)
    classes: tuple[int, ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjScan:
    prefix: str
    root: Path
    label_names: tuple[str, ...]
    channels: int
    cases: tuple[ObjCase, ...]
    files: tuple[Path, ...]
    stamp: str
    layout: str
    given: Any = None
    given_by: str = ""
    notes: tuple[str, ...] = ()

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases]


def _image_facts(path: Path) -> tuple[int, int, int]:
    """``(width, height, channels)`` from the header of a PNG/JPEG."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], 1 if im.mode in ("L", "1", "LA", "I;16", "I", "F") else 3
    except Exception as exc:
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def _coco(root: Path, problems: Problems) -> tuple[list[Any], list[str], Any, str, list[Path], list[str]]:
    from openmia.data.readers.coco import read_coco

    if root.is_file():
        files, base = {"all": root}, root.parent
    else:
        base = root
        files = {k: root / f"{k}.json" for k in ("train", "val", "test") if (root / f"{k}.json").is_file()}
        if (root / "annotations.json").is_file():
            files = {"all": root / "annotations.json"}
        if not files:
            raise DataError(f"{root}: no annotations.json (or train.json / val.json / test.json); expected COCO files")
    img_dir = base / "images" if (base / "images").is_dir() else base
    recs, classes, given, notes = [], None, {}, []
    for split, f in files.items():
        got = problems.guard(read_coco, f, image_dir=img_dir)
        if got is None:
            continue
        r, cls = got
        if classes is not None and cls != classes:
            problems.add(f"{f}: categories {cls} differ from {classes} in the other COCO file(s)")
            continue
        classes = cls
        recs += r
        given[split] = [x.case_id for x in r]
    if "all" in given or "test" not in given:
        if given and "all" not in given:
            notes.append("no test.json: openmia makes the splits from all images")
        given = None
    return recs, list(classes or []), given, "COCO files", list(files.values()), notes


def _voc(root: Path, problems: Problems) -> tuple[list[Any], list[str], Any, str, list[Path], list[str]]:
    from openmia.data.readers.voc import read_voc_file

    ann = root / "Annotations"
    if not ann.is_dir() or not (root / "JPEGImages").is_dir():
        raise DataError(f"{root}: expected Pascal VOC folders Annotations/ and JPEGImages/")
    xmls = {p.stem: p for p in sorted(ann.glob("*.xml"))}
    sets = root / "ImageSets" / "Main"
    lists = {k: [ln.strip() for ln in (sets / f"{k}.txt").read_text().splitlines() if ln.strip()]
             for k in ("train", "trainval", "val", "test") if (sets / f"{k}.txt").is_file()}
    given, notes, extra = None, [], [sets / f"{k}.txt" for k in lists]
    ids = sorted(xmls)
    if "test" in lists:
        val = lists.get("val", [])
        train = lists.get("train") or [i for i in lists.get("trainval", []) if i not in set(val)]
        given = {k: v for k, v in (("train", train), ("val", val), ("test", lists["test"])) if v}
        listed = {i for v in given.values() for i in v}
        for i in sorted(listed - set(xmls)):
            problems.add(f"{sets}: lists {i!r}, but {ann / (i + '.xml')} does not exist")
        if train:  # the lists name every case used
            if set(xmls) - listed:
                notes.append(f"{len(set(xmls) - listed)} annotation file(s) are in no ImageSets list and not used")
            ids = sorted(listed & set(xmls))
    elif lists:
        notes.append("ImageSets/Main has no test.txt: openmia makes the splits from all annotations")
    if not ids:
        raise DataError(f"{ann}: no .xml annotation files")
    recs = [r for r in (problems.guard(read_voc_file, xmls[i], image_dir=root / "JPEGImages") for i in ids) if r is not None]
    classes = sorted({n for r in recs for n in r.labels})
    return recs, classes, given, "Pascal VOC", [xmls[i] for i in ids] + extra, notes


def _dots(root: Path, problems: Problems) -> tuple[list[ObjCase], list[Path], str]:
    from openmia.data.readers.dots import read_dots, read_points_csv, read_vgg_cells
    from openmia.data.readers.folder import list_files

    if not (root / "images").is_dir():
        cells = read_vgg_cells(root)
        return ([ObjCase(c.case_id, c.image, 0, 0, c.points) for c in cells],
                [p for c in cells for p in (c.image, c.image.with_name(f"{c.case_id}dots.png"))], "VGG cells (NNNcell.png + NNNdots.png)")
    imgs = list_files(root / "images", problems)
    for stem, p in list(imgs.items()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            problems.add(f"{p}: dots: images must be PNG or JPEG")
            del imgs[stem]
    if (root / "points.csv").is_file():
        pts = read_points_csv(root / "points.csv", image_ids=list(imgs))
        return [ObjCase(s, p, 0, 0, pts[s]) for s, p in imgs.items()], [*imgs.values(), root / "points.csv"], \
            "images/ + points.csv"
    if not (root / "dots").is_dir():
        raise DataError(f"{root}: images/ but neither points.csv (image_id,x,y) nor dots/ (a dot PNG per image)")
    dots = list_files(root / "dots", problems)
    for stem in sorted(set(dots) - set(imgs)):
        problems.add(f"{dots[stem]}: dot annotation without an image in images/")
    out = []
    for stem, p in imgs.items():
        if stem not in dots:
            problems.add(f"{p}: image without a dot annotation (expected dots/{stem}.png)")
            continue
        pts = problems.guard(read_dots, dots[stem])
        if pts is not None:
            out.append(ObjCase(stem, p, 0, 0, pts))
    return out, [*imgs.values(), *dots.values()], "images/ + dots/"


def scan(prefix: str, root: Path, stamp: str = "", problems: Problems = RAISE) -> ObjScan:
    """Index a ``coco:``/``voc:``/``dots:`` set and read its image headers."""
    from openmia.data.user_sets import _given

    notes: list[str] = []
    if prefix == "dots":
        cases, files, layout = _dots(root, problems)
        names, given, given_by = ["object"], None, ""
    else:
        recs, names, own, layout, files, notes = (_coco if prefix == "coco" else _voc)(root, problems)
        given_by = "test.json" if prefix == "coco" else "ImageSets/Main"
        cases, seen = [], set()
        for r in recs:
            if r.case_id in seen:
                problems.add(f"{r.image}: a second image named {r.case_id!r}; case ids (file stems) must be unique")
                continue
            seen.add(r.case_id)
            cases.append(ObjCase(r.case_id, r.image, r.width, r.height, np.asarray(r.boxes, np.float64).reshape(-1, 4),
                                 tuple(names.index(n) for n in r.labels), tuple(r.dropped)))
            files.append(r.image)
        given = own
        if not names and not problems.items:
            raise DataError(f"{prefix}:{root}: no annotated objects; detection needs at least one class")
    checked, channels, first = [], 0, None
    for c in cases:
        facts = problems.guard(_image_facts, c.image)
        if facts is None:
            continue
        w, h, ch = facts
        if c.width and (w, h) != (c.width, c.height):
            problems.add(f"{c.image}: image is {w}x{h} but its annotation says {c.width}x{c.height}")
            continue
        if first is None:
            channels, first = ch, c.image
        elif ch != channels:
            what = {1: "grey", 3: "RGB"}
            problems.add(f"{c.image}: {what[ch]}, but {first} is {what[channels]}; all images must agree (convert them)")
            continue
        checked.append(ObjCase(c.case_id, c.image, w, h, c.objects, c.classes or (0,) * len(c.objects), c.dropped))
    if not checked:
        raise DataError(f"{prefix}:{root}: no readable images")
    base = root if root.is_dir() else root.parent
    g, gb = _given(base, [c.case_id for c in checked], given, given_by)
    return ObjScan(prefix, root, tuple(names), channels, tuple(checked), tuple(files), stamp, layout, g, gb, tuple(notes))


@lru_cache(maxsize=8)
def _scan_cached(prefix: str, root: str, stamp: str) -> ObjScan:
    return scan(prefix, Path(root), stamp)


def get_scan(name: str) -> ObjScan:
    from openmia.data.splitting import fingerprint
    from openmia.data.user_sets import resolve

    prefix, root = resolve(name)
    return _scan_cached(prefix, str(root), fingerprint(root))


@lru_cache(maxsize=32)
def _plan(prefix: str, root: str, stamp: str, seed: int, fold: int):
    from openmia.data.splitting import plan_splits

    s = _scan_cached(prefix, root, stamp)
    return plan_splits(s.case_ids, None, seed=seed, fold=fold, given=s.given, given_by=s.given_by, where=f"{prefix}:{root}")


def input_shape(s: ObjScan, size: int | None) -> tuple[int, int]:
    """``(H, W)`` of the model input: longer side ``size``; the aspect kept when all images share it."""
    edge = size or DEFAULT_SIZE
    ratios = {(c.width * 10_000) // c.height for c in s.cases}
    if len(ratios) != 1:
        return edge, edge
    w, h = s.cases[0].width, s.cases[0].height
    short = max(16, int(round(edge * min(w, h) / max(w, h) / 16)) * 16)
    return (short, edge) if w >= h else (edge, short)


def spec_of(name: str, size: int | None = None, spacing: Any = None) -> DatasetSpec:
    """The spec of a ``coco:``/``voc:``/``dots:`` set (split sizes: fold 0)."""
    if spacing is not None:
        raise ConfigError(f"data.spacing applies to 3D NIfTI images; {name} holds 2D images")
    s = get_scan(name)
    plan = _plan(s.prefix, str(s.root), s.stamp, 0, 0)
    h, w = input_shape(s, size)
    task = "counting" if s.prefix == "dots" else "detection"
    return DatasetSpec(
        name=name, task=task, task_type=task, dims=2, channels=s.channels, size=max(h, w), shape=None if h == w else (h, w),
        label_names=s.label_names, split_sizes=tuple((k, len(plan.splits[k])) for k in ("train", "val", "test")),
        normalization=Normalization.UINT8_UNIT, licence="user data (licence not stated)", citation="user data set",
        source="user", folds=plan.folds, description=f"{task} from {s.layout} in {s.root}",
    )


@lru_cache(maxsize=4)
def _built(prefix: str, root: str, stamp: str, shape: tuple[int, int]) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[float, float]]]:
    from openmia.data.object_sets import _read_resized

    s = _scan_cached(prefix, root, stamp)
    out = {}
    for c in s.cases:
        img, (w, h) = _read_resized(c.image, shape, s.channels)
        sx, sy = w / shape[1], h / shape[0]
        div = np.array([sx, sy, sx, sy] if KIND[prefix] == "box" else [sx, sy])
        img.setflags(write=False)
        out[c.case_id] = (img, (np.asarray(c.objects, np.float64) / div).astype(np.float32), (sx, sy))
    return out


def load(name: str, split: str, *, size: int | None = None, root: Any = None, seed: int = 0, fold: int = 0,
         spacing: Any = None):
    """One split as an :class:`~openmia.data.object_sets.ObjectSplit` (uint8 ``(N, C, H, W)``)."""
    from openmia.data.object_sets import ObjectSplit

    if root:
        raise ConfigError(f"data.root={root!r} does not apply to {name}: the path is part of the data set's name")
    spec = spec_of(name, size, spacing)
    s = get_scan(name)
    ids = list(_plan(s.prefix, str(s.root), s.stamp, seed, fold).splits[split])
    built = _built(s.prefix, str(s.root), s.stamp, spec.spatial_shape)
    by = {c.case_id: c for c in s.cases}
    images = np.stack([built[i][0] for i in ids])
    images.setflags(write=False)
    return ObjectSplit(images, [built[i][1] for i in ids], [np.asarray(by[i].classes, np.int64) for i in ids], ids, spec,
                       np.asarray([built[i][2] for i in ids], float), KIND[s.prefix], [d for i in ids for d in by[i].dropped],
                       split_record=partial(record_for, name, size=size, seed=seed, fold=fold))


def record_for(name: str, *, seed: int = 0, fold: int = 0, **_: Any) -> dict[str, Any]:
    """The split record a split's ``split_record`` attribute returns (as ``catalog.split_record``)."""
    from openmia.data.splitting import SPLIT_RECORD_SCHEMA

    return {"schema": SPLIT_RECORD_SCHEMA, "source": "user", **record(name, seed=seed, fold=fold)}


def record(name: str, *, seed: int = 0, fold: int = 0, checksum: bool = True) -> dict[str, Any]:
    """Case ids per split, the rule, and the SHA-256 of the data files."""
    from openmia.data.splitting import files_sha256

    s = get_scan(name)
    plan = _plan(s.prefix, str(s.root), s.stamp, seed, fold)
    return {"dataset": name, "root": str(s.root), "layout": s.layout, "rule": plan.rule, "seed": seed, "fold": fold,
            "folds": plan.folds, "splits": {k: list(v) for k, v in plan.splits.items()}, "n_files": len(set(s.files)),
            "files_sha256": files_sha256(s.root, s.files, s.stamp) if checksum else None}


def find_problems(name: str, *, size: int | None = None, spacing: Any = None) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of a detection/counting set, all at once (nothing cached)."""
    from openmia.data.splitting import fingerprint, plan_splits
    from openmia.data.user_sets import resolve

    probs = Problems(collect=True)
    try:
        prefix, root = resolve(name)
        s = scan(prefix, root, fingerprint(root), probs)
        if not probs.items:
            plan_splits(s.case_ids, None, seed=0, fold=0, given=s.given, given_by=s.given_by, where=name)
        return probs.items, list(s.notes)
    except OpenmiaError as exc:
        return [*probs.items, str(exc)], []
