"""Run configuration: frozen dataclasses are the schema, YAML the file format, ``--set a.b=v``
the override. Unknown keys and badly typed values are :class:`ConfigError` listing the valid
keys (with close matches).

Layout: the shared sections ``data``, ``model``, ``optim``, ``schedule``, ``train`` (the loop) and
``eval`` hold what every task uses; a task's own keys live in a section named after the task
(``segmentation.tta``, ``detection.crop``), whose dataclass the task defines (``Task.section``,
found through :data:`openmia.tasks.registry.TASKS`). Run directories written before this layout
(task keys inside ``train``/``eval``/``data``) are migrated on load by :func:`load_run_config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import logging
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from openmia.errors import ConfigError

log = logging.getLogger(__name__)

# the allowed values of the shared options (one table each; the code that implements them uses these)
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "multistep", "cosine")
BUDGET_CLOCKS = ("wall", "cpu")
PRECISIONS = ("fp32", "bf16", "fp16")
FREEZE_SCHEDULES = ("none", "probe", "gradual")
SEMI_METHODS = ("none", "pseudo_label", "fixmatch", "mean_teacher")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def one_of(path: str, value: Any, allowed: tuple) -> None:
    """Raise ConfigError (with a close match) unless ``value`` is in ``allowed``."""
    if value not in allowed:
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: expected one of {', '.join(map(repr, allowed))}, found {value!r}{hint}")


def positive(path: str, value: float | int | None, allow_zero: bool = False) -> None:
    """Raise ConfigError unless ``value`` is None or a positive (non-negative) number."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{path}: expected a {'non-negative' if allow_zero else 'positive'} number, found {value!r}")


def check_tta_scales(scales: Any, where: str = "segmentation.tta_scales") -> None:
    """Raise ConfigError unless ``scales`` is a non-empty list of scale factors in (0, 4]."""
    if not scales or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 4 for s in scales):
        raise ConfigError(f"{where}: expected a non-empty list of scale factors in (0, 4], e.g. [1.0, 1.25]; "
                          f"found {list(scales)!r}")


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 numbers: ``1e-4``, ``5E-4`` and ``1e4`` are floats (PyYAML's
    YAML 1.1 rule wants a dot in the mantissa and reads them as strings)."""
    import yaml

    return yaml.load(text, Loader=_numbers_loader())


@functools.lru_cache(maxsize=None)
def _numbers_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # copy the resolver table so SafeLoader itself is unchanged, then add the exponent form
    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
                                 list("-+0123456789."))
    return Loader


@dataclass(frozen=True)
class DataConfig:
    """Which data set and how it is fed to the model."""

    dataset: str | None = None  # catalogue name or folder:/msd:/nnunet:/coco:/voc:/dots:PATH; None = the task's default
    size: int | None = None  # MedMNIST variant (28, 64, 128, 224) or 2D training size; None = default
    root: str | None = None  # folder holding the files instead of OPENMIA_HOME
    batch_size: int = 128
    eval_batch_size: int = 256
    augment: str = "none"  # a preset of openmia.transforms.augment (the task says which apply)
    fold: int = 0  # test fold of cross-validated sets (hippocampus: 0-4; small user sets: 0-4)
    spacing: tuple[float, ...] | None = None  # resample user NIfTI data to this voxel spacing (mm); None = as stored
    # the share of the training split that keeps its labels: a seeded, stratified subset (seed
    # train.seed); the rest of the training split is unlabelled (semi.method uses it); 1 = all
    labelled_fraction: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.labelled_fraction, bool) or not 0 < self.labelled_fraction <= 1:
            raise ConfigError(f"data.labelled_fraction: expected a fraction in (0, 1] of the training cases that keep "
                              f"their labels, found {self.labelled_fraction!r}")
        positive("data.batch_size", self.batch_size)
        positive("data.eval_batch_size", self.eval_batch_size)
        if not isinstance(self.fold, int) or self.fold < 0:
            raise ConfigError(f"data.fold must be a non-negative integer, found {self.fold!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 8):
            # which sizes exist is the catalogue's business (MedMNIST: 28/64/128/224; BUSI/Kvasir: any)
            raise ConfigError(f"data.size: expected an integer >= 8 (pixels), found {self.size!r}")
        if self.spacing is not None and (not self.spacing or any(not s > 0 for s in self.spacing)):
            raise ConfigError(f"data.spacing: expected positive voxel sizes in mm, e.g. [1.0, 1.0, 1.0], found {self.spacing!r}")


@dataclass(frozen=True)
class ModelConfig:
    """A registered model and the keyword arguments of its factory."""

    name: str | None = None  # None = the task's default model
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # one of OPTIMIZERS
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    # layer-wise learning-rate decay: the block group k groups below the head trains at
    # lr * layer_decay**k (engine.transfer.block_groups); 1 = one learning rate for all
    layer_decay: float = 1.0

    def __post_init__(self) -> None:
        one_of("optim.name", self.name, OPTIMIZERS)
        if not 0 < self.layer_decay <= 1:
            raise ConfigError(f"optim.layer_decay: expected a factor in (0, 1] (1 = off), found {self.layer_decay!r}")
        positive("optim.lr", self.lr)
        positive("optim.weight_decay", self.weight_decay, allow_zero=True)


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule as a function of training progress p in [0, 1].

    p = max(epoch fraction, fraction of the time budget), so "x0.1 at 50% and 75%" means the
    same thing whether epochs or ``train.max_minutes`` end the run.
    """

    name: str = "none"  # one of SCHEDULES
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep: fractions of the budget
    step_epochs: int = 10  # step: decay every N epochs
    gamma: float = 0.1
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        one_of("schedule.name", self.name, SCHEDULES)
        object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))
        if any(not 0 < m < 1 for m in self.milestones):
            raise ConfigError(f"schedule.milestones: expected fractions in (0, 1), found {self.milestones}")
        positive("schedule.step_epochs", self.step_epochs)
        positive("schedule.gamma", self.gamma)
        positive("schedule.warmup_epochs", self.warmup_epochs, allow_zero=True)


