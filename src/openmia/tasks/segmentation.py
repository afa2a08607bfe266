"""Segmentation task (2D and 3D): K-class softmax head, Dice+CE (or another) loss, argmax label maps.

The validation score used for model selection is the mean foreground Dice over the validation
cases (classes absent from both maps of a case are skipped, as in the evaluator). Run directory
outputs: ``predictions/<split>/<case>.npy`` and ``truth/<split>/<case>.npy`` label maps,
``eval/<split>/`` the segmentation report (Dice, IoU, HD95, ASSD, NSD with CIs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.config import check_tta_scales, one_of
from openmia.errors import ConfigError
from openmia.losses import SEGMENTATION_LOSSES
from openmia.tasks.base import CompareInputs, Evaluation, Task
from openmia.tasks.registry import register_task
from openmia.transforms.augment import PRESETS
from openmia.transforms.postprocess import POSTPROCESS

# every preset of openmia.transforms.augment (the pair presets move the label map with the image)
AUGMENTS = PRESETS


@dataclass(frozen=True)
class SegmentationOptions:
    """The ``segmentation`` config section."""

    loss: str = "dice_ce"  # one of openmia.losses.SEGMENTATION_LOSSES
    # Dice/Tversky terms summed over the whole batch (nnU-Net's batch Dice) or per image and
    # averaged (false), which weighs small structures as much as large ones
    batch_dice: bool = True
    tta: bool = False  # average the final val/test predictions over all axis flips
    # also average the final val/test logits over these input scale factors (each image resized,
    # predicted, the logits resized back); (1.0,) = the image as it is
    tta_scales: tuple[float, ...] = (1.0,)
    postprocess: str = "none"  # none | largest (keep each class's largest component)
    # images that always show every class: a class missing from the prediction gets the region
    # around its most probable voxel with probability >= fill_empty x that peak (0 = off)
    fill_empty: float = 0.0

    def __post_init__(self) -> None:
        one_of("segmentation.loss", self.loss, SEGMENTATION_LOSSES)
        one_of("segmentation.postprocess", self.postprocess, POSTPROCESS)
        check_tta_scales(self.tta_scales)
        if not 0 <= self.fill_empty <= 1:
            raise ConfigError(f"segmentation.fill_empty: expected a fraction of the peak probability in (0, 1], "
                              f"or 0 = off; found {self.fill_empty}")


@dataclass
class SegmentationHead:
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
        supervision the model's ``aux_outputs`` are added by the task's step."""
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


def safe_name(case_id: str) -> str:
    """A file name for a case id (``synthetic/seg2d/test/00001`` -> ``synthetic_seg2d_test_00001``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case_id)


def voxel_scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean foreground Dice, voxel accuracy and mean voxel NLL (``loss``) of probabilities
    ``(N, K, *spatial)`` against label maps ``(N, *spatial)``."""
    pred = probs.argmax(1)
    p_true = np.take_along_axis(probs, labels[:, None].astype(np.int64), axis=1)
    nll = float(-np.log(np.clip(p_true, 1e-15, 1.0)).mean())
    return {"dice": mean_foreground_dice(pred, labels, probs.shape[1]), "acc": float((pred == labels).mean()), "loss": nll}


