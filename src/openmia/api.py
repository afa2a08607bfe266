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
          run_dir: str | Path | None = None, index: bool = True, nproc: int = 1) -> "TrainResult":
    """Train a model and evaluate it on the test split.

    Args:
        config: a YAML path, a :class:`RunConfig`, or None (the defaults of ``task``).
        overrides: ``"a.b=value"`` strings applied on top (e.g. ``"train.device=cuda"``).
        run_dir: the run directory (default: a new one under ``out_dir``); must be new or empty.
        index: add the finished run to the run index (``openmia runs list``).
        nproc: data-parallel processes (> 1: torchrun DDP, :mod:`openmia.engine.distributed`;
            ``data.batch_size`` is the global batch, ``train.threads`` is split between them).

    Returns:
        The :class:`~openmia.engine.loop.TrainResult` (``run_dir``, test/val summaries, report table).
    """
    from openmia.engine.run_dir import train as _train

    cfg = config.with_overrides(list(overrides)) if isinstance(config, RunConfig) else load_config(config, overrides)
    if nproc != 1:
        from openmia.engine.distributed import launch

        return launch(cfg, nproc=nproc, run_dir=run_dir, progress=progress, index=index)
    return _train(cfg, run_dir=run_dir, progress=progress, on_complete=_index_hooks(index))


