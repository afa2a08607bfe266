"""The data catalogue: specs by name, and loading a split as uint8 arrays."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openmia.data import medmnist, msd_sets, object_sets, segmentation_sets, synthetic, synthetic_segmentation
from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import ConfigError, DataError, UnknownNameError


@dataclass
class SplitArrays:
    """One split of a data set.

    Attributes:
        images: uint8 ``(N, C, *spatial)``; may be a non-contiguous view of the file's array.
        labels: int64 ``(N,)`` (binary / multi-class / ordinal), ``(N, L)`` 0/1 (multi-label), or
            uint8 label maps ``(N, *spatial)`` (segmentation).
        case_ids: ``"<dataset>/<split>/<index>"`` for each case.
        regions: for sets padded to a common shape, the slice of each padded array that holds the
            case's own voxels (predictions are cropped back before scoring); None otherwise.
    """

    images: np.ndarray
    labels: np.ndarray
    case_ids: list[str]
    spec: DatasetSpec
    regions: list[tuple[slice, ...]] | None = None


def merge_splits(first: SplitArrays, second: SplitArrays) -> SplitArrays:
    """One split holding ``first``'s cases, then ``second``'s (e.g. train + val for a refit).

    Images and labels are concatenated along the case axis, so both must share the per-case
    shape (every catalogue set stores a split as one array); when either has regions, the merged
    split has one per case (the whole array for cases that had none).
    """
    if first.spec != second.spec:
        raise DataError(f"cannot merge splits of {first.spec.name} and {second.spec.name}")
    if first.images.shape[1:] != second.images.shape[1:]:
        raise DataError(f"{first.spec.name}: cannot merge splits with image shapes {first.images.shape[1:]} and "
                        f"{second.images.shape[1:]} per case")
    regions = None
    if first.regions is not None or second.regions is not None:
        regions = [*(first.regions or [(...,)] * len(first.case_ids)), *(second.regions or [(...,)] * len(second.case_ids))]
    return SplitArrays(np.concatenate([first.images, second.images]), np.concatenate([first.labels, second.labels]),
                       [*first.case_ids, *second.case_ids], first.spec, regions)


def _medmnist_spec(name: str, size: int) -> DatasetSpec:
    f = medmnist.FACTS[name]
    if size not in f.md5:
        raise UnknownNameError(f"{name} has no {size}px variant; available sizes: {sorted(f.md5)}")
    return DatasetSpec(
        name=name if size == 28 else f"{name}_{size}", task="classification", task_type=f.task_type, dims=f.dims,
        channels=f.channels, size=size, label_names=f.labels,
        split_sizes=(("train", f.splits[0]), ("val", f.splits[1]), ("test", f.splits[2])),
        normalization=Normalization.UINT8_UNIT, licence=f.licence, citation=medmnist.CITATION, source="medmnist",
        url=medmnist.url_for(name, size), md5=f.md5[size], filename=medmnist.filename_for(name, size),
        description=medmnist.SOURCES.get(name, ""),
    )


def all_names() -> list[str]:
    """Every catalogue name, size variants included (``retinamnist_224``)."""
    names = (list(synthetic.SPECS) + list(synthetic_segmentation.SPECS) + list(segmentation_sets.DEFAULT_SIZE)
             + list(msd_sets.FACTS) + list(object_sets.SPECS))
    for n, f in medmnist.FACTS.items():
        names += [n if s == 28 else f"{n}_{s}" for s in sorted(f.md5)]
    return names


def get_spec(name: str, size: int | None = None) -> DatasetSpec:
    """The spec of ``name`` (``size`` selects a MedMNIST variant; ``name_64`` works too)."""
    if name in segmentation_sets.DEFAULT_SIZE:
        return segmentation_sets.spec_for(name, size)
    if object_sets.is_object_set(name):
        return object_sets.spec_for(name, size)
    if name in msd_sets.FACTS:
        spec = msd_sets.spec_for(name)
        if size not in (None, spec.size):
            raise UnknownNameError(f"{name} is padded to {spec.spatial_shape} voxels; data.size does not apply")
        return spec
    if name in synthetic_segmentation.SPECS:
        spec = synthetic_segmentation.SPECS[name]
        if size not in (None, spec.size):
            raise UnknownNameError(f"{name} exists only at {spec.size}px, not {size}px")
        return spec
    if name in synthetic.SPECS:
        if size not in (None, synthetic.SIZE):
            raise UnknownNameError(f"{name} exists only at {synthetic.SIZE}px, not {size}px")
        return synthetic.SPECS[name]
    base, _, suffix = name.rpartition("_")
    if base in medmnist.FACTS and suffix.isdigit():
        if size is not None and size != int(suffix):
            raise UnknownNameError(f"{name!r} names the {suffix}px variant but size={size} was given")
        return _medmnist_spec(base, int(suffix))
    if name in medmnist.FACTS:
        return _medmnist_spec(name, size or 28)
    close = difflib.get_close_matches(name, all_names(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"unknown dataset {name!r}.{hint} See `openmia data list` for the catalogue.")


def list_datasets(task: str | None = None) -> list[DatasetSpec]:
    """Specs of every catalogue entry at its default size (size variants via ``get_spec``)."""
    specs = (list(synthetic.SPECS.values()) + list(synthetic_segmentation.SPECS.values())
             + [segmentation_sets.spec_for(n) for n in segmentation_sets.DEFAULT_SIZE]
             + [msd_sets.spec_for(n) for n in msd_sets.FACTS] + list(object_sets.SPECS.values())
             + [_medmnist_spec(n, 28) for n in medmnist.FACTS])
    return [s for s in specs if task is None or s.task == task]


def data_file(spec: DatasetSpec, root: str | Path | None = None) -> Path:
    """Where the file of a downloadable set lives (``root`` or ``OPENMIA_HOME/medmnist``)."""
    from openmia.data.paths import medmnist_dir

    if spec.filename is None:
        raise DataError(f"{spec.name} is generated, it has no file")
    return (Path(root) if root else medmnist_dir()) / spec.filename


def load_split(name: str, split: str, *, size: int | None = None, root: str | Path | None = None, seed: int = 0,
               fold: int = 0) -> SplitArrays:
    """Load one split (``train``, ``val`` or ``test``) of a catalogue data set.

    Synthetic sets are generated from ``seed``; MedMNIST sets are read from ``root`` or
    ``OPENMIA_HOME/medmnist`` (fetch or import them first); ``fold`` picks the test fold of
    cross-validated sets (``spec.folds > 0``).
    """
    spec = get_spec(name, size)
    if split not in ("train", "val", "test"):
        raise DataError(f"unknown split {split!r} for {spec.name}; expected train, val or test")
    if fold and not spec.folds:
        raise ConfigError(f"data.fold={fold}: {spec.name} has one fixed split, not folds; leave data.fold at 0")
    if object_sets.is_object_set(spec.name):  # images with boxes / points: an ObjectSplit (same attribute names)
        return object_sets.load(spec.name, split, root=root, seed=seed, fold=fold)  # type: ignore[return-value]
    if spec.source == "msd":
        images, labels, ids, regions = msd_sets.load(spec.name, split, root=root, fold=fold)
        return SplitArrays(images, labels, ids, spec, regions)
    if spec.source in segmentation_sets.DEFAULT_SIZE:
        images, labels, ids = segmentation_sets.load(spec.source, split, root=root, size=spec.size)
        return SplitArrays(images, labels, ids, spec)
    if spec.source == "synthetic":
        gen = synthetic_segmentation.generate if spec.task == "segmentation" else synthetic.generate
        images, labels = gen(spec.name, seed)[split]
    else:
        path = data_file(spec, root)
        if not path.is_file():
            raise DataError(f"{spec.name}: {path} not found. Download it with `openmia data fetch {spec.name}` "
                            f"or install a local copy with `openmia data import {spec.name} FILE`")
        from openmia.data.readers.npz import read_split

        images, labels = read_split(path, spec, split)
    ids = [f"{spec.name}/{split}/{i:05d}" for i in range(len(labels))]
    return SplitArrays(images, np.asarray(labels), ids, spec)