@register_task("segmentation")
class SegmentationTask(Task):
    """Semantic segmentation of 2D images and 3D volumes into K labels (0 = background)."""

    section = SegmentationOptions
    default_dataset = "synthetic/seg2d"
    default_model = "unet_small"
    select_metrics = ("dice", "loss")
    augments = AUGMENTS
    headline_metrics = ("dice", "hd95")
    leaderboard_metrics = ("dice", "hd95")
    eval_options = ("tta", "tta_scales", "postprocess", "fill_empty")
    semi_methods = ("pseudo_label", "fixmatch", "mean_teacher")  # engine.semi: per-voxel softmax outputs

    def prepare(self, model: Any) -> None:
        import torch

        from openmia.losses.segmentation import DeepSupervision

        opts = self.options
        self.head = SegmentationHead(self.spec.num_classes, opts.loss, batch_dice=opts.batch_dice)
        self.deep = DeepSupervision(self.head.loss)
        self._labels = torch.as_tensor(np.array(self.splits["train"].labels, dtype=np.int64))  # a copy: split arrays are read-only
        self._model = model

    def batch_loss(self, idx, gen, forward):
        from openmia.engine.device import to_device, to_fp32
        from openmia.transforms.augment import augment_pair
        from openmia.transforms.intensity import to_float_tensor

        # augmentation runs on the CPU (its random draws come from the CPU generator ``gen``)
        x = to_float_tensor(self.splits["train"].images[idx], self.spec.normalization)
        x, y = to_device(augment_pair(x, self._labels[idx], self.cfg.data.augment, gen), self.device)
        out = forward(x)
        aux = to_fp32(getattr(self._model, "aux_outputs", None))
        return self.deep(out, aux, y) if aux else self.head.loss(out, y)

    def validate(self, model) -> dict[str, float]:
        from openmia.engine.inference import predict_proba

        va = self.splits["val"]
        probs = predict_proba(model, self.head, va.images, self.spec.normalization, self.cfg.data.eval_batch_size,
                              device=self.device)
        return voxel_scores(probs, va.labels)

    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        summaries, table = {}, ""
        for split in splits:
            res = self._evaluate_split(model, run_dir, split, provenance)
            summaries[split] = res.summary
            if split == "test":
                table = res.table(metrics=["dice", "iou", "hd95", "assd", "nsd"], label="all")
                fileio.write_text(run_dir / "eval" / split / "report.txt", table + "\n")
        return Evaluation(summaries, table)

    def _evaluate_split(self, model, run_dir: Path, split: str, provenance: dict[str, Any]):
        """Predict ``split`` batch by batch, write label maps (``predictions/<split>/<case>.npy``,
        truth likewise) and score them with the segmentation evaluator."""
        from openmia.engine.inference import predict_proba
        from openmia.evaluation.label_maps import load_npy
        from openmia.evaluation.segmentation import evaluate_segmentation, write_outputs
        from openmia.transforms.postprocess import postprocess_labels

        s, spec, cfg, opts = self.splits[split], self.spec, self.cfg, self.options
        head = getattr(self, "head", None) or SegmentationHead(spec.num_classes)
        pred_dir, truth_dir = run_dir / "predictions" / split, run_dir / "truth" / split
        pred_dir.mkdir(parents=True, exist_ok=True)
        truth_dir.mkdir(parents=True, exist_ok=True)
        names = [safe_name(c) for c in s.case_ids]
        # padded sets: score each case on its own voxel grid (the padding is not part of the image)
        regions = s.regions or [(...,)] * len(names)
        bs = cfg.data.eval_batch_size
        for i in range(0, len(names), bs):  # batch by batch: a split's probabilities never sit in memory at once
            probs = predict_proba(model, head, s.images[i : i + bs], spec.normalization, bs, tta=opts.tta,
                                  scales=opts.tta_scales, device=self.device)
            for j, lab in enumerate(probs.argmax(1).astype(np.uint8)):
                region = regions[i + j]
                lab = postprocess_labels(lab[region], opts.postprocess, spec.num_classes, fill_empty=opts.fill_empty,
                                         prob=lambda k, p=probs[j], r=region: p[k][r])
                fileio.save_npy(pred_dir / f"{names[i + j]}.npy", lab)
                fileio.save_npy(truth_dir / f"{names[i + j]}.npy", np.asarray(s.labels[i + j][region], dtype=np.uint8))
        # per-case spacing where a user set's cases differ (spec.spacing is then their median)
        spacings = s.spacings or [spec.spacing or (1.0,) * spec.dims] * len(names)
        index = {n: k for k, n in enumerate(names)}

        def load(name: str):
            k = index[name]
            return load_npy(pred_dir / f"{name}.npy"), np.asarray(s.labels[k][regions[k]]), tuple(spacings[k])

        res = evaluate_segmentation(names, load, labels=range(1, spec.num_classes),
                                    label_names={k: spec.label_names[k] for k in range(1, spec.num_classes)},
                                    n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed)
        write_outputs(res, run_dir / "eval" / split, provenance=provenance)
        return res

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """The label-map folders ``predictions/test`` and ``truth/test`` (``.npy``, no header), with
        the data set's spacing (the catalogue's; user sets with per-case spacings: their median)."""
        pred, truth = run_dir / "predictions" / "test", run_dir / "truth" / "test"
        if not (pred.is_dir() and truth.is_dir()):
            return None
        try:
            spacing = cls.data_spec(cfg).spacing
        except Exception:  # a user set whose folder is gone: the evaluator's default (1 per axis)
            spacing = None
        return CompareInputs("segmentation", pred, truth, {"spacing": tuple(spacing)} if spacing else {})

    def embed(self, model, batch):
        """``(B, d)``: the bottleneck (deepest encoder output) averaged over its spatial axes —
        global average pooling, as a classifier on top of the encoder would see it. The layer is
        ``model.embedding_layer`` when set, else ``bottom`` (ResUNet) or the last ``enc`` block (U-Net);
        its output is taken (see :meth:`Task.embed` for the contract)."""
        from openmia.tasks.base import capture_features

        _, module = self._bottleneck(model)
        feats = capture_features(model, batch, module, "output")
        return feats.float().mean(dim=tuple(range(2, feats.dim())))

    def embedding_source(self, model) -> str:
        return f"output of {self._bottleneck(model)[0]} (bottleneck), global-average-pooled"

    def _bottleneck(self, model) -> tuple[str, Any]:
        named = getattr(model, "embedding_layer", None) or (
            "bottom" if hasattr(model, "bottom") else f"enc.{len(model.enc) - 1}" if hasattr(model, "enc") else None)
        if named is None:
            raise ConfigError(f"segmentation model {type(model).__name__} has no `bottom` or `enc` bottleneck; set an "
                              "`embedding_layer` attribute (the submodule whose output is the bottleneck)")
        try:
            return named, model.get_submodule(named)
        except AttributeError as exc:
            raise ConfigError(f"{type(model).__name__}: no submodule {named!r} to take embeddings from") from exc

    def predict(self, run, inputs: Path, out: Path, *, tta: bool = False, scales=None, overlap: float = 0.5,
                batch_size: int = 4, failures: list[str] | None = None, **_: Any) -> dict[str, Any]:
        """One label map per input image, in the input's format (see :mod:`openmia.engine.predict`)."""
        import torch

        from openmia.engine.inference import flip_tta_logits, multiscale_logits, sliding_window_inference
        from openmia.engine.predict import argmax_slabs, class_prob_slabs, iter_input_arrays, write_label_map
        from openmia.transforms.postprocess import postprocess_labels

        spec, model, opts = self.spec, run.model, self.options
        scales = tuple(opts.tta_scales if scales is None else scales)
        check_tta_scales(scales, "--tta-scales")
        n = 0
        with torch.no_grad():
            for cid, path, batch, meta in iter_input_arrays(inputs, spec, failures):
                shape = batch.shape[2:]
                if spec.resized_input:  # as the training images were made
                    from openmia.data.segmentation_sets import resize_image

                    batch = resize_image(batch[0], spec.size)[None]
                x = self.float_batch(batch)
                del batch
                if spec.resized_input:  # whole images at every scale, as the run's own evaluation scored them
                    logits = multiscale_logits(x, lambda xs: flip_tta_logits(model, xs, tta), scales)
                else:
                    logits = multiscale_logits(x, lambda xs: sliding_window_inference(
                        xs, model, spec.spatial_shape, overlap=overlap, batch_size=batch_size, flip_tta=tta), scales)
                del x
                logits = logits.float().cpu()
                if tuple(logits.shape[2:]) != tuple(shape):  # back to the input's size (resized_input sets)
                    logits = torch.nn.functional.interpolate(logits, size=tuple(shape), mode="bilinear", align_corners=False)
                labels = postprocess_labels(argmax_slabs(logits), opts.postprocess, spec.num_classes,
                                            fill_empty=opts.fill_empty, prob=lambda k, lg=logits: class_prob_slabs(lg, k))
                del logits
                write_label_map(labels, path, out, cid, meta)
                n += 1
        return {"cases": n, "out": str(out), "task": self.name, "written": "label maps"}
