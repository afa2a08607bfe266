"""DatasetSpec: the validated, hashable description of a data set (DESIGN §3)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from openmia.errors import ConfigError

SPLITS = ("train", "val", "test")


class Normalization(str, enum.Enum):
    """How raw intensities become model input; stated by the spec, never guessed from dtype."""

    UINT8_UNIT = "uint8_unit"  # x / 255 mapped to [-1, 1] (MedMNIST's transform: mean 0.5, std 0.5)
    FLOAT = "float"  # float32 already normalised by the loader (per-modality rule, e.g. MRI z-score)


@dataclass(frozen=True)
class DatasetSpec:
    """Facts about a classification or segmentation data set.

    Attributes:
        name: catalogue name (``retinamnist``, ``adrenalmnist3d_64``, ``synthetic/binary``).
        task: classification | segmentation | detection | counting.
        task_type: binary | multi-class | ordinal | multi-label (classification); otherwise the task.
        dims: 2 or 3 spatial dimensions; ``size`` the edge length in pixels/voxels.
        channels: image channels (1 grey, 3 RGB, or one per modality of a multi-modal volume).
        label_names: class names (multi-label: one per label; segmentation: label values 0..K-1,
            0 = background; detection/counting: the object classes, no background).
        split_sizes: ``(("train", n), ("val", n), ("test", n))`` — the official split (fold 0's for
            cross-validated sets).
        md5 / url / filename: where the file comes from and its official checksum.
    """

    name: str
    task: str
    task_type: str
    dims: int
    channels: int
    size: int
    label_names: tuple[str, ...]
    split_sizes: tuple[tuple[str, int], ...]
    normalization: Normalization
    licence: str
    citation: str
    source: str
    url: str | None = None
    md5: str | None = None
    filename: str | None = None
    spacing: tuple[float, ...] | None = None
    description: str = ""
    shape: tuple[int, ...] | None = None  # spatial shape when not a square/cube of ``size``
    folds: int = 0  # > 0: cross-validation folds (``data.fold`` picks the test fold)
    modality: str | None = None  # float sets: the per-modality normalisation rule (CT, MRI, XR)
    # 2D segmentation sets trained on whole images resized to size x size (BUSI, Kvasir-SEG):
    # `openmia predict` resizes each input the same way and the logits back to the input's size
    resized_input: bool = False

    def __post_init__(self) -> None:
        from openmia.tasks.registry import TASKS  # the task families (and their task types) come from the registry

        where = f"dataset spec {self.name!r}"
        if self.task not in TASKS:
            raise ConfigError(f"{where}: task must be one of {TASKS.names()}, found {self.task!r}")
        task = TASKS.get(self.task).factory
        types = task.task_types or (self.task,)
        if self.task_type not in types:
            raise ConfigError(f"{where}: task {self.task!r} does not go with task_type {self.task_type!r}; "
                              f"expected one of {types}")
        if self.dims not in (2, 3):
            raise ConfigError(f"{where}: dims must be 2 or 3, found {self.dims!r}")
        if not isinstance(self.channels, int) or self.channels < 1:
            raise ConfigError(f"{where}: channels must be a positive integer (1 grey, 3 RGB, or the modalities of a "
                              f"multi-modal volume), found {self.channels!r}")
        if len(self.label_names) < task.min_labels and self.task_type != "multi-label":
            raise ConfigError(f"{where}: needs at least 2 classes, found {self.label_names!r}")
        if self.task_type == "binary" and len(self.label_names) != 2:
            raise ConfigError(f"{where}: binary needs exactly 2 class names, found {len(self.label_names)}")
        if tuple(s for s, _ in self.split_sizes) != SPLITS or any(n <= 0 for _, n in self.split_sizes):
            raise ConfigError(f"{where}: split_sizes must be positive train/val/test counts, found {self.split_sizes!r}")
        if self.shape is not None and (len(self.shape) != self.dims or max(self.shape) != self.size):
            raise ConfigError(f"{where}: shape must have {self.dims} entries with maximum size={self.size}, found {self.shape!r}")
        if self.normalization == Normalization.FLOAT and not self.modality:
            raise ConfigError(f"{where}: normalization 'float' needs the modality whose rule normalised the data")
        if self.md5 is not None and (len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5)):
            raise ConfigError(f"{where}: md5 must be 32 lowercase hex digits, found {self.md5!r}")

    def to_dict(self) -> dict:
        """JSON-serialisable fields (a run directory can keep its data set's spec, e.g. for a user
        folder that may later move)."""
        from dataclasses import asdict

        d = asdict(self)
        d["normalization"] = self.normalization.value
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        """The spec written by :meth:`to_dict` (lists back to tuples; validated again)."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"dataset spec: unknown field(s) {unknown}; expected {sorted(known)}")
        kw = dict(d)
        for k in ("label_names", "shape", "spacing"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        kw["split_sizes"] = tuple((str(a), int(b)) for a, b in kw.get("split_sizes", ()))
        kw["normalization"] = Normalization(kw["normalization"])
        return cls(**kw)

    @property
    def num_classes(self) -> int:
        """Number of model outputs: classes, or labels for multi-label."""
        return len(self.label_names)

    def split_size(self, split: str) -> int:
        return dict(self.split_sizes)[split]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, *spatial)`` of one image."""
        return (self.channels,) + self.spatial_shape

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Spatial shape of one (padded) image: ``shape`` or ``(size,) * dims``."""
        return tuple(self.shape) if self.shape else (self.size,) * self.dims
