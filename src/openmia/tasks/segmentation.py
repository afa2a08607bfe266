"""Segmentation task: K-class softmax head, Dice+CE (or another) loss, argmax label maps.

The validation score used for model selection is the mean foreground Dice over the validation
cases (classes absent from both maps of a case are skipped, as in the evaluator)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openmia.errors import ConfigError


@dataclass
class SegmentationTask:
    """Head/loss/probabilities for a segmentation data set with ``num_classes`` labels (incl. background)."""

    num_classes: int
    loss_name: str = "dice_ce"
    batch_dice: bool = True  # Dice/Tversky over the whole batch (nnU-Net) or per image (False)
    name: str = "segmentation"
    task_type: str = "segmentation"

    def __post_init__(self) -> None:
        from openmia.losses.segmentation import make_loss

        if self.num_classes < 2:
            raise ConfigError(f"segmentation needs at least 2 labels (background + 1), found {self.num_classes}")
        self._loss = make_loss(self.loss_name, batch_dice=self.batch_dice)

    def num_outputs(self) -> int:
        return self.num_classes

    def loss(self, logits, targets):
        """Loss for logits ``(N, K, *spatial)`` and integer maps ``(N, *spatial)``; with deep
        supervision the model's ``aux_outputs`` are added by the trainer."""
        return self._loss(logits, targets.long())

    def probabilities(self, logits) -> np.ndarray:
        """Softmax ``(N, K, *spatial)`` as float32 numpy."""
        import torch

        with torch.no_grad():
            return torch.softmax(logits, dim=1).float().cpu().numpy()


def mean_foreground_dice(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    """Mean over cases and foreground classes of Dice (pairs empty in both maps skipped)."""
    vals = []
    for p, t in zip(pred, truth):
        for k in range(1, num_classes):
            a, b = p == k, t == k
            s = int(a.sum()) + int(b.sum())
            if s:
                vals.append(2.0 * int((a & b).sum()) / s)
    return float(np.mean(vals)) if vals else float("nan")
