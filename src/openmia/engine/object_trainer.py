"""Training loop for detection and counting runs (images with boxes or points).

Same run directory, budget, checkpoints, resume and EMA as :class:`~openmia.engine.trainer.Trainer`
(this class reuses them); what differs is the batch (a list of boxes/points per image), the loss
(the model's own ``compute_loss``, or the density-map loss), model selection (validation mAP@0.5
or count MAE) and the final evaluation:

    predictions/{val,test}.csv         detections ``case_id,label,score,x1,y1,x2,y2`` (or ``x,y``), in
                                       the original image's pixels (DESIGN §4.1)
    predictions/{val,test}_counts.csv  ``case_id,label,count`` per class
    truth/...                          the same formats for the annotations
    eval/{split}/                      detection report (AP@0.5, mAP@0.5:0.95, per-class AP, FROC)
    eval/{split}/counting/             count MAE / RMSE / relative error per class, with CIs

Counting runs train a density model (count = integral) or a point detector (count = detections
at or above the count threshold). The count threshold of detectors is chosen per class on the
validation split (the MAE-minimising score on a 0.05 grid) unless ``eval.score_threshold`` fixes
it; the test split never informs it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from openmia import fileio
from openmia.engine.trainer import Trainer, TrainResult, _append_jsonl, _headline, _progress, iterate_batches
from openmia.errors import ConfigError

log = logging.getLogger(__name__)

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)
AUGMENTS = ("none", "flip", "dihedral")
DENSITY_SIGMA = 2.0  # px; the Gaussian of the density-map targets (cells are 4-8 px across)


def is_density(model) -> bool:
    """Density-map counters have ``count`` and no ``detect``."""
    return hasattr(model, "count") and not hasattr(model, "detect")


def augment_objects(x, objects: list[np.ndarray], kind: str, mode: str, gen):
    """Random flips of each image in ``x`` ``(N, C, *spatial)`` with its boxes ``(k, 4)`` / points
    ``(k, dims)`` (x, y[, z]) in pixels: ``flip`` flips every spatial axis with probability 1/2;
    ``dihedral`` also swaps x and y (with the flips: all 8 right-angle symmetries of a square
    image; in 3D the volume's x-y plane). Returns the new tensor and object arrays."""
    import torch

    if mode == "none":
        return x, objects
    n, dims = x.shape[0], x.dim() - 2
    extent = list(x.shape[2:][::-1])  # x, y[, z]
    draws = torch.rand(n, dims + 1, generator=gen).numpy() < 0.5
    xs, out = [], []
    for i in range(n):
        xi, o = x[i], np.array(objects[i], dtype=np.float32, copy=True)
        if mode == "dihedral" and draws[i, dims] and extent[0] == extent[1]:
            xi = xi.transpose(-1, -2)
            o = o[:, [1, 0, 3, 2]] if kind == "box" else o[:, [1, 0, *range(2, dims)]]
        for a in range(dims):  # a = 0 is x (the last array axis)
            if not draws[i, a]:
                continue
            xi = torch.flip(xi, (xi.dim() - 1 - a,))
            if kind == "box":
                o[:, [a, a + 2]] = extent[a] - o[:, [a + 2, a]]
            else:
                o[:, a] = extent[a] - 1 - o[:, a]
        xs.append(xi)
        out.append(o)
    return torch.stack(xs), out


def crop_objects(x, objects: list[np.ndarray], classes: list[np.ndarray], size: int, kind: str, gen):
    """A random ``size``-sided crop of each image in ``x`` ``(N, C, *spatial)`` (axes shorter than
    ``size`` are kept whole). Points inside the crop are kept and shifted; boxes are kept when their
    centre is inside, shifted and clipped to the crop. Returns the cropped tensor and the object and
    class arrays."""
    import torch

    dims = x.dim() - 2
    extent = list(x.shape[2:][::-1])  # x, y[, z]
    side = [min(size, e) for e in extent]
    starts = (torch.rand(x.shape[0], dims, generator=gen).numpy() * (np.array(extent) - np.array(side) + 1)).astype(int)
    xs, objs, cls = [], [], []
    for i in range(x.shape[0]):
        lo, hi = starts[i], starts[i] + np.array(side)
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo[::-1], hi[::-1]))  # array order: (z,) y, x
        xs.append(x[(i, slice(None), *sl)])
        o = np.asarray(objects[i], dtype=np.float32).reshape(-1, 2 * dims if kind == "box" else dims)
        centre = (o[:, :dims] + o[:, dims:]) / 2 if kind == "box" else o
        keep = np.all((centre >= lo) & (centre < hi), axis=1)
        o = o[keep] - np.tile(lo, 2 if kind == "box" else 1).astype(np.float32)
        if kind == "box":
            o = np.clip(o, 0, np.tile(side, 2)).astype(np.float32)
        objs.append(o)
        cls.append(np.asarray(classes[i])[keep])
    return torch.stack(xs), objs, cls


