"""Classification task: head size, loss and probabilities follow the task type.

binary       2 logits, softmax cross-entropy (as MedMNIST); P(positive) = softmax[:, 1]
multi-class  K logits, cross-entropy
ordinal      K logits, cross-entropy (the MedMNIST protocol); scored with quadratic kappa too
multi-label  L logits, independent sigmoids, binary cross-entropy
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openmia.errors import ConfigError


@dataclass
class ClassificationTask:
    """Head/loss/probabilities for a classification data set.

    Args:
        task_type: binary | multi-class | ordinal | multi-label.
        num_classes: number of classes (labels for multi-label).
        class_weights: optional per-class loss weights ``(K,)`` (multi-label: positive weights).
        label_smoothing: for the cross-entropy task types.
    """

    task_type: str
    num_classes: int
    class_weights: np.ndarray | None = None
    label_smoothing: float = 0.0
    name: str = "classification"

    def __post_init__(self) -> None:
        if self.task_type not in ("binary", "multi-class", "ordinal", "multi-label"):
            raise ConfigError(f"unknown classification task type {self.task_type!r}")
        if self.task_type == "binary" and self.num_classes != 2:
            raise ConfigError(f"binary task needs 2 classes, found {self.num_classes}")

    @property
    def multilabel(self) -> bool:
        return self.task_type == "multi-label"

    def num_outputs(self) -> int:
        return self.num_classes

    def loss(self, logits, targets):
        """Loss for logits ``(N, K)`` and targets ``(N,)`` int64 or ``(N, L)`` 0/1."""
        import torch
        import torch.nn.functional as F

        w = None if self.class_weights is None else torch.as_tensor(self.class_weights, dtype=logits.dtype)
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=w)
        return F.cross_entropy(logits, targets, weight=w, label_smoothing=self.label_smoothing)

    def probabilities(self, logits) -> np.ndarray:
        """``(N, K)`` probabilities: softmax, or sigmoid for multi-label."""
        import torch

        with torch.no_grad():
            p = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)
        return p.double().cpu().numpy()


def balanced_class_weights(labels: np.ndarray, task_type: str, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (K * n_k)`` (multi-label: ``n_neg / n_pos`` per label).

    Raises ConfigError when a class has no training example (its weight would be infinite).
    """
    if task_type == "multi-label":
        pos = labels.sum(axis=0).astype(float)
        neg = labels.shape[0] - pos
        if (pos == 0).any():
            raise ConfigError(f"class_weights=balanced: label(s) {np.flatnonzero(pos == 0).tolist()} have no positive training case")
        return neg / pos
    counts = np.bincount(labels.astype(int), minlength=num_classes).astype(float)
    if (counts == 0).any():
        raise ConfigError(f"class_weights=balanced: class(es) {np.flatnonzero(counts == 0).tolist()} have no training case")
    return labels.shape[0] / (num_classes * counts)