@dataclass(frozen=True)
class LoopConfig:
    """The training loop (every task)."""

    epochs: int = 10
    max_minutes: float | None = None  # training budget (train + validation); stops mid-epoch when reached
    budget_clock: str = "wall"  # wall | cpu: what max_minutes and train_seconds measure
    seed: int = 0
    deterministic: bool = False
    # torch intra-op threads; None = the CPUs this process may use that are not busy (see engine.device)
    threads: int | None = None
    device: str = "auto"  # auto (CUDA if available, else CPU) | cpu | cuda | cuda:N | mps
    # validation score for model selection; auto = the task's first (`openmia list tasks`)
    select_metric: str = "auto"
    pretrain_epochs: int = 0  # models with .pretrain (DBN): unsupervised epochs first
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.99); 0 = off
    # training forward pass precision: fp32, bf16 autocast (CPU and CUDA), or fp16 autocast with a
    # gradient scaler (CUDA only); weights, optimiser, losses and all evaluation stay fp32
    precision: str = "fp32"
    # start from another run's kept weights (its directory, or a .pt checkpoint): every tensor
    # whose name and shape match is copied (transfer learning, progressive resizing)
    init_from: str | None = None
    # how init_from's tensor names are read: auto (openmia's names, else the key map that loads the
    # most tensors) | none (openmia's names only) | a key map of engine.transfer.KEY_MAPS
    init_keymap: str = "auto"
    # which parameters train: none (all: full fine-tuning) | probe (only the head, the last block
    # group) | gradual (the head first, one more block group every train.unfreeze_every epochs)
    freeze: str = "none"
    unfreeze_every: int = 1
    # refit: train on the training and validation splits together and keep the last weights (the
    # EMA's when train.ema is on), with no model selection and no validation scores; test is
    # scored as usual (tasks that choose thresholds on validation refuse it)
    refit: bool = False

    def __post_init__(self) -> None:
        positive("train.epochs", self.epochs)
        positive("train.max_minutes", self.max_minutes)
        positive("train.threads", self.threads)
        positive("train.pretrain_epochs", self.pretrain_epochs, allow_zero=True)
        one_of("train.budget_clock", self.budget_clock, BUDGET_CLOCKS)
        one_of("train.precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ConfigError(f"train.device: expected auto, cpu, cuda, cuda:N or mps, found {self.device!r}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"train.ema: expected a decay in [0, 1) (0 = off), found {self.ema}")
        one_of("train.freeze", self.freeze, FREEZE_SCHEDULES)
        positive("train.unfreeze_every", self.unfreeze_every)
        if not isinstance(self.init_keymap, str) or not self.init_keymap:
            raise ConfigError(f"train.init_keymap: expected auto, none or a key map name, found {self.init_keymap!r}")


