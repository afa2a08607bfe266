"""openmia's public Python API, and the only door the CLI and ``benchmarks/`` use.

>>> from openmia import api
>>> res = api.train(None, ["task=segmentation", "train.epochs=2"])     # doctest: +SKIP
>>> api.predict(res.run_dir, "images/", "labels/")                      # doctest: +SKIP

Every function raises an :class:`~openmia.errors.OpenmiaError` subclass on bad input, with a
message naming the file/case/field, what was expected and what was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from openmia.config import RunConfig, load_config

if TYPE_CHECKING:
    from openmia.engine.loop import TrainResult
    from openmia.evaluation.result import EvaluationResult
    from openmia.progress import ProgressArg
    from openmia.stats.power import PlanResult

# the quick, CPU-friendly default: trains in about a minute on 2 cores
QUICKSTART_OVERRIDES = (
    "data.dataset=synthetic/binary",
    "model.name=cnn_small",
    "train.epochs=20",
    "model.kwargs.width=16",
    "optim.lr=0.003",
    "schedule.name=cosine",
    "data.augment=flip",
    "data.batch_size=64",
)


def _index_hooks(index: bool) -> tuple:
    """The run-index callback (``openmia runs list``) when ``index`` is set."""
    if not index:
        return ()
    from openmia.bench.store import RunStore

    def record_in_run_index(run_dir: Path) -> None:
        RunStore.default().record(run_dir)

    return (record_in_run_index,)


def train(config: str | Path | RunConfig | None = None, overrides: Sequence[str] = (), *, progress: bool = True,
          run_dir: str | Path | None = None, index: bool = True) -> "TrainResult":
    """Train a model and evaluate it on the test split.

    Args:
        config: a YAML path, a :class:`RunConfig`, or None (the defaults of ``task``).
        overrides: ``"a.b=value"`` strings applied on top (e.g. ``"train.device=cuda"``).
        run_dir: the run directory (default: a new one under ``out_dir``); must be new or empty.
        index: add the finished run to the run index (``openmia runs list``).

    Returns:
        The :class:`~openmia.engine.loop.TrainResult` (``run_dir``, test/val summaries, report table).
    """
    from openmia.engine.run_dir import train as _train

    cfg = config.with_overrides(list(overrides)) if isinstance(config, RunConfig) else load_config(config, overrides)
    return _train(cfg, run_dir=run_dir, progress=progress, on_complete=_index_hooks(index))


def resume(run_dir: str | Path, *, progress: bool = True, index: bool = True) -> "TrainResult":
    """Continue an interrupted run from its last checkpoint (same config, same result as unbroken)."""
    from openmia.engine.run_dir import resume as _resume

    return _resume(run_dir, progress=progress, on_complete=_index_hooks(index))


def reevaluate(run_dir: str | Path, out_dir: str | Path, overrides: Sequence[str] = (), *,
               index: bool = True) -> "TrainResult":
    """Score a finished run's kept model again with other evaluation settings (``eval.*``,
    ``train.device`` and the task's inference options, e.g. ``segmentation.tta=true``) in a new
    run directory ``out_dir``."""
    from openmia.engine.run_dir import reevaluate as _reevaluate

    return _reevaluate(run_dir, out_dir, list(overrides), on_complete=_index_hooks(index))


def predict(run_dir: str | Path, input_dir: str | Path, out_dir: str | Path, *, tta: bool = False,
            scales: Sequence[float] | None = None, overlap: float = 0.5, batch_size: int = 4,
            device: str | None = None, overwrite: bool = False, progress: "ProgressArg" = False) -> dict[str, Any]:
    """Apply a finished run to a folder of images; returns ``{"cases", "out", "task"}``.

    Segmentation runs write a label map per image (NIfTI keeps the input's geometry);
    classification runs write ``predictions.csv`` in the evaluator's format. ``progress``: True
    for a progress bar on stderr, or a callable ``f(done, total)``."""
    from openmia.engine.predict import predict_folder
    from openmia.progress import progress_callback

    with progress_callback(progress, "predict") as cb:
        return predict_folder(run_dir, input_dir, out_dir, tta=tta, scales=scales, overlap=overlap,
                              batch_size=batch_size, device=device, overwrite=overwrite, progress=cb)


def count(images: Sequence[str | Path], out_dir: str | Path, *, run_dir: str | Path | None = None, method: str = "model",
          score_threshold: float | None = None, log_threshold: float = 0.05, overlays: bool = True,
          device: str | None = None, overwrite: bool = False, progress: "ProgressArg" = False) -> dict[str, Any]:
    """Count (and mark) objects in images with a detection/counting run or the classical
    Laplacian-of-Gaussian baseline (``method="log"``); returns ``{"cases", "out", "counts"}``.
    ``progress``: True for a progress bar on stderr, or a callable ``f(done, total)``."""
    from openmia.engine.count import count_images
    from openmia.progress import progress_callback

    with progress_callback(progress, "count") as cb:
        return count_images(images, out_dir, run_dir=run_dir, method=method, score_threshold=score_threshold,
                            log_threshold=log_threshold, overlays=overlays, device=device, overwrite=overwrite,
                            progress=cb)


def evaluate(task: str, pred: str | Path, truth: str | Path, out: str | Path | None, *, progress: "ProgressArg" = None,
             **kwargs: Any) -> "EvaluationResult":
    """Score prediction files from any tool (DESIGN §4) with the evaluator of ``task``
    (classification, segmentation, detection, counting, clustering, inpainting).

    ``progress`` (segmentation, which scores case by case): True for a progress bar on stderr, or a
    callable ``f(done, total)``; the other evaluators score all cases at once and ignore it."""
    from openmia.evaluation.registry import get_evaluator
    from openmia.progress import progress_callback

    if task != "segmentation" or progress is None or progress is False:
        return get_evaluator(task)(pred, truth, out, **kwargs)
    with progress_callback(progress, "evaluate") as cb:
        return get_evaluator(task)(pred, truth, out, progress=cb, **kwargs)


def compare(task: str, truth: str | Path, preds: dict[str, str | Path], out: str | Path, *,
            progress: "ProgressArg" = False, **kwargs: Any) -> dict[str, Any]:
    """Paired tests of every pair of models scored on the same cases, Holm-corrected, with rankings.
    ``progress``: True for a progress bar on stderr (steps: loading, tests, each ranking), or a
    callable ``f(done, total)``."""
    from openmia.evaluation.compare import compare_files
    from openmia.progress import progress_callback

    with progress_callback(progress, "compare") as cb:
        return compare_files(task, truth, preds, out, progress=cb, **kwargs)


def list_models(task: str | None = None) -> list[Any]:
    """Registry entries of the models (``entry.name``, ``entry.meta['task']``, ``entry.doc``)."""
    from openmia.models import load_all

    return [e for e in load_all() if task is None or e.meta.get("task") == task]


def list_datasets(task: str | None = None) -> list[Any]:
    """Specs of every catalogue data set (``spec.name``, ``spec.task``, ...)."""
    from openmia.data.catalog import list_datasets as _list

    return _list(task=task)


def list_tasks() -> list[Any]:
    """The registered task families (their Task classes: ``name``, ``default_model``, ...)."""
    from openmia.tasks.registry import TASKS

    return [e.factory for e in TASKS]


def describe_dataset(name: str, size: int | None = None, spacing: Sequence[float] | None = None) -> Any:
    """The :class:`~openmia.data.spec.DatasetSpec` of a catalogue name or a user data set (no data loaded)."""
    from openmia.data.catalog import get_spec

    return get_spec(name, size, spacing=tuple(spacing) if spacing else None)


def dataset_file(spec: Any) -> Path:
    """Where a downloadable catalogue set's file lives in the cache."""
    from openmia.data.catalog import data_file

    return data_file(spec)


def split_record(name: str, **kwargs: Any) -> dict[str, Any]:
    """How a data set is split (the rule, the case ids per split, the data files' checksum)."""
    from openmia.data.catalog import split_record as _record

    return _record(name, **kwargs)


def fetch_data(name: str, *, size: int | None = None, url: str | None = None, progress: bool = True) -> Path:
    """Download a catalogue data set into the cache (``OPENMIA_HOME``), checksum verified."""
    from openmia.data.fetch import fetch

    return fetch(name, size=size, url=url, progress=progress)


def import_data(name: str, file: str | Path, *, size: int | None = None) -> Path:
    """Install a local copy of a catalogue data set's file into the cache, checksum verified."""
    from openmia.data.fetch import import_file

    return import_file(name, file, size=size)


def verify_data(name: str, *, size: int | None = None, root: str | Path | None = None,
                spacing: Sequence[float] | None = None) -> Any:
    """Check a data set (checksum, shapes, labels, NaNs, duplicates); the report lists every problem."""
    from openmia.data.verify import verify

    return verify(name, size=size, root=root, spacing=spacing)


def run_index() -> Any:
    """The run index (``openmia runs``): ``list()``, ``get(run)``, ``rebuild(folders)``."""
    from openmia.bench.store import RunStore

    return RunStore.default()


def environment() -> dict[str, Any]:
    """Versions, git commit, hardware and the devices torch can use (``openmia env``)."""
    from openmia.engine.device import available_devices, default_threads
    from openmia.engine.provenance import git_commit, hardware, versions

    return {"versions": versions(), "git_commit": git_commit(), "hardware": hardware(), "devices": available_devices(),
            "default_threads": default_threads()}


def quickstart(out_dir: str | Path = "runs", *, progress: bool = True, extra: Sequence[str] = (),
               index: bool = True) -> "TrainResult":
    """Train a small CNN on the synthetic binary default and evaluate it on the test split."""
    return train(None, (*QUICKSTART_OVERRIDES, f"out_dir={out_dir}", "name=quickstart", *extra), progress=progress,
                 index=index)


def rank(scores: str | Path | None = None, out: str | Path | None = None, *,
         datasets: dict[str, str | Path] | None = None, metric: str | None = None, label: str | None = None,
         control: str | None = None, alpha: float = 0.05, higher_is_better: bool | None = None,
         tie_correction: bool = True, drop_incomplete: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Rank models across several data sets (Demšar, JMLR 2006), as ``openmia rank``.

    Scores come from ``scores`` — a CSV ``dataset,model,score`` (or ``dataset,<one column per
    model>``) — or from ``datasets`` = ``{name: path}``, one ``openmia compare`` output (folder,
    ``compare.json`` or ``ranking.csv``) or ``model,score`` CSV per data set. Returns ranks within
    each data set, the Friedman test (tie-corrected as SciPy and R's ``friedman.test`` unless
    ``tie_correction=False``) with the Iman–Davenport F, Nemenyi pairwise p-values and critical
    difference, and with ``control`` Holm and Bonferroni–Dunn comparisons against that model.
    With ``out`` writes ranks.csv, average_ranks.csv, friedman.csv, nemenyi.csv, control.csv,
    cd_diagram.png and rank.json there (a non-empty folder needs ``overwrite=True``).
    ``higher_is_better=None`` takes the direction from the metric, else higher is better.
    """
    from openmia.evaluation.multi_dataset import rank_files

    return rank_files(scores, out, datasets=datasets, metric=metric, label=label, control=control, alpha=alpha,
                      higher_is_better=higher_is_better, tie_correction=tie_correction,
                      drop_incomplete=drop_incomplete, overwrite=overwrite)


def plan(kind: str, *, out: str | Path | None = None, overwrite: bool = False, **options: Any) -> "PlanResult":
    """Sample size for an evaluation study, as ``openmia plan`` (docs/evaluation.md, "Planning a study").

    Args:
        kind: ``auc`` (CI half-width, two models, or one model vs a fixed AUC), ``proportion``
            (Wilson half-width), ``mcnemar`` (paired accuracy) or ``metric`` (per-case metrics by
            resampling a pilot ``per_case.csv``).
        out: also write ``plan.json`` and the curve ``plan.png`` into this folder (a non-empty
            folder needs ``overwrite=True``).
        **options: the keyword arguments of :func:`openmia.stats.power.plan_auc`,
            ``plan_proportion``, ``plan_mcnemar`` or ``plan_metric``, e.g.
            ``plan("auc", auc=0.85, half_width=0.05, prevalence=0.3)``.

    Returns:
        A :class:`openmia.stats.power.PlanResult`: ``n`` (``None`` if not reached), the table, the curve.
    """
    from openmia.fileio import prepare_output_dir
    from openmia.stats.power import plan_study, write_plan

    if out is not None:  # checked before any time is spent computing
        prepare_output_dir(out, inputs=[options.get("pilot"), options.get("pilot_b")], overwrite=overwrite)
    result = plan_study(kind, **options)
    if out is not None:
        write_plan(result, out)
    return result
