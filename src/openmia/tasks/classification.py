"""Classification task: head size, loss and probabilities follow the data set's task type.

binary       2 logits, softmax cross-entropy (as MedMNIST); P(positive) = softmax[:, 1]
multi-class  K logits, cross-entropy
ordinal      K logits, cross-entropy (the MedMNIST protocol); scored with quadratic kappa too
multi-label  L logits, independent sigmoids, binary cross-entropy

Model selection: validation AUC (or ACC, or NLL as ``loss``). Run directory outputs:
``predictions/{val,test}.csv`` and ``truth/{val,test}.csv`` in the evaluator's formats,
``eval/{val,test}/`` the classification report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.config import one_of
from openmia.errors import ConfigError, DataError
from openmia.tasks.base import CompareInputs, Evaluation, Task
from openmia.tasks.registry import register_task
from openmia.transforms.augment import PAIR_ONLY, PRESETS

CLASS_WEIGHTS = ("none", "balanced")
TASK_TYPES = ("binary", "multi-class", "ordinal", "multi-label")  # the classification sub-types
# the batch augmentation presets that need no label map to move with the image
AUGMENTS = tuple(p for p in PRESETS if p not in PAIR_ONLY)


@dataclass(frozen=True)
class ClassificationOptions:
    """The ``classification`` config section."""

    class_weights: str = "none"  # none | balanced (inverse class frequency in the loss)
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        one_of("classification.class_weights", self.class_weights, CLASS_WEIGHTS)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"classification.label_smoothing: expected [0, 1), found {self.label_smoothing}")


@dataclass
class ClassificationHead:
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
        if self.task_type not in TASK_TYPES:
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

        w = None if self.class_weights is None else torch.as_tensor(self.class_weights, dtype=logits.dtype, device=logits.device)
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


def quick_scores(probs: np.ndarray, labels: np.ndarray, task_type: str) -> dict[str, float]:
    """Validation AUC, ACC and NLL (``loss``) for model selection (point estimates) from
    probabilities ``(N, K)`` and labels ``(N,)`` (multi-label ``(N, L)``)."""
    from sklearn.metrics import roc_auc_score

    try:
        if task_type == "binary":
            auc = roc_auc_score(labels, probs[:, 1])
        elif task_type == "multi-label":
            auc = roc_auc_score(labels, probs, average="macro")
        else:
            auc = roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(probs.shape[1])))
    except ValueError:  # a class absent from this split: AUC undefined (sklearn says so with ValueError)
        auc = float("nan")
    p = np.clip(probs, 1e-15, 1 - 1e-15)
    if task_type == "multi-label":
        acc = float(((probs >= 0.5) == labels.astype(bool)).mean())
        nll = float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
    else:
        acc = float((probs.argmax(1) == labels).mean())
        nll = float(-np.log(p[np.arange(len(labels)), labels]).mean())
    return {"auc": float(auc), "acc": acc, "loss": nll}


@register_task("classification")
class ClassificationTask(Task):
    """Binary, multi-class, ordinal and multi-label image classification (2D and 3D)."""

    section = ClassificationOptions
    default_dataset = "synthetic/binary"
    default_model = "cnn_small"
    select_metrics = ("auc", "acc", "loss")
    augments = AUGMENTS
    headline_metrics = ("auc", "acc")
    leaderboard_metrics = ("auc", "acc")
    task_types = TASK_TYPES
    semi_methods = ("pseudo_label", "fixmatch", "mean_teacher")  # engine.semi (not for multi-label sets)

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """``predictions/test.csv`` against ``truth/test.csv`` (written by :meth:`evaluate`)."""
        pred, truth = run_dir / "predictions" / "test.csv", run_dir / "truth" / "test.csv"
        return CompareInputs("classification", pred, truth) if pred.is_file() and truth.is_file() else None

    def prepare(self, model: Any) -> None:
        import torch

        spec, opts = self.spec, self.options
        weights = None
        if opts.class_weights == "balanced":
            weights = balanced_class_weights(self.splits["train"].labels, spec.task_type, spec.num_classes)
        self.head = ClassificationHead(spec.task_type, spec.num_classes, weights, opts.label_smoothing)
        self._labels = torch.as_tensor(np.array(self.splits["train"].labels, dtype=np.int64))  # a copy: split arrays are read-only

    def batch_loss(self, idx, gen, forward):
        from openmia.engine.device import to_device
        from openmia.transforms.augment import augment_batch
        from openmia.transforms.intensity import to_float_tensor

        # augmentation runs on the CPU (its random draws come from the CPU generator ``gen``)
        x = augment_batch(to_float_tensor(self.splits["train"].images[idx], self.spec.normalization), self.cfg.data.augment, gen)
        return self.head.loss(forward(to_device(x, self.device)), to_device(self._labels[idx], self.device))

    def validate(self, model) -> dict[str, float]:
        from openmia.engine.inference import predict_proba

        va = self.splits["val"]
        probs = predict_proba(model, self.head, va.images, self.spec.normalization, self.cfg.data.eval_batch_size,
                              device=self.device)
        return quick_scores(probs, va.labels, self.spec.task_type)

    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        from openmia.engine.inference import predict_proba
        from openmia.evaluation.classification import evaluate_classification, write_outputs
        from openmia.evaluation.writers import write_classification_predictions, write_classification_truth

        spec, cfg = self.spec, self.cfg
        head = getattr(self, "head", None) or ClassificationHead(spec.task_type, spec.num_classes)
        summaries, table = {}, ""
        names = {"task_type": spec.task_type, "label_names": list(spec.label_names)}
        for split in splits:
            s = self.splits[split]
            probs = predict_proba(model, head, s.images, spec.normalization, cfg.data.eval_batch_size, device=self.device)
            write_classification_predictions(run_dir / "predictions" / f"{split}.csv", s.case_ids, probs, **names)
            write_classification_truth(run_dir / "truth" / f"{split}.csv", s.case_ids, s.labels, **names)
            res = evaluate_classification(probs[:, 1] if spec.task_type == "binary" else probs, s.labels, s.case_ids,
                                          n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed, **names)
            write_outputs(res, run_dir / "eval" / split, provenance=provenance)
            summaries[split] = res.summary
            if split == "test":
                table = res.table()
                fileio.write_text(run_dir / "eval" / split / "report.txt", table + "\n")
        return Evaluation(summaries, table)

    def _as_trained(self, batch: np.ndarray) -> np.ndarray:
        """A new image ``(1, C, *spatial)`` prepared as the training images were: user sets resized
        2D images (bilinear) and 3D volumes (linear, to a cube) to the training size."""
        spec = self.spec
        if tuple(batch.shape[2:]) == spec.spatial_shape:
            return batch
        if spec.dims == 2 and spec.resized_input:
            from openmia.data.segmentation_sets import resize_image

            return resize_image(batch[0], spec.size)[None]
        if spec.dims == 3 and spec.source == "user":
            from openmia.data.user_arrays import zoom_to_cube

            return zoom_to_cube(batch[0].astype(np.float32), spec.size)[None]
        return batch

    def predict(self, run, inputs: Path, out: Path, **opts: Any) -> dict[str, Any]:
        """``predictions.csv`` (the evaluator's format) for every image in ``inputs``; images are
        prepared as the training images were (user sets: resized to the training size; catalogue
        sets: they must have it, a classifier has a fixed input shape)."""
        import torch

        from openmia.engine.predict import iter_input_arrays
        from openmia.evaluation.writers import write_classification_predictions

        if opts.get("tta") or tuple(opts.get("scales") or (1.0,)) != (1.0,):
            raise ConfigError("flip and multi-scale test-time augmentation (--tta, --tta-scales) apply to segmentation runs")
        spec, head = self.spec, ClassificationHead(self.spec.task_type, self.spec.num_classes)
        ids, rows = [], []
        with torch.no_grad():
            for cid, path, batch, _ in iter_input_arrays(inputs, spec, opts.get("failures")):
                batch = self._as_trained(batch)
                if tuple(batch.shape[2:]) != spec.spatial_shape:
                    err = DataError(f"case {cid!r}: {path.name} has size {tuple(batch.shape[2:])}, the classifier was "
                                    f"trained on {spec.spatial_shape}")
                    if opts.get("failures") is None:
                        raise err
                    opts["failures"].append(str(err))
                    continue
                ids.append(cid)
                rows.append(head.probabilities(run.model(self.float_batch(batch)))[0])
        probs = np.stack(rows) if rows else np.zeros((0, spec.num_classes))
        write_classification_predictions(out / "predictions.csv", ids, probs, task_type=spec.task_type,
                                         label_names=spec.label_names)
        return {"cases": len(ids), "out": str(out), "task": self.name, "written": "predictions.csv"}