@dataclass(frozen=True)
class EvalConfig:
    """The evaluator's settings (every task)."""

    n_resamples: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        positive("eval.n_resamples", self.n_resamples)


@dataclass(frozen=True)
class SemiConfig:
    """Semi-supervised learning on the unlabelled rest of the training split (``data.labelled_fraction``;
    :mod:`openmia.engine.semi`). Each step adds ``weight`` x the unlabelled loss of a batch of
    ``ratio`` x ``data.batch_size`` unlabelled images to the task's supervised loss."""

    method: str = "none"  # one of SEMI_METHODS
    weight: float = 1.0  # weight of the unlabelled loss
    ratio: int = 1  # unlabelled images per labelled image in a step (FixMatch: 7)
    threshold: float = 0.95  # pseudo_label / fixmatch: confidence a prediction needs to become a target
    rampup_epochs: float = 0.0  # epochs over which the weight rises (sigmoid ramp-up); 0 = none
    noise: float = 0.1  # mean_teacher: std of the Gaussian input noise of each view (normalised intensities)

    def __post_init__(self) -> None:
        one_of("semi.method", self.method, SEMI_METHODS)
        positive("semi.weight", self.weight, allow_zero=True)
        positive("semi.ratio", self.ratio)
        positive("semi.noise", self.noise, allow_zero=True)
        if not 0 <= self.threshold < 1:
            raise ConfigError(f"semi.threshold: expected a probability in [0, 1), found {self.threshold!r}")
        positive("semi.rampup_epochs", self.rampup_epochs, allow_zero=True)


