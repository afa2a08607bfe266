"""Learning with few labels in the training loop: the labelled subset of the training split
(``data.labelled_fraction``) and the semi-supervised losses on the unlabelled rest (``semi.*``).

**Labelled subset.** A seeded (``train.seed``), stratified subset of the training split keeps its
labels; the rest of the training split is the unlabelled pool. Strata: the class (single-label
classification), the label combination (multi-label), or "has foreground / empty" (segmentation
label maps). Each stratum of ``n_k`` cases keeps ``round(f * n_k)`` of them (at least the
rounding of each stratum, so the subset has the training split's class proportions to within one
case per stratum). A class (or label, or foreground class) that has training cases but none in
the subset is an error naming it: a classifier cannot learn a class it never sees labelled.
Validation and test splits are untouched.

**Semi-supervised methods** (``semi.method``), for tasks whose model outputs softmax logits
``(N, K, *spatial)`` (classification: ``(N, K)``; segmentation: per voxel) — the Task says which
apply in its ``semi_methods``. Each step's loss is the Task's own supervised loss on the labelled
batch plus ``semi.weight * ramp(epoch)`` x an unlabelled loss on ``semi.ratio x batch`` images
drawn from the pool with their own generator (seeded by seed, epoch and step: resume-exact, and
the labelled batches are exactly those of a supervised run on the same subset):

- ``pseudo_label`` (Lee, ICML-W 2013): the model's own confident predictions (max softmax
  probability >= ``semi.threshold``, detached) are the targets of a cross-entropy on the same images.
- ``fixmatch`` (Sohn et al., NeurIPS 2020): targets from a weakly augmented view (the image plus
  small noise) of confidence >= ``semi.threshold``, cross-entropy of a strongly augmented view
  (brightness/contrast/gamma jitter, Gaussian noise and a cut-out box). The strong view is photometric
  only, so per-voxel targets stay aligned (segmentation) and class targets are valid (classification).
  Normalised by all unlabelled outputs, as in the paper (masked ones count as zero).
- ``mean_teacher`` (Tarvainen & Valpola, NeurIPS 2017): the teacher is the loop's weight EMA
  (``train.ema``, required), which is also what is validated and kept; the loss is the mean squared
  difference of student and teacher softmax outputs on two noisy views (``semi.noise``).

All three normalise over every unlabelled output element (per case, or per voxel for segmentation).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from openmia.errors import ConfigError, DataError


def _strata(labels: np.ndarray) -> np.ndarray:
    """One stratum id per case: the class ``(N,)``, the label combination ``(N, L)``, or
    foreground present / absent for label maps ``(N, *spatial)``."""
    if labels.ndim == 1:
        return labels.astype(np.int64)
    if labels.ndim == 2:
        _, inv = np.unique(labels.astype(np.int64), axis=0, return_inverse=True)
        return inv.reshape(-1)
    return (labels.reshape(len(labels), -1).max(axis=1) > 0).astype(np.int64)


def _present(labels: np.ndarray, n_names: int) -> np.ndarray:
    """``(N, K)`` bool: which class / label occurs in each case (label maps: which foreground class)."""
    if labels.ndim == 1:
        return labels[:, None] == np.arange(n_names)[None]
    if labels.ndim == 2:
        return labels.astype(bool)
    flat = labels.reshape(len(labels), -1)
    out = np.zeros((len(labels), n_names), bool)
    for k in range(1, n_names):  # 0 = background: every map has it or not, it is not a class to learn
        out[:, k] = (flat == k).any(axis=1)
    return out


def labelled_indices(labels: np.ndarray, fraction: float, seed: int, label_names: tuple[str, ...] | list[str],
                     *, dataset: str = "") -> np.ndarray:
    """Sorted indices of the labelled subset of a training split (see the module docstring).

    Args:
        labels: ``(N,)`` classes, ``(N, L)`` 0/1 multi-labels or ``(N, *spatial)`` label maps.
        fraction: in (0, 1].
        seed: seeds the choice within each stratum.
        label_names: the data set's class / label names (for the error message).
    Raises:
        ConfigError: a fraction outside (0, 1], or a class / label left without a labelled case.
    """
    if isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ConfigError(f"data.labelled_fraction: expected a fraction in (0, 1], found {fraction!r}")
    n = len(labels)
    if fraction == 1:
        return np.arange(n)
    strata = _strata(np.asarray(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        m = int(math.floor(fraction * len(members) + 0.5))
        keep.append(rng.permutation(members)[:m])
    idx = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    present = _present(np.asarray(labels), len(label_names))
    had, kept = present.sum(0), present[idx].sum(0)
    for k in np.flatnonzero((had > 0) & (kept == 0)):
        need = 0.5 / had[k] if labels.ndim == 1 else None
        hint = f"; this class needs data.labelled_fraction >= {need:.3g}" if need else ""
        raise ConfigError(f"data.labelled_fraction={fraction}: class {label_names[k]!r} of {dataset or 'the data set'} "
                          f"has {int(had[k])} training case(s) but none keeps its label{hint}")
    if len(idx) == 0:
        raise ConfigError(f"data.labelled_fraction={fraction} keeps no labelled case of the {n} training cases")
    return idx


def subset_split(split: Any, idx: np.ndarray) -> Any:
    """The cases ``idx`` of a :class:`~openmia.data.arrays.SplitArrays` (same spec and split record)."""
    from openmia.data.arrays import SplitArrays

    if not isinstance(split, SplitArrays):
        raise ConfigError(f"data.labelled_fraction applies to image-array data sets; {split.spec.name} is "
                          f"{type(split).__name__} data")
    pick = [int(i) for i in idx]
    return SplitArrays(split.images[idx], split.labels[idx], [split.case_ids[i] for i in pick], split.spec,
                       None if split.regions is None else [split.regions[i] for i in pick],
                       None if split.spacings is None else [split.spacings[i] for i in pick], split.split_record)


def split_labelled(split: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """``(labelled, unlabelled)`` parts of a training split (the unlabelled part keeps its labels
    in memory, but nothing reads them: :class:`SemiLoss` uses its images only)."""
    idx = labelled_indices(split.labels, fraction, seed, split.spec.label_names, dataset=split.spec.name)
    rest = np.setdiff1d(np.arange(len(split.labels)), idx)
    return subset_split(split, idx), subset_split(split, rest)


# ----------------------------------------------------------------------------- the losses


def photometric_strong(x, gen):
    """A strong photometric view of ``x`` ``(N, C, *spatial)`` (normalised intensities): per-sample
    contrast x U(0.6, 1.4), brightness + U(-0.3, 0.3), Gaussian noise (std 0.1) and one cut-out
    box of a quarter of each edge set to 0. No geometric change (per-voxel targets stay aligned)."""
    import torch

    n, nd = x.shape[0], x.dim() - 2
    shape = (n,) + (1,) * (nd + 1)
    out = x * (0.6 + 0.8 * torch.rand(shape, generator=gen)) + 0.6 * (torch.rand(shape, generator=gen) - 0.5)
    out = out + 0.1 * torch.randn(x.shape, generator=gen)
    sizes = [max(1, s // 4) for s in x.shape[2:]]
    for i in range(n):
        starts = [int(torch.randint(0, s - b + 1, (1,), generator=gen)) for s, b in zip(x.shape[2:], sizes)]
        out[(i, slice(None), *(slice(a, a + b) for a, b in zip(starts, sizes)))] = 0.0
    return out


def consistency_ce(student_logits, teacher_logits, threshold: float):
    """Cross-entropy of ``student_logits`` against the argmax of ``teacher_logits`` where the
    teacher's max softmax probability >= ``threshold``; ``(N, K, *spatial)``; the mean over all
    ``N * prod(spatial)`` outputs (masked ones count 0). Returns ``(loss, fraction used)``."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        conf, target = torch.softmax(teacher_logits.detach().float(), dim=1).max(dim=1)
        mask = (conf >= threshold).float()
    ce = F.cross_entropy(student_logits, target, reduction="none")
    return (ce * mask).mean(), float(mask.mean())


