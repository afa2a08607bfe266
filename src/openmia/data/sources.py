"""The dataset registry (DESIGN §1.1): every data set comes from one registered *source*.

Catalogue sources own fixed names (``retinamnist_64``, ``busi``, ``synthetic/seg3d``, ...); user
sources own a prefix (``folder:PATH``, ``msd:PATH``, ``nnunet:PATH``, ``coco:PATH``, ``voc:PATH``,
``dots:PATH``; ``docs/data.md``). Each source answers ``spec(name, size, spacing)`` and
``load(name, split, ...)``; user sources also ``record`` (the split record with the data files'
checksum) and ``problems`` (every problem at once, for ``openmia data verify``).
Add a source = one class registered here with ``@DATASETS.register(name, prefix=..., order=...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openmia.data import medmnist, msd_sets, object_sets, segmentation_sets, synthetic, synthetic_segmentation
from openmia.data.arrays import SplitArrays
from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import ConfigError, DataError, UnknownNameError
from openmia.registry import Registry

# sources registered in other modules (imported on the first lookup, as the task registry does)
DATASETS: Registry[Any] = Registry("dataset source", modules=("openmia.data.landmark_sets",))


def _no_spacing(spec: DatasetSpec, spacing: Any) -> None:
    if spacing is not None and tuple(float(v) for v in spacing) != tuple(spec.spacing or ()):
        raise ConfigError(f"data.spacing={list(spacing)}: {spec.name} is a catalogue set with a fixed voxel grid "
                          f"(spacing {spec.spacing}); data.spacing applies to msd:, nnunet: and folder: NIfTI sets")


class Source:
    """A catalogue source: the names it owns, their specs, and loading one split."""

    prefix = False

    @staticmethod
    def owns(name: str) -> bool:
        raise NotImplementedError

    @staticmethod
    def names() -> list[str]:
        raise NotImplementedError

    @staticmethod
    def specs() -> list[DatasetSpec]:
        raise NotImplementedError

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        raise NotImplementedError

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> Any:
        raise NotImplementedError


@DATASETS.register("synthetic", order=0)
class SyntheticSource(Source):
    """Generated classification and segmentation sets (``synthetic/*``), from a seed."""

    @staticmethod
    def owns(name: str) -> bool:
        return name in synthetic.SPECS or name in synthetic_segmentation.SPECS

    @staticmethod
    def names() -> list[str]:
        return list(synthetic.SPECS) + list(synthetic_segmentation.SPECS)

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return list(synthetic.SPECS.values()) + list(synthetic_segmentation.SPECS.values())

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        spec = synthetic_segmentation.SPECS.get(name) or synthetic.SPECS[name]
        if size not in (None, spec.size):
            raise UnknownNameError(f"{name} exists only at {spec.size}px, not {size}px")
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> SplitArrays:
        gen = synthetic_segmentation.generate if spec.name in synthetic_segmentation.SPECS else synthetic.generate
        images, labels = gen(spec.name, seed)[split]
        return SplitArrays(images, np.asarray(labels), [f"{spec.name}/{split}/{i:05d}" for i in range(len(labels))], spec)


@DATASETS.register("image_mask", order=1)
class ImageMaskSource(Source):
    """BUSI and Kvasir-SEG: 2D image + mask folders resized to a square."""

    @staticmethod
    def owns(name: str) -> bool:
        return name in segmentation_sets.DEFAULT_SIZE

    @staticmethod
    def names() -> list[str]:
        return list(segmentation_sets.DEFAULT_SIZE)

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return [segmentation_sets.spec_for(n) for n in segmentation_sets.DEFAULT_SIZE]

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        spec = segmentation_sets.spec_for(name, size)
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> SplitArrays:
        images, labels, ids = segmentation_sets.load(spec.source, split, root=root, size=spec.size)
        return SplitArrays(images, labels, ids, spec)


@DATASETS.register("decathlon", order=2)
class DecathlonSource(Source):
    """Catalogue MSD tasks (``hippocampus``), padded to a fixed shape, 5 folds."""

    @staticmethod
    def owns(name: str) -> bool:
        return name in msd_sets.FACTS

    @staticmethod
    def names() -> list[str]:
        return list(msd_sets.FACTS)

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return [msd_sets.spec_for(n) for n in msd_sets.FACTS]

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        spec = msd_sets.spec_for(name)
        if size not in (None, spec.size):
            raise UnknownNameError(f"{name} is padded to {spec.spatial_shape} voxels; data.size does not apply")
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> SplitArrays:
        images, labels, ids, regions = msd_sets.load(spec.name, split, root=root, fold=fold)
        return SplitArrays(images, labels, ids, spec, regions)


@DATASETS.register("objects", order=3)
class ObjectSource(Source):
    """Catalogue detection and counting sets (boxes or points): an ObjectSplit per split."""

    @staticmethod
    def owns(name: str) -> bool:
        return object_sets.is_object_set(name)

    @staticmethod
    def names() -> list[str]:
        return list(object_sets.SPECS)

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return list(object_sets.SPECS.values())

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        spec = object_sets.spec_for(name, size)
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> Any:
        return object_sets.load(spec.name, split, root=root, seed=seed, fold=fold)


def medmnist_spec(name: str, size: int) -> DatasetSpec:
    """The spec of a MedMNIST set at ``size`` px (28, 64, 128, 224 where it exists)."""
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


def _medmnist_variant(name: str) -> tuple[str, int | None]:
    base, _, suffix = name.rpartition("_")
    return (base, int(suffix)) if base in medmnist.FACTS and suffix.isdigit() else (name, None)


@DATASETS.register("medmnist", order=4)
class MedMNISTSource(Source):
    """MedMNIST v2 ``.npz`` files (fetched or imported), size variants as ``name_64``."""

    @staticmethod
    def owns(name: str) -> bool:
        return _medmnist_variant(name)[0] in medmnist.FACTS

    @staticmethod
    def names() -> list[str]:
        return [n if s == 28 else f"{n}_{s}" for n, f in medmnist.FACTS.items() for s in sorted(f.md5)]

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return [medmnist_spec(n, 28) for n in medmnist.FACTS]

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        base, named = _medmnist_variant(name)
        if named is not None:
            if size is not None and size != named:
                raise UnknownNameError(f"{name!r} names the {named}px variant but size={size} was given")
            spec = medmnist_spec(base, named)
        else:
            spec = medmnist_spec(name, size or 28)
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> SplitArrays:
        from openmia.data.paths import data_file
        from openmia.data.readers.npz import read_split

        path = data_file(spec, root)
        if not path.is_file():
            raise DataError(f"{spec.name}: {path} not found. Download it with `openmia data fetch {spec.name}` "
                            f"or install a local copy with `openmia data import {spec.name} FILE`")
        images, labels = read_split(path, spec, split)
        return SplitArrays(images, np.asarray(labels), [f"{spec.name}/{split}/{i:05d}" for i in range(len(labels))], spec)


class UserSource:
    """A prefix source: ``<prefix>:PATH`` names a data set on disk (see docs/data.md)."""

    prefix = True
    module = "openmia.data.user_arrays"

    @classmethod
    def _mod(cls) -> Any:
        import importlib

        return importlib.import_module(cls.module)

    @classmethod
    def spec(cls, name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        return cls._mod().spec_of(name, size, spacing)

    @classmethod
    def load(cls, name: str, split: str, **kw: Any) -> Any:
        return cls._mod().load(name, split, **kw)

    @classmethod
    def record(cls, name: str, *, seed: int = 0, fold: int = 0, checksum: bool = True) -> dict[str, Any]:
        return cls._mod().record(name, seed=seed, fold=fold, checksum=checksum)

    @classmethod
    def problems(cls, name: str, *, size: int | None = None, spacing: Any = None) -> tuple[list[str], list[str]]:
        return cls._mod().find_problems(name, size=size, spacing=spacing)


for _prefix, _task in (("folder", ("classification", "segmentation")), ("msd", ("segmentation",)),
                       ("nnunet", ("segmentation",))):
    DATASETS.register(_prefix, prefix=True, task=_task)(type(f"{_prefix.title()}Source", (UserSource,), {}))
for _prefix, _task in (("coco", ("detection",)), ("voc", ("detection",)), ("dots", ("counting",))):
    DATASETS.register(_prefix, prefix=True, task=_task)(
        type(f"{_prefix.title()}Source", (UserSource,), {"module": "openmia.data.user_objects"}))


def prefixes() -> list[str]:
    """The user-data prefixes (``folder``, ``msd``, ...)."""
    return DATASETS.names(prefix=True)


def catalogue_sources() -> list[Any]:
    """Catalogue source classes in listing order."""
    entries = [e for e in DATASETS if not e.meta.get("prefix")]
    return [e.factory for e in sorted(entries, key=lambda e: e.meta.get("order", 99))]


def find_source(name: str, known_names: Any = None) -> Any:
    """The source class of a data set name; unknown names and prefixes raise with close matches."""
    import difflib

    if ":" in name:
        prefix = name.partition(":")[0]
        if prefix in prefixes():
            return DATASETS.get(prefix).factory
        close = difflib.get_close_matches(prefix, prefixes(), n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c + ':') for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown data set prefix {prefix + ':'!r} in {name!r}.{hint} Known prefixes: "
                               f"{', '.join(p + ':' for p in prefixes())} (see docs/data.md)")
    for src in catalogue_sources():
        if src.owns(name):
            return src
    all_names = [n for s in catalogue_sources() for n in s.names()]
    close = difflib.get_close_matches(name, all_names, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"unknown dataset {name!r}.{hint} See `openmia data list` for the catalogue, or name your "
                           f"own data with a prefix: {', '.join(p + ':PATH' for p in prefixes())}.")

