"""The one training loop, for every task family: seeds, device, epochs, time budget, EMA, atomic
checkpoints, resume after a kill, refit, progress and ``metrics.jsonl``; the run's
:class:`~openmia.tasks.base.Task` supplies the batches' loss, the validation scores and the final
evaluation. The loop never compares task names.

Run directory layout (one per run)::

    config.yaml              resolved config (the run can be re-created from it)
    splits.json              the case ids of each split (data sets whose splits openmia made)
    provenance.json          DESIGN §4.6: data checksums, split hashes, versions, hardware, device, ...
    metrics.jsonl            one JSON line per epoch (exactly one per epoch, also after a kill + resume)
    checkpoints/last.pt      model + optimizer + RNG + progress (for --resume), atomic
    checkpoints/best.pt      weights with the best validation score, atomic
    init_from.json           train.init_from only: the weights the run started from (path, SHA-256, names)
    labelled_subset.json     data.labelled_fraction < 1 only: the training cases that kept their labels, and the rest
    predictions/, truth/     the evaluator's input formats (DESIGN §4.1), per split (the task's formats)
    eval/{val,test}/         the evaluator's reports
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
from openmia.config import RunConfig
from openmia.engine import distributed
from openmia.errors import RunDirError

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


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, flushed and fsynced (a killed run keeps every completed line)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(path: Path, epochs_done: int) -> None:
    """Keep only the lines of ``metrics.jsonl`` up to epoch ``epochs_done`` (and the pre-training
    record), dropping a torn last line: after a kill between an epoch's line and its checkpoint,
    the resumed run writes that epoch again, exactly once."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by the kill
        if rec.get("epoch", 0) <= epochs_done:
            keep.append(line)
    fileio.write_text(path, "".join(k + "\n" for k in keep))


def make_optimizer(o: Any, params) -> Any:
    """The optimiser of ``optim.name`` (the names are ``config.OPTIMIZERS``) over ``params``."""
    import torch

    makers = {
        "adam": lambda: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay),
        "sgd": lambda: torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                       nesterov=o.momentum > 0),
    }
    return makers[o.name]()


