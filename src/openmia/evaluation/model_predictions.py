"""One model's scores on the shared cases, as ``openmia compare`` holds them (every task)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ModelPredictions:
    """One model's scores on the shared cases: per-case values ``{(metric, label): (N,)}`` and,
    for classification, the probabilities (AUC needs them)."""

    name: str
    per_case: dict[tuple[str, str], np.ndarray]
    probs: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)
