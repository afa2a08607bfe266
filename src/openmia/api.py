"""The functions the CLI calls (also the Python API): train, resume, evaluate, quickstart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openmia.config import RunConfig, load_config

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


def train(config: str | Path | RunConfig | None = None, overrides: list[str] | tuple[str, ...] = (), *,
          progress: bool = True, run_dir: str | Path | None = None):
    """Train a model; ``config`` is a YAML path, a :class:`RunConfig` or None (defaults)."""
    from openmia.engine.trainer import train as _train

    cfg = config.with_overrides(list(overrides)) if isinstance(config, RunConfig) else load_config(config, overrides)
    return _train(cfg, run_dir=run_dir, progress=progress)


def resume(run_dir: str | Path, *, progress: bool = True):
    """Continue an interrupted run."""
    from openmia.engine.trainer import resume as _resume

    return _resume(run_dir, progress=progress)


def evaluate(task: str, pred: str | Path, truth: str | Path, out: str | Path, **kwargs: Any):
    """Score prediction files from any tool (DESIGN §4) with the evaluator of ``task``."""
    from openmia.errors import ConfigError

    if task == "classification":
        from openmia.evaluation.classification import evaluate_files

        return evaluate_files(pred, truth, out, **kwargs)
    if task == "segmentation":
        from openmia.evaluation.segmentation import evaluate_folders

        return evaluate_folders(pred, truth, out, **kwargs)
    from openmia.evaluation import other_tasks as T

    evaluators = {"detection": T.evaluate_detection_files, "counting": T.evaluate_counting_files,
                  "clustering": T.evaluate_clustering_files, "inpainting": T.evaluate_inpainting_folders}
    if task not in evaluators:
        raise ConfigError(f"--task {task}: unknown task; choose classification, segmentation, {', '.join(evaluators)}")
    return evaluators[task](pred, truth, out, **kwargs)


def quickstart(out_dir: str | Path = "runs", *, progress: bool = True, extra: tuple[str, ...] = ()):
    """Train a small CNN on the synthetic binary default and evaluate it on the test split."""
    return train(None, (*QUICKSTART_OVERRIDES, f"out_dir={out_dir}", "name=quickstart", *extra), progress=progress)
