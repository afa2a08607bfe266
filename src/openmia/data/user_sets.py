"""User data sets named by a prefix and a path: ``folder:PATH``, ``msd:PATH``, ``nnunet:PATH``.

The layout decides the task: ``folder:`` with ``images/`` + ``masks/`` is segmentation, otherwise
classification (class sub-folders or ``labels.csv``); ``msd:`` and ``nnunet:`` are segmentation.
A *scan* reads the index and the file headers (masks too when a segmentation folder declares no
labels) and gives the :class:`~openmia.data.spec.DatasetSpec`; the arrays are built on the first
``load`` (:mod:`openmia.data.user_arrays`). Both are cached per folder content (names, sizes and
modification times of its files), so loading a folder again in one process re-reads nothing and
an edited folder is read afresh. Splits follow :mod:`openmia.data.splitting`.

Defaults (``docs/data.md``): 2D images are resized to ``size`` x ``size`` (default 64; images
bilinear, masks nearest); 3D classification volumes are resized to a ``size`` cube (default 32),
or with ``spacing`` resampled and centre-cropped/padded to it; 3D segmentation volumes are
zero-padded, centred, to the largest case's shape rounded up to a multiple of 16, at least 32
(regions kept).
8-bit 2D images are normalised ``uint8_unit``; anything else by its modality rule: ``dataset.json``
(MSD ``modality``, nnU-Net ``channel_names``, or ``modality`` in a folder's own ``dataset.json``),
by default ``XR`` (robust min-max) for 2D and ``MRI`` (foreground z-score) for 3D.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from openmia.data.problems import RAISE, Problems
from openmia.data.readers.folder import ClassCase, ImageInfo, SegCase
from openmia.data.spec import DatasetSpec, Normalization
from openmia.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DEFAULT_SIZE_2D = 64
DEFAULT_SIZE_3D = 32  # 3D classification cube
PAD_MULTIPLE = 16  # padded 3D shapes divide by 16 (four poolings of a U-Net) ...
MIN_PADDED = 32  # ... and are at least 32 voxels per axis (the bottleneck keeps 2 voxels for its norms)
DEFAULT_MODALITY = {2: "XR", 3: "MRI"}
# nnU-Net's normalisation names -> openmia's rules (nnU-Net z-scores any other channel name)
NNUNET_RULES = {"zscore": "MRI", "nonorm": "MRI", "rescale_to_0_1": "XR", "rgb_to_0_1": "XR"}
SOURCE = "user"
# the layouts whose truth is a label map per case (their task is segmentation)
LAYOUT_IMAGES_MASKS = "images/ + masks/"
LAYOUT_MSD = "MSD (dataset.json, imagesTr/, labelsTr/)"
LAYOUT_NNUNET = "nnU-Net v2 raw (dataset.json, imagesTr/, labelsTr/)"
MASK_LAYOUTS = (LAYOUT_IMAGES_MASKS, LAYOUT_MSD, LAYOUT_NNUNET)


@dataclass(frozen=True)
class Scan:
    """What a user data set is, from its index and file headers.

    Attributes:
        infos: per case id, the header of each of its image files (one per channel group).
        given / given_by: splits the data set itself defines (``split.json``, ``imagesTs``).
        files: every data file (images, masks, index files) for the checksum.
        stamp: the folder's fingerprint when scanned (the cache key).
    """

    prefix: str
    root: Path
    task: str
    task_type: str
    dims: int
    channels: int
    eight_bit: bool
    label_names: tuple[str, ...]
    modality: str | None
    layout: str
    licence: str
    cases: tuple[ClassCase, ...] | tuple[SegCase, ...]
    infos: Mapping[str, tuple[ImageInfo, ...]]
    files: tuple[Path, ...]
    stamp: str
    given: Mapping[str, tuple[str, ...]] | None = None
    given_by: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases]

    @property
    def label_maps(self) -> bool:
        """True when each case's truth is a label map (a mask layout), False for one class label."""
        return self.layout in MASK_LAYOUTS

    @property
    def strata(self) -> list[int] | None:
        """Class per case for stratified splits (one class label per case only)."""
        if self.label_maps or self.task_type == "multi-label":
            return None
        return [int(c.label) for c in self.cases]  # type: ignore[union-attr]


