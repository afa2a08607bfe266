"""Run configuration: frozen dataclasses are the schema, YAML the file format, ``--set a.b=v``
the override. Unknown keys and badly typed values are :class:`ConfigError` listing the valid
keys (with close matches)."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from openmia.errors import ConfigError

TASK_TYPES = ("binary", "multi-class", "ordinal", "multi-label")


def _one_of(path: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: expected one of {', '.join(map(repr, allowed))}, found {value!r}{hint}")


def check_tta_scales(scales: Any, where: str = "eval.tta_scales") -> None:
    """Raise ConfigError unless ``scales`` is a non-empty list of scale factors in (0, 4]."""
    if not scales or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 4 for s in scales):
        raise ConfigError(f"{where}: expected a non-empty list of scale factors in (0, 4], e.g. [1.0, 1.25]; "
                          f"found {list(scales)!r}")


def _positive(path: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{path}: expected a {'non-negative' if allow_zero else 'positive'} number, found {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Which data set and how it is fed to the model."""

    dataset: str = "synthetic/binary"
    size: int | None = None  # MedMNIST variant (28, 64, 128, 224) or BUSI/Kvasir training size; None = default
    root: str | None = None  # folder holding the files instead of OPENMIA_HOME
    batch_size: int = 128
    eval_batch_size: int = 256
    augment: str = "none"  # none | flip | standard | dihedral | strong | affine | elastic | heavy (openmia.transforms.augment)
    fold: int = 0  # test fold of cross-validated sets (hippocampus: 0-4); must stay 0 elsewhere
    crop: int | None = None  # detection/counting: random training crops of this many px per side

    def __post_init__(self) -> None:
        _positive("data.batch_size", self.batch_size)
        _positive("data.eval_batch_size", self.eval_batch_size)
        _one_of("data.augment", self.augment, ("none", "flip", "standard", "dihedral", "strong", "affine", "elastic", "heavy"))
        if not isinstance(self.fold, int) or self.fold < 0:
            raise ConfigError(f"data.fold must be a non-negative integer, found {self.fold!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8):
            # which sizes exist is the catalogue's business (MedMNIST: 28/64/128/224; BUSI/Kvasir: any)
            raise ConfigError(f"data.size: expected an integer >= 8 (pixels), found {self.size!r}")
        if self.crop is not None and (isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 8):
            raise ConfigError(f"data.crop: expected an integer >= 8 (pixels per side), found {self.crop!r}")


@dataclass(frozen=True)
class ModelConfig:
    """A registered model and the keyword arguments of its factory."""

    name: str = "cnn_small"
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only

    def __post_init__(self) -> None:
        _one_of("optim.name", self.name, ("adam", "adamw", "sgd"))
        _positive("optim.lr", self.lr)
        _positive("optim.weight_decay", self.weight_decay, allow_zero=True)


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule as a function of training progress p in [0, 1].

    p = max(epoch fraction, fraction of the time budget), so "x0.1 at 50% and 75%" means the
    same thing whether epochs or ``train.max_minutes`` end the run.
    """

    name: str = "none"  # none | step | multistep | cosine
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep: fractions of the budget
    step_epochs: int = 10  # step: decay every N epochs
    gamma: float = 0.1
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        _one_of("schedule.name", self.name, ("none", "step", "multistep", "cosine"))
        object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))
        if any(not 0 < m < 1 for m in self.milestones):
            raise ConfigError(f"schedule.milestones: expected fractions in (0, 1), found {self.milestones}")
        _positive("schedule.step_epochs", self.step_epochs)
        _positive("schedule.gamma", self.gamma)
        _positive("schedule.warmup_epochs", self.warmup_epochs, allow_zero=True)


@dataclass(frozen=True)
class LoopConfig:
    """The training loop."""

    epochs: int = 10
    max_minutes: float | None = None  # training budget (train + validation); stops mid-epoch when reached
    budget_clock: str = "wall"  # wall | cpu: what max_minutes and train_seconds measure
    seed: int = 0
    deterministic: bool = False
    threads: int | None = None  # torch intra-op threads; None = number of physical cores
    class_weights: str = "none"  # none | balanced
    # validation metric for model selection: auto = auc (classification), dice (segmentation),
    # map50 (detection), count_mae (counting; lower is better)
    select_metric: str = "auto"
    pretrain_epochs: int = 0  # models with .pretrain (DBN): unsupervised epochs first
    label_smoothing: float = 0.0
    loss: str = "auto"  # segmentation: dice | ce | dice_ce | focal | tversky (auto = dice_ce); classification: auto
    # segmentation Dice/Tversky terms: summed over the whole batch (nnU-Net's batch Dice) or per
    # image and averaged (false), which weighs small structures as much as large ones
    batch_dice: bool = True
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.99); 0 = off
    # training forward pass precision: fp32, or bf16 autocast (about 1.7x faster on CPUs with
    # AMX/AVX-512 bf16; weights, optimiser, losses and all evaluation stay fp32)
    precision: str = "fp32"
    # detection/counting: batch-norm statistics recomputed over the training images with the
    # current weights before each validation (batch norm's running averages lag fast-moving weights)
    recompute_bn: bool = False
    # start from another run's kept weights (its directory, or a .pt checkpoint): every tensor
    # whose name and shape match is copied (transfer learning, progressive resizing)
    init_from: str | None = None
    # refit: train on the training and validation splits together and keep the last weights (the
    # EMA's when train.ema is on), with no model selection and no validation scores; test is
    # scored as usual. For the final model of a recipe already chosen on validation (published
    # protocols such as Kvasir-SEG's 880/120 train on every training image)
    refit: bool = False

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        _positive("train.max_minutes", self.max_minutes)
        _positive("train.threads", self.threads)
        _positive("train.pretrain_epochs", self.pretrain_epochs, allow_zero=True)
        _one_of("train.budget_clock", self.budget_clock, ("wall", "cpu"))
        _one_of("train.class_weights", self.class_weights, ("none", "balanced"))
        _one_of("train.select_metric", self.select_metric, ("auto", "auc", "acc", "loss", "dice", "map50", "count_mae"))
        _one_of("train.loss", self.loss, ("auto", "dice", "ce", "dice_ce", "focal", "tversky"))
        _one_of("train.precision", self.precision, ("fp32", "bf16"))
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing: expected [0, 1), found {self.label_smoothing}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"train.ema: expected a decay in [0, 1) (0 = off), found {self.ema}")


@dataclass(frozen=True)
class EvalConfig:
    n_resamples: int = 2000
    seed: int = 0
    tta: bool = False  # segmentation: average the final val/test predictions over all axis flips
    # segmentation: also average the final val/test logits over these input scale factors (each
    # image resized, predicted, the logits resized back); (1.0,) = the image as it is
    tta_scales: tuple[float, ...] = (1.0,)
    postprocess: str = "none"  # segmentation: none | largest (keep each class's largest component)
    # segmentation, images that always show every class: a class missing from the prediction gets
    # the region around its most probable voxel with probability >= fill_empty x that peak (0 = off)
    fill_empty: float = 0.0
    # detection / counting: detections kept per image, class-aware NMS IoU (0 = the model's own
    # decoding only), and the score a detection needs to be counted (None = chosen per class on
    # the validation split to minimise the count MAE)
    max_detections: int | None = None  # None = 100 (detection) or 1000 (counting: dense cells)
    nms_iou: float = 0.5
    score_threshold: float | None = None

    def __post_init__(self) -> None:
        from openmia.transforms.postprocess import POSTPROCESS

        _positive("eval.n_resamples", self.n_resamples)
        _one_of("eval.postprocess", self.postprocess, POSTPROCESS)
        check_tta_scales(self.tta_scales)
        if not 0 <= self.fill_empty <= 1:
            raise ConfigError(f"eval.fill_empty: expected a fraction of the peak probability in (0, 1], or 0 = off; found {self.fill_empty}")
        _positive("eval.max_detections", self.max_detections)
        if not 0 <= self.nms_iou < 1:
            raise ConfigError(f"eval.nms_iou: expected an IoU in [0, 1) (0 = no NMS), found {self.nms_iou}")
        if self.score_threshold is not None and not 0 <= self.score_threshold <= 1:
            raise ConfigError(f"eval.score_threshold: expected a score in [0, 1] or null, found {self.score_threshold}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; saved resolved in every run directory."""

    task: str = "classification"  # classification | segmentation | detection | counting (must match the data set)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    out_dir: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        _one_of("task", self.task, ("classification", "segmentation", "detection", "counting"))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def hash(self) -> str:
        """sha256 (first 16 hex) of the canonical JSON of the config."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        return _build(cls, data, "")

    def with_overrides(self, overrides: list[str] | tuple[str, ...]) -> "RunConfig":
        """Return a copy with ``a.b=v`` overrides applied (values parsed as YAML scalars)."""
        d = self.to_dict()
        for item in overrides:
            apply_override(d, item)
        return RunConfig.from_dict(d)


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, found {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), names, n=1)
        hint = f" Did you mean {prefix}{close[0]}?" if close else ""
        raise ConfigError(f"unknown config key '{prefix}{k}'.{hint} Valid keys here: {', '.join(prefix + n for n in names)}")
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        value, hint = data[name], hints[name]
        path = prefix + name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value if value is not None else {}, path + ".")
        else:
            kwargs[name] = _coerce(path, value, hint)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive; all fields are keyword
        raise ConfigError(f"{prefix or 'config'}: {exc}") from None


def _coerce(path: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint (int/float/str/bool/dict/tuple/Optional)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(path, value, inner[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dict or origin is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(path, v, args[0]) for v in value)
    else:  # pragma: no cover
        return value
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{path}: expected {expected}, found {type(value).__name__} {value!r}")


def apply_override(d: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to the nested dict ``d`` in place.

    ``model.kwargs.<name>=v`` may create new keys (factory arguments are checked when the model
    is built); any other unknown key is rejected by :meth:`RunConfig.from_dict`.
    """
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=20")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from None
    parts = key.strip().split(".")
    node = d
    for i, p in enumerate(parts[:-1]):
        if p not in node:
            node[p] = {}  # unknown section: from_dict reports it with the valid keys
        elif not isinstance(node[p], dict):
            raise ConfigError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is a value, not a section")
        node = node[p]
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a YAML config file (or the defaults) and apply ``--set`` overrides."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: expected a mapping at the top level, found {type(loaded).__name__}")
        data = loaded or {}
    cfg = RunConfig.from_dict(data)
    return cfg.with_overrides(list(overrides)) if overrides else cfg


def dump_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
