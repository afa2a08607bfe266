"""Task interface: how a task family turns model outputs into a loss and into probabilities."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Task(Protocol):
    """A task family (classification, segmentation, ...)."""

    name: str

    def num_outputs(self) -> int: ...

    def loss(self, logits, targets): ...

    def probabilities(self, logits) -> np.ndarray: ...