def resolve(name: str) -> tuple[str, Path]:
    """``"folder:~/x"`` -> ``("folder", /home/me/x)``; a path that does not exist is a DataError."""
    prefix, _, path = name.partition(":")
    if not path.strip():
        raise ConfigError(f"data set {name!r}: give a path after {prefix}: (e.g. {prefix}:/data/my_set)")
    p = Path(path).expanduser().absolute()
    if not p.exists():
        raise DataError(f"{name}: {p} does not exist; {prefix}:PATH names a folder on this machine")
    return prefix, p


def _modality_rule(name: str, where: str, nnunet: bool = False) -> str:
    """A modality name that :func:`~openmia.transforms.intensity.normalize_for_modality` knows."""
    from openmia.transforms.intensity import normalize_for_modality

    if nnunet:
        name = "CT" if name.strip().upper() == "CT" else NNUNET_RULES.get(name.strip().lower(), name)
    try:
        normalize_for_modality(np.zeros((2, 2), np.float32), name)
    except ConfigError:
        if nnunet:  # nnU-Net z-scores every channel name it does not know
            return "MRI"
        raise DataError(f"{where}: no normalisation rule for modality {name!r}; use CT, MRI (or T1, T2, FLAIR, ADC, ...) "
                        "or XR") from None
    return name


def _same_rule(a: str, b: str) -> bool:
    """Whether two modality names normalise alike (checked on a probe array, so it follows the rules' code)."""
    from openmia.transforms.intensity import normalize_for_modality

    x = np.array([[-1500.0, 0.0, 7.0], [40.0, 900.0, 3000.0]], np.float32)
    return bool(np.array_equal(normalize_for_modality(x, a), normalize_for_modality(x, b)))


def _check_files(cases: list[Any], problems: Problems) -> tuple[dict[str, tuple[ImageInfo, ...]], list[Any]]:
    """Probe every image file; all must agree on dims and channels (a problem names the first that does not)."""
    from openmia.data.readers.folder import probe

    infos: dict[str, tuple[ImageInfo, ...]] = {}
    kept = []
    first: ImageInfo | None = None
    first_c = 0
    for c in cases:
        files = (c.image,) if isinstance(c, ClassCase) else c.images
        got = [problems.guard(probe, f) for f in files]
        if any(g is None for g in got):
            continue
        inf: list[ImageInfo] = got  # type: ignore[assignment]
        if any(g.dims != inf[0].dims or g.shape != inf[0].shape or g.affine != inf[0].affine for g in inf[1:]):
            problems.add(f"{inf[0].path}: the channel files of case {c.case_id!r} differ in grid (shape or affine)")
            continue
        n_c = sum(g.channels for g in inf)
        if first is None:
            first, first_c = inf[0], n_c
        elif inf[0].dims != first.dims:
            problems.add(f"{inf[0].path}: a {inf[0].dims}D image, but {first.path} is {first.dims}D; all images of a "
                         "data set must have the same number of dimensions")
            continue
        elif n_c != first_c:
            what = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
            problems.add(f"{inf[0].path}: {what.get(n_c, f'{n_c} channels')}, but {first.path} is "
                         f"{what.get(first_c, f'{first_c} channels')}; all images must agree (convert them)")
            continue
        if isinstance(c, SegCase) and c.mask is not None and problems.guard(_mask_grid, c.mask, inf[0]) is None:
            continue
        infos[c.case_id] = tuple(inf)
        kept.append(c)
    return infos, kept


