"""The training loop: seeds, time budget, model selection on validation, atomic checkpoints,
resume after a kill, predictions and the evaluator's report on val and test.

Run directory layout (one per run)::

    config.yaml              resolved config (the run can be re-created from it)
    provenance.json          DESIGN §4.6: data checksums, split hashes, versions, hardware, ...
    metrics.jsonl            one JSON line per epoch
    checkpoints/last.pt      model + optimizer + RNG + progress (for --resume), atomic
    checkpoints/best.pt      weights with the best validation score, atomic
    init_from.json           train.init_from only: the weights the run started from (path, SHA-256, names)
    predictions/{val,test}.csv, truth/{val,test}.csv   evaluator input formats (DESIGN §4.1)
    eval/{val,test}/         per_case.csv, summary.json, report.txt
    result.json              written last: the run is complete when it exists
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from openmia import fileio
from openmia.config import RunConfig, dump_yaml, load_config
from openmia.errors import ConfigError, RunDirError

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


@dataclass
class TrainResult:
    """What a finished run returns (also saved as ``result.json``)."""

    run_dir: Path
    epochs_done: int
    best_epoch: int
    best_val: float
    train_seconds: float
    test_summary: dict[str, Any]
    val_summary: dict[str, Any]
    table: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers


def set_threads(n: int | None) -> int:
    """Set torch's intra-op threads (default: the CPUs this process may use)."""
    import torch

    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def make_run_dir(cfg: RunConfig) -> Path:
    """A fresh, uniquely named run directory under ``cfg.out_dir``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = cfg.name or f"{cfg.data.dataset.replace('/', '-')}-{cfg.model.name}-s{cfg.train.seed}"
    root = Path(cfg.out_dir)
    for i in range(1000):
        d = root / f"{stamp}-{base}" if i == 0 else root / f"{stamp}-{base}-{i}"
        try:
            d.mkdir(parents=True)
            return d
        except FileExistsError:
            continue
    raise RunDirError(f"could not create a new run directory under {root}")


def iterate_batches(n: int, batch_size: int, *, shuffle: bool, gen=None) -> Iterator[np.ndarray]:
    """Index batches over ``n`` cases; shuffled with the torch generator ``gen``."""
    import torch

    order = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
    for s in range(0, n, batch_size):
        # sorted indices read the (possibly strided) uint8 array faster; order within a batch is irrelevant
        yield np.sort(order[s : s + batch_size])


def predict_proba(model, task, images: np.ndarray, normalization: str, batch_size: int, *, tta: bool = False,
                  scales: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """Probabilities ``(N, K)`` (segmentation ``(N, K, *spatial)``) for images ``(N, C, *spatial)``
    in eval mode; ``tta`` averages the logits over every combination of axis flips, ``scales``
    (segmentation) over input scale factors (:func:`~openmia.engine.inference.multiscale_logits`)."""
    import torch

    from openmia.engine.inference import flip_tta_logits, multiscale_logits
    from openmia.transforms.intensity import to_float_tensor

    model.eval()
    out = []
    with torch.no_grad():
        for idx in iterate_batches(len(images), batch_size, shuffle=False):
            x = to_float_tensor(images[idx], normalization)
            out.append(task.probabilities(multiscale_logits(x, lambda xs: flip_tta_logits(model, xs, tta), scales)))
    return np.concatenate(out, axis=0) if out else np.zeros((0, task.num_outputs()))


def quick_scores(probs: np.ndarray, labels: np.ndarray, task_type: str) -> dict[str, float]:
    """Validation scores for model selection (point estimates; CIs come from the evaluator).

    Classification: AUC, ACC and NLL. Segmentation: mean foreground Dice, voxel accuracy and the
    mean voxel NLL (``probs`` ``(N, K, *spatial)``, ``labels`` ``(N, *spatial)``).
    """
    if task_type == "segmentation":
        from openmia.tasks.segmentation import mean_foreground_dice

        pred = probs.argmax(1)
        p_true = np.take_along_axis(probs, labels[:, None].astype(np.int64), axis=1)
        nll = float(-np.log(np.clip(p_true, 1e-15, 1.0)).mean())
        return {"dice": mean_foreground_dice(pred, labels, probs.shape[1]), "acc": float((pred == labels).mean()),
                "loss": nll, "auc": float("nan")}
    from sklearn.metrics import roc_auc_score

    try:
        if task_type == "binary":
            auc = roc_auc_score(labels, probs[:, 1])
        elif task_type == "multi-label":
            auc = roc_auc_score(labels, probs, average="macro")
        else:
            auc = roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(probs.shape[1])))
    except ValueError:  # a class absent from this split: AUC undefined
        auc = float("nan")
    p = np.clip(probs, 1e-15, 1 - 1e-15)
    if task_type == "multi-label":
        acc = float(((probs >= 0.5) == labels.astype(bool)).mean())
        nll = float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
    else:
        acc = float((probs.argmax(1) == labels).mean())
        nll = float(-np.log(p[np.arange(len(labels)), labels]).mean())
    return {"auc": float(auc), "acc": acc, "loss": nll}


def write_predictions(path: Path, case_ids: list[str], probs: np.ndarray, spec) -> None:
    """Prediction CSV per DESIGN §4.1 (binary: ``case_id,score``; else one column per class)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    if spec.task_type == "binary":
        w.writerow(["case_id", "score"])
        for c, p in zip(case_ids, probs[:, 1]):
            w.writerow([c, repr(float(p))])
    else:
        w.writerow(["case_id", *spec.label_names])
        for c, row in zip(case_ids, probs):
            w.writerow([c, *(repr(float(v)) for v in row)])
    fileio.write_text(path, buf.getvalue())