SHARED_SECTIONS = ("data", "model", "optim", "schedule", "train", "eval", "semi")
# later keys (learning with few labels) left out of RunConfig.to_dict at these defaults (the whole
# semi section likewise)
OPTIONAL_KEYS: dict[str, Any] = {"data.labelled_fraction": 1.0, "optim.layer_decay": 1.0, "train.init_keymap": "auto",
                                 "train.freeze": "none", "train.unfreeze_every": 1}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; saved resolved in every run directory.

    ``options`` is the task's own section (the dataclass ``TASKS.get(task).factory.section``),
    written in YAML under the task's name.
    """

    task: str = "classification"  # a registered task (`openmia list tasks`); must match the data set
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    semi: SemiConfig = field(default_factory=SemiConfig)
    options: Any = None
    out_dir: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        task_cls = task_class(self.task)
        section = getattr(task_cls, "section", None)
        if self.options is None and section is not None:
            object.__setattr__(self, "options", section())
        elif section is not None and not isinstance(self.options, section):
            raise ConfigError(f"the {self.task} section must be a {section.__name__}, found {type(self.options).__name__}")
        # the defaults follow the task (a segmentation run without --model gets a segmentation model)
        if self.data.dataset is None:
            object.__setattr__(self, "data", dataclasses.replace(self.data, dataset=task_cls.default_dataset))
        if self.model.name is None:
            object.__setattr__(self, "model", dataclasses.replace(self.model, name=task_cls.default_model))
        task_cls.check_config(self)
        check_few_labels_config(self, task_cls)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in the YAML layout (the task section under the task's name)."""
        d: dict[str, Any] = {"task": self.task}
        for name in SHARED_SECTIONS:
            d[name] = dataclasses.asdict(getattr(self, name))
        if self.options is not None:
            d[self.task] = dataclasses.asdict(self.options)
        d["out_dir"], d["name"] = self.out_dir, self.name
        # keys added after run directories and benchmark cells existed are written only when set, so
        # the config (its hash, a benchmark cell's id) of a run that does not use them is unchanged
        for dotted, default in OPTIONAL_KEYS.items():
            sec, key = dotted.split(".")
            if d[sec].get(key) == default:
                del d[sec][key]
        if d["semi"] == dataclasses.asdict(SemiConfig()):
            del d["semi"]
        return json.loads(json.dumps(d))

    def hash(self) -> str:
        """sha256 (first 16 hex) of the canonical JSON of the config."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: expected a mapping, found {type(data).__name__} {data!r}")
        task = data.get("task", "classification")
        task_cls = task_class(task)
        names = list(task_names())
        _refuse_moved_keys(data, task)
        for other in (k for k in data if k in names and k != task):
            raise ConfigError(f"section '{other}' applies to {other} runs, but this run's task is {task!r}; "
                              f"set task: {other} or remove the section")
        top = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
        unknown = [k for k in data if k not in top and k != task]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), [*top, *names], n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"unknown config key '{unknown[0]}'.{hint} Valid keys here: {', '.join(top)}, {task}")
        hints = typing.get_type_hints(cls)
        shared = {n: _build(hints[n], data.get(n) or {}, f"{n}.") for n in SHARED_SECTIONS}
        scalars = {n: _coerce(n, data[n], hints[n]) for n in ("out_dir", "name") if n in data}
        section = getattr(task_cls, "section", None)
        if section is None and data.get(task):
            raise ConfigError(f"section '{task}': the {task} task has no options of its own")
        options = _build(section, data.get(task) or {}, f"{task}.") if section is not None else None
        return cls(task=task, **shared, options=options, **scalars)

    def with_overrides(self, overrides: list[str] | tuple[str, ...]) -> "RunConfig":
        """Return a copy with ``a.b=v`` overrides applied (values parsed as YAML scalars).

        When an override changes ``task``, what the old task filled in by default (its section at
        its defaults, its default data set and model) is dropped so the new task's defaults apply.
        """
        d = self.to_dict()
        for item in overrides:
            apply_override(d, item)
        if d.get("task") != self.task:
            old = task_class(self.task)
            section = getattr(old, "section", None)
            if section is not None and d.get(self.task) == json.loads(json.dumps(dataclasses.asdict(section()))):
                d.pop(self.task, None)
            if d["data"].get("dataset") == old.default_dataset:
                d["data"]["dataset"] = None
            if d["model"].get("name") == old.default_model:
                d["model"]["name"] = None
        return RunConfig.from_dict(d)


def task_class(name: Any) -> Any:
    """The registered Task class of ``name`` (ConfigError with close matches otherwise)."""
    from openmia.tasks.registry import TASKS

    if not isinstance(name, str) or name not in TASKS:
        one_of("task", name, tuple(TASKS.names()))
    return TASKS.get(name).factory


def task_names() -> list[str]:
    from openmia.tasks.registry import task_names as names

    return names()


# keys of the earlier flat layout -> (their section, their key there); the section "<task>" means
# the section of whichever task declares the key
MOVED_KEYS: dict[str, str] = {
    "train.class_weights": "classification", "train.label_smoothing": "classification",
    "train.loss": "segmentation", "train.batch_dice": "segmentation", "eval.tta": "segmentation",
    "eval.tta_scales": "segmentation", "eval.postprocess": "segmentation", "eval.fill_empty": "segmentation",
    "data.crop": "detection/counting", "train.recompute_bn": "detection/counting",
    "eval.max_detections": "detection/counting", "eval.nms_iou": "detection/counting",
    "eval.score_threshold": "detection/counting",
}


def _refuse_moved_keys(data: Mapping[str, Any], task: str) -> None:
    for dotted, where in MOVED_KEYS.items():
        sec, key = dotted.split(".")
        if isinstance(data.get(sec), Mapping) and key in data[sec]:
            target = task if task in where.split("/") else where.split("/")[0]
            raise ConfigError(f"{dotted} is a {where} option now: write it as {target}.{key} "
                              f"(task-specific keys live in the task's own section)")


def migrate_legacy(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A config dict of the earlier flat layout (task keys in ``train``/``eval``/``data``) moved to
    the sectioned layout; returns it and a note per moved or dropped key. Keys that do not
    apply to the run's task held their defaults there (the old trainers refused anything else)
    and are dropped."""
    d = json.loads(json.dumps(data))
    task = d.get("task", "classification")
    section_cls = getattr(task_class(task), "section", None)
    own = {f.name for f in dataclasses.fields(section_cls)} if section_cls is not None else set()
    notes = []
    for dotted in MOVED_KEYS:
        sec, key = dotted.split(".")
        if not isinstance(d.get(sec), dict) or key not in d[sec]:
            continue
        value = d[sec].pop(key)
        if dotted == "train.loss" and value == "auto":  # the old default: the task's own loss (now the section's default)
            notes.append("train.loss=auto dropped (the section's default applies)")
            continue
        if key in own:
            d.setdefault(task, {})[key] = value
            notes.append(f"{dotted} -> {task}.{key}")
        else:
            notes.append(f"{dotted} dropped (does not apply to {task})")
    return d, notes

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
        if isinstance(value, float) and value.is_integer():  # 5e3 (YAML reads exponents as floats)
            return int(value)
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
        value = yaml_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
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
            loaded = yaml_load(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from exc
        except OSError as exc:
            raise ConfigError(f"config file {p}: cannot read it ({exc.strerror or exc})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: expected a mapping at the top level, found {type(loaded).__name__}")
        data = loaded or {}
    for item in overrides:  # applied to the raw mapping, so `--set task=...` picks the section first
        apply_override(data, item)
    return RunConfig.from_dict(data)


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A run directory's ``config.yaml``; one of the earlier flat layout is migrated (logged)."""
    import yaml

    p = Path(path)
    try:
        data = yaml_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read the run's config ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, found {type(data).__name__}")
    data, notes = migrate_legacy(data)
    if notes:
        log.info("%s is in the earlier config layout; migrated on load: %s", p, "; ".join(notes))
    for item in overrides:
        apply_override(data, item)
    return RunConfig.from_dict(data)


def dump_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def check_few_labels_config(cfg: Any, task_cls: Any) -> None:
    """Raise ConfigError for few-labels settings the run's task or loop cannot honour (called at
    config load, before any directory exists)."""
    semi, frac = cfg.semi, cfg.data.labelled_fraction
    if cfg.train.init_keymap not in ("auto", "none"):
        from openmia.engine.transfer import KEY_MAPS  # the key-map table (engine.transfer imports no config)

        one_of("train.init_keymap", cfg.train.init_keymap, ("auto", "none", *KEY_MAPS))
    if frac < 1 and cfg.train.refit:
        raise ConfigError("data.labelled_fraction < 1 with train.refit: a refit adds the validation cases' labels to "
                          "training; run with train.refit=false")
    if semi.method == "none":
        return
    allowed = tuple(getattr(task_cls, "semi_methods", ()))
    if semi.method not in allowed:
        raise ConfigError(f"semi.method={semi.method!r} does not apply to {task_cls.name} runs; "
                          f"{'they support ' + ', '.join(allowed) if allowed else 'they support no semi-supervised method'}")
    if frac >= 1:
        raise ConfigError(f"semi.method={semi.method!r} learns from the unlabelled rest of the training split, but "
                          "data.labelled_fraction=1 leaves no case unlabelled; set e.g. data.labelled_fraction=0.1")
    if semi.method == "mean_teacher" and cfg.train.ema <= 0:
        raise ConfigError("semi.method=mean_teacher: the teacher is the weight EMA; set train.ema (e.g. 0.99)")