def resume(run_dir: str | Path, *, progress: bool = True, index: bool = True, nproc: int = 1) -> "TrainResult":
    """Continue an interrupted run from its last checkpoint (same config, same result as unbroken);
    ``nproc`` > 1 continues it with that many data-parallel processes (any count: the checkpoint
    does not depend on it)."""
    from openmia.engine.run_dir import resume as _resume

    if nproc != 1:
        from openmia.engine.distributed import launch
        from openmia.engine.run_dir import check_run_dir

        return launch(nproc=nproc, resume=check_run_dir(run_dir), progress=progress, index=index)
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
            device: str | None = None, overwrite: bool = False, progress: "ProgressArg" = False,
            spacing: Sequence[float] | None = None) -> dict[str, Any]:
    """Apply a finished run to a folder of images; returns ``{"cases", "out", "task"}``.

    Segmentation runs write a label map per image (NIfTI keeps the input's geometry);
    classification runs write ``predictions.csv`` in the evaluator's format; landmark runs write
    ``points.csv`` (with ``shapes.csv`` and ``spacing.csv`` for ``evaluate``; ``spacing`` in mm per
    axis for formats without one, e.g. PNG). ``progress``: True for a progress bar on stderr, or a
    callable ``f(done, total)``."""
    from openmia.engine.predict import predict_folder
    from openmia.progress import progress_callback

    with progress_callback(progress, "predict") as cb:
        return predict_folder(run_dir, input_dir, out_dir, tta=tta, scales=scales, overlap=overlap,
                              batch_size=batch_size, device=device, overwrite=overwrite, progress=cb,
                              spacing=None if spacing is None else tuple(spacing))


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
    callable ``f(done, total)``. Classification AUC: ``unpaired=True`` for models scored on
    independent test sets (DeLong's unpaired test), ``alternative="greater"|"less"`` one-sided."""
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


def benchmark_run(suite: str | Path, *, executor: str = "local", parallel: int = 1, address: str | None = None,
                  threads: int | None = None, gpus_per_cell: float = 0.0, deterministic: bool = False,
                  overrides: Sequence[str] = (), data_root: str | Path | None = None, out_dir: str | Path | None = None,
                  tracking: str | None = None, tracking_uri: str | None = None, connect_timeout: float = 10.0,
                  nproc: int | None = None, echo: Any = None) -> dict[str, Any]:
    """Run a benchmark suite (``openmia benchmark run``, docs/scale-out.md): every cell (data set x
    model x seed x budget) is an ordinary run; finished cells are reused, interrupted ones resumed,
    changed ones trained again, and the plan says which and why.

    Args:
        suite: the suite YAML file (format: :mod:`openmia.bench.suite`).
        executor: ``local`` (process pool of ``parallel`` workers) or ``ray`` (Ray tasks; a local
            Ray by default, ``address`` for a cluster; needs ``openmia[ray]``).
        threads: ``train.threads`` per cell (default: usable CPUs // ``parallel``).
        nproc: data-parallel training processes per cell (DDP, as ``train(nproc=...)``; their
            threads split the cell's); None: the suite's ``nproc`` keys, else 1. Not part of the
            cells' ids (finished cells are reused); recorded in each run's provenance.
        deterministic: ``train.deterministic=true`` in every cell (part of the cells' ids).
        overrides: ``KEY=VALUE`` applied to every cell after the suite's own settings.
        tracking: ``"mlflow"`` to log each finished cell to MLflow at ``tracking_uri``.
        echo: a callable taking one line of text per planned and finished cell.

    Returns:
        ``{"steps": [{cell_id, label, action, reason}], "results": [...], "counts": {status: n},
        "wall_seconds", "threads", "executor", "parallel"}``.
    """
    from openmia.bench.runner import run_suite
    from openmia.bench.suite import load_suite
    from openmia.bench.tracking import tracking_config

    s = load_suite(suite, overrides=tuple(overrides), deterministic=deterministic, data_root=data_root, out_dir=out_dir,
                   nproc=nproc)
    return run_suite(s, executor=executor, parallel=parallel, address=address, threads=threads,
                     gpus_per_cell=gpus_per_cell, tracking=tracking_config(tracking, tracking_uri, s.name),
                     connect_timeout=connect_timeout, echo=echo)


def benchmark_status(suite: str | Path, *, deterministic: bool = False, overrides: Sequence[str] = (),
                     data_root: str | Path | None = None, out_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every cell of a suite with its status (pending / running / done / failed), run directory,
    log, wall time and test metrics (``openmia benchmark status``). Pass the same ``deterministic``
    and ``overrides`` as to :func:`benchmark_run`: they are part of the cells' ids."""
    from openmia.bench.runner import suite_status
    from openmia.bench.suite import load_suite

    return suite_status(load_suite(suite, overrides=tuple(overrides), deterministic=deterministic, data_root=data_root,
                                   out_dir=out_dir))


def benchmark_report(suite: str | Path, out: str | Path, *, deterministic: bool = False, overrides: Sequence[str] = (),
                     data_root: str | Path | None = None, out_dir: str | Path | None = None, overwrite: bool = False,
                     allow_missing: bool = False) -> dict[str, Any]:
    """The leaderboard of a suite's finished cells (``openmia benchmark report``): per data set and
    metric each model's value with its CI, seed spread, paired tests against the best (Holm),
    three ranking schemes with bootstrap rank stability, and across data sets Friedman + Nemenyi
    with a CD diagram. Writes ``report.html`` (with figures), ``leaderboard.csv`` and
    ``leaderboard.json`` into ``out``; returns the leaderboard dict. Unfinished cells are an error
    unless ``allow_missing`` (then they are left out, and the report says so)."""
    from openmia.bench.leaderboard import build_leaderboard
    from openmia.bench.report import write_report
    from openmia.bench.suite import load_suite
    from openmia.fileio import prepare_output_dir

    s = load_suite(suite, overrides=tuple(overrides), deterministic=deterministic, data_root=data_root, out_dir=out_dir)
    prepare_output_dir(out, overwrite=overwrite)
    board = build_leaderboard(s, allow_missing=allow_missing)
    board["files"] = write_report(s, board, out)
    return board


def inpaint(input_dir: str | Path, mask_dir: str | Path, out_dir: str | Path, *, run_dir: str | Path | None = None,
            method: str | None = None, scale: str = "auto", device: str | None = None, overwrite: bool = False,
            progress: "ProgressArg" = False) -> dict[str, Any]:
    """Fill the holes (``mask_dir``: one mask per image, nonzero = hole) of every image in
    ``input_dir`` with a finished inpainting run (``run_dir``) or a classical method (``method``:
    biharmonic, telea, ns, mean, nearest); ``scale`` (runs: auto, unit, uint8, minmax) is how the
    images map to the run's [0, 1] scale; writes ``<case>.npy`` + ``restore.json`` into
    ``out_dir`` and returns ``{"cases", "out", "method", "mean_seconds_per_case"}``."""
    from openmia.engine.restore import restore_folder
    from openmia.progress import progress_callback

    with progress_callback(progress, "inpaint") as cb:
        return restore_folder(input_dir, out_dir, mode="inpainting", mask_dir=mask_dir, run_dir=run_dir, method=method,
                              scale=scale, device=device, overwrite=overwrite, progress=cb)


def denoise(input_dir: str | Path, out_dir: str | Path, *, run_dir: str | Path | None = None, method: str | None = None,
            sigma: float | None = None, scale: str = "auto", device: str | None = None, overwrite: bool = False,
            progress: "ProgressArg" = False) -> dict[str, Any]:
    """Denoise every image in ``input_dir`` with a finished denoising/reconstruction run
    (``run_dir``) or a classical method (``method``: nlm, bm3d, gaussian; ``sigma`` = the noise
    level in the images' unit, None = estimated); writes ``<case>.npy`` + ``restore.json``."""
    from openmia.engine.restore import restore_folder
    from openmia.progress import progress_callback

    with progress_callback(progress, "denoise") as cb:
        return restore_folder(input_dir, out_dir, mode="denoising", run_dir=run_dir, method=method, sigma=sigma,
                              scale=scale, device=device, overwrite=overwrite, progress=cb)


def embed(out_dir: str | Path, *, run_dir: str | Path | None = None, method: str = "model", dataset: str | None = None,
          split: str = "test", fit_split: str = "train", dims: int = 50, size: int | None = None,
          root: str | Path | None = None, batch_size: int = 64, device: str | None = None, overwrite: bool = False,
          progress: "ProgressArg" = False) -> dict[str, Any]:
    """One vector per case of ``dataset``'s ``split`` (``all`` = train + val + test): from a finished
    run (``method="model"``: its Task's ``embed`` hook — a classifier's penultimate layer, a
    segmentation network's pooled bottleneck, an autoencoder's code) or ``method="pixels-pca"``
    (PCA of the normalised pixels fitted on ``fit_split``, ``dims`` components). Writes
    ``embeddings.npy`` (float32 ``(n_cases, d)``), ``cases.csv`` and ``embed.json`` into ``out_dir``;
    returns ``{"out", "cases", "dims", "method", "dataset", "split", "layer", "files"}``."""
    from openmia.engine.embed import embed_dataset
    from openmia.progress import progress_callback

    with progress_callback(progress, "embed") as cb:
        return embed_dataset(out_dir, run_dir=run_dir, method=method, dataset=dataset, split=split, fit_split=fit_split,
                             dims=dims, size=size, root=root, batch_size=batch_size, device=device, overwrite=overwrite,
                             progress=cb)


def cluster(embeddings: str | Path, out_dir: str | Path, *, method: str = "kmeans", k: int | str = "auto", seed: int = 0,
            n_boot: int = 100, min_cluster_size: int = 5, n_resamples: int = 500, scale: str = "none",
            maps: Sequence[str] = ("pca", "tsne", "umap"), montage: bool = True, root: str | Path | None = None,
            overwrite: bool = False, progress: "ProgressArg" = False) -> dict[str, Any]:
    """Cluster an embeddings folder (kmeans, gmm, agglomerative, hdbscan; ``k`` an int or ``"auto"``:
    silhouette, or BIC for gmm); writes ``clusters.csv``, ``summary.json``, ``report.md``/``.html``
    (2D maps, montage, per-cluster profiles, Hennig stability with ``n_boot`` resamples) and, when
    ``cases.csv`` has labels, the clustering evaluator's ``eval/``. Returns the summary + ``out``."""
    from openmia.progress import progress_callback
    from openmia.unsupervised.cluster import cluster_embeddings

    with progress_callback(progress, "cluster (stability)") as cb:
        return cluster_embeddings(embeddings, out_dir, method=method, k=k, seed=seed, n_boot=n_boot,
                                  min_cluster_size=min_cluster_size, n_resamples=n_resamples, scale=scale,
                                  maps=tuple(maps), montage=montage, root=root, overwrite=overwrite, progress=cb)


def profile(embeddings: str | Path, out_dir: str | Path, *, covariates: str | Path | None = None,
            volumes_from: str | Path | None = None, spacing: Sequence[float] | None = None,
            label_names: Sequence[str] | None = None, ratios: Sequence[str] = (), features: str = "auto",
            embedding_dims: int = 5, method: str = "kmeans", k: int | str = "auto", seed: int = 0, n_boot: int = 100,
            n_resamples: int = 1000, min_cluster_size: int = 5, overwrite: bool = False,
            progress: "ProgressArg" = False) -> dict[str, Any]:
    """Patient profiles: image embeddings averaged per patient, joined with covariates (a CSV
    ``patient_id,<numeric>``; structure volumes in mm³ from the label maps in ``volumes_from``;
    ``ratios`` ``"A/B"``), clustered; writes ``profiles.csv``, ``patients.csv``, ``summary.json`` and
    the report (per profile: size, covariate means/medians with bootstrap CIs, label composition,
    stability). Returns the summary + ``out``."""
    from openmia.progress import progress_callback
    from openmia.unsupervised.profiles import profile_patients

    with progress_callback(progress, "profile (stability)") as cb:
        return profile_patients(embeddings, out_dir, covariates=covariates, volumes_from=volumes_from, spacing=spacing,
                                label_names=label_names, ratios=ratios, features=features,
                                embedding_dims=embedding_dims, method=method, k=k, seed=seed, n_boot=n_boot,
                                n_resamples=n_resamples, min_cluster_size=min_cluster_size, overwrite=overwrite,
                                progress=cb)


def compare_clusterings(truth: str | Path, first: str | Path, second: str | Path, *, metrics: Sequence[str] = ("ari", "nmi"),
                        n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap difference (first - second) of clustering scores against the truth labels
    (``truth``: a ``case_id,label`` CSV, or a cluster output folder holding ``truth.csv``; ``first``,
    ``second``: ``clusters.csv`` files or their folders), the same case resamples for both."""
    from openmia.unsupervised.cluster import compare_partitions, read_clusters, read_truth

    return compare_partitions(read_truth(truth), read_clusters(first), read_clusters(second), metrics=tuple(metrics),
                              n_resamples=n_resamples, seed=seed)


def pretrain(method: str = "simclr", dataset: str | None = None, overrides: Sequence[str] = (), *,
             config: str | Path | RunConfig | None = None, split: str = "train", progress: bool = True,
             run_dir: str | Path | None = None, index: bool = True) -> "TrainResult":
    """Self-supervised pre-training (``openmia pretrain``, docs/few-labels.md): ``method`` (simclr,
    byol or mim) on the training images of ``dataset`` without their labels, then a linear probe
    and k-NN on the frozen embeddings scored on validation and test. The run directory's
    ``encoder.pt`` is what ``train.init_from=<run dir>`` loads.

    Args:
        method: ``pretrain.method``.
        dataset: ``data.dataset`` (any task's set); None = the config's or the default.
        overrides: ``KEY=VALUE`` on top (``model.name``, ``train.epochs``, ``pretrain.*`` ...).
        config: a YAML path or :class:`RunConfig` (its task must be ``pretrain``), or None.
        split: the images pre-training reads: only ``train`` (validation and test images never
            take part; anything else is refused).
    """
    from openmia.errors import ConfigError

    if split != "train":
        raise ConfigError(f"pretrain --split {split!r}: pre-training reads the training split only (validation and "
                          "test images must stay unseen until they are scored); use --split train")
    ov = ["task=pretrain", f"pretrain.method={method}", *([f"data.dataset={dataset}"] if dataset else []), *overrides]
    if isinstance(config, RunConfig):
        cfg = config.with_overrides(ov)
    else:
        cfg = load_config(config, ov)
    return train(cfg, progress=progress, run_dir=run_dir, index=index)
