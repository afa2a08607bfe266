"""What detection and counting share: images with boxes or points, the model's own loss (or the
density-map loss), model selection on validation mAP@0.5 or count MAE, count thresholds chosen on
validation, and the final evaluation:

    predictions/{val,test}.csv         detections ``case_id,label,score,x1,y1,x2,y2`` (or ``x,y``), in
                                       the original image's pixels (DESIGN §4.1)
    predictions/{val,test}_counts.csv  ``case_id,label,count`` per class
    truth/...                          the same formats for the annotations
    eval/{split}/                      detection report (AP@0.5, mAP@0.5:0.95, per-class AP, FROC)
    eval/{split}/counting/             count MAE / RMSE / relative error per class, with CIs

Counting runs train a density model (count = integral) or a point detector (count = detections
at or above the count threshold). The count threshold of detectors is chosen per class on the
validation split (the MAE-minimising score on a 0.05 grid) unless ``<task>.score_threshold``
fixes it; the test split never informs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from openmia import fileio
from openmia.config import positive
from openmia.errors import ConfigError
from openmia.tasks.base import CompareInputs, Evaluation, Task
from openmia.transforms.objects import AUGMENTS

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


@dataclass(frozen=True)
class ObjectOptions:
    """The ``detection`` / ``counting`` config section."""

    crop: int | None = None  # random training crops of this many px per side (None = whole images)
    # batch-norm statistics recomputed over the training images with the current weights before
    # each validation (batch norm's running averages lag fast-moving weights)
    recompute_bn: bool = False
    max_detections: int | None = None  # kept per image; None = 100 (detection) or 1000 (counting: dense cells)
    nms_iou: float = 0.5  # class-aware NMS IoU (0 = the model's own decoding only)
    # the score a detection needs to be counted (None = chosen per class on validation to minimise the count MAE)
    score_threshold: float | None = None
    where: ClassVar[str] = "detection"  # the section's name in messages

    def __post_init__(self) -> None:
        w = self.where
        if self.crop is not None and (isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 8):
            raise ConfigError(f"{w}.crop: expected an integer >= 8 (pixels per side), found {self.crop!r}")
        positive(f"{w}.max_detections", self.max_detections)
        if not 0 <= self.nms_iou < 1:
            raise ConfigError(f"{w}.nms_iou: expected an IoU in [0, 1) (0 = no NMS), found {self.nms_iou}")
        if self.score_threshold is not None and not 0 <= self.score_threshold <= 1:
            raise ConfigError(f"{w}.score_threshold: expected a score in [0, 1] or null, found {self.score_threshold}")


def is_density(model) -> bool:
    """Density-map counters have ``count`` and no ``detect``."""
    return hasattr(model, "count") and not hasattr(model, "detect")


def predict_objects(model, images: np.ndarray, normalization: str, batch_size: int, *, kind: str,
                    score_threshold: float = 0.05, max_detections: int = 500, nms_iou: float = 0.5) -> list[dict[str, np.ndarray]]:
    """Per image ``{"objects": (n, 4|2), "scores": (n,), "labels": (n,)}`` (detectors) or
    ``{"count": float}`` (density models), in input pixels, for images ``(N, C, H, W)``."""
    import torch

    from openmia.engine.inference import iterate_batches
    from openmia.transforms.intensity import to_float_tensor

    device = next(model.parameters()).device
    model.eval()
    out: list[dict[str, np.ndarray]] = []
    with torch.no_grad():
        for idx in iterate_batches(len(images), batch_size, shuffle=False):
            x = to_float_tensor(images[idx], normalization).to(device)
            if is_density(model):
                out += [{"count": float(c)} for c in model.count(x).cpu()]
                continue
            for d in model.detect(x, score_threshold=score_threshold, max_detections=max_detections, nms_iou=nms_iou or None):
                key = "boxes" if kind == "box" else "points"
                out.append({"objects": d[key].cpu().numpy().astype(float), "scores": d["scores"].cpu().numpy().astype(float),
                            "labels": d["labels"].cpu().numpy().astype(int)})
    return out


def count_matrix(preds: list[dict], n_classes: int, thresholds: np.ndarray) -> np.ndarray:
    """Detections per image, class and threshold ``(N, K, T)`` (score >= threshold)."""
    c = np.zeros((len(preds), n_classes, len(thresholds)))
    for i, p in enumerate(preds):
        if "count" in p:
            c[i, 0, :] = p["count"]
            continue
        for k in range(n_classes):
            s = p["scores"][p["labels"] == k]
            c[i, k] = (s[:, None] >= thresholds[None]).sum(0)
    return c


def counts_at(preds: list[dict], thresholds: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts per image and class ``(N, K)``: class k's detections with score >= ``thresholds[k]``
    (density models: the integral, in class 0)."""
    if preds and "count" in preds[0]:
        return np.array([[p["count"]] + [0.0] * (n_classes - 1) for p in preds]).reshape(-1, n_classes)
    return np.stack([count_matrix(preds, n_classes, np.array([t]))[:, k, 0] for k, t in enumerate(thresholds)], 1)