def _mask_grid(mask: Path, image: ImageInfo) -> bool:
    """Header check of a mask against its image: dims, shape and (NIfTI) affine."""
    from openmia.data.readers.folder import probe

    m = probe(mask)
    if m.dims != image.dims:
        raise DataError(f"{mask}: a {m.dims}D mask for the {image.dims}D image {image.path}")
    if (m.affine is None) != (image.affine is None):
        raise DataError(f"{mask}: mask and image {image.path.name} must both be NIfTI or both not")
    if m.affine is not None:
        if m.raw_shape != image.raw_shape:
            raise DataError(f"{mask}: mask shape {m.raw_shape} differs from image shape {image.raw_shape} ({image.path}); "
                            "the mask must be on the image's voxel grid")
        if not np.allclose(m.affine, image.affine, atol=1e-3):
            raise DataError(f"{mask}: mask affine differs from the affine of {image.path}; the mask is not aligned with "
                            "the image (resample it onto the image grid first)")
    elif m.shape != image.shape:
        raise DataError(f"{mask}: mask shape {m.shape} differs from image shape {image.shape} ({image.path})")
    return True


def _infer_labels(cases: list[SegCase], infos: Mapping[str, tuple[ImageInfo, ...]], problems: Problems) -> tuple[str, ...]:
    """Label names from the masks' values when none are declared: 0..max (2 labels at least)."""
    from openmia.data.readers.folder import read_mask

    top = 1
    for c in cases:
        if c.case_id in infos and c.mask is not None:
            m = problems.guard(read_mask, c.mask, infos[c.case_id][0])
            if m is not None and m.size:
                top = max(top, int(m.max()))
    if top > 63:
        raise DataError(f"masks hold label values up to {top}; masks must hold 0 = background, 1..K-1 (or 0/255 for "
                        "binary masks); declare the labels in a dataset.json if this is intended")
    return ("background", "foreground") if top == 1 else ("background", *(f"label_{k}" for k in range(1, top + 1)))


def _given(root: Path, case_ids: list[str], own: Mapping[str, list[str]] | None, own_by: str) -> tuple[Any, str]:
    from openmia.data.splitting import read_split_file

    p = (root if root.is_dir() else root.parent) / "split.json"
    if p.is_file():
        return {k: tuple(v) for k, v in read_split_file(p, case_ids).items()}, "split.json"
    return ({k: tuple(v) for k, v in own.items()}, own_by) if own else (None, "")


