"""The Task: what differs between task families, behind one interface the engine calls.

The training loop (:mod:`openmia.engine.loop`), prediction (:mod:`openmia.engine.predict`) and the
run-directory code ask the run's Task for everything task-specific and never compare task names.
A family is one module in ``openmia/tasks/`` defining a subclass registered with
``@register_task(name)`` (:mod:`openmia.tasks.registry`). A Task instance serves one run (or one
loaded run for prediction): it holds the config, the data spec, the splits (None when
predicting) and the device.

Hooks, in the order the loop calls them::

    check_config(cfg)              classmethod; at config load (before any directory exists)
    load_splits(cfg)               classmethod; the train/val/test splits (default: the data catalogue)
    model_kwargs()                 the model factory's keyword arguments, checked against the data
    prepare(model)                 after the model is built (losses, class weights, checks)
    batch_loss(idx, gen, forward)  one training step's loss on the training cases ``idx``
    validate(model)                {metric: value} on the validation split; ``select_metric`` of them
                                   chooses the kept epoch (``lower_is_better`` ones are negated)
    evaluate(model, run_dir, splits, provenance)
                                   predictions, truth and the evaluator's report per split (test
                                   touched once, here); returns an :class:`Evaluation`
    predict(run, inputs, out, **opts)
                                   ``openmia predict`` on new images (files in the task's format)
    embed(model, batch)            ``openmia embed``: one feature vector per image, ``(B, C, *spatial)``
                                   -> ``(B, d)`` (default: the input of the model's last linear layer)

For benchmark suites (:mod:`openmia.bench.leaderboard`), on a finished run::

    compare_inputs(run_dir, cfg)   classmethod; where the run keeps its test predictions and truth in
                                   ``openmia compare``'s formats (a :class:`CompareInputs`), or None
    leaderboard_metrics            the leaderboard's metrics when a suite names none
    leaderboard_aliases            compare metric -> the key of the same value in ``result.json``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from openmia.errors import ConfigError


@dataclass
class Evaluation:
    """What a task's final evaluation returns.

    Attributes:
        summaries: the evaluator's summary per scored split (``{"val": {...}, "test": {...}}``).
        table: the test split's report as text (printed by ``openmia train``).
        result: extra fields for ``result.json`` (e.g. the count thresholds chosen on validation).
    """

    summaries: dict[str, dict[str, Any]]
    table: str = ""
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareInputs:
    """Where a finished run keeps its test predictions and truth, in the formats
    :func:`openmia.evaluation.compare.compare_files` (``openmia compare``) reads.

    Attributes:
        task: compare's ``--task`` (an evaluator name; may differ from the run's task).
        predictions: the run's test predictions (a CSV file or a folder of per-case files).
        truth: the test truth, same format.
        kwargs: compare's task keyword arguments (``spacing``, ``spacing_csv``, ``data_range``, ...).
        labels: the labels of the paired tests and rankings; the first is the leaderboard's.
    """

    task: str
    predictions: Path
    truth: Path
    kwargs: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ("all",)


class Task:
    """Base class of the task families (see the module docstring for the hooks)."""

    name: ClassVar[str] = ""
    section: ClassVar[type | None] = None  # dataclass of the task's own config section
    default_dataset: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    select_metrics: ClassVar[tuple[str, ...]] = ()  # the first is what `train.select_metric: auto` means
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"loss"})
    augments: ClassVar[tuple[str, ...]] = ("none",)  # the data.augment presets that apply
    needs_validation: ClassVar[bool] = False  # True: choices are made on validation, so train.refit is refused
    headline_metrics: ClassVar[tuple[str, ...]] = ()  # shown by `openmia runs list`
    eval_options: ClassVar[tuple[str, ...]] = ()  # keys of the section a re-evaluation may change
    min_labels: ClassVar[int] = 2  # class / label names a data set of this task needs at least
    # the DatasetSpec.task_type values of this family's data sets; () = just the family's name
    task_types: ClassVar[tuple[str, ...]] = ()
    # semi.method values that apply (engine.semi): the model's outputs are softmax logits (N, K, *spatial)
    semi_methods: ClassVar[tuple[str, ...]] = ()
    # benchmark leaderboards (bench/leaderboard.py): default metrics, and compare metric -> result.json key
    leaderboard_metrics: ClassVar[tuple[str, ...]] = ()
    leaderboard_aliases: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg: Any, spec: Any, splits: dict[str, Any] | None = None, device: Any = None) -> None:
        import torch

        self.cfg = cfg
        self.spec = spec
        self.splits = splits
        self.device = device if device is not None else torch.device("cpu")
        self.options = cfg.options

    # -- configuration
    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Raise ConfigError for settings this task cannot run with (called at config load)."""
        from openmia.config import one_of

        one_of("data.augment", cfg.data.augment, cls.augments)
        one_of("train.select_metric", cfg.train.select_metric, ("auto", *cls.select_metrics))
        if cfg.train.refit and cls.needs_validation:
            raise ConfigError(f"train.refit does not apply to {cls.name} runs: they need the validation split "
                              "(their score thresholds are chosen on it)")

    @classmethod
    def load_splits(cls, cfg: Any) -> dict[str, Any]:
        """The run's ``train``/``val``/``test`` splits (``data.*``), checked to be this task's data."""
        from openmia.data.catalog import load_split

        d = cfg.data
        # the data seed stays 0: splits openmia makes for user sets must not change with train.seed
        splits = {s: load_split(d.dataset, s, size=d.size, root=d.root, fold=d.fold, spacing=d.spacing)
                  for s in ("train", "val", "test")}
        spec = splits["train"].spec
        if spec.task != cls.name:
            raise ConfigError(f"data.dataset={d.dataset!r} is a {spec.task} data set but the run's task is {cls.name!r}; "
                              f"set task: {spec.task}")
        return splits

    @classmethod
    def data_spec(cls, cfg: Any) -> Any:
        """The data set's spec without loading it (``openmia predict`` on a finished run)."""
        from openmia.data.catalog import get_spec

        return get_spec(cfg.data.dataset, cfg.data.size, spacing=cfg.data.spacing)

    @property
    def select_metric(self) -> str:
        m = self.cfg.train.select_metric
        return self.select_metrics[0] if m == "auto" else m

    def selection_score(self, scores: dict[str, float]) -> float:
        """The model-selection score of ``scores`` (higher is better)."""
        v = float(scores[self.select_metric])
        return -v if self.select_metric in self.lower_is_better else v

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the model factory besides channels, classes, dims and size."""
        from openmia.models import load_all

        mtask = load_all().get(self.cfg.model.name).meta.get("task")
        if mtask != self.name:
            raise ConfigError(f"model.name={self.cfg.model.name!r} is a {mtask} model but the run's task is "
                              f"{self.name!r}; pick one of `openmia list models --task {self.name}`")
        return dict(self.cfg.model.kwargs)

    def build_model(self):
        """The run's model on the CPU (the loop moves it), built from the registry."""
        from openmia.models import build_model

        s = self.spec
        return build_model(self.cfg.model.name, in_channels=s.channels, num_classes=s.num_classes, dims=s.dims,
                           input_size=s.size, **self.model_kwargs())

    def prepare(self, model: Any) -> None:
        """Set up what the steps need once the model exists (default: nothing)."""

    # -- training
    def batch_loss(self, idx: np.ndarray, gen: Any, forward: Callable[[Any], Any]):
        """The loss (a scalar tensor) of one training step on training cases ``idx``; ``forward``
        runs the model in the run's precision and returns fp32 outputs."""
        raise NotImplementedError

    def validate(self, model: Any) -> dict[str, float]:
        """Scores of ``model`` on the validation split (point estimates; CIs come at the end)."""
        raise NotImplementedError

    # -- final evaluation and prediction
    def evaluate(self, model: Any, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        """Predict ``splits``, write predictions/truth/eval per split, return the summaries."""
        raise NotImplementedError

    def predict(self, run: Any, inputs: Path, out: Path, **opts: Any) -> dict[str, Any]:
        """``openmia predict``: write predictions for the images in ``inputs`` into ``out``."""
        raise ConfigError(f"{self.name} runs cannot predict on new images with `openmia predict`")

    # -- embeddings (``openmia embed``; :mod:`openmia.engine.embed` calls these)
    def embed(self, model: Any, batch: Any):
        """One feature vector per image: the protocol of ``openmia embed``.

        Contract (every override keeps it):

        - ``model``: the run's model in eval mode on ``self.device``; the caller holds
          ``torch.no_grad()``.
        - ``batch``: float tensor ``(B, C, *spatial)`` on ``self.device``, normalised as in training
          (:meth:`float_batch`).
        - returns a float tensor ``(B, d)``, one row per image in ``batch``'s order; ``d`` is the same
          for every batch of a run and the rows depend on their own image only (eval mode), so
          batching does not change them.

        Default (classification models): the *input* of the model's last ``nn.Linear`` — the
        penultimate layer, i.e. what the classifier head sees — captured with a forward pre-hook
        while the model runs. A model picks another layer by naming it in an attribute
        ``embedding_layer`` (a dotted submodule name for ``model.get_submodule``); its input is
        taken, flattened to ``(B, -1)``. :meth:`embedding_source` says which layer that is.
        Families whose features are elsewhere (segmentation: the pooled bottleneck; autoencoders:
        the code) override this method and :meth:`embedding_source`.
        """
        name, module = self._embedding_module(model)
        return capture_features(model, batch, module, "input").flatten(1)

    def embedding_source(self, model: Any) -> str:
        """Which features :meth:`embed` returns, in words (recorded in ``embed.json``)."""
        name, _ = self._embedding_module(model)
        return f"input of {name} (the penultimate layer)"

    def _embedding_module(self, model: Any) -> tuple[str, Any]:
        """``(name, module)``: ``model.embedding_layer`` if set, else the last ``nn.Linear``."""
        from torch import nn

        named = getattr(model, "embedding_layer", None)
        if named:
            try:
                return named, model.get_submodule(named)
            except AttributeError as exc:
                raise ConfigError(f"{type(model).__name__}.embedding_layer={named!r} names no submodule") from exc
        linear = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linear:
            raise ConfigError(f"{self.name} model {type(model).__name__} has no nn.Linear head to take embeddings from; "
                              "set an `embedding_layer` attribute on the model (a submodule name) or override Task.embed")
        return linear[-1]

    # -- results
    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """Where the finished run ``run_dir`` (config ``cfg``, a :class:`~openmia.config.RunConfig`)
        keeps its test predictions and truth for paired tests (``openmia compare``); None when the
        family has none compare can read, or the run did not write them (the leaderboard then
        shows values without paired tests or rankings)."""
        return None

    @staticmethod
    def headline(summary: dict[str, Any]) -> dict[str, Any]:
        """The aggregate ('all' / overall) value of each metric with its CI."""
        out = {}
        for m in summary.get("metrics", []):
            if m.get("label") == "all":
                out[m["metric"]] = {"value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high")}
        return out

    def float_batch(self, images: np.ndarray):
        """Images ``(B, C, *spatial)`` as the model's float input on the run's device."""
        from openmia.engine.device import to_device
        from openmia.transforms.intensity import to_float_tensor

        return to_device(to_float_tensor(images, self.spec.normalization), self.device)


def capture_features(model: Any, batch: Any, module: Any, which: str = "output"):
    """Run ``model(batch)`` and return what ``module`` received (``which="input"``: its first
    positional input) or produced (``"output"``) during that forward pass; the hook is removed
    afterwards. Raises ConfigError when the module did not run."""
    seen: list[Any] = []
    if which == "input":
        handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    else:
        handle = module.register_forward_hook(lambda m, args, out: seen.append(out))
    try:
        model(batch)
    finally:
        handle.remove()
    if not seen:
        raise ConfigError(f"embedding layer {type(module).__name__} was not used in {type(model).__name__}'s forward pass")
    return seen[-1]  # a module called more than once (weight sharing): its last call, the one nearest the output