def truth_counts(classes: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Objects per image and class ``(N, K)``."""
    return np.array([np.bincount(c, minlength=n_classes)[:n_classes] for c in classes], dtype=float).reshape(-1, n_classes)


def choose_count_thresholds(preds: list[dict], classes: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Per class, the grid score that minimises the count MAE on these (validation) images."""
    mae = np.abs(count_matrix(preds, n_classes, THRESHOLD_GRID) - truth_counts(classes, n_classes)[..., None]).mean(0)
    return THRESHOLD_GRID[mae.argmin(1)]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


class ObjectTask(Task):
    """Shared base of detection and counting (not registered itself)."""

    section = ObjectOptions
    augments = AUGMENTS
    needs_validation = True
    min_labels = 1  # object classes (no background)
    eval_options = ("max_detections", "nms_iou", "score_threshold")
    default_max_detections = 100
    density_sigma = 2.0  # px; the Gaussian of density-map targets (cells are 4-8 px across)
    # result.json calls the counting evaluator's mean absolute error count_mae; compare, count_abs_error
    leaderboard_aliases = {"count_abs_error": "count_mae"}

    @staticmethod
    def counting_inputs(run_dir: Path) -> CompareInputs | None:
        """``predictions/test_counts.csv`` against ``truth/test_counts.csv``; the tests use the
        object class's own rows when there is one class (its rows carry its name, not ``all``)."""
        import csv

        pred, truth = run_dir / "predictions" / "test_counts.csv", run_dir / "truth" / "test_counts.csv"
        if not (pred.is_file() and truth.is_file()):
            return None
        with open(truth, newline="") as f:
            labels = sorted({row["label"] for row in csv.DictReader(f)})
        return CompareInputs("counting", pred, truth, labels=tuple(labels) if len(labels) == 1 else ("all",))

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        if cfg.train.pretrain_epochs:
            raise ConfigError(f"train.pretrain_epochs does not apply to {cls.name} runs (the model defines its own loss)")
        super().check_config(cfg)

    @property
    def kind(self) -> str:
        if self.splits:
            return self.splits["train"].kind
        from openmia.data.catalog import annotation_kind  # a loaded run: from the data set's name, no data read

        return annotation_kind(self.spec.name)

    @property
    def max_detections(self) -> int:
        return self.options.max_detections or self.default_max_detections

    def model_kwargs(self) -> dict[str, Any]:
        """A counting run may use a detector, which then predicts points (count = detections); a
        detector on a point-annotated set predicts points."""
        from openmia.models import load_all

        cfg, spec, kind = self.cfg, self.spec, self.kind
        mtask = load_all().get(cfg.model.name).meta.get("task")
        kw = dict(cfg.model.kwargs)
        if mtask == "detection" and (self.name == "counting" or kind == "point"):
            if kw.get("points") is False:
                raise ConfigError(f"model.kwargs.points=false: {spec.name} has point annotations (a {self.name} run); the "
                                  f"detector {cfg.model.name!r} must predict points")
            kw["points"] = True
        elif mtask != self.name:
            raise ConfigError(f"model.name={cfg.model.name!r} is a {mtask} model but the run's task is {self.name!r}; pick "
                              f"one of `openmia list models --task {self.name}`" + (" (or a detector)" if self.name == "counting" else ""))
        elif self.name == "detection" and kw.get("points") and kind == "box":
            raise ConfigError(f"{spec.name} is annotated with boxes; model.kwargs.points=true needs point annotations")
        return kw

    def prepare(self, model: Any) -> None:
        if not is_density(model) and not hasattr(model, "compute_loss"):
            raise ConfigError(f"model {self.cfg.model.name!r} has no compute_loss(out, boxes, labels); it cannot be trained here")
        self._model = model

    def batch_loss(self, idx, gen, forward):
        import torch

        from openmia.engine.device import to_device
        from openmia.transforms.intensity import to_float_tensor
        from openmia.transforms.objects import augment_objects, crop_objects

        tr, opts = self.splits["train"], self.options
        # crops and flips run on the CPU (their random draws come from the CPU generator ``gen``)
        x = to_float_tensor(tr.images[idx], self.spec.normalization)
        objs, classes = [tr.objects[i] for i in idx], [tr.classes[i] for i in idx]
        if opts.crop:
            x, objs, classes = crop_objects(x, objs, classes, opts.crop, self.kind, gen)
        x, objs = augment_objects(x, objs, self.kind, self.cfg.data.augment, gen)
        x = to_device(x, self.device)
        out = forward(x)
        if is_density(self._model):
            from openmia.data.synthetic_cells import density_map
            from openmia.models.detection import density_loss

            h, w = x.shape[-2:]
            dens = torch.as_tensor(np.stack([density_map(o, (h, w), sigma=self.density_sigma) for o in objs]))[:, None]
            return density_loss(out, dens.to(x.device))
        return self._model.compute_loss(out, [torch.as_tensor(o, dtype=torch.float32, device=x.device) for o in objs],
                                        [torch.as_tensor(c, dtype=torch.long, device=x.device) for c in classes])

    def _recompute_bn(self, model) -> None:
        """Batch-norm running statistics of ``model`` replaced by their average over the whole
        training images (no augmentation), computed with the current weights; the weights are
        unchanged. (torch's ``update_bn``, the step stochastic weight averaging uses.)"""
        from torch.optim.swa_utils import update_bn

        from openmia.engine.inference import iterate_batches

        tr, bs = self.splits["train"], self.cfg.data.batch_size
        update_bn((self.float_batch(tr.images[idx]) for idx in iterate_batches(len(tr.images), bs, shuffle=False)), model)

    def _predict(self, model, split: str) -> list[dict]:
        return predict_objects(model, self.splits[split].images, self.spec.normalization, self.cfg.data.eval_batch_size,
                               kind=self.kind, max_detections=self.max_detections, nms_iou=self.options.nms_iou)

    def validate(self, model) -> dict[str, float]:
        if self.options.recompute_bn:
            self._recompute_bn(model)
        va, k = self.splits["val"], self.spec.num_classes
        preds = self._predict(model, "val")
        counts = counts_at(preds, self._thresholds(preds, va), k)
        return {"count_mae": float(np.abs(counts - truth_counts(va.classes, k)).sum(1).mean()), **self.scores(preds, va)}

    def scores(self, preds: list[dict], split) -> dict[str, float]:
        """Scores besides the count MAE of validation predictions ``preds`` (none by default)."""
        return {}

    def _thresholds(self, preds: list[dict], split) -> np.ndarray:
        k = self.spec.num_classes
        if preds and "count" in preds[0]:
            return np.zeros(1)
        if self.options.score_threshold is not None:
            return np.full(k, self.options.score_threshold)
        return choose_count_thresholds(preds, split.classes, k)

    # -- final evaluation (test touched once, here)
    def _write_split(self, run_dir: Path, split: str, preds: list[dict], thresholds: np.ndarray) -> None:
        """Detection and count CSVs of ``split`` in original image pixels."""
        from openmia.evaluation.writers import detection_header, detection_rows

        s, names, kind = self.splits[split], self.spec.label_names, self.kind
        header = detection_header(kind, self.spec.dims, scores=False)
        tile = 2 if kind == "box" else 1

        def scaled(o: np.ndarray, i: int) -> np.ndarray:
            return np.asarray(o, float).reshape(-1, len(header) - 2) * np.tile(s.scales[i], tile)

        truth, counts_t = [header], [["case_id", "label", "count"]]
        for i, cid in enumerate(s.case_ids):
            truth += detection_rows(cid, scaled(s.objects[i], i), None, s.classes[i], names) or [[cid, "", *[""] * (len(header) - 2)]]
            tc = np.bincount(s.classes[i], minlength=len(names))
            counts_t += [[cid, n, int(tc[k])] for k, n in enumerate(names)]
        counts_p = [["case_id", "label", "count"]]
        cm = counts_at(preds, thresholds, len(names))
        for i, cid in enumerate(s.case_ids):
            counts_p += [[cid, n, f"{cm[i, k]:.6g}"] for k, n in enumerate(names)]
        fileio.write_csv(run_dir / "truth" / f"{split}_counts.csv", counts_t)
        fileio.write_csv(run_dir / "predictions" / f"{split}_counts.csv", counts_p)
        if preds and "count" in preds[0]:
            return
        fileio.write_csv(run_dir / "truth" / f"{split}.csv", truth)
        rows = [detection_header(kind, self.spec.dims, scores=True)]
        for i, (cid, p) in enumerate(zip(s.case_ids, preds)):
            rows += detection_rows(cid, scaled(p["objects"], i), p["scores"], p["labels"], names)
        fileio.write_csv(run_dir / "predictions" / f"{split}.csv", rows)

    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        from openmia.evaluation.detection import evaluate_detection_files
        from openmia.evaluation.other_tasks import evaluate_counting_files

        names = self.spec.label_names
        preds = {s: self._predict(model, s) for s in ("val", *splits) if s in self.splits}
        thresholds = self._thresholds(preds["val"], self.splits["val"])  # chosen on validation only
        summaries, table = {}, ""
        for split in splits:
            self._write_split(run_dir, split, preds[split], thresholds)
            out = run_dir / "eval" / split
            kw = {"n_resamples": self.cfg.eval.n_resamples, "seed": self.cfg.eval.seed}
            cres = evaluate_counting_files(run_dir / "predictions" / f"{split}_counts.csv",
                                           run_dir / "truth" / f"{split}_counts.csv", out / "counting", **kw)
            summary = {"counting": cres.summary, "count_thresholds": dict(zip(names, map(float, thresholds)))
                       if not is_density(model) else None}
            text = cres.table()
            if (run_dir / "predictions" / f"{split}.csv").is_file():
                dres = evaluate_detection_files(run_dir / "predictions" / f"{split}.csv", run_dir / "truth" / f"{split}.csv",
                                                out, score_threshold=float(np.min(thresholds)), **kw)
                summary["detection"] = dres.summary
                key = "ap50" if dres.summary["kind"] == "box" else "ap"
                rows = {lab: dres.metric(key, lab) for lab in dres.summary["labels"] if lab != "all"}
                per_class = "\n".join(f"{lab:<16} {key} {_fmt(r['value'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
                                      for lab, r in rows.items())
                text = dres.table() + "\n\nper class (95% CI)\n" + per_class + "\n\ncounts per image\n" + text
            summary["metrics"] = [*summary.get("detection", {}).get("metrics", []),
                                  *({**m, "metric": f"count_{m['metric']}"} for m in cres.summary["metrics"])]
            fileio.write_json(out / "summary_all.json", summary)
            fileio.write_text(out / "report.txt", text + "\n")
            summaries[split] = summary
            if split == "test":
                table = text
        return Evaluation(summaries, table, {"count_thresholds": summaries[splits[-1]]["count_thresholds"]})

    def predict(self, run, inputs: Path, out: Path, **opts: Any) -> dict[str, Any]:
        raise ConfigError(f"{run.run_dir} is a {self.name} run; use `openmia count --model {run.run_dir} IMAGES... --out DIR` "
                          "(counts, detections and overlays)")

    def detect(self, model, images: np.ndarray) -> list[dict]:
        """Detections (or density counts) of images ``(N, C, *spatial)`` with the run's decoding settings."""
        return predict_objects(model, images, self.spec.normalization, 1, kind=self.kind,
                               max_detections=self.max_detections, nms_iou=self.options.nms_iou)