def softmax_mse(student_logits, teacher_logits):
    """Mean squared difference of the softmax outputs ``(N, K, *spatial)`` (teacher detached),
    averaged over cases, classes and voxels."""
    import torch

    return ((torch.softmax(student_logits, 1) - torch.softmax(teacher_logits.detach(), 1)) ** 2).mean()


def rampup_factor(epoch_float: float, rampup_epochs: float) -> float:
    """Sigmoid ramp-up ``exp(-5 (1 - t)^2)``, ``t = epoch / rampup_epochs``, over the first
    ``rampup_epochs`` epochs (Laine & Aila, ICLR 2017); 1 when it is 0 or the ramp is over."""
    if rampup_epochs <= 0:
        return 1.0
    t = min(1.0, epoch_float / rampup_epochs)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


class SemiLoss:
    """A step's loss for ``semi.method``: the Task's supervised loss on the labelled batch plus the
    weighted unlabelled loss (see the module docstring).

    Args:
        task: the run's Task (its ``batch_loss`` on the labelled split and ``float_batch``).
        unlabelled: the unlabelled split (images only are read).
        cfg: the run's config.
        teacher: returns the teacher model (mean teacher: the loop's EMA model).
    """

    def __init__(self, task: Any, unlabelled: Any, cfg: Any, teacher: Callable[[], Any] | None = None) -> None:
        if len(unlabelled.images) == 0:
            raise DataError(f"semi.method={cfg.semi.method!r}: no unlabelled training case is left "
                            f"(data.labelled_fraction={cfg.data.labelled_fraction})")
        if getattr(task.spec, "task_type", "") == "multi-label":
            raise ConfigError(f"semi.method={cfg.semi.method!r} needs one class per case (softmax outputs); "
                              f"{task.spec.name} is multi-label")
        self.task, self.unlabelled, self.cfg, self.teacher = task, unlabelled, cfg, teacher
        self.last: dict[str, float] = {}

    def batch_loss(self, idx: np.ndarray, gen: Any, forward: Callable[[Any], Any], *, epoch: int, step: int,
                   steps_per_epoch: int):
        import torch

        cfg, s = self.cfg, self.cfg.semi
        sup = self.task.batch_loss(idx, gen, forward)
        ugen = torch.Generator().manual_seed((cfg.train.seed * 1_000_003 + epoch) * 100_003 + step + 17)
        n_u = len(self.unlabelled.images)
        pick = torch.randint(0, n_u, (s.ratio * len(idx),), generator=ugen).numpy()
        xu = self.task.float_batch(self.unlabelled.images[np.sort(pick)]).to(torch.float32)
        noise = lambda x, std: x + std * torch.randn(x.shape, generator=ugen).to(x.device)  # noqa: E731
        used = 1.0
        if s.method == "pseudo_label":
            logits = forward(xu)
            unsup, used = consistency_ce(logits, logits, s.threshold)
        elif s.method == "fixmatch":
            with torch.no_grad():
                weak = forward(noise(xu, 0.03))
            strong = photometric_strong(xu.cpu(), ugen).to(xu.device)
            unsup, used = consistency_ce(forward(strong), weak, s.threshold)
        elif s.method == "mean_teacher":
            teacher = self.teacher().eval()  # the EMA is never trained by gradient: eval mode (BN statistics)
            with torch.no_grad():
                t_logits = teacher(noise(xu, s.noise)).float()
            unsup = softmax_mse(forward(noise(xu, s.noise)), t_logits)
        else:  # pragma: no cover - check_few_labels_config refuses other names
            raise ConfigError(f"semi.method: unknown {s.method!r}")
        w = s.weight * rampup_factor(epoch + step / max(steps_per_epoch, 1), s.rampup_epochs)
        self.last = {"unsup_loss": float(unsup.detach()), "used": used, "weight": w}
        return sup + w * unsup