def write_truth(path: Path, case_ids: list[str], labels: np.ndarray, spec) -> None:
    """Truth CSV per DESIGN §4.1 (``case_id,label``; multi-label: one 0/1 column per label)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    if spec.task_type == "multi-label":
        w.writerow(["case_id", *spec.label_names])
        for c, row in zip(case_ids, labels):
            w.writerow([c, *(int(v) for v in row)])
    else:
        w.writerow(["case_id", "label"])
        for c, v in zip(case_ids, labels):
            w.writerow([c, int(v)])
    fileio.write_text(path, buf.getvalue())


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    # append + flush + fsync: a killed run keeps every completed epoch's line
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"), disable=not enabled, transient=True,
    )


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Trains one model on one data set according to a :class:`RunConfig`.

    Use :func:`train` or :func:`resume` rather than this class directly.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress

    # -- setup
    def _load_data(self) -> None:
        """Threads, determinism, the three splits and their spec (checked against ``cfg.task``)."""
        import torch

        from openmia.data.catalog import load_split

        cfg = self.cfg
        self.threads = set_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
        d = cfg.data
        self.splits = {s: load_split(d.dataset, s, size=d.size, root=d.root, fold=d.fold) for s in ("train", "val", "test")}
        self.spec = self.splits["train"].spec
        if cfg.train.refit:  # the validation cases join training; nothing is validated or selected
            from openmia.data.catalog import merge_splits

            if self.spec.task not in ("classification", "segmentation"):
                raise ConfigError(f"train.refit applies to classification and segmentation runs; {self.spec.task} runs "
                                  "need the validation split (their score thresholds are chosen on it)")
            self.splits["train"] = merge_splits(self.splits["train"], self.splits["val"])
        if cfg.task != self.spec.task:
            raise ConfigError(f"data.dataset={d.dataset!r} is a {self.spec.task} data set but the run's task is {cfg.task!r}; "
                              f"set task: {self.spec.task}")

    def _setup(self) -> None:
        import torch

        from openmia.models import build_model
        from openmia.tasks.classification import ClassificationTask, balanced_class_weights

        self._load_data()
        cfg, spec = self.cfg, self.spec
        if spec.task == "segmentation":
            from openmia.tasks.segmentation import SegmentationTask

            if cfg.train.class_weights != "none" or cfg.train.label_smoothing:
                raise ConfigError("train.class_weights and train.label_smoothing apply to classification only; "
                                  "for segmentation choose the loss with train.loss (dice, ce, dice_ce, focal, tversky)")
            self.task = SegmentationTask(spec.num_classes, "dice_ce" if cfg.train.loss == "auto" else cfg.train.loss,
                                         batch_dice=cfg.train.batch_dice)
        else:
            if cfg.train.loss != "auto":
                raise ConfigError(f"train.loss={cfg.train.loss!r} applies to segmentation; classification uses the "
                                  "task type's loss (cross-entropy or binary cross-entropy)")
            if not cfg.train.batch_dice:
                raise ConfigError("train.batch_dice=false applies to segmentation's Dice loss; classification uses "
                                  "the task type's loss (cross-entropy or binary cross-entropy)")
            weights = None
            if cfg.train.class_weights == "balanced":
                weights = balanced_class_weights(self.splits["train"].labels, spec.task_type, spec.num_classes)
            self.task = ClassificationTask(spec.task_type, spec.num_classes, weights, cfg.train.label_smoothing)
        if cfg.eval.tta and spec.task != "segmentation":
            raise ConfigError("eval.tta (flip test-time augmentation) applies to segmentation runs")
        if tuple(cfg.eval.tta_scales) != (1.0,) and spec.task != "segmentation":
            raise ConfigError("eval.tta_scales (multi-scale test-time augmentation) applies to segmentation runs")
        if cfg.eval.postprocess != "none" and spec.task != "segmentation":
            raise ConfigError("eval.postprocess applies to segmentation runs (label maps)")
        if cfg.eval.fill_empty and spec.task != "segmentation":
            raise ConfigError("eval.fill_empty applies to segmentation runs (label maps)")
        if cfg.data.crop:
            raise ConfigError(f"data.crop applies to detection and counting runs; {spec.task} runs train on whole images")
        if cfg.train.recompute_bn:
            raise ConfigError(f"train.recompute_bn applies to detection and counting runs, not {spec.task}")
        sel = cfg.train.select_metric
        allowed = ("dice", "loss") if spec.task == "segmentation" else ("auc", "acc", "loss")
        if sel != "auto" and sel not in allowed:
            raise ConfigError(f"train.select_metric={sel!r} does not apply to {spec.task}; use one of {allowed} or auto")
        self.select_metric = sel if sel != "auto" else allowed[0]
        from openmia.models import load_all

        entry = load_all().get(cfg.model.name)
        if entry.meta.get("task") != cfg.task:
            raise ConfigError(f"model.name={cfg.model.name!r} is a {entry.meta.get('task')} model but the run's task is "
                              f"{cfg.task!r}; pick one of `openmia list models --task {cfg.task}`")
        torch.manual_seed(cfg.train.seed)  # model initialisation
        self.model = build_model(
            cfg.model.name, in_channels=spec.channels, num_classes=spec.num_classes, dims=spec.dims,
            input_size=spec.size, **cfg.model.kwargs,
        )
        self._init_optimization()

    def _init_optimization(self) -> None:
        """Optimizer, optional weight EMA, budget clock and progress counters (every task)."""
        import torch

        cfg = self.cfg
        self.init_record = self._init_weights()
        o = cfg.optim
        params = self.model.parameters()
        if o.name == "adam":
            self.optimizer = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        elif o.name == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.momentum > 0)
        # EMA of the weights (Polyak averaging): validated, selected and tested instead of the raw
        # weights; on small sets it smooths the epoch-to-epoch noise that model selection sees
        self.ema = None
        if cfg.train.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=True)
        # the budget clock: wall time, or this process's CPU time (fair budgets when runs share cores)
        self._clock = time.process_time if cfg.train.budget_clock == "cpu" else time.perf_counter
        self.epoch = 0  # epochs completed
        self.elapsed = 0.0  # training seconds used (train + validation), across resumes
        self.best_val = -float("inf")
        self.best_epoch = -1
        self.pretrained = False

    def _init_weights(self) -> dict[str, Any] | None:
        """``train.init_from`` on a fresh run; a resumed or re-scored run has its own checkpoint and
        only reads back the record (``init_from.json``) for its provenance."""
        if not self.cfg.train.init_from:
            return None
        record = self.run_dir / "init_from.json"
        if (self._ckpt_dir() / "last.pt").is_file():
            return json.loads(record.read_text()) if record.is_file() else None
        from openmia.engine.transfer import load_matching_weights

        rec = load_matching_weights(self.model, self.cfg.train.init_from)
        fileio.write_json(record, rec)
        return rec

    # -- checkpoints
    def _ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _save_last(self) -> None:
        import torch

        fileio.torch_save(
            {
                "version": CHECKPOINT_VERSION,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch,
                "elapsed": self.elapsed,
                "best_val": self.best_val,
                "best_epoch": self.best_epoch,
                "pretrained": self.pretrained,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "torch_rng": torch.get_rng_state(),
            },
            self._ckpt_dir() / "last.pt",
        )

    def _load_last(self) -> None:
        import torch

        path = self._ckpt_dir() / "last.pt"
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or foreign file
            raise RunDirError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc}); the run cannot be resumed") from None
        if ck.get("version") != CHECKPOINT_VERSION:
            raise RunDirError(f"{path}: checkpoint version {ck.get('version')!r}, expected {CHECKPOINT_VERSION}")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.epoch, self.elapsed = int(ck["epoch"]), float(ck["elapsed"])
        self.best_val, self.best_epoch = float(ck["best_val"]), int(ck["best_epoch"])
        self.pretrained = bool(ck["pretrained"])
        if self.ema is not None:
            if ck.get("ema") is None:
                raise RunDirError(f"{path}: the run's config asks for train.ema but the checkpoint holds no EMA weights")
            self.ema.load_state_dict(ck["ema"])
        torch.set_rng_state(ck["torch_rng"])

    # -- loop
    def _budget_progress(self, epoch_float: float) -> float:
        t = self.cfg.train
        p = epoch_float / t.epochs
        if t.max_minutes:
            p = max(p, self.elapsed / (60.0 * t.max_minutes))
        return p

    def _out_of_time(self) -> bool:
        return self._budget_spent(self.elapsed)

    def _set_lr(self, epoch_float: float, spent: float) -> None:
        """Learning rate at ``epoch_float`` with ``spent`` budget seconds used (schedule of DESIGN §5)."""
        from openmia.engine.schedule import lr_factor

        t = self.cfg.train
        prog = max(epoch_float / t.epochs, spent / (60 * t.max_minutes) if t.max_minutes else 0)
        for g in self.optimizer.param_groups:
            g["lr"] = self.cfg.optim.lr * lr_factor(self.cfg.schedule, progress=prog, epoch_float=epoch_float)

    def _apply(self, loss, epoch: int, step: int) -> None:
        """One optimiser step on ``loss`` (refused when not finite) and the EMA update."""
        import torch

        if not torch.isfinite(loss):
            raise RunDirError(f"training diverged at epoch {epoch + 1} step {step}: loss is {loss.item()}; lower optim.lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _forward(self, x):
        """The model's training forward pass in ``train.precision``; outputs (tensors, or lists/tuples/dicts
        of them) come back as fp32 so every loss is computed in full precision."""
        if self.cfg.train.precision == "fp32":
            return self.model(x)
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return _to_fp32(self.model(x))

    def _budget_spent(self, spent: float) -> bool:
        """True once ``spent`` seconds reach ``train.max_minutes`` (a hard limit, also mid-epoch)."""
        m = self.cfg.train.max_minutes
        return bool(m) and spent >= 60 * m

    def _batches_for_pretrain(self) -> Callable[[], Iterator[Any]]:
        import torch

        from openmia.transforms.intensity import to_float_tensor

        tr, bs, norm = self.splits["train"], self.cfg.data.batch_size, self.spec.normalization
        gen = torch.Generator().manual_seed(self.cfg.train.seed + 7919)

        def batches():
            for idx in iterate_batches(len(tr.images), bs, shuffle=True, gen=gen):
                yield to_float_tensor(tr.images[idx], norm)

        return batches

    def fit(self, *, resume: bool = False, stop_after_epoch: int | None = None) -> TrainResult | None:
        """Run the loop to the end (or resume it). ``stop_after_epoch`` simulates a kill (tests)."""
        import torch

        from openmia.losses.segmentation import DeepSupervision
        from openmia.transforms.augment import augment_batch, augment_pair
        from openmia.transforms.intensity import to_float_tensor

        self._setup()
        cfg, spec, model, task = self.cfg, self.spec, self.model, self.task
        self._ckpt_dir().mkdir(parents=True, exist_ok=True)
        metrics_path = self.run_dir / "metrics.jsonl"
        if resume:
            self._load_last()
            log.info("resuming %s after epoch %d (%.0f s used)", self.run_dir, self.epoch, self.elapsed)
        if hasattr(model, "pretrain") and cfg.train.pretrain_epochs > 0 and not self.pretrained:
            t0 = self._clock()
            hist = model.pretrain(self._batches_for_pretrain(), epochs=cfg.train.pretrain_epochs, seed=cfg.train.seed)
            self.elapsed += self._clock() - t0
            self.pretrained = True
            _append_jsonl(metrics_path, {"phase": "pretrain", "history": hist, "elapsed": self.elapsed})
            self._save_last()

        tr, va = self.splits["train"], self.splits["val"]
        n_train, bs = len(tr.images), cfg.data.batch_size
        steps_per_epoch = max(1, -(-n_train // bs))
        labels_t = torch.as_tensor(np.asarray(tr.labels, dtype=np.int64))
        segmentation = spec.task == "segmentation"
        deep = DeepSupervision(task.loss) if segmentation else None
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
                        continue  # a batch of one breaks batch norm and adds nothing
                    self._set_lr(ep + step / steps_per_epoch, self.elapsed + self._clock() - t0)
                    x = to_float_tensor(tr.images[idx], spec.normalization)
                    y = labels_t[idx]
                    if segmentation:
                        x, y = augment_pair(x, y, cfg.data.augment, gen)
                        out = self._forward(x)
                        aux = _to_fp32(getattr(model, "aux_outputs", None))
                        loss = deep(out, aux, y) if aux else task.loss(out, y)
                    else:
                        x = augment_batch(x, cfg.data.augment, gen)
                        loss = task.loss(self._forward(x), y)
                    self._apply(loss, ep, step)
                    tot_loss += loss.item() * len(idx)
                    n_seen += len(idx)
                    if self._budget_spent(self.elapsed + self._clock() - t0):
                        break
                eval_model = self.ema.module if self.ema is not None else model
                scores = None  # a refit has no validation: every epoch's weights replace the kept ones
                if not cfg.train.refit:
                    val_probs = predict_proba(eval_model, task, va.images, spec.normalization, cfg.data.eval_batch_size)
                    scores = quick_scores(val_probs, va.labels, spec.task_type)
                self.elapsed += self._clock() - t0
                self.epoch = ep + 1
                train_loss = tot_loss / max(n_seen, 1)
                rec: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss}
                if scores is None:
                    improved, kept, info = True, {}, "(refit: no validation)"
                    self.best_epoch = self.epoch
                else:
                    # model selection on the validation split only ("loss" = validation NLL, lower is better)
                    sel = -scores["loss"] if self.select_metric == "loss" else scores[self.select_metric]
                    improved = bool(np.isfinite(sel) and sel > self.best_val)
                    if improved:
                        self.best_val, self.best_epoch = float(sel), self.epoch
                    kept = {"val": float(sel)}
                    rec.update({"val_auc": scores["auc"], "val_acc": scores["acc"],
                                **({"val_dice": scores["dice"]} if "dice" in scores else {}), "val_loss": scores["loss"]})
                    info = f"val {self.select_metric} {scores.get(self.select_metric, -scores['loss']):.3f}"
                if improved:
                    fileio.torch_save({"model": eval_model.state_dict(), "epoch": self.epoch, **kept}, self._ckpt_dir() / "best.pt")
                _append_jsonl(metrics_path, {**rec, "lr": self.optimizer.param_groups[0]["lr"], "elapsed": round(self.elapsed, 3),
                                             "best": improved})
                self._save_last()
                bar.update(job, completed=self.epoch, info=f"loss {train_loss:.3f} {info}")
                if stop_after_epoch is not None and self.epoch >= stop_after_epoch:
                    return None
        return self._finish()

    def _evaluate_segmentation(self, split: str, prov: dict[str, Any]):
        """Predict ``split`` slice by batch, write label maps (``predictions/<split>/<case>.npy``,
        truth likewise) and score them with the segmentation evaluator."""
        from openmia.evaluation.segmentation import evaluate_segmentation, write_outputs
        from openmia.evaluation.label_maps import load_npy
        from openmia.transforms.postprocess import postprocess_labels

        s, spec, cfg = self.splits[split], self.spec, self.cfg
        pred_dir, truth_dir = self.run_dir / "predictions" / split, self.run_dir / "truth" / split
        pred_dir.mkdir(parents=True, exist_ok=True)
        truth_dir.mkdir(parents=True, exist_ok=True)
        names = [_safe_name(c) for c in s.case_ids]
        # padded sets: score each case on its own voxel grid (the padding is not part of the image)
        regions = s.regions or [(...,)] * len(names)
        bs = cfg.data.eval_batch_size
        for i in range(0, len(names), bs):  # batch by batch: a split's probabilities never sit in memory at once
            probs = predict_proba(self.model, self.task, s.images[i : i + bs], spec.normalization, bs, tta=cfg.eval.tta,
                                  scales=cfg.eval.tta_scales)
            for j, lab in enumerate(probs.argmax(1).astype(np.uint8)):
                region = regions[i + j]
                lab = postprocess_labels(lab[region], cfg.eval.postprocess, spec.num_classes, fill_empty=cfg.eval.fill_empty,
                                         prob=lambda k, p=probs[j], r=region: p[k][r])
                fileio.save_npy(pred_dir / f"{names[i + j]}.npy", lab)
                fileio.save_npy(truth_dir / f"{names[i + j]}.npy", np.asarray(s.labels[i + j][region], dtype=np.uint8))
        spacing = spec.spacing or (1.0,) * spec.dims
        index = {n: k for k, n in enumerate(names)}

        def load(name: str):
            k = index[name]
            return load_npy(pred_dir / f"{name}.npy"), np.asarray(s.labels[k][regions[k]]), spacing

        res = evaluate_segmentation(names, load, labels=range(1, spec.num_classes),
                                    label_names={k: spec.label_names[k] for k in range(1, spec.num_classes)},
                                    n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed)
        write_outputs(res, self.run_dir / "eval" / split, provenance=prov)
        return res

    # -- final evaluation (test touched once, here)
    def _finish(self) -> TrainResult:
        import torch

        from openmia.evaluation.classification import evaluate_classification, write_outputs
        from openmia.engine.provenance import collect_provenance, finish_provenance

        best = self._ckpt_dir() / "best.pt"
        if best.exists():
            self.model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["model"])
        elif self.ema is not None:  # no epoch ever improved (e.g. NaN scores): the EMA weights are still the model
            self.model.load_state_dict(self.ema.module.state_dict())
        spec, cfg = self.spec, self.cfg
        summaries, table = {}, ""
        prov = collect_provenance(cfg, self.splits, self.model, threads=self.threads, init_from=self.init_record)
        prov = finish_provenance(prov, train_seconds=self.elapsed)
        fileio.write_json(self.run_dir / "provenance.json", prov)
        summaries["val"] = {}  # a refit run trained on the validation cases: they are not scored
        for split in ("test",) if cfg.train.refit else ("val", "test"):
            s = self.splits[split]
            if spec.task == "segmentation":
                res = self._evaluate_segmentation(split, prov)
                summaries[split] = res.summary
                if split == "test":
                    table = res.table(metrics=["dice", "iou", "hd95", "assd", "nsd"], label="all")
                    fileio.write_text(self.run_dir / "eval" / split / "report.txt", table + "\n")
                continue
            probs = predict_proba(self.model, self.task, s.images, spec.normalization, cfg.data.eval_batch_size)
            write_predictions(self.run_dir / "predictions" / f"{split}.csv", s.case_ids, probs, spec)
            write_truth(self.run_dir / "truth" / f"{split}.csv", s.case_ids, s.labels, spec)
            ev_probs = probs[:, 1] if spec.task_type == "binary" else probs
            res = evaluate_classification(
                ev_probs, s.labels, s.case_ids, task_type=spec.task_type, label_names=list(spec.label_names),
                n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed,
            )
            write_outputs(res, self.run_dir / "eval" / split, provenance=prov)
            summaries[split] = res.summary
            if split == "test":
                table = res.table()
                fileio.write_text(self.run_dir / "eval" / split / "report.txt", table + "\n")
        result = TrainResult(self.run_dir, self.epoch, self.best_epoch, self.best_val, self.elapsed,
                             summaries["test"], summaries["val"], table)
        fileio.write_json(self.run_dir / "result.json", {
            "status": "complete", "epochs_done": self.epoch, "best_epoch": self.best_epoch,
            "best_val": self.best_val if np.isfinite(self.best_val) else None, "select_metric": self.select_metric,
            "refit": cfg.train.refit,
            "train_seconds": round(self.elapsed, 3),
            "test": _headline(summaries["test"]), "val": _headline(summaries["val"]),
        })
        try:
            from openmia.bench.store import RunStore

            RunStore.default().record(self.run_dir)
        except Exception as exc:  # the run itself is complete; indexing is best effort but reported
            log.warning("run finished but could not be added to the run index: %s", exc)
        return result


def _to_fp32(out):
    """``out`` with every floating tensor in it cast to fp32 (lists, tuples and dicts are walked)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_fp32(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_fp32(v) for k, v in out.items()}
    return out


