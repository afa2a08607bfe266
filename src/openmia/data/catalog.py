"""The data catalogue and the one door to every data set: specs by name, loading a split, and
the split record a run saves.

Names are looked up in the dataset registry (:mod:`openmia.data.sources`): catalogue names
(``retinamnist_64``, ``busi``, ``synthetic/seg3d``, ...) and user data sets named by a prefix and a
path (``folder:PATH``, ``msd:PATH``, ``nnunet:PATH``, ``coco:PATH``, ``voc:PATH``, ``dots:PATH``;
``docs/data.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from openmia.data.arrays import SplitArrays, merge_splits
from openmia.data.paths import data_file
from openmia.data.sources import catalogue_sources, find_source, medmnist_spec
from openmia.data.spec import DatasetSpec
from openmia.errors import ConfigError, DataError

__all__ = ["SplitArrays", "merge_splits", "all_names", "get_spec", "list_datasets", "data_file", "load_split",
           "split_record", "is_user_dataset", "annotation_kind", "medmnist_spec"]

from openmia.data.splitting import SPLIT_RECORD_SCHEMA  # noqa: E402


def all_names() -> list[str]:
    """Every catalogue name, size variants included (``retinamnist_224``)."""
    return [n for src in catalogue_sources() for n in src.names()]


def is_user_dataset(name: str) -> bool:
    """True for a prefixed user data set (``folder:PATH``, ``msd:PATH``, ...)."""
    return bool(getattr(find_source(name), "prefix", False))


def _spacing(spacing: Any) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    try:
        return tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise ConfigError(f"data.spacing must be a list of numbers in mm, found {spacing!r}") from None


def get_spec(name: str, size: int | None = None, *, spacing: tuple[float, ...] | None = None) -> DatasetSpec:
    """The spec of ``name``.

    Args:
        name: a catalogue name (``size`` selects a MedMNIST variant; ``name_64`` works too) or a
            prefixed user data set (its folder is scanned; cached per folder content).
        size: image edge in pixels where the set is resized (None = the set's default).
        spacing: target voxel spacing in mm for NIfTI user sets (changes the padded shape).
    """
    return find_source(name).spec(name, size, _spacing(spacing))


def list_datasets(task: str | None = None) -> list[DatasetSpec]:
    """Specs of every catalogue entry at its default size (size variants via ``get_spec``)."""
    return [s for src in catalogue_sources() for s in src.specs() if task is None or s.task == task]


def load_split(name: str, split: str, *, size: int | None = None, root: str | Path | None = None, seed: int = 0,
               fold: int = 0, spacing: tuple[float, ...] | None = None) -> SplitArrays:
    """Load one split (``train``, ``val`` or ``test``) of a data set.

    Synthetic sets are generated from ``seed``; MedMNIST sets are read from ``root`` or
    ``OPENMIA_HOME/medmnist`` (fetch or import them first); ``fold`` picks the test fold of
    cross-validated sets (``spec.folds > 0``). User sets (``folder:PATH`` ...) are read from PATH
    (``root`` does not apply); ``seed`` seeds the splits openmia makes for them, ``spacing``
    resamples NIfTI volumes. Detection/counting sets return an
    :class:`~openmia.data.object_sets.ObjectSplit` (same attribute names).

    Returns:
        images ``(N, C, *spatial)`` uint8 or float32 (``spec.normalization`` says which), labels,
        case ids, the spec, and regions (padded 3D sets).
    """
    sp = _spacing(spacing)
    src = find_source(name)
    spec = src.spec(name, size, sp)
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown split {split!r} for {spec.name}; expected train, val or test")
    if fold and not spec.folds:
        raise ConfigError(f"data.fold={fold}: {spec.name} has one fixed split, not folds; leave data.fold at 0")
    if getattr(src, "prefix", False):
        return src.load(name, split, size=size, root=root, seed=seed, fold=fold, spacing=sp)
    return src.load(spec, split, root=root, seed=seed, fold=fold)


def split_record(name: str, *, size: int | None = None, root: str | Path | None = None, seed: int = 0, fold: int = 0,
                 spacing: tuple[float, ...] | None = None,
                 splits: Mapping[str, Any] | None = None, checksum: bool = True) -> dict[str, Any]:
    """What a run saves as ``splits.json`` (and in its provenance) to reproduce its data.

    User sets: the case ids of each split, the rule that made them (``split.json``, the data
    set's own test split, k-fold or hold-out with its seed and fold) and ``files_sha256``, a
    SHA-256 over every data file (path relative to the folder + the file's SHA-256). Catalogue
    sets: the case ids (from ``splits`` when given, else loaded) and the official file MD5.
    ``checksum=False`` skips hashing the files (``files_sha256`` is then None).

    Returns:
        ``{"schema", "dataset", "rule", "seed", "fold", "folds", "splits": {split: [case ids]},
        "files_sha256" | "file_md5", ...}``, JSON-serialisable.
    """
    src = find_source(name)
    if getattr(src, "prefix", False):
        rec = src.record(name, seed=seed, fold=fold, checksum=checksum)
        return {"schema": SPLIT_RECORD_SCHEMA, "source": "user", **rec}
    spec = src.spec(name, size, _spacing(spacing))
    if splits is None:
        splits = {s: load_split(name, s, size=size, root=root, seed=seed, fold=fold, spacing=spacing)
                  for s in ("train", "val", "test")}
    return {"schema": SPLIT_RECORD_SCHEMA, "source": spec.source, "dataset": spec.name,
            "rule": f"catalogue split{f' (fold {fold} of {spec.folds})' if spec.folds else ''}", "seed": seed,
            "fold": fold, "folds": spec.folds, "splits": {k: list(v.case_ids) for k, v in splits.items()},
            "file_md5": spec.md5}


def annotation_kind(name: str) -> str:
    """``"box"`` or ``"point"``: what a detection/counting set is annotated with (no data loaded)."""
    from openmia.data.object_sets import ANNOTATION, base_name

    prefix = name.partition(":")[0] if ":" in name else None
    if prefix is not None:
        from openmia.data.user_objects import KIND

        if prefix in KIND:
            return KIND[prefix]
    elif base_name(name) in ANNOTATION:
        return ANNOTATION[base_name(name)]
    raise DataError(f"{name} is not a detection or counting data set")
