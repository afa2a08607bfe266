"""The evaluators by task name (``openmia evaluate --task T``): one table, so the CLI's choices,
``api.evaluate`` and ``compare`` read the same list. Each entry is ``f(pred, truth, out, **kw)``
returning an :class:`~openmia.evaluation.result.EvaluationResult`."""

from __future__ import annotations

from typing import Any, Callable

from openmia.registry import Registry

EVALUATORS: Registry = Registry("evaluator")


def _lazy(module: str, name: str) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    run.__doc__ = f"{module}.{name}"
    return run


for _task, _module, _name in (
    ("classification", "openmia.evaluation.classification", "evaluate_files"),
    ("segmentation", "openmia.evaluation.segmentation", "evaluate_folders"),
    ("detection", "openmia.evaluation.detection", "evaluate_detection_files"),
    ("counting", "openmia.evaluation.other_tasks", "evaluate_counting_files"),
    ("clustering", "openmia.evaluation.other_tasks", "evaluate_clustering_files"),
    ("inpainting", "openmia.evaluation.other_tasks", "evaluate_inpainting_folders"),
    ("denoising", "openmia.evaluation.generative", "evaluate_denoising_folders"),
    ("landmarks", "openmia.evaluation.landmarks", "evaluate_landmark_files"),
):
    EVALUATORS.register(_task)(_lazy(_module, _name))


def get_evaluator(task: str) -> Callable[..., Any]:
    """The evaluator of ``task`` (UnknownNameError listing the known ones otherwise)."""
    return EVALUATORS.get(task).factory


def evaluator_names() -> list[str]:
    return EVALUATORS.names()
