"""Real 2D segmentation sets in the catalogue: BUSI (breast ultrasound) and Kvasir-SEG (polyps).

Both are read from a local folder (``data.root``, default ``OPENMIA_HOME/<name>``; nothing is
downloaded — the licences ask for registration/citation) and resized to a square training size
(images bilinear, masks nearest) once, then kept as uint8 arrays like every catalogue set.
Splits are fixed and committed: BUSI ``data/splits/busi.json`` (stratified by benign / malignant
/ normal, the rule is in the file); Kvasir-SEG the authors' 880/120 split, with every 11th
training case (sorted ids) held out as validation (80 cases), so the 120 test cases stay untouched.

Scores are computed at the training resolution (``size``); the README states it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import DataError

DEFAULT_SIZE = {"busi": 256, "kvasir_seg": 256}


def _busi_split() -> dict[str, list[str]]:
    return json.loads(resources.files("openmia.data").joinpath("splits/busi.json").read_text())["splits"]


def spec_for(name: str, size: int | None = None) -> DatasetSpec:
    size = size or DEFAULT_SIZE[name]
    if name == "busi":
        sp = _busi_split()
        return DatasetSpec(
            name="busi" if size == DEFAULT_SIZE[name] else f"busi_{size}", task="segmentation", task_type="segmentation",
            dims=2, channels=1, size=size, label_names=("background", "lesion"),
            split_sizes=tuple((k, len(sp[k])) for k in ("train", "val", "test")), normalization=Normalization.UINT8_UNIT,
            licence="research use with citation (uncertain; see the data set's SOURCE.md)",
            citation="Al-Dhabyani et al., Dataset of breast ultrasound images, Data in Brief 28:104863, 2020",
            source="busi", spacing=None, resized_input=True,
            description="breast ultrasound, benign / malignant lesions and normal images (empty masks); masks OR-ed",
        )
    if name == "kvasir_seg":
        return DatasetSpec(
            name="kvasir_seg" if size == DEFAULT_SIZE[name] else f"kvasir_seg_{size}", task="segmentation",
            task_type="segmentation", dims=2, channels=3, size=size, label_names=("background", "polyp"),
            split_sizes=(("train", 800), ("val", 80), ("test", 120)), normalization=Normalization.UINT8_UNIT,
            licence="academic/research use; commercial use needs permission",
            citation="Jha et al., Kvasir-SEG: A Segmented Polyp Dataset, MMM 2020",
            source="kvasir_seg", description="colonoscopy polyps, RGB; the authors' 880/120 split", resized_input=True,
        )
    raise KeyError(name)


def _root(name: str, root: str | Path | None) -> Path:
    from openmia.data.paths import openmia_home

    r = Path(root) if root else openmia_home() / name
    if not r.is_dir():
        raise DataError(f"{name}: folder {r} not found; pass data.root=FOLDER (the unpacked data set) "
                        f"or copy it to {openmia_home() / name}")
    return r


def resize_image(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(C, H, W)`` -> ``(C, size, size)``, each channel bilinear (PIL): how the training
    images were made, and how ``openmia predict`` prepares new ones."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR)) for c in img])


def _resize(img: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    return resize_image(img, size), np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))


@lru_cache(maxsize=4)
def _load_all(name: str, root: str, size: int) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    from openmia.data.readers.image_mask import load_image_mask, read_busi, read_kvasir

    if name == "busi":
        cases = {c.case_id: c for c in read_busi(root)}
        split = _busi_split()
        grey = True
    else:
        clist, official = read_kvasir(root)
        cases = {c.case_id: c for c in clist}
        if set(official) != {"train", "val"}:
            raise DataError(f"{root}: the authors' split split_880_120/train.txt and val.txt is required")
        train = sorted(official["train"])
        split = {"train": [c for i, c in enumerate(train) if i % 11 != 10],
                 "val": [c for i, c in enumerate(train) if i % 11 == 10], "test": sorted(official["val"])}
        grey = False
    out = {}
    for s, ids in split.items():
        missing = [i for i in ids if i not in cases]
        if missing:
            raise DataError(f"{name}: split {s} lists case(s) {', '.join(missing[:5])} that are not in {root}")
        imgs, masks = zip(*(_resize(*load_image_mask(cases[i], grey=grey), size) for i in ids))
        a, m = np.stack(imgs).astype(np.uint8), np.stack(masks).astype(np.uint8)
        a.setflags(write=False)
        m.setflags(write=False)
        out[s] = (a, m, list(ids))
    return out


def load(name: str, split: str, *, root: str | Path | None = None, size: int | None = None):
    """``(images uint8 (N, C, S, S), masks uint8 (N, S, S), case_ids)`` of one split."""
    r = _root(name, root)
    return _load_all(name, str(r), size or DEFAULT_SIZE[name])[split]
