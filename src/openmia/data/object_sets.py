"""Detection and counting sets in the catalogue: images with boxes or points.

=================  =========  ======================================================  ====================
name               task       what                                                    train / val / test
=================  =========  ======================================================  ====================
synthetic/lesions  detection  128 px ultrasound-like images, 0-4 benign/malignant     200 / 50 / 100
                              lesions (boxes); the embedded default, no download
synthetic/cells    counting   128 px fluorescence-like cells with clumps (points)     200 / 50 / 100
bccd               detection  BCCD blood cells (RBC / WBC / Platelets), Pascal VOC,   205 / 87 / 72
                              the upstream split ``BCCD/ImageSets/Main``; read at
                              320x240 (``data.size`` 480 or 640: ``bccd_480``, native)
synthetic/nuclei3d detection 32 voxel 3D fluorescence-like stacks, 3-15 nuclei   120 / 30 / 60
                              (points x y z), touching pairs; the 3D point default
vgg_cells          counting   VGG synthetic cells, one dot per cell; the standard     32 / 16 / 100
                              protocol: N = 32 training images drawn from 001-100
                              (``data.fold`` = the draw), test 101-200
=================  =========  ======================================================  ====================

Images are resized once to the set's input shape (bilinear) and kept as uint8 ``(N, C, H, W)``
(the 3D synthetic set is generated at its shape: ``(N, C, D, H, W)``); objects are scaled to
that grid. ``scales`` keeps original-pixels-per-input-pixel so predictions are written, and
scored, in the original image's pixel coordinates. BCCD's two zero-area boxes follow the VOC
reader's policy (dropped and reported; ``openmia data verify bccd`` lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import DataError

BCCD_CLASSES = ("RBC", "WBC", "Platelets")
VGG_DRAWS = 10  # data.fold = 0..9 picks one draw of the 32 training images
VGG_N_TRAIN, VGG_N_VAL = 32, 16
SYNTHETIC_SPLITS = (("train", 200), ("val", 50), ("test", 100))
NUCLEI3D_SPLITS = (("train", 120), ("val", 30), ("test", 60))


@dataclass
class ObjectSplit:
    """One split of a detection/counting set.

    Attributes:
        images: uint8 ``(N, C, H, W)`` at the set's input shape.
        objects: per image boxes ``(k, 4)`` x1 y1 x2 y2 or points ``(k, 2)`` x y (3D: ``(k, 3)``
            x y z), float32, in input pixels.
        classes: per image class indices ``(k,)`` int64 into ``spec.label_names``.
        case_ids: one id per image.
        scales: ``(N, dims)`` original pixels per input pixel along x, y[, z].
        dropped: annotations dropped by a documented policy (e.g. zero-area boxes), with reasons.
    """

    images: np.ndarray
    objects: list[np.ndarray]
    classes: list[np.ndarray]
    case_ids: list[str]
    spec: DatasetSpec
    scales: np.ndarray
    kind: str  # "box" | "point"
    dropped: list[str] = field(default_factory=list)
    regions: None = None  # the SplitArrays interface (no padding here)
    # user sets: a callable returning the split record (see SplitArrays.split_record); None otherwise
    split_record: Callable[[], dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    @property
    def labels(self) -> np.ndarray:
        """Objects per image ``(N,)`` (what split hashes and summaries count)."""
        return np.array([len(o) for o in self.objects], dtype=np.int64)


def _spec(name: str) -> DatasetSpec:
    if name == "synthetic/lesions":
        return DatasetSpec(name=name, task="detection", task_type="detection", dims=2, channels=1, size=128,
                           label_names=("benign", "malignant"), split_sizes=SYNTHETIC_SPLITS,
                           normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation="openmia",
                           source="synthetic", description="ultrasound-like images with 0-4 lesions (boxes), two classes")
    if name == "synthetic/cells":
        return DatasetSpec(name=name, task="counting", task_type="counting", dims=2, channels=1, size=128,
                           label_names=("cell",), split_sizes=SYNTHETIC_SPLITS, normalization=Normalization.UINT8_UNIT,
                           licence="CC0 (generated)", citation="openmia", source="synthetic",
                           description="fluorescence-like cells (10-60 per image) with clumps and overlaps (points)")
    if name == "synthetic/nuclei3d":
        return DatasetSpec(name=name, task="detection", task_type="detection", dims=3, channels=1, size=32,
                           label_names=("nucleus",), split_sizes=NUCLEI3D_SPLITS, normalization=Normalization.UINT8_UNIT,
                           licence="CC0 (generated)", citation="openmia", source="synthetic",
                           description="3D fluorescence-like stacks (32^3) with 3-15 nuclei each (points x y z)")
    if name == "bccd":
        return DatasetSpec(name=name, task="detection", task_type="detection", dims=2, channels=3, size=320, shape=(240, 320),
                           label_names=BCCD_CLASSES, split_sizes=(("train", 205), ("val", 87), ("test", 72)),
                           normalization=Normalization.UINT8_UNIT, licence="MIT (re-packager's)",
                           citation="BCCD Dataset, Shenggan (github.com/Shenggan/BCCD_Dataset), 2017", source="bccd",
                           description="blood smear 640x480, boxes RBC / WBC / Platelets; upstream split; trained at 320x240")
    if name == "vgg_cells":
        return DatasetSpec(name=name, task="counting", task_type="counting", dims=2, channels=3, size=256,
                           label_names=("cell",), split_sizes=(("train", VGG_N_TRAIN), ("val", VGG_N_VAL), ("test", 100)),
                           normalization=Normalization.UINT8_UNIT, licence="uncertain; synthetic, no patient data",
                           citation="Lempitsky & Zisserman, Learning to count objects in images, NeurIPS 2010", source="cells",
                           folds=VGG_DRAWS,
                           description="VGG synthetic fluorescence cells 256x256, one dot per cell; N=32 train from 001-100")
    raise KeyError(name)


SPECS: dict[str, DatasetSpec] = {n: _spec(n) for n in ("synthetic/lesions", "synthetic/cells", "synthetic/nuclei3d", "bccd",
                                                        "vgg_cells")}


BCCD_WIDTHS = (320, 480, 640)  # data.size for bccd: the width; the height keeps the 4:3 images' aspect


def spec_for(name: str, size: int | None = None) -> DatasetSpec:
    """The spec of ``name``, or of its ``size`` variant (BCCD only: ``bccd_480`` = 480x360 input)."""
    from dataclasses import replace

    from openmia.errors import UnknownNameError

    base, named = _variant(name)
    if named is not None:
        if size is not None and size != named:
            raise UnknownNameError(f"{name!r} names the {named} px wide variant but data.size={size} was given")
        name, size = base, named
    spec = SPECS[name]
    if size in (None, spec.size):
        return spec
    if name != "bccd":
        raise UnknownNameError(f"{name} is read at {spec.spatial_shape[::-1]} px (width x height); data.size does not apply")
    if size not in BCCD_WIDTHS:
        raise UnknownNameError(f"bccd: data.size is the input width, one of {BCCD_WIDTHS}; found {size}")
    return replace(spec, name=f"bccd_{size}", size=size, shape=(size * 3 // 4, size),
                   description=spec.description.replace("trained at 320x240", f"trained at {size}x{size * 3 // 4}"))


def _variant(name: str) -> tuple[str, int | None]:
    """``bccd_480`` -> ``("bccd", 480)``; any other name -> ``(name, None)``."""
    base, _, suffix = name.rpartition("_")
    return (base, int(suffix)) if base == "bccd" and suffix.isdigit() else (name, None)


def is_object_set(name: str) -> bool:
    """True for a catalogue name of this module (including size variants such as ``bccd_480``)."""
    return _variant(name)[0] in SPECS


def base_name(spec_name: str) -> str:
    """``bccd_480`` -> ``bccd``; other names unchanged."""
    return _variant(spec_name)[0]


# what each set is annotated with ("box" | "point"): runs are rebuilt from it without loading data
ANNOTATION = {"synthetic/lesions": "box", "synthetic/cells": "point", "synthetic/nuclei3d": "point", "bccd": "box",
              "vgg_cells": "point"}


def _root(spec: DatasetSpec, root: str | Path | None) -> Path:
    from openmia.data.paths import openmia_home

    r = Path(root) if root else openmia_home() / spec.source
    if not r.is_dir():
        raise DataError(f"{spec.name}: folder {r} not found; pass data.root=FOLDER (the unpacked data set) "
                        f"or copy it to {openmia_home() / spec.source}")
    return r


def _read_resized(path: Path, shape: tuple[int, int], channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``(C, H, W)`` uint8 at ``shape`` and the original ``(width, height)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            orig = im.size
            arr = np.asarray(im.resize((shape[1], shape[0]), Image.BILINEAR))
    except Exception as exc:
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None
    return (arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]).copy(), orig


@lru_cache(maxsize=4)
def _load_bccd(root: str, shape: tuple[int, int]) -> dict[str, ObjectSplit]:
    from openmia.data.readers.voc import read_voc_split

    spec = spec_for("bccd", shape[1])
    out = {}
    for split in ("train", "val", "test"):
        recs = read_voc_split(root, split, classes=BCCD_CLASSES)
        imgs, objs, cls, scales, dropped = [], [], [], [], []
        for r in recs:
            img, (w, h) = _read_resized(r.image, shape, 3)
            if (w, h) != (r.width, r.height):
                raise DataError(f"{r.image}: image is {w}x{h} but its annotation says {r.width}x{r.height}")
            sx, sy = w / shape[1], h / shape[0]
            imgs.append(img)
            objs.append((r.boxes / np.array([sx, sy, sx, sy])).astype(np.float32))
            cls.append(np.array([BCCD_CLASSES.index(n) for n in r.labels], dtype=np.int64))
            scales.append((sx, sy))
            dropped += r.dropped
        out[split] = ObjectSplit(_frozen(np.stack(imgs)), objs, cls, [r.case_id for r in recs], spec,
                                 np.asarray(scales, float), "box", dropped)
    return out


def vgg_split_ids(draw: int) -> dict[str, list[str]]:
    """The case ids of one draw of the VGG cells protocol (train/val from 001-100, test 101-200)."""
    if not 0 <= draw < VGG_DRAWS:
        raise DataError(f"vgg_cells: data.fold (the draw) must be 0..{VGG_DRAWS - 1}, found {draw}")
    perm = np.random.default_rng(draw).permutation(np.arange(1, 101))
    ids = [f"{i:03d}" for i in perm]
    return {"train": sorted(ids[:VGG_N_TRAIN]), "val": sorted(ids[VGG_N_TRAIN : VGG_N_TRAIN + VGG_N_VAL]),
            "test": [f"{i:03d}" for i in range(101, 201)]}


@lru_cache(maxsize=2)
def _load_vgg(root: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from openmia.data.readers.dots import read_vgg_cells

    out = {}
    for c in read_vgg_cells(root):
        img, _ = _read_resized(c.image, (256, 256), 3)
        out[c.case_id] = (img, c.points.astype(np.float32))
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=8)
def _synthetic(name: str, seed: int) -> dict[str, ObjectSplit]:
    spec = SPECS[name]
    out = {}
    for k, (split, n) in enumerate(spec.split_sizes):
        s = seed * 101 + k  # each split its own stream; the same seed gives the same set
        if name == "synthetic/lesions":
            from openmia.data.synthetic_detection import lesions

            imgs, objs, cls = lesions(n, size=spec.size, classes=spec.label_names, seed=s)
            kind = "box"
        elif name == "synthetic/nuclei3d":
            from openmia.data.synthetic_cells import nuclei3d

            imgs, objs = nuclei3d(n, size=spec.size, seed=s)
            cls = [np.zeros(len(o), np.int64) for o in objs]
            kind = "point"
        else:
            from openmia.data.synthetic_cells import cells

            imgs, objs = cells(n, size=spec.size, seed=s)
            cls = [np.zeros(len(o), np.int64) for o in objs]
            kind = "point"
        u8 = _frozen(np.round(np.clip(imgs, 0, 1) * 255).astype(np.uint8))
        ids = [f"{name}/{split}/{i:05d}" for i in range(n)]
        out[split] = ObjectSplit(u8, [np.asarray(o, np.float32) for o in objs], [np.asarray(c, np.int64) for c in cls], ids,
                                 spec, np.ones((n, spec.dims)), kind)
    return out


def load(name: str, split: str, *, root: str | Path | None = None, seed: int = 0, fold: int = 0) -> ObjectSplit:
    """One split of a detection/counting set (see the module docstring); ``name`` may be a size variant."""
    spec = spec_for(name)
    if spec.source == "synthetic":
        return _synthetic(name, seed)[split]
    r = _root(spec, root)
    if spec.source == "bccd":
        return _load_bccd(str(r), tuple(spec.shape))[split]
    cases = _load_vgg(str(r))
    ids = vgg_split_ids(fold)[split]
    missing = [i for i in ids if i not in cases]
    if missing:
        raise DataError(f"vgg_cells: {r} lacks case(s) {', '.join(missing[:5])} (NNNcell.png + NNNdots.png)")
    imgs = _frozen(np.stack([cases[i][0] for i in ids]))
    pts = [cases[i][1] for i in ids]
    return ObjectSplit(imgs, pts, [np.zeros(len(p), np.int64) for p in pts], ids, spec, np.ones((len(ids), 2)), "point")