def progress_bar(enabled: bool):
    """A rich progress bar (transient; disabled with ``--quiet``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"), disable=not enabled, transient=True,
    )


class Loop:
    """Trains one model on one data set according to a :class:`RunConfig`.

    :meth:`setup` does everything that can fail on bad input (data, task, model) before any file
    is written; :meth:`fit` then runs in ``run_dir``. Use :func:`openmia.engine.run_dir.train` /
    ``resume`` / ``reevaluate`` (or :mod:`openmia.api`) rather than this class directly.

    Args:
        on_complete: callables ``f(run_dir)`` run after ``result.json`` is written (e.g. the run
            index the CLI installs); a failing one is logged, the run stays complete.
    """

    def __init__(self, cfg: RunConfig, *, progress: bool = True,
                 on_complete: tuple[Callable[[Path], None], ...] = ()) -> None:
        self.cfg = cfg
        self.progress = progress
        self.on_complete = tuple(on_complete)
        self.run_dir: Path | None = None
        self.dist = None  # set by setup(): engine.distributed's context in a rank of `--nproc N` training
        self.writer = True  # False on ranks > 0: they write nothing
        self.scoring = False  # set by setup(scoring=True): a re-evaluation, no training

    # -- setup (nothing written)
    def setup(self, *, resuming: bool = False, scoring: bool = False) -> "Loop":
        """Device, threads, data, task and model (and ``train.init_from``'s weights on a fresh run);
        raises on bad input before anything is written. ``resuming``: the run's own checkpoint
        holds the weights, so the source of ``train.init_from`` is not read again. ``scoring``:
        the run is only scored again (``reevaluate``), always in fp32, so the training precision
        is neither checked against the device nor given a gradient scaler (an fp16 run trained on
        a GPU re-scores on a CPU)."""
        import torch

        from openmia.config import task_class
        from openmia.engine.device import check_precision, resolve_device, set_threads

        cfg = self.cfg
        self.device = resolve_device(cfg.train.device)
        # a rank of `--nproc N` training (engine.distributed): joins the process group; None in one process
        self.dist = distributed.from_env()
        if self.dist is not None:
            self.device = self.dist.init(self.device)
        self.writer = self.dist is None or self.dist.is_main  # only rank 0 writes the run directory
        self.scoring = scoring
        if not scoring:
            check_precision(cfg.train.precision, self.device)
        self.threads = set_threads(cfg.train.threads)
        if cfg.train.deterministic:
            if self.device.type == "cuda":  # cuBLAS needs a fixed workspace to be deterministic
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        task_cls = task_class(cfg.task)
        self.splits = task_cls.load_splits(cfg)
        self.spec = self.splits["train"].spec
        self.unlabelled = None  # data.labelled_fraction < 1: the rest of the training split, without labels
        if cfg.data.labelled_fraction < 1:
            from openmia.engine.semi import split_labelled

            self.splits["train"], self.unlabelled = split_labelled(self.splits["train"], cfg.data.labelled_fraction,
                                                                   cfg.train.seed)
        if cfg.train.refit:  # the validation cases join training; nothing is validated or selected
            from openmia.data.catalog import merge_splits

            self.splits["train"] = merge_splits(self.splits["train"], self.splits["val"])
        self.task = task_cls(cfg, self.spec, self.splits, self.device)
        torch.manual_seed(cfg.train.seed)  # model initialisation
        self.model = self.task.build_model()
        self.task.prepare(self.model)
        self.semi = None
        if cfg.semi.method != "none":  # the unlabelled loss joins the task's (engine.semi)
            from openmia.engine.semi import SemiLoss

            self.semi = SemiLoss(self.task, self.unlabelled, cfg, teacher=lambda: self.ema.module)
        self._init_loaded = None
        if cfg.train.init_from and not resuming:
            from openmia.engine.transfer import load_matching_weights

            self._init_loaded = load_matching_weights(self.model, cfg.train.init_from, cfg.train.init_keymap)
        self.epoch = 0  # epochs completed
        self.elapsed = 0.0  # training seconds used (train + validation), across resumes
        self.best_val = -float("inf")
        self.best_epoch = -1
        self.pretrained = False
        # the budget clock: wall time, or this process's CPU time (fair budgets when runs share cores)
        self._clock = time.process_time if cfg.train.budget_clock == "cpu" else time.perf_counter
        return self

    def start(self, run_dir: Path | None) -> None:
        """Bind the run directory: the starting weights (``train.init_from``), the model on its
        device, the optimiser and the weight EMA."""

        from openmia.engine.device import grad_scaler
        from openmia.engine.transfer import param_groups

        cfg = self.cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None  # None: a rank > 0 of a new run
        self.init_record = self._init_weights() if self.writer else None
        if self.unlabelled is not None and self.writer:  # which training cases kept their labels (seeded: the same on resume)
            fileio.write_json(self.run_dir / "labelled_subset.json", {
                "fraction": cfg.data.labelled_fraction, "seed": cfg.train.seed,
                "labelled": list(self.splits["train"].case_ids), "unlabelled": list(self.unlabelled.case_ids)})
        self.model.to(self.device)
        # optim.layer_decay < 1: one group per block group, lr scaled down from the head (else model.parameters())
        self.optimizer = make_optimizer(cfg.optim, param_groups(self.model, cfg.optim.layer_decay))
        self.scaler = None if self.scoring else grad_scaler(cfg.train.precision, self.device)
        # EMA of the weights (Polyak averaging): validated, selected and tested instead of the raw
        # weights; on small sets it smooths the epoch-to-epoch noise that model selection sees
        self.ema = None
        if cfg.train.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=True)

    def _init_weights(self) -> dict[str, Any] | None:
        """The record of ``train.init_from`` (``init_from.json``): written on a fresh run (the weights
        were loaded by :meth:`setup`); a resumed or re-scored run reads its own back."""
        if not self.cfg.train.init_from:
            return None
        record = self.run_dir / "init_from.json"
        if self._init_loaded is None:
            return json.loads(record.read_text()) if record.is_file() else None
        fileio.write_json(record, self._init_loaded)
        return self._init_loaded

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
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "torch_rng": torch.get_rng_state(),
                # dropout and augmentation drawn on the GPU use its own generator: resumed runs continue it
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            },
            self._ckpt_dir() / "last.pt",
        )

    def load_last(self) -> None:
        """Restore model, optimiser, EMA, progress and RNG from ``checkpoints/last.pt`` (written on
        any device; loaded onto this run's)."""
        import torch

        path = self._ckpt_dir() / "last.pt"
        try:
            ck = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # a torn or foreign file: torch raises many kinds
            raise RunDirError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc}); the run cannot be resumed") from exc
        if not isinstance(ck, dict) or ck.get("version") != CHECKPOINT_VERSION:
            raise RunDirError(f"{path}: checkpoint version {ck.get('version') if isinstance(ck, dict) else None!r}, "
                              f"expected {CHECKPOINT_VERSION}")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.epoch, self.elapsed = int(ck["epoch"]), float(ck["elapsed"])
        self.best_val, self.best_epoch = float(ck["best_val"]), int(ck["best_epoch"])
        self.pretrained = bool(ck["pretrained"])
        if self.ema is not None:
            if ck.get("ema") is None:
                raise RunDirError(f"{path}: the run's config asks for train.ema but the checkpoint holds no EMA weights")
            self.ema.load_state_dict(ck["ema"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        if self.device.type == "cuda" and ck.get("cuda_rng") is not None:  # None: written on a CPU
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), self.device)

    # -- budget and optimisation
    def _budget_spent(self, spent: float) -> bool:
        """True once ``spent`` seconds reach ``train.max_minutes`` (a hard limit, also mid-epoch)."""
        m = self.cfg.train.max_minutes
        return bool(m) and spent >= 60 * m

    def _set_lr(self, epoch_float: float, spent: float) -> None:
        """Learning rate at ``epoch_float`` with ``spent`` budget seconds used (schedule of DESIGN §5)."""
        from openmia.engine.schedule import lr_factor

        t = self.cfg.train
        prog = max(epoch_float / t.epochs, spent / (60 * t.max_minutes) if t.max_minutes else 0)
        for g in self.optimizer.param_groups:
            # lr_scale: optim.layer_decay's per-group factor (engine.transfer.param_groups); absent = 1
            g["lr"] = (self.cfg.optim.lr * lr_factor(self.cfg.schedule, progress=prog, epoch_float=epoch_float)
                       * g.get("lr_scale", 1.0))

    def _apply(self, loss, epoch: int, step: int) -> None:
        """One optimiser step on ``loss`` (refused when not finite) and the EMA update."""
        import torch

        if not torch.isfinite(loss):
            raise RunDirError(f"training diverged at epoch {epoch + 1} step {step}: loss is {loss.item()}; lower optim.lr")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # fp16: scaled gradients, unscaled before the step
            self.scaler.scale(loss).backward()
            if self.dist is not None:
                self.dist.average_gradients(self.model)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.dist is not None:
                self.dist.average_gradients(self.model)
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def forward(self, x):
        """The model's training forward pass in ``train.precision``; outputs (tensors, or
        lists/tuples/dicts of them) come back as fp32 so every loss is computed in full precision."""
        if self.cfg.train.precision == "fp32":
            return self.model(x)
        from openmia.engine.device import autocast, to_fp32

        with autocast(self.cfg.train.precision, self.device):
            return to_fp32(self.model(x))

    def _pretrain_batches(self) -> Callable[[], Iterator[Any]]:
        import torch

        from openmia.engine.inference import iterate_batches

        tr, bs = self.splits["train"], self.cfg.data.batch_size
        gen = torch.Generator().manual_seed(self.cfg.train.seed + 7919)

        def batches():
            for idx in iterate_batches(len(tr.images), bs, shuffle=True, gen=gen):
                yield self.task.float_batch(tr.images[idx])

        return batches

    # -- the loop
    def fit(self, *, resume: bool = False, stop_after_epoch: int | None = None) -> TrainResult | None:
        """Run the loop to the end (or resume it). ``stop_after_epoch`` simulates a kill (tests)."""
        import torch

        from openmia.engine.inference import iterate_batches

        cfg, model, task, dist = self.cfg, self.model, self.task, self.dist
        metrics_path = self.run_dir / "metrics.jsonl" if self.run_dir is not None else None
        if self.writer:
            self._ckpt_dir().mkdir(parents=True, exist_ok=True)
            # debris of a killed write anywhere in the run (this process holds the run's lock: none is live)
            for folder in [self.run_dir, *(p for p in self.run_dir.rglob("*") if p.is_dir() and not fileio.TEMP_PATTERN.match(p.name))]:
                fileio.clean_stale_temporaries(folder, 0)
        if resume:
            self.load_last()  # every rank reads the same checkpoint
            if self.writer:
                truncate_metrics(metrics_path, self.epoch)
            log.info("resuming %s after epoch %d (%.0f s used)", self.run_dir, self.epoch, self.elapsed)
        elif self.writer and metrics_path.exists():
            metrics_path.unlink()  # a run restarted from scratch in its own directory
        if hasattr(model, "pretrain") and cfg.train.pretrain_epochs > 0 and not self.pretrained:
            t0 = self._clock()
            hist = model.pretrain(self._pretrain_batches(), epochs=cfg.train.pretrain_epochs, seed=cfg.train.seed)
            self.elapsed += self._clock() - t0
            self.pretrained = True
            if self.writer:
                append_jsonl(metrics_path, {"phase": "pretrain", "history": hist, "elapsed": self.elapsed})
                self._save_last()
        if dist is not None:  # every rank starts from rank 0's weights (same seed already; also after resume)
            dist.broadcast_module(model)
            if self.ema is not None:
                dist.broadcast_module(self.ema)

        n_train, bs = len(self.splits["train"].images), cfg.data.batch_size
        steps_per_epoch = max(1, -(-n_train // bs))
        # the smallest part of a batch a process trains on (batch norm needs 2); one process: the batch
        min_part = (lambda n: n) if dist is None else dist.min_part
        with progress_bar(self.progress and self.writer) as bar:
            job = bar.add_task("train", total=cfg.train.epochs, info="")
            bar.update(job, completed=self.epoch)
            while self.epoch < cfg.train.epochs and not self._budget_spent(self.elapsed):
                ep = self.epoch
                gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + ep)  # per-epoch: exact resume
                model.train()
                if cfg.train.freeze != "none":  # which block groups train this epoch (engine.transfer)
                    from openmia.engine.transfer import apply_freeze

                    apply_freeze(model, cfg.train.freeze, ep, cfg.train.unfreeze_every)
                t0 = self._clock()
                tot_loss, n_seen = 0.0, 0
                for step, idx in enumerate(iterate_batches(n_train, bs, shuffle=True, gen=gen)):
                    if min_part(len(idx)) < 2 and n_train > 1:
                        continue  # a batch of one breaks batch norm and adds nothing
                    weight = 1.0
                    if dist is not None:  # this rank's part of the global batch (same permutation on every rank)
                        idx, weight = dist.shard(idx)
                    now = self.elapsed + self._clock() - t0
                    if dist is not None and cfg.train.max_minutes:  # a time-based schedule: rank 0's clock on all
                        now = dist.broadcast_floats([now])[0]
                    self._set_lr(ep + step / steps_per_epoch, now)
                    if self.semi is None:
                        loss = task.batch_loss(idx, gen, self.forward)
                    else:
                        loss = self.semi.batch_loss(idx, gen, self.forward, epoch=ep, step=step,
                                                    steps_per_epoch=steps_per_epoch)
                    self._apply(loss * weight if weight != 1.0 else loss, ep, step)
                    tot_loss += loss.item() * len(idx)
                    n_seen += len(idx)
                    spent = self._budget_spent(self.elapsed + self._clock() - t0)
                    if spent if dist is None or not cfg.train.max_minutes else dist.any_true(spent):
                        break  # every rank stops at the same step
                if dist is not None:  # the epoch's mean loss over all ranks' cases
                    tot_loss, n_seen = dist.sum_floats([tot_loss, n_seen])
                info = self._end_epoch(t0, tot_loss / max(n_seen, 1), metrics_path)
                bar.update(job, completed=self.epoch, info=info)
                if stop_after_epoch is not None and self.epoch >= stop_after_epoch:
                    return None
        return self.finish() if self.writer else None  # rank 0 alone evaluates val/test and writes

    def _end_epoch(self, t0: float, train_loss: float, metrics_path: Path) -> str:
        """Validate, keep the best weights, then write the epoch's line and ``last.pt`` (written
        once for every task; a refit skips validation and selection). Returns the progress text."""
        eval_model = self.ema.module if self.ema is not None else self.model
        if not self.writer:  # a rank > 0: rank 0 validates and writes; wait for its budget clock
            self.epoch += 1
            self.elapsed = self.dist.broadcast_floats([0.0])[0]
            return ""
        scores = None if self.cfg.train.refit else self.task.validate(eval_model)
        self.elapsed += self._clock() - t0
        if self.dist is not None:  # releases the other ranks; all share rank 0's clock
            self.dist.broadcast_floats([self.elapsed])
        self.epoch += 1
        rec: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss}
        if scores is None:  # a refit has no validation: every epoch's weights replace the kept ones
            improved, kept, info = True, {}, "(refit: no validation)"
            self.best_epoch = self.epoch
        else:
            # model selection on the validation split only (lower-is-better metrics are negated)
            sel = self.task.selection_score(scores)
            improved = bool(np.isfinite(sel) and sel > self.best_val)
            if improved:
                self.best_val, self.best_epoch = float(sel), self.epoch
            kept = {"val": float(sel)}
            rec.update({f"val_{k}": v for k, v in scores.items()})
            info = f"val {self.task.select_metric} {scores[self.task.select_metric]:.3f}"
        if improved:
            fileio.torch_save({"model": eval_model.state_dict(), "epoch": self.epoch, **kept}, self._ckpt_dir() / "best.pt")
        # the line first, then last.pt: a kill in between leaves a line for an epoch the checkpoint
        # does not hold yet, which resume truncates (truncate_metrics) and writes again
        append_jsonl(metrics_path, {**rec, "lr": self.optimizer.param_groups[0]["lr"], "elapsed": round(self.elapsed, 3),
                                    "best": improved})
        self._save_last()
        return f"loss {train_loss:.3f} {info}"

    # -- final evaluation (test touched once, here)
    def finish(self) -> TrainResult:
        import torch

        from openmia.engine.provenance import collect_provenance, finish_provenance

        best = self._ckpt_dir() / "best.pt"
        if best.exists():
            self.model.load_state_dict(torch.load(best, map_location=self.device, weights_only=True)["model"])
        elif self.ema is not None:  # no epoch ever improved (e.g. NaN scores): the EMA weights are still the model
            self.model.load_state_dict(self.ema.module.state_dict())
        cfg = self.cfg
        prov = collect_provenance(cfg, self.splits, self.model, threads=self.threads, init_from=self.init_record)
        prov["device"] = str(self.device)
        if self.device.type == "cuda":
            from openmia.engine.provenance import gpu

            prov["gpu"] = gpu(self.device)
        if self.dist is not None:
            prov["distributed"] = self.dist.describe()
        if self.unlabelled is not None:  # data.labelled_fraction: the labelled subset is splits.train above
            from openmia.engine.provenance import split_hash

            prov["data"]["unlabelled"] = {"n": len(self.unlabelled.case_ids), "fraction": cfg.data.labelled_fraction,
                                          "case_ids_sha256": split_hash(self.unlabelled.case_ids, np.zeros(0))}
        prov = finish_provenance(prov, train_seconds=self.elapsed)
        fileio.write_json(self.run_dir / "provenance.json", prov)
        scored = ("test",) if cfg.train.refit else ("val", "test")  # a refit trained on the validation cases
        ev = self.task.evaluate(self.model, self.run_dir, scored, prov)
        test, val = ev.summaries["test"], ev.summaries.get("val", {})
        result = TrainResult(self.run_dir, self.epoch, self.best_epoch, self.best_val, self.elapsed, test, val, ev.table,
                             dict(ev.result))
        fileio.write_json(self.run_dir / "result.json", {
            "status": "complete", "task": cfg.task, "epochs_done": self.epoch, "best_epoch": self.best_epoch,
            "best_val": self.best_val if np.isfinite(self.best_val) else None, "select_metric": self.task.select_metric,
            "refit": cfg.train.refit, "train_seconds": round(self.elapsed, 3), "device": str(self.device), **ev.result,
            "test": self.task.headline(test), "val": self.task.headline(val),
        })
        for callback in self.on_complete:
            try:
                callback(self.run_dir)
            except Exception as exc:  # noqa: BLE001 - the run is complete; a hook (the run index) is best effort
                log.warning("run %s finished, but %s failed: %s", self.run_dir, getattr(callback, "__name__", callback), exc)
        return result