def _safe_name(case_id: str) -> str:
    """A file name for a case id (``synthetic/seg2d/test/00001`` -> ``synthetic_seg2d_test_00001``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case_id)


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The aggregate ('all' / overall) value of each metric with its CI."""
    out = {}
    for m in summary.get("metrics", []):
        if m.get("label") == "all":
            out[m["metric"]] = {"value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high")}
    return out


# ----------------------------------------------------------------------------- entry points


def make_trainer(cfg: RunConfig, run_dir: Path, *, progress: bool = True) -> Trainer:
    """The trainer for ``cfg.task`` (detection and counting have their own loop)."""
    if cfg.task in ("detection", "counting"):
        from openmia.engine.object_trainer import ObjectTrainer

        return ObjectTrainer(cfg, run_dir, progress=progress)
    return Trainer(cfg, run_dir, progress=progress)


def train(cfg: RunConfig, *, run_dir: str | Path | None = None, progress: bool = True,
          stop_after_epoch: int | None = None) -> TrainResult | None:
    """Train according to ``cfg`` in a new run directory; returns the result (None if stopped early)."""
    rd = Path(run_dir) if run_dir is not None else make_run_dir(cfg)
    rd.mkdir(parents=True, exist_ok=True)
    fileio.write_text(rd / "config.yaml", dump_yaml(cfg))
    return make_trainer(cfg, rd, progress=progress).fit(stop_after_epoch=stop_after_epoch)


