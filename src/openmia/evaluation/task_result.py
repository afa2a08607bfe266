"""What the file evaluators of detection, counting, clustering and inpainting share: the summary
schema, the result class and the summary-row and number-cell helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

from openmia.errors import PredictionError
from openmia.evaluation.result import EvaluationResult

SCHEMA = "openmia.summary/1"


class TaskResult(EvaluationResult):
    """Result of the detection, counting, clustering and inpainting evaluators."""


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _row(metric: str, label: str, value, lo, hi, method: str, n: int, n_nan: int = 0) -> dict[str, Any]:
    return {"metric": metric, "label": label, "value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi),
            "ci_method": method, "n": n, "n_nan": n_nan, "mean": None, "median": None, "q1": None, "q3": None}


def _float_cell(t, line: int, col: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise PredictionError(f"{t.path}, line {line}, column {col!r}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise PredictionError(f"{t.path}, line {line}, column {col!r}: {value!r} is not finite")
    return v
