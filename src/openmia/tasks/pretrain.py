"""Self-supervised pre-training (``openmia pretrain``): a task family run by the one training loop
(epochs, budget clock, checkpoints, resume), on the training split's images without their labels.

Methods (``pretrain.method``):

- ``simclr`` (Chen et al., ICML 2020): two augmented views per image, a 2-layer projection head,
  NT-Xent over the batch (:func:`~openmia.losses.self_supervised.nt_xent`).
- ``byol`` (Grill et al., NeurIPS 2020): an online network (backbone, projector, predictor)
  regresses a target network's projection of the other view; the target is the online weights'
  EMA (``pretrain.momentum``), held in the model so checkpoints and resume include it.
- ``mim``: masked-image modelling on a CNN encoder: ``pretrain.mask_ratio`` of the
  ``pretrain.patch``-sized cells are set to 0, the encoder's embedding is decoded back to the
  image by a small transposed-convolution decoder, and the loss is the MSE over the hidden voxels
  only (the MAE objective, He et al., CVPR 2022; here through the encoder's pooled embedding
  rather than per-patch tokens, so reconstructions are coarse — the encoder is what is kept).

The backbone is any registered model of the data set's own task (``model.name``: ``cnn_small``,
``resnet18``, ``unet`` ...), built exactly as a training run on that data set builds it, so its
weights load into that run by name (``train.init_from=<this run>``). The embedding is the one
``openmia embed`` uses (:meth:`Task.embed` of the data set's family: the penultimate layer of a
classifier, the pooled bottleneck of a U-Net). Views: the classification augmentation preset
``pretrain.augment`` (default ``strong``: flips, translation, 90° rotations, brightness) followed
by a photometric jitter with noise and a cut-out box (:func:`openmia.engine.semi.photometric_strong`).

Only the training split's images are used for pre-training (``pretrain_cases.json`` lists the case
ids read); validation and test are not read until the end. Selection: the epoch's mean loss
(no validation data is used). At the end the run writes

- ``encoder.pt``: the backbone tensors pre-training trained (those of the modules the embedding
  depends on, with their buffers; a classifier's head and a U-Net's decoder are left out) —
  ``train.init_from=<run dir>`` reads it;
- a linear probe (standardised embeddings, scikit-learn ``LogisticRegression``) and a k-NN
  classifier (``KNeighborsClassifier``, cosine distance, ``pretrain.knn_k``) fitted on the
  frozen embeddings of the labelled training split and scored on validation and test by the
  classification evaluator (AUC, accuracy ... with CIs): ``eval/probe/<split>``,
  ``eval/knn/<split>``; the probe's test result is the run's headline. Data sets whose labels
  are not one class per image (segmentation) get no probe (``result.json`` says so).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.config import one_of, positive
from openmia.errors import ConfigError
from openmia.tasks.base import CompareInputs, Evaluation, Task
from openmia.tasks.registry import register_task

METHODS = ("simclr", "byol", "mim")


@dataclass(frozen=True)
class PretrainOptions:
    """The ``pretrain`` config section."""

    method: str = "simclr"  # simclr | byol | mim
    temperature: float = 0.2  # simclr: NT-Xent temperature
    proj_dim: int = 64  # simclr/byol: projection size
    hidden: int = 256  # simclr/byol: hidden units of the projector/predictor
    momentum: float = 0.99  # byol: EMA decay of the target network
    mask_ratio: float = 0.6  # mim: share of cells hidden
    patch: int = 4  # mim: cell edge in pixels/voxels
    augment: str = "strong"  # classification augmentation preset of the views (then photometric jitter)
    knn_k: int = 20  # k-NN evaluation: neighbours
    probe_c: float = 1.0  # linear probe: inverse L2 strength of LogisticRegression

    def __post_init__(self) -> None:
        from openmia.transforms.augment import PAIR_ONLY, PRESETS

        one_of("pretrain.method", self.method, METHODS)
        one_of("pretrain.augment", self.augment, tuple(p for p in PRESETS if p not in PAIR_ONLY))
        for name in ("temperature", "proj_dim", "hidden", "patch", "knn_k", "probe_c"):
            positive(f"pretrain.{name}", getattr(self, name))
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"pretrain.momentum: expected an EMA decay in [0, 1), found {self.momentum!r}")
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"pretrain.mask_ratio: expected a share in (0, 1), found {self.mask_ratio!r}")


def _mlp(d_in: int, hidden: int, d_out: int):
    from torch import nn

    return nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out))


def _decoder(d: int, channels: int, spatial: tuple[int, ...]):
    """Embedding ``(N, d)`` -> image ``(N, C, *spatial)``: a linear map to a 1/8-size grid of 32
    channels, three x2 transposed convolutions, resized to ``spatial``."""
    import torch
    from torch import nn

    from openmia.models.blocks import conv_nd

    dims = len(spatial)
    grid = tuple(max(1, -(-s // 8)) for s in spatial)
    ConvT = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(d, 32 * int(np.prod(grid)))
            self.up = nn.Sequential(ConvT(32, 32, 2, 2), nn.ReLU(inplace=True), ConvT(32, 16, 2, 2), nn.ReLU(inplace=True),
                                    ConvT(16, 16, 2, 2), nn.ReLU(inplace=True), conv_nd(dims)(16, channels, 3, 1, 1))

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            out = self.up(self.fc(h).view(h.shape[0], 32, *grid))
            return nn.functional.interpolate(out, size=spatial, mode="bilinear" if dims == 2 else "trilinear",
                                             align_corners=False)

    return Decoder()


def _ssl_model(backbone, embed, method: str, d: int, opts: PretrainOptions, channels: int, spatial: tuple[int, ...]):
    """The pre-training network: ``backbone`` (its state-dict names prefixed ``backbone.``) plus the
    method's heads; ``forward(x)`` returns the backbone's embedding ``(N, d)``."""
    from torch import nn

    class SSLModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            if method in ("simclr", "byol"):
                self.projector = _mlp(d, opts.hidden, opts.proj_dim)
            if method == "byol":
                self.predictor = _mlp(opts.proj_dim, opts.hidden, opts.proj_dim)
                self.target_backbone = copy.deepcopy(backbone)
                self.target_projector = copy.deepcopy(self.projector)
                for p in [*self.target_backbone.parameters(), *self.target_projector.parameters()]:
                    p.requires_grad_(False)
            if method == "mim":
                self.decoder = _decoder(d, channels, spatial)

        def forward(self, x):
            return embed(self.backbone, x)

    return SSLModel()


@register_task("pretrain")
class PretrainTask(Task):
    """Self-supervised pre-training of a backbone on a data set's training images (any task's set)."""

    section = PretrainOptions
    default_dataset = "synthetic/binary"
    default_model = "cnn_small"
    select_metrics = ("loss",)
    lower_is_better = frozenset({"loss"})
    headline_metrics = ("auc", "acc")
    leaderboard_metrics = ("auc", "acc")  # the linear probe's (result.json's test scores)

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """The linear probe's ``predictions/probe_test.csv`` against ``truth/test.csv``; None when the
        data set's labels allowed no probe."""
        pred, truth = run_dir / "predictions" / "probe_test.csv", run_dir / "truth" / "test.csv"
        return CompareInputs("classification", pred, truth) if pred.is_file() and truth.is_file() else None

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        super().check_config(cfg)
        if cfg.data.labelled_fraction < 1 or cfg.semi.method != "none":
            raise ConfigError("data.labelled_fraction and semi.* do not apply to pre-training: it reads every training "
                              "image and no label; set them on the fine-tuning run")
        if cfg.train.freeze != "none" or cfg.optim.layer_decay < 1:
            raise ConfigError("train.freeze and optim.layer_decay apply to fine-tuning runs, not to pre-training")

    @classmethod
    def load_splits(cls, cfg: Any) -> dict[str, Any]:
        """The data set's ``train``/``val``/``test`` splits (a set of any task); pre-training reads
        ``train`` only, the probe at the end scores ``val`` and ``test``."""
        from openmia.data.catalog import load_split

        d = cfg.data
        return {s: load_split(d.dataset, s, size=d.size, root=d.root, fold=d.fold, spacing=d.spacing)
                for s in ("train", "val", "test")}

    def __init__(self, cfg: Any, spec: Any, splits: dict[str, Any] | None = None, device: Any = None) -> None:
        super().__init__(cfg, spec, splits, device)
        from openmia.config import task_class

        # the data set's own family: how its models are built and where their embedding is
        self.family = task_class(spec.task)(cfg, spec, None, self.device)
        self._loss_sum, self._loss_n = 0.0, 0
        self._seen: set[int] = set()

    def model_kwargs(self) -> dict[str, Any]:
        from openmia.models import load_all

        mtask = load_all().get(self.cfg.model.name).meta.get("task")
        if mtask != self.spec.task:
            raise ConfigError(f"model.name={self.cfg.model.name!r} is a {mtask} model but {self.spec.name} is a "
                              f"{self.spec.task} data set; pre-train a backbone of `openmia list models --task {self.spec.task}`")
        return dict(self.cfg.model.kwargs)

    def build_model(self):
        import torch

        from openmia.models import build_model

        s = self.spec
        backbone = build_model(self.cfg.model.name, in_channels=s.channels, num_classes=s.num_classes, dims=s.dims,
                               input_size=s.size, **self.model_kwargs())
        # the input shape: the training images' (a loaded run for `openmia embed` has no splits: the spec's)
        spatial = tuple(self.splits["train"].images.shape[2:]) if self.splits else tuple(s.spatial_shape)
        backbone.eval()
        with torch.no_grad():
            d = int(self.family.embed(backbone, torch.zeros((2, s.channels, *spatial))).shape[1])
        backbone.train()
        return _ssl_model(backbone, self.family.embed, self.options.method, d, self.options, s.channels, spatial)

    def prepare(self, model: Any) -> None:
        self.model = model

    # -- training
    def _views(self, x, gen):
        from openmia.engine.semi import photometric_strong
        from openmia.transforms.augment import augment_batch

        return photometric_strong(augment_batch(x, self.options.augment, gen), gen)

    def batch_loss(self, idx, gen, forward):
        import torch

        from openmia.engine.device import to_device
        from openmia.losses.self_supervised import byol_loss, masked_mse, nt_xent, patch_mask
        from openmia.transforms.intensity import to_float_tensor

        opts, model = self.options, self.model
        self._seen.update(int(i) for i in idx)
        x = to_float_tensor(self.splits["train"].images[idx], self.spec.normalization)
        n = x.shape[0]
        if opts.method == "simclr":
            v = to_device(torch.cat([self._views(x, gen), self._views(x, gen)]), self.device)
            z = model.projector(forward(v))
            loss = nt_xent(z[:n], z[n:], opts.temperature)
        elif opts.method == "byol":
            with torch.no_grad():  # the target follows the online weights (EMA), before this step
                for online, target in ((model.backbone, model.target_backbone), (model.projector, model.target_projector)):
                    for po, pt in zip(online.parameters(), target.parameters()):
                        pt.mul_(opts.momentum).add_(po.detach(), alpha=1 - opts.momentum)
                    for bo, bt in zip(online.buffers(), target.buffers()):
                        bt.copy_(bo)
            v = to_device(torch.cat([self._views(x, gen), self._views(x, gen)]), self.device)
            p = model.predictor(model.projector(forward(v)))
            with torch.no_grad():
                t = model.target_projector(self.family.embed(model.target_backbone, v))
            loss = byol_loss(p[:n], t[n:]) + byol_loss(p[n:], t[:n])
        else:  # mim
            x = augment_batch_flip(x, gen)
            mask = patch_mask(tuple(x.shape), opts.patch, opts.mask_ratio, gen)
            x, mask = to_device(x, self.device), to_device(mask, self.device)
            recon = model.decoder(forward(x * (1 - mask)))
            loss = masked_mse(recon, x, mask)
        self._loss_sum += float(loss.detach()) * n
        self._loss_n += n
        return loss

    def validate(self, model) -> dict[str, float]:
        """The epoch's mean training loss (pre-training reads no validation image)."""
        out = {"loss": self._loss_sum / max(self._loss_n, 1)}
        self._loss_sum, self._loss_n = 0.0, 0
        return out

    # -- embeddings (``openmia embed`` on a pre-training run): the backbone's, as the probe sees them
    def embed(self, model, batch):
        return self.family.embed(model.backbone, batch)

    def embedding_source(self, model) -> str:
        return f"backbone {self.cfg.model.name}: " + self.family.embedding_source(model.backbone)

    # -- the end: encoder + probe
    def encoder_state(self, model) -> dict[str, Any]:
        """The backbone tensors the embedding depends on: a forward/backward of the embedding marks
        the parameters used; their modules' buffers come along (batch-norm statistics)."""
        backbone = copy.deepcopy(model.backbone).to(self.device).train()
        backbone.zero_grad(set_to_none=True)
        x = self.float_batch(self.splits["train"].images[:2])
        self.family.embed(backbone, x).float().sum().backward()
        used_modules = {name.rsplit(".", 1)[0] if "." in name else "" for name, p in backbone.named_parameters()
                        if p.grad is not None}
        state = model.backbone.state_dict()
        keep = {k: v.detach().cpu().clone() for k, v in state.items()
                if (k.rsplit(".", 1)[0] if "." in k else "") in used_modules}
        if not keep:
            raise ConfigError(f"pretrain: no parameter of {self.cfg.model.name} is used by its embedding")
        return keep

    def embeddings(self, model, images: np.ndarray) -> np.ndarray:
        """Frozen embeddings ``(N, d)`` of ``images`` (eval mode, batches of ``data.eval_batch_size``)."""
        import torch

        model.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(images), self.cfg.data.eval_batch_size):
                out.append(self.family.embed(model.backbone, self.float_batch(images[s:s + self.cfg.data.eval_batch_size]))
                           .float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        tr = self.splits["train"]
        fileio.write_json(run_dir / "pretrain_cases.json", {
            "split": "train", "n": len(self._seen) or len(tr.case_ids),
            "case_ids": [tr.case_ids[i] for i in sorted(self._seen)] if self._seen else list(tr.case_ids)})
        meta = {"method": self.options.method, "backbone": self.cfg.model.name, "dataset": self.spec.name,
                "dims": self.spec.dims, "input_shape": list(tr.images.shape[1:]), "epochs": self.cfg.train.epochs}
        fileio.torch_save({"model": self.encoder_state(model), "pretrain": meta}, run_dir / "encoder.pt")
        labels = np.asarray(tr.labels)
        if labels.ndim != 1:
            note = (f"no linear probe: {self.spec.name} labels are not one class per image "
                    f"({self.spec.task} labels of shape {labels.shape[1:]})")
            return Evaluation({"test": {}, "val": {}}, note, {"encoder": "encoder.pt", "probe": note, **meta})
        feats = {"train": self.embeddings(model, tr.images)}
        for split in splits:
            feats[split] = self.embeddings(model, self.splits[split].images)
        summaries, knn_summaries, table = probe_and_knn(feats, {s: self.splits[s] for s in ("train", *splits)}, self.spec,
                                                        run_dir, self.cfg, provenance, self.options)
        return Evaluation(summaries, table, {"encoder": "encoder.pt", "knn": {s: self.headline(v) for s, v in knn_summaries.items()},
                                             **meta})


def augment_batch_flip(x, gen):
    """MIM's only view change: random flips (the hidden cells are the task)."""
    from openmia.transforms.augment import augment_batch

    return augment_batch(x, "flip", gen)


def probe_and_knn(feats: dict[str, np.ndarray], splits: dict[str, Any], spec: Any, run_dir: Path, cfg: Any,
                  provenance: dict[str, Any], opts: PretrainOptions) -> tuple[dict, dict, str]:
    """Fit the linear probe and the k-NN classifier on ``feats["train"]`` ``(N, d)`` with the
    training labels; score every other split with the classification evaluator. Returns the
    probe's summaries, the k-NN's, and the probe's test table."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from openmia.evaluation.classification import evaluate_classification, write_outputs
    from openmia.evaluation.writers import write_classification_predictions, write_classification_truth

    y = np.asarray(splits["train"].labels).astype(np.int64)
    k = spec.num_classes
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=opts.probe_c, max_iter=3000))
    probe.fit(feats["train"], y)
    knn = KNeighborsClassifier(n_neighbors=min(opts.knn_k, len(y)), metric="cosine")
    knn.fit(feats["train"], y)
    names = {"task_type": spec.task_type, "label_names": list(spec.label_names)}

    def full(p: np.ndarray, classes: np.ndarray) -> np.ndarray:  # classes absent from training get probability 0
        out = np.zeros((len(p), k))
        out[:, classes.astype(int)] = p
        return out

    summaries, knn_summaries, table = {}, {}, ""
    for split in (s for s in feats if s != "train"):
        s = splits[split]
        write_classification_truth(run_dir / "truth" / f"{split}.csv", s.case_ids, s.labels, **names)
        for kind, clf, store in (("probe", probe, summaries), ("knn", knn, knn_summaries)):
            probs = full(clf.predict_proba(feats[split]), clf.classes_)
            write_classification_predictions(run_dir / "predictions" / f"{kind}_{split}.csv", s.case_ids, probs, **names)
            res = evaluate_classification(probs[:, 1] if spec.task_type == "binary" else probs, s.labels, s.case_ids,
                                          n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed, **names)
            write_outputs(res, run_dir / "eval" / kind / split, provenance=provenance)
            store[split] = res.summary
            if split == "test" and kind == "probe":
                table = res.table()
                fileio.write_text(run_dir / "eval" / kind / split / "report.txt", table + "\n")
    return summaries, knn_summaries, table