def check_run_dir(run_dir: str | Path) -> Path:
    """Raise RunDirError unless ``run_dir`` is an openmia run directory."""
    rd = Path(run_dir)
    if not rd.is_dir():
        raise RunDirError(f"{rd} is not a directory; expected a run directory created by `openmia train`")
    if not (rd / "config.yaml").is_file():
        raise RunDirError(f"{rd} is not an openmia run directory: config.yaml is missing")
    return rd


def reevaluate(run_dir: str | Path, out_dir: str | Path, overrides: list[str]) -> TrainResult:
    """Score a finished run's kept model again with other ``eval.*`` settings (e.g. flip TTA or
    post-processing), in a new run directory ``out_dir``: the trained weights, training history and
    budget are the source run's; only the final val/test predictions and reports are new.
    Overrides outside ``eval.`` are refused, since they would describe a different training."""
    import shutil

    src = check_run_dir(run_dir)
    if not (src / "result.json").is_file():
        raise RunDirError(f"{src} is not complete (no result.json); finish it with `openmia train --resume {src}` first")
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith("eval.")]
    if bad:
        raise ConfigError(f"reevaluate takes eval.* overrides only, found {bad}; other keys change the training")
    dst = Path(out_dir)
    if dst.exists():
        raise RunDirError(f"{dst} already exists; choose a new directory for the re-evaluated run")
    cfg = load_config(src / "config.yaml", overrides)
    tmp = dst.with_name(dst.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    for name in ("last.pt", "best.pt"):
        if (src / "checkpoints" / name).is_file():
            shutil.copy2(src / "checkpoints" / name, tmp / "checkpoints" / name)
    shutil.copy2(src / "metrics.jsonl", tmp / "metrics.jsonl")
    if (src / "init_from.json").is_file():  # the weights it started from stay part of its provenance
        shutil.copy2(src / "init_from.json", tmp / "init_from.json")
    fileio.write_text(tmp / "config.yaml", dump_yaml(cfg))
    tmp.rename(dst)  # the new run directory appears whole; result.json marks it complete
    trainer = make_trainer(cfg, dst, progress=False)
    trainer._setup()
    trainer._load_last()
    return trainer._finish()


def resume(run_dir: str | Path, *, progress: bool = True) -> TrainResult | None:
    """Continue a run from ``checkpoints/last.pt`` with its saved config."""
    rd = check_run_dir(run_dir)
    if (rd / "result.json").exists():
        raise RunDirError(f"{rd} is already complete (result.json exists); nothing to resume")
    cfg = load_config(rd / "config.yaml")
    if not (rd / "checkpoints" / "last.pt").is_file():
        # killed before the first epoch finished: start over in the same directory
        log.warning("%s has no checkpoint yet; starting the run from the beginning", rd)
        return make_trainer(cfg, rd, progress=progress).fit()
    return make_trainer(cfg, rd, progress=progress).fit(resume=True)