def scan(prefix: str, root: Path, stamp: str = "", problems: Problems = RAISE) -> Scan:
    """Index and probe a ``folder:``, ``msd:`` or ``nnunet:`` data set (see the module docstring)."""
    from openmia.data.readers import folder as fr

    if not root.is_dir():
        raise DataError(f"{prefix}:{root}: not a folder")
    meta: dict[str, Any] = {}
    own, own_by, notes = None, "", []
    extra = [root / f for f in ("dataset.json", "split.json", "labels.csv") if (root / f).is_file()]
    if prefix == "folder":
        meta = fr.folder_meta(root)
        if fr.is_segmentation_folder(root):
            cases: list[Any] = list(fr.index_image_mask(root, problems))
            task, layout = "segmentation", LAYOUT_IMAGES_MASKS
        else:
            idx = fr.index_classes(root, problems)
            cases, task, layout = list(idx.cases), "classification", idx.layout
            labels, multi = idx.label_names, idx.multi_label
    elif prefix == "msd":
        from openmia.data.readers.msd import read_msd_index

        index = read_msd_index(root)
        cases = [SegCase(c.case_id, (c.image,), c.label) for c in index.cases if c.label is not None]
        test = _msd_test(root, problems)
        own, own_by = ({"test": [c.case_id for c in test]}, "imagesTs/ + labelsTs/") if test else (None, "")
        cases += test
        task, layout, labels = "segmentation", LAYOUT_MSD, index.label_names
        meta = {"modalities": index.modalities, "licence": index.licence}
    else:
        from openmia.data.readers.nnunet import read_nnunet_index

        index = read_nnunet_index(root, problems)
        cases = list(index.training) + list(index.test)
        if index.test:
            own, own_by = {"test": [c.case_id for c in index.test]}, "imagesTs/ + labelsTs/"
        if index.unlabelled_test:
            notes.append(f"{index.unlabelled_test} case(s) in imagesTs/ without labelsTs/ are not used")
        task, layout, labels = "segmentation", LAYOUT_NNUNET, index.label_names
        meta = {"modalities": index.channel_names, "licence": index.licence, "nnunet": True}
    infos, cases = _check_files(cases, problems)
    if not cases:
        raise DataError(f"{prefix}:{root}: no readable cases")
    first = infos[cases[0].case_id]
    dims, channels = first[0].dims, sum(i.channels for i in first)
    eight_bit = dims == 2 and all(i.eight_bit for inf in infos.values() for i in inf)
    where = str(root / "dataset.json")
    if "modalities" in meta:
        mods = [_modality_rule(m, where, meta.get("nnunet", False)) for m in meta["modalities"]]
        if len(mods) != channels:
            problems.add(f"{first[0].path}: {channels} channel(s), but dataset.json lists {len(mods)}: {list(meta['modalities'])}")
        if any(not _same_rule(m, mods[0]) for m in mods[1:]):
            raise DataError(f"{where}: channels with different normalisation rules {list(meta['modalities'])} are not "
                            "supported; one rule must apply to every channel")
        modality = None if eight_bit else mods[0]
    else:
        modality = None if eight_bit else _modality_rule(meta.get("modality", DEFAULT_MODALITY[dims]), where)
    if layout in MASK_LAYOUTS:
        if prefix == "folder":
            labels = meta.get("labels") or _infer_labels(cases, infos, problems)
        task_type = "segmentation"
        files = [f for c in cases for f in (*c.images, c.mask) if f is not None]
    else:
        task_type = "multi-label" if multi else "binary" if len(labels) == 2 else "multi-class"
        files = [c.image for c in cases]
    ids = [c.case_id for c in cases]
    given, given_by = _given(root, ids, own, own_by)
    return Scan(prefix, root, task, task_type, dims, channels, eight_bit, tuple(labels), modality, layout,
                str(meta.get("licence") or "user data (licence not stated)"), tuple(cases), infos,
                tuple(files) + tuple(extra), stamp, given, given_by, tuple(notes))


def _msd_test(root: Path, problems: Problems) -> list[SegCase]:
    """MSD ``imagesTs/`` cases that have a label in ``labelsTs/`` (MSD's own test labels are hidden)."""
    from openmia.data.readers.folder import list_files

    if not (root / "labelsTs").is_dir():
        return []
    if not (root / "imagesTs").is_dir():
        raise DataError(f"{root}: labelsTs/ without imagesTs/")
    imgs, labs = list_files(root / "imagesTs", problems), list_files(root / "labelsTs", problems)
    for stem in sorted(set(labs) - set(imgs)):
        problems.add(f"{labs[stem]}: label without an image in imagesTs/")
    return [SegCase(s, (imgs[s],), labs[s]) for s in sorted(set(imgs) & set(labs))]


@lru_cache(maxsize=8)
def _scan_cached(prefix: str, root: str, stamp: str) -> Scan:
    return scan(prefix, Path(root), stamp)


def get_scan(name: str) -> Scan:
    """The (cached) scan of a prefixed data set name."""
    from openmia.data.splitting import fingerprint

    prefix, root = resolve(name)
    return _scan_cached(prefix, str(root), fingerprint(root))


