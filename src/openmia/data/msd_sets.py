"""3D segmentation sets in the catalogue from the Medical Segmentation Decathlon layout.

``hippocampus`` (MSD Task04): 260 labelled MRI crops of 31-43 x 40-59 x 24-47 voxels at 1 mm.
Read from a local folder (``data.root``, default ``OPENMIA_HOME/hippocampus``), reoriented to
RAS+, normalised by the modality rule of ``dataset.json`` (MRI: z-score over the foreground) and
zero-padded, centred, to one fixed shape so a batch is a plain array; each case keeps the region
it occupies so predictions are cropped back and scored on the original voxel grid.

Splits: 5 folds from the sorted case names, fold k = the cases whose index % 5 == k (the issue's
protocol). ``data.fold`` picks the test fold; of the remaining cases, every 8th (sorted) is the
validation split used for model selection, the rest train.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import ConfigError, DataError


@dataclass(frozen=True)
class _Facts:
    shape: tuple[int, int, int]  # padded spatial shape (every case fits, divisible by 16)
    label_names: tuple[str, ...]
    modality: str
    n_cases: int
    licence: str
    citation: str
    description: str


FACTS = {
    "hippocampus": _Facts(
        shape=(48, 64, 48), label_names=("background", "anterior", "posterior"), modality="MRI", n_cases=260,
        licence="CC-BY-SA 4.0",
        citation="Antonelli et al., The Medical Segmentation Decathlon, Nature Communications 13:4128, 2022",
        description="MSD Task04: hippocampus head (anterior) and body/tail (posterior) in MRI; 5 folds",
    ),
}
FOLDS = 5
VAL_EVERY = 8


def _split_ids(ids: list[str], fold: int) -> dict[str, list[str]]:
    ids = sorted(ids)
    test = [c for i, c in enumerate(ids) if i % FOLDS == fold]
    rest = [c for i, c in enumerate(ids) if i % FOLDS != fold]
    return {"train": [c for i, c in enumerate(rest) if i % VAL_EVERY != VAL_EVERY - 1],
            "val": [c for i, c in enumerate(rest) if i % VAL_EVERY == VAL_EVERY - 1], "test": test}


def spec_for(name: str) -> DatasetSpec:
    f = FACTS[name]
    n_test = -(-f.n_cases // FOLDS)  # fold 0 holds the extra cases when n is not a multiple of 5
    rest = f.n_cases - n_test
    n_val = rest // VAL_EVERY
    return DatasetSpec(
        name=name, task="segmentation", task_type="segmentation", dims=3, channels=1, size=max(f.shape),
        shape=f.shape, label_names=f.label_names, split_sizes=(("train", rest - n_val), ("val", n_val), ("test", n_test)),
        normalization=Normalization.FLOAT, licence=f.licence, citation=f.citation, source="msd", spacing=(1.0, 1.0, 1.0),
        description=f.description, folds=FOLDS, modality=f.modality,
    )


def _pad_region(shape: tuple[int, ...], target: tuple[int, ...], case_id: str) -> tuple[slice, ...]:
    if any(s > t for s, t in zip(shape, target)):
        raise DataError(f"case {case_id!r}: shape {shape} does not fit the set's padded shape {target}")
    starts = [(t - s) // 2 for s, t in zip(shape, target)]
    return tuple(slice(a, a + s) for a, s in zip(starts, shape))


@lru_cache(maxsize=2)
def _load_all(name: str, root: str, fold: int) -> dict[str, tuple[np.ndarray, np.ndarray, list[str], list[tuple[slice, ...]]]]:
    from openmia.data.readers.msd import load_case, read_msd_index
    from openmia.transforms.intensity import normalize_for_modality

    f = FACTS[name]
    index = read_msd_index(root)
    if len(index.modalities) != 1 or index.modalities[0].upper() != f.modality:
        raise DataError(f"{root}/dataset.json: modality {index.modalities}, expected ({f.modality!r},) for {name}")
    if len(index.label_names) != len(f.label_names):
        raise DataError(f"{root}/dataset.json: labels {index.label_names}, expected {len(f.label_names)} labels for {name}")
    by_id = {c.case_id: c for c in index.cases if c.label is not None}
    out = {}
    for split, ids in _split_ids(list(by_id), fold).items():
        imgs = np.zeros((len(ids), 1, *f.shape), np.float32)
        labs = np.zeros((len(ids), *f.shape), np.uint8)
        regions = []
        for i, cid in enumerate(ids):
            vol = load_case(index, by_id[cid])
            region = _pad_region(vol.label.shape, f.shape, cid)
            imgs[(i, 0, *region)] = normalize_for_modality(vol.image[0], f.modality)
            labs[(i, *region)] = vol.label
            regions.append(region)
        imgs.setflags(write=False)
        labs.setflags(write=False)
        out[split] = (imgs, labs, ids, regions)
    return out


def load(name: str, split: str, *, root: str | Path | None = None, fold: int = 0):
    """``(images float32 (N, 1, *shape), labels uint8 (N, *shape), case_ids, regions)`` of one
    split; ``regions[i]`` is the slice of the padded array that holds case ``i``'s own voxels."""
    from openmia.data.paths import openmia_home

    if not 0 <= fold < FOLDS:
        raise ConfigError(f"data.fold={fold}: {name} has folds 0-{FOLDS - 1}")
    r = Path(root) if root else openmia_home() / name
    if not r.is_dir():
        raise DataError(f"{name}: folder {r} not found; pass data.root=FOLDER (the unpacked MSD task with "
                        f"dataset.json) or copy it to {openmia_home() / name}")
    return _load_all(name, str(r), fold)[split]