def predict_objects(model, images: np.ndarray, normalization: str, batch_size: int, *, kind: str,
                    score_threshold: float = 0.05, max_detections: int = 500, nms_iou: float = 0.5) -> list[dict[str, np.ndarray]]:
    """Per image ``{"objects": (n, 4|2), "scores": (n,), "labels": (n,)}`` (detectors) or
    ``{"count": float}`` (density models), in input pixels, for images ``(N, C, H, W)``."""
    import torch

    from openmia.transforms.intensity import to_float_tensor

    model.eval()
    out: list[dict[str, np.ndarray]] = []
    with torch.no_grad():
        for idx in iterate_batches(len(images), batch_size, shuffle=False):
            x = to_float_tensor(images[idx], normalization)
            if is_density(model):
                out += [{"count": float(c)} for c in model.count(x)]
                continue
            for d in model.detect(x, score_threshold=score_threshold, max_detections=max_detections, nms_iou=nms_iou or None):
                key = "boxes" if kind == "box" else "points"
                out.append({"objects": d[key].numpy().astype(float), "scores": d["scores"].numpy().astype(float),
                            "labels": d["labels"].numpy().astype(int)})
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


def model_kwargs(cfg, spec, kind: str) -> dict[str, Any]:
    """The model factory's keyword arguments for a detection/counting run, checked against the
    data: a counting run may use a detector, which then predicts points (count = detections), and a
    detector on a point-annotated set predicts points."""
    from openmia.models import load_all

    mtask = load_all().get(cfg.model.name).meta.get("task")
    kw = dict(cfg.model.kwargs)
    if mtask == "detection" and (spec.task == "counting" or kind == "point"):
        if kw.get("points") is False:
            raise ConfigError(f"model.kwargs.points=false: {spec.name} has point annotations (a {spec.task} run); the detector "
                              f"{cfg.model.name!r} must predict points")
        kw["points"] = True
    elif mtask != spec.task:
        raise ConfigError(f"model.name={cfg.model.name!r} is a {mtask} model but the run's task is {cfg.task!r}; pick one "
                          f"of `openmia list models --task {cfg.task}`" + (" (or a detector)" if spec.task == "counting" else ""))
    elif spec.task == "detection" and kw.get("points") and kind == "box":
        raise ConfigError(f"{spec.name} is annotated with boxes; model.kwargs.points=true needs point annotations")
    return kw


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