def check_spacing(s: Scan, spacing: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """``spacing`` as floats, checked against the data set (NIfTI volumes only)."""
    if spacing is None:
        return None
    sp = tuple(float(v) for v in spacing)
    if s.dims != 3 or any(i.spacing is None for inf in s.infos.values() for i in inf):
        raise ConfigError(f"data.spacing={list(sp)}: resampling applies to 3D NIfTI images; {s.prefix}:{s.root} holds "
                          f"{s.dims}D images without voxel spacing in their files")
    if len(sp) != 3 or min(sp) <= 0:
        raise ConfigError(f"data.spacing must be 3 positive numbers in mm (x, y, z), found {list(spacing)}")
    return sp


def case_shape(info: ImageInfo, spacing: tuple[float, ...] | None) -> tuple[int, ...]:
    """The spatial shape of a case after resampling to ``spacing`` (as ``resample_to_spacing`` rounds)."""
    if spacing is None:
        return info.shape
    old = np.array(info.shape)
    return tuple(int(v) for v in np.maximum(1, np.round(old * np.asarray(info.spacing) / np.asarray(spacing))))


def padded_shape(s: Scan, spacing: tuple[float, ...] | None) -> tuple[int, ...]:
    """The common shape 3D segmentation cases are padded to: the largest extent per axis, rounded
    up to a multiple of :data:`PAD_MULTIPLE`, at least :data:`MIN_PADDED`."""
    ext = np.max([case_shape(inf[0], spacing) for inf in s.infos.values()], axis=0)
    return tuple(max(MIN_PADDED, int(-(-e // PAD_MULTIPLE) * PAD_MULTIPLE)) for e in ext)


def common_spacing(s: Scan, spacing: tuple[float, ...] | None) -> tuple[tuple[float, ...] | None, bool]:
    """``(spec spacing, cases differ)``: the target, or the cases' own (the median when they differ
    by more than 1 %; each case's own is then in ``SplitArrays.spacings``). 2D sets: None."""
    if s.dims != 3:
        return None, False
    if spacing is not None:
        return spacing, False
    sp = np.array([inf[0].spacing or (1.0, 1.0, 1.0) for inf in s.infos.values()])
    med = tuple(float(v) for v in np.median(sp, axis=0))
    return med, bool(np.any(np.abs(sp - med) > 0.01 * np.asarray(med)))


def spec_of(name: str, size: int | None = None, spacing: tuple[float, ...] | None = None) -> DatasetSpec:
    """The spec of a ``folder:``/``msd:``/``nnunet:`` set (split sizes: fold 0)."""
    s = get_scan(name)
    sp = check_spacing(s, spacing)
    plan = plan_for(s, seed=0, fold=0)
    shape = None
    if s.dims == 2:
        edge = size or DEFAULT_SIZE_2D
    elif not s.label_maps:
        edge = size or DEFAULT_SIZE_3D
    else:
        shape = padded_shape(s, sp)
        edge = max(shape)
        if size not in (None, edge):
            raise ConfigError(f"data.size={size}: {name} is padded to {shape} voxels (the largest case); data.size does "
                              "not apply (set data.spacing to change the voxel size)")
    spec_spacing, _ = common_spacing(s, sp) if s.label_maps else (sp, False)
    what = s.task
    return DatasetSpec(
        name=name, task=s.task, task_type=s.task_type, dims=s.dims, channels=s.channels, size=edge, shape=shape,
        label_names=s.label_names, split_sizes=tuple((k, len(plan.splits[k])) for k in ("train", "val", "test")),
        normalization=Normalization.UINT8_UNIT if s.eight_bit else Normalization.FLOAT, modality=s.modality,
        licence=s.licence, citation="user data set", source=SOURCE, spacing=spec_spacing, folds=plan.folds,
        resized_input=s.dims == 2, description=f"{what} from {s.layout} in {s.root}",
    )


def plan_for(s: Scan, *, seed: int, fold: int):
    """The :class:`~openmia.data.splitting.SplitPlan` of a scanned set."""
    return _plan_cached(s.prefix, str(s.root), s.stamp, seed, fold)


@lru_cache(maxsize=32)
def _plan_cached(prefix: str, root: str, stamp: str, seed: int, fold: int):
    from openmia.data.splitting import plan_splits

    s = _scan_cached(prefix, root, stamp)
    return plan_splits(s.case_ids, s.strata, seed=seed, fold=fold, given=s.given, given_by=s.given_by,
                       where=f"{prefix}:{root}")
