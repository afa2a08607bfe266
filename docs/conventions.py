"""The conventions table of docs/evaluation.md: where openmia's definition differs from a peer's,
with both values computed on a small worked example (issue 22 §2).

    python docs/conventions.py --check   # exit 1 when the table in docs/evaluation.md drifted
    python docs/conventions.py --write   # regenerate the table between its two markers

Every value is computed here, each run: openmia's through its public functions, the peer's with the
peer's own package where it is installed (MONAI, scikit-learn, SciPy) and otherwise by the peer's
published definition written out below (named "definition" in the table). The default test suite
runs ``--check`` (tests/docs/test_conventions_table.py), so the table cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

DOC = Path(__file__).resolve().parent / "evaluation.md"
BEGIN, END = "<!-- conventions:begin -->", "<!-- conventions:end -->"


def _fmt(x: float) -> str:
    if isinstance(x, str):
        return x
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "inf"
    return f"{x:.4g}"


def _scalar(x) -> str:
    """One value of a metric that returns one value per resample row (``(1,)`` without weights)."""
    return _fmt(float(np.asarray(x).ravel()[0]))


def _squares() -> tuple[np.ndarray, np.ndarray]:
    """2D truth: a 10x10 square; prediction: the square shifted by one pixel plus a 3x2 spur."""
    truth = np.zeros((24, 24), bool)
    truth[5:15, 5:15] = True
    pred = np.zeros_like(truth)
    pred[6:16, 5:15] = True
    pred[9:12, 15:17] = True
    return pred, truth


def _monai_seg(metric: str, pred: np.ndarray, truth: np.ndarray, **kw) -> float:
    """MONAI's value of ``metric`` for one binary 2D pair (one-hot, batch of one)."""
    import torch
    from monai import metrics as mm

    def onehot(m: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    p, t = onehot(pred), onehot(truth)
    if metric == "hd95":
        return float(mm.compute_hausdorff_distance(p, t, include_background=False, percentile=95, **kw)[0, 0])
    if metric == "dice":
        return float(mm.DiceMetric(include_background=False, **kw)(p, t)[0, 0])
    if metric == "gen_dice":
        return float(mm.compute_generalized_dice(p, t, include_background=False, **kw)[0])
    raise KeyError(metric)


def row_hd95_pooling() -> tuple[str, ...]:
    from openmia.metrics.segmentation import hausdorff, surface_distances

    pred, truth = _squares()
    sd = surface_distances(pred, truth)
    pooled = float(np.percentile(np.concatenate([sd.pred_to_truth, sd.truth_to_pred]), 95))
    ours = hausdorff(pred, truth, percentile=95)
    monai = _monai_seg("hd95", pred, truth)
    return ("HD95: the two directions", "max of the two directed 95th percentiles (= MONAI "
            f"{_fmt(monai)})", "MedPy `hd95` pools both directions, then the 95th percentile (definition)",
            "10×10 square vs the square shifted 1 px plus a 3×2 spur", _fmt(ours), _fmt(pooled))


def row_nsd_surfel() -> tuple[str, ...]:
    from openmia.metrics.segmentation import nsd
    from openmia.metrics.surfel import surfel_metrics

    truth = np.zeros((8, 8), bool)
    truth[2:6, 2:6] = True
    pred = np.zeros_like(truth)
    pred[2:6, 3:7] = True
    ours = nsd(pred, truth, spacing=(1.0, 2.0), tolerance=1.0)
    surf = surfel_metrics(pred, truth, spacing=(1.0, 2.0), tolerance=1.0)["nsd"]
    import torch
    from monai.metrics import compute_surface_dice

    def onehot(m: np.ndarray) -> "torch.Tensor":
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    monai = float(compute_surface_dice(onehot(pred), onehot(truth), [1.0], spacing=(1.0, 2.0),
                                       use_subvoxels=True)[0, 0])
    return ("NSD: where the surface is", "default `--surface voxel`: boundary voxel centres, each counted once "
            "(MONAI `compute_surface_dice`)", "DeepMind `surface-distance` and MONAI `use_subvoxels=True`: surface "
            f"elements between voxel centres weighted by their length/area (openmia `--surface surfel`: {_fmt(surf)})",
            "4×4 square vs the square shifted one column, spacing 1 × 2 mm, τ = 1 mm", _fmt(ours), _fmt(monai))


def row_empty_prediction() -> tuple[str, ...]:
    from openmia.metrics.segmentation import hausdorff

    _, truth = _squares()
    pred = np.zeros_like(truth)
    monai = _monai_seg("hd95", pred, truth)
    return ("HD95 with an empty prediction", "worst case: the image diagonal in mm (counted in the mean)",
            "MONAI `compute_hausdorff_distance`: NaN with a warning (left out of a mean by `nanmean`)",
            "24×24 image, empty prediction, 10×10 truth", _fmt(hausdorff(pred, truth, percentile=95)), _fmt(monai))


def row_both_empty() -> tuple[str, ...]:
    from openmia.metrics.segmentation import dice

    empty = np.zeros((24, 24), bool)
    monai = _monai_seg("dice", empty, empty, ignore_empty=False)
    return ("Dice when truth and prediction are both empty", "NaN, counted in `n_nan`, excluded from the mean",
            "MONAI `DiceMetric(ignore_empty=False)`: 1.0 (with `ignore_empty=True`: NaN, as openmia)",
            "both masks empty", _fmt(dice(empty, empty)), _fmt(monai))


def row_gen_dice_empty_truth() -> tuple[str, ...]:
    from openmia.metrics.segmentation_more import generalized_dice

    _, truth = _squares()
    empty = np.zeros_like(truth)
    ours = generalized_dice(empty.astype(int), empty.astype(int), labels=[1])
    monai = _monai_seg("gen_dice", empty, empty)
    return ("Generalised Dice with no truth label", "NaN when the prediction is empty too (0, the worst, "
            "when it is not)", "MONAI `compute_generalized_dice`: 1.0", "both masks empty, label 1",
            _fmt(ours), _fmt(monai))


def _probs3() -> tuple[np.ndarray, np.ndarray]:
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    p = np.array([[.7, .2, .1], [.5, .4, .1], [.3, .6, .1], [.4, .35, .25],
                  [.2, .2, .6], [.1, .5, .4], [.95, .03, .02], [.2, .45, .35]])
    return y, p


def row_ece() -> tuple[str, ...]:
    from openmia.metrics.classification import classwise_ece, ece

    y, p = _probs3()
    return ("ECE: which probabilities are binned", "top-label confidence, 15 equal-width bins (Guo et al. 2017; "
            "torchmetrics `multiclass_calibration_error`)", "class-wise ECE (Kull et al. 2019): every class's "
            "probability, averaged over classes (openmia `classwise_ece`)", "8 cases, 3 classes (in the script)",
            _scalar(ece(y, p, "multi-class")), _fmt(float(np.mean(classwise_ece(y, p, "multi-class")))))


def row_ap() -> tuple[str, ...]:
    from sklearn.metrics import auc, precision_recall_curve

    from openmia.metrics.classification import binary_ap

    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    s = np.array([.9, .8, .7, .6, .5, .4, .3, .2])
    prec, rec, _ = precision_recall_curve(y, s)
    return ("Average precision (classification)", "step-wise Σ (R_t − R_{t−1}) P_t (= scikit-learn "
            "`average_precision_score`)", "trapezoidal area under the PR curve, scikit-learn `auc(recall, precision)`",
            "scores 0.9 to 0.2 in steps of 0.1, truth 1 0 1 1 0 0 1 0", _scalar(binary_ap(y, s)), _fmt(float(auc(rec, prec))))


def row_friedman() -> tuple[str, ...]:
    from scipy.stats import friedmanchisquare

    from openmia.stats.multiple import friedman_test

    scores = np.array([[.80, .80, .70], [.90, .85, .85], [.70, .75, .70], [.60, .60, .60], [.82, .80, .78]])
    ours = friedman_test(scores)
    return ("Friedman χ² with tied scores", f"tie-corrected (= SciPy `friedmanchisquare` "
            f"{_fmt(float(friedmanchisquare(*scores.T).statistic))}, R `friedman.test`)",
            "Demšar (2006) χ²_F without the correction (`tie_correction=False`)",
            "5 data sets × 3 models with ties (in the script)", _fmt(ours["chi2"]), _fmt(ours["chi2_uncorrected"]))


def row_kappa() -> tuple[str, ...]:
    from sklearn.metrics import cohen_kappa_score

    from openmia.metrics.classification import confusion, kappa_cm

    y = np.array([0, 1, 2, 3, 4, 2, 1, 0, 3, 4])
    pred = np.array([0, 2, 2, 3, 3, 1, 1, 0, 4, 2])
    ours = _scalar(kappa_cm(confusion(y, pred, 5), weights="quadratic"))
    return ("Cohen's κ on ordinal grades", "quadratic weights (the ordinal MedMNIST sets, e.g. RetinaMNIST)",
            "scikit-learn `cohen_kappa_score` default: unweighted", "10 cases, grades 0–4 (in the script)",
            ours, _fmt(float(cohen_kappa_score(y, pred))))


ROWS: list[Callable[[], tuple[str, ...]]] = [row_hd95_pooling, row_nsd_surfel, row_empty_prediction, row_both_empty,
                                             row_gen_dice_empty_truth, row_ece, row_ap, row_friedman, row_kappa]
HEADER = ("| topic | openmia | peer | worked example | openmia's value | peer's value |\n"
          "|---|---|---|---|---|---|")


def table() -> str:
    """The markdown table, one row per convention (every value computed now)."""
    lines = [HEADER] + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row()) + " |" for row in ROWS]
    return "\n".join(lines)


def block() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the table in docs/evaluation.md")
    ap.add_argument("--check", action="store_true", help="exit 1 if the table drifted")
    args = ap.parse_args(argv)
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC}: markers {BEGIN} / {END} not found", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + block() + tail
    if args.write:
        if new != text:
            from openmia.fileio import write_text

            write_text(DOC, new)
        return 0
    if new != text:
        print("docs/evaluation.md: the conventions table drifted; run python docs/conventions.py --write",
              file=sys.stderr)
        return 1
    if not args.check:
        print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