class ObjectTrainer(Trainer):
    """Trainer for ``task: detection`` and ``task: counting`` (see the module docstring)."""

    def _setup(self) -> None:
        import torch

        from openmia.models import build_model

        self._load_data()
        cfg, spec, d = self.cfg, self.spec, self.cfg.data
        for key, bad in (("train.class_weights", cfg.train.class_weights != "none"), ("train.label_smoothing", cfg.train.label_smoothing),
                         ("train.loss", cfg.train.loss != "auto"), ("eval.tta", cfg.eval.tta),
                         ("eval.tta_scales", tuple(cfg.eval.tta_scales) != (1.0,)), ("train.batch_dice", not cfg.train.batch_dice),
                         ("eval.postprocess", cfg.eval.postprocess != "none"), ("eval.fill_empty", cfg.eval.fill_empty),
                         ("train.pretrain_epochs", cfg.train.pretrain_epochs)):
            if bad:
                raise ConfigError(f"{key} does not apply to {spec.task} runs (the model defines its own loss)")
        if d.augment not in AUGMENTS:
            raise ConfigError(f"data.augment={d.augment!r}: {spec.task} runs support {AUGMENTS} (boxes/points move with the image)")
        allowed = ("map50",) if spec.task == "detection" else ("count_mae",)
        sel = cfg.train.select_metric
        if sel != "auto" and sel not in allowed:
            raise ConfigError(f"train.select_metric={sel!r} does not apply to {spec.task}; use {allowed[0]} or auto")
        self.select_metric = allowed[0]
        self.kind = self.splits["train"].kind
        kw = model_kwargs(cfg, spec, self.kind)
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model.name, in_channels=spec.channels, num_classes=spec.num_classes, dims=spec.dims,
                                 input_size=spec.size, **kw)
        if not is_density(self.model) and not hasattr(self.model, "compute_loss"):
            raise ConfigError(f"model {cfg.model.name!r} has no compute_loss(out, boxes, labels); it cannot be trained here")
        self._init_optimization()
        self.max_detections = cfg.eval.max_detections or (100 if spec.task == "detection" else 1000)

    # -- one step's loss
    def _loss(self, x, objects: list[np.ndarray], classes: list[np.ndarray]):
        import torch

        out = self._forward(x)
        if is_density(self.model):
            from openmia.data.synthetic_cells import density_map
            from openmia.models.detection import density_loss

            h, w = x.shape[-2:]
            dens = torch.as_tensor(np.stack([density_map(o, (h, w), sigma=DENSITY_SIGMA) for o in objects]))[:, None]
            return density_loss(out, dens)
        return self.model.compute_loss(out, [torch.as_tensor(o, dtype=torch.float32) for o in objects],
                                       [torch.as_tensor(c, dtype=torch.long) for c in classes])

    def _recompute_bn(self, model) -> None:
        """Batch-norm running statistics of ``model`` replaced by their average over the whole
        training images (no augmentation), computed with the current weights; the weights are
        unchanged. (torch's ``update_bn``, the step stochastic weight averaging uses.)"""
        from torch.optim.swa_utils import update_bn

        from openmia.transforms.intensity import to_float_tensor

        tr, bs = self.splits["train"], self.cfg.data.batch_size
        update_bn((to_float_tensor(tr.images[idx], self.spec.normalization)
                   for idx in iterate_batches(len(tr.images), bs, shuffle=False)), model)

    def _validate(self, model) -> tuple[float, dict[str, float]]:
        """(selection score, higher is better; scores for metrics.jsonl) on the validation split."""
        va, spec, cfg = self.splits["val"], self.spec, self.cfg
        preds = predict_objects(model, va.images, spec.normalization, cfg.data.eval_batch_size, kind=self.kind,
                                max_detections=self.max_detections, nms_iou=cfg.eval.nms_iou)
        thr = self._thresholds(preds, va)
        counts = counts_at(preds, thr, spec.num_classes)
        mae = float(np.abs(counts - truth_counts(va.classes, spec.num_classes)).sum(1).mean())
        scores = {"count_mae": mae}
        if spec.task == "detection":
            from openmia.metrics.detection import detection_metrics

            key = "boxes" if self.kind == "box" else "points"
            p = {c: {key: q["objects"], "scores": q["scores"], "labels": q["labels"]} for c, q in zip(va.case_ids, preds)}
            t = {c: {key: o, "labels": k} for c, o, k in zip(va.case_ids, va.objects, va.classes)}
            m = detection_metrics(p, t, kind="box" if self.kind == "box" else "point")
            scores["map50"] = float(m["ap50"] if self.kind == "box" else m["ap"])
            return scores["map50"], scores
        return -mae, scores

    def _thresholds(self, preds: list[dict], split) -> np.ndarray:
        k = self.spec.num_classes
        if preds and "count" in preds[0]:
            return np.zeros(1)
        if self.cfg.eval.score_threshold is not None:
            return np.full(k, self.cfg.eval.score_threshold)
        return choose_count_thresholds(preds, split.classes, k)

    def fit(self, *, resume: bool = False, stop_after_epoch: int | None = None) -> TrainResult | None:
        import torch

        from openmia.transforms.intensity import to_float_tensor

        self._setup()
        cfg, spec, model = self.cfg, self.spec, self.model
        self._ckpt_dir().mkdir(parents=True, exist_ok=True)
        metrics_path = self.run_dir / "metrics.jsonl"
        if resume:
            self._load_last()
            log.info("resuming %s after epoch %d (%.0f s used)", self.run_dir, self.epoch, self.elapsed)
        tr = self.splits["train"]
        n_train, bs = len(tr.images), cfg.data.batch_size
        steps_per_epoch = max(1, -(-n_train // bs))
        with _progress(self.progress) as bar:
            job = bar.add_task("train", total=cfg.train.epochs, info="")
            bar.update(job, completed=self.epoch)
            while self.epoch < cfg.train.epochs and not self._out_of_time():
                ep = self.epoch
                gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + ep)  # per-epoch: exact resume
                model.train()
                t0 = self._clock()
                tot_loss, n_seen = 0.0, 0
                for step, idx in enumerate(iterate_batches(n_train, bs, shuffle=True, gen=gen)):
                    if len(idx) < 2 and n_train > 1:
                        continue  # a batch of one breaks batch norm
                    self._set_lr(ep + step / steps_per_epoch, self.elapsed + self._clock() - t0)
                    x = to_float_tensor(tr.images[idx], spec.normalization)
                    objs, classes = [tr.objects[i] for i in idx], [tr.classes[i] for i in idx]
                    if cfg.data.crop:
                        x, objs, classes = crop_objects(x, objs, classes, cfg.data.crop, self.kind, gen)
                    x, objs = augment_objects(x, objs, self.kind, cfg.data.augment, gen)
                    loss = self._loss(x, objs, classes)
                    self._apply(loss, ep, step)
                    tot_loss += loss.item() * len(idx)
                    n_seen += len(idx)
                    if self._budget_spent(self.elapsed + self._clock() - t0):
                        break
                eval_model = self.ema.module if self.ema is not None else model
                if cfg.train.recompute_bn:
                    self._recompute_bn(eval_model)
                sel, scores = self._validate(eval_model)
                self.elapsed += self._clock() - t0
                self.epoch = ep + 1
                train_loss = tot_loss / max(n_seen, 1)
                improved = bool(np.isfinite(sel) and sel > self.best_val)
                if improved:
                    self.best_val, self.best_epoch = float(sel), self.epoch
                    fileio.torch_save({"model": eval_model.state_dict(), "epoch": self.epoch, "val": float(sel)},
                                      self._ckpt_dir() / "best.pt")
                _append_jsonl(metrics_path, {"epoch": self.epoch, "train_loss": train_loss,
                                             **{f"val_{k}": v for k, v in scores.items()},
                                             "lr": self.optimizer.param_groups[0]["lr"], "elapsed": round(self.elapsed, 3),
                                             "best": improved})
                self._save_last()
                bar.update(job, completed=self.epoch, info=f"loss {train_loss:.3f} val {self.select_metric} "
                                                          f"{scores[self.select_metric]:.3f}")
                if stop_after_epoch is not None and self.epoch >= stop_after_epoch:
                    return None
        return self._finish()

    # -- final evaluation (test touched once, here)
    def _write_split(self, split: str, preds: list[dict], thresholds: np.ndarray) -> None:
        """Detection and count CSVs of ``split`` in original image pixels."""
        s, names = self.splits[split], self.spec.label_names
        coords = ["x1", "y1", "x2", "y2"] if self.kind == "box" else ["x", "y", "z"][: self.spec.dims]
        tile = 2 if self.kind == "box" else 1

        def scaled(o: np.ndarray, i: int) -> np.ndarray:
            return np.asarray(o, float).reshape(-1, len(coords)) * np.tile(s.scales[i], tile)

        truth = [["case_id", "label", *coords]]
        counts_t = [["case_id", "label", "count"]]
        for i, cid in enumerate(s.case_ids):
            objs = scaled(s.objects[i], i)
            truth += [[cid, names[k], *(f"{v:.6g}" for v in o)] for o, k in zip(objs, s.classes[i])] or [[cid, "", *[""] * len(coords)]]
            tc = np.bincount(s.classes[i], minlength=len(names))
            counts_t += [[cid, n, int(tc[k])] for k, n in enumerate(names)]
        counts_p = [["case_id", "label", "count"]]
        cm = counts_at(preds, thresholds, len(names))
        for i, cid in enumerate(s.case_ids):
            counts_p += [[cid, n, f"{cm[i, k]:.6g}"] for k, n in enumerate(names)]
        fileio.write_csv(self.run_dir / "truth" / f"{split}_counts.csv", counts_t)
        fileio.write_csv(self.run_dir / "predictions" / f"{split}_counts.csv", counts_p)
        if preds and "count" in preds[0]:
            return
        fileio.write_csv(self.run_dir / "truth" / f"{split}.csv", truth)
        rows = [["case_id", "label", "score", *coords]]
        for i, (cid, p) in enumerate(zip(s.case_ids, preds)):
            rows += [[cid, names[k], f"{sc:.6g}", *(f"{v:.6g}" for v in o)]
                     for o, sc, k in zip(scaled(p["objects"], i), p["scores"], p["labels"])]
        fileio.write_csv(self.run_dir / "predictions" / f"{split}.csv", rows)

    def _finish(self) -> TrainResult:
        import torch

        from openmia.engine.provenance import collect_provenance, finish_provenance
        from openmia.evaluation.other_tasks import evaluate_counting_files, evaluate_detection_files

        best = self._ckpt_dir() / "best.pt"
        if best.exists():
            self.model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["model"])
        elif self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        spec, cfg = self.spec, self.cfg
        prov = finish_provenance(collect_provenance(cfg, self.splits, self.model, threads=self.threads,
                                                    init_from=self.init_record), train_seconds=self.elapsed)
        fileio.write_json(self.run_dir / "provenance.json", prov)
        preds = {s: predict_objects(self.model, self.splits[s].images, spec.normalization, cfg.data.eval_batch_size,
                                    kind=self.kind, max_detections=self.max_detections, nms_iou=cfg.eval.nms_iou)
                 for s in ("val", "test")}
        thresholds = self._thresholds(preds["val"], self.splits["val"])  # chosen on validation only
        summaries, table = {}, ""
        for split in ("val", "test"):
            self._write_split(split, preds[split], thresholds)
            out = self.run_dir / "eval" / split
            kw = {"n_resamples": cfg.eval.n_resamples, "seed": cfg.eval.seed}
            cres = evaluate_counting_files(self.run_dir / "predictions" / f"{split}_counts.csv",
                                           self.run_dir / "truth" / f"{split}_counts.csv", out / "counting", **kw)
            summary = {"counting": cres.summary, "count_thresholds": dict(zip(spec.label_names, map(float, thresholds)))
                       if not is_density(self.model) else None}
            text = cres.table()
            if (self.run_dir / "predictions" / f"{split}.csv").is_file():
                dres = evaluate_detection_files(self.run_dir / "predictions" / f"{split}.csv",
                                                self.run_dir / "truth" / f"{split}.csv", out,
                                                score_threshold=float(np.min(thresholds)), **kw)
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
        result = TrainResult(self.run_dir, self.epoch, self.best_epoch, self.best_val, self.elapsed,
                             summaries["test"], summaries["val"], table)
        fileio.write_json(self.run_dir / "result.json", {
            "status": "complete", "epochs_done": self.epoch, "best_epoch": self.best_epoch, "best_val": self.best_val,
            "select_metric": self.select_metric, "train_seconds": round(self.elapsed, 3),
            "count_thresholds": summaries["test"]["count_thresholds"],
            "test": _headline(summaries["test"]), "val": _headline(summaries["val"]),
        })
        try:
            from openmia.bench.store import RunStore

            RunStore.default().record(self.run_dir)
        except Exception as exc:
            log.warning("run finished but could not be added to the run index: %s", exc)
        return result

