"""Comparing models on the same cases (DESIGN §4.4, §4.5): paired tests, Holm, rankings.

Every pair of models is compared on every metric with the test that fits the metric:

| metric | test | CI of the difference |
|---|---|---|
| AUC (classification) | paired DeLong | DeLong |
| ACC (classification) | exact McNemar | paired BCa bootstrap |
| per-case metrics (Brier, NLL, Dice, HD95, NSD, ...) | Wilcoxon signed-rank | paired BCa bootstrap of the mean difference |
| detection AP, mAP, AR, FROC, F1 (not per-case means) | paired bootstrap over images | paired BCa bootstrap (same resamples) |

Holm's correction is applied within each family = one metric and label across all model pairs
(so adding a metric does not change another metric's p-values). For per-case metrics a pair is
compared on the cases where both models have a defined value; ``estimate_a``/``estimate_b`` are
the means over those cases and ``diff = estimate_a - estimate_b``. Where a case is defined for
one model only (segmentation: an empty truth that one model left empty, NaN, and the other did
not, Dice 0), dropping it would hide the second model's false positive: such a pair compares each
model's own mean over its defined cases (the headline of ``evaluate``), with the paired bootstrap
of that difference and a paired swap-permutation test (``test = swap_permutation_nanmean``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from openmia.errors import PredictionError

COMPARISON_COLUMNS = ("metric", "label", "model_a", "model_b", "estimate_a", "estimate_b", "diff", "ci_low", "ci_high",
                      "test", "p_value", "p_holm")
# direction of each metric: True = higher is better
HIGHER_IS_BETTER = {
    "auc": True, "ap": True, "acc": True, "balanced_acc": True, "f1": True, "dice": True, "iou": True, "nsd": True,
    "precision": True, "recall": True, "lesion_f1": True, "lesion_dice": True, "brier": False, "nll": False,
    "hd": False, "hd95": False, "assd": False, "masd": False, "correct": True,
    "count_abs_error": False, "count_sq_error": False, "count_rel_error": False,
    "psnr": True, "ssim": True, "mae": False, "psnr_mask": True, "ssim_mask": True, "mae_mask": False,
    # detection (aggregate over images: paired bootstrap, openmia.evaluation.detection_compare)
    "ap50": True, "ap75": True, "map": True, "ar": True, "ap_small": True, "ap_medium": True, "ap_large": True,
    "froc": True,
    # segmentation: always computed (gen_dice: label all only) and opt-in (evaluate --extra-metrics) per-case metrics
    "gen_dice": True, "boundary_iou": True, "hd_pred_to_truth": False, "hd_truth_to_pred": False,
    "hd95_pred_to_truth": False, "hd95_truth_to_pred": False, "cldice": True, "cldice_tprec": True, "cldice_tsens": True,
    "lesion_pq": True, "lesion_sq": True, "lesion_rq": True,
    "radial_error": False,  # landmarks (mm)
}
DEFAULT_METRICS = {"classification": ("auc", "acc", "brier", "nll"), "segmentation": ("dice", "hd95", "assd", "nsd"),
                   "counting": ("count_abs_error", "count_sq_error"), "inpainting": ("psnr", "ssim", "mae"),
                   "denoising": ("psnr", "ssim", "mae"),
                   "landmarks": ("radial_error",)}


from openmia.evaluation.model_predictions import ModelPredictions  # noqa: E402,F401


def _bootstrap_diff(a: np.ndarray, b: np.ndarray, *, n_resamples: int, seed: int, groups) -> tuple[float, float]:
    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.stats.bootstrap import bootstrap_ci

    d = a - b
    r = bootstrap_ci(weighted_nanmean(d), len(d), n_resamples=n_resamples, seed=seed, groups=groups)
    return r.ci_low, r.ci_high


def _one_sided_row(a: np.ndarray, b: np.ndarray, *, n_resamples: int, seed: int, groups) -> dict[str, Any]:
    """A per-case metric where some case is defined for one model only (e.g. an empty truth: NaN
    for the model that predicted nothing, Dice 0 for the one that did). Dropping those cases would
    hide the second model's false positives, so the pair is compared on each model's own mean (the
    headline ``evaluate`` reports): the paired bootstrap of the difference of the two means (same
    case resamples for both) and a paired swap-permutation test of it."""
    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.stats.bootstrap import paired_bootstrap_diff
    from openmia.stats.paired import nanmean_difference_permutation_test

    mean_a, mean_b = weighted_nanmean(a), weighted_nanmean(b)  # finite values only, as the headline
    ci = paired_bootstrap_diff(mean_a, mean_b, len(a), n_resamples=n_resamples, seed=seed, groups=groups)
    t = nanmean_difference_permutation_test(a, b, n_resamples=n_resamples, seed=seed)  # two-sided, as Wilcoxon
    unit = np.ones((1, len(a)))  # the estimates: the bootstrap's statistic at equal case weights
    ea, eb = float(mean_a(unit)[0]), float(mean_b(unit)[0])
    return {"estimate_a": ea, "estimate_b": eb, "diff": ea - eb, "ci_low": ci.ci_low, "ci_high": ci.ci_high,
            "test": "swap_permutation_nanmean", "p_value": t["p_value"]}


def pairwise_comparisons(models: Sequence[ModelPredictions], *, metrics: Sequence[tuple[str, str]], y=None,
                         task_type: str | None = None, groups=None, n_resamples: int = 2000, seed: int = 0,
                         alpha: float = 0.05, alternative: str = "two-sided", unpaired: bool = False) -> list[dict[str, Any]]:
    """Rows of ``comparisons.csv`` for every pair of ``models`` and every ``(metric, label)``.

    AUC: DeLong's test, paired, or with ``unpaired`` the test for two independent test sets (each
    model's truth in ``extras["y"]``); ``alternative`` two-sided, greater (AUC_a > AUC_b) or less."""
    from openmia.stats import delong
    from openmia.stats.paired import wilcoxon_signed_rank
    from openmia.stats.tests import holm, mcnemar_exact

    if len(models) < 2:
        raise PredictionError(f"compare needs at least two models, got {len(models)}")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise PredictionError(f"model names must be unique, got {names}")
    rows: list[dict[str, Any]] = []
    for metric, label in metrics:
        family = []
        for ma, mb in itertools.combinations(models, 2):
            row: dict[str, Any] = {"metric": metric, "label": label, "model_a": ma.name, "model_b": mb.name}
            if metric == "auc" and label == "all" and ma.probs is not None:
                if unpaired:
                    t = delong.delong_unpaired_test_ovr(ma.extras["y"], ma.probs, mb.extras["y"], mb.probs, task_type,
                                                        alpha, alternative)
                else:
                    t = delong.delong_paired_test_ovr(y, ma.probs, mb.probs, task_type, alpha, alternative)
                test = ("unpaired_delong" if unpaired else "paired_delong") + \
                    ("" if alternative == "two-sided" else f"_{alternative}")
                row.update(estimate_a=t["auc_a"], estimate_b=t["auc_b"], diff=t["diff"], ci_low=t["ci_low"],
                           ci_high=t["ci_high"], test=test, p_value=t["p_value"])
            elif (metric, label) in ma.extras.get("stats", {}):  # detection AP-type: paired bootstrap over images
                from openmia.evaluation.detection_compare import compare_row

                row.update(compare_row(ma, mb, (metric, label), n_resamples=n_resamples, seed=seed, alpha=alpha, groups=groups))
            else:
                key = ("correct", label) if metric == "acc" else (metric, label)
                if key not in ma.per_case or key not in mb.per_case:
                    raise PredictionError(f"metric {metric!r} (label {label}) has no per-case values to compare; "
                                          f"available: {sorted({k[0] for k in (*ma.per_case, *ma.extras.get('stats', {}))})}")
                a, b = ma.per_case[key], mb.per_case[key]
                both = np.isfinite(a) & np.isfinite(b)
                if metric != "acc" and (np.isfinite(a) != np.isfinite(b)).any():
                    row.update(_one_sided_row(a, b, n_resamples=n_resamples, seed=seed, groups=groups))
                    family.append(row)
                    continue
                a_, b_ = np.where(both, a, np.nan), np.where(both, b, np.nan)
                lo, hi = _bootstrap_diff(a_, b_, n_resamples=n_resamples, seed=seed, groups=groups)
                ea, eb = (float(np.mean(a[both])), float(np.mean(b[both]))) if both.any() else (np.nan, np.nan)
                if metric == "acc" and task_type != "multi-label":
                    p = mcnemar_exact(a[both], b[both])["p_value"]
                    test = "exact_mcnemar"
                else:
                    w = wilcoxon_signed_rank(a[both], b[both])
                    p, test = w["p_value"], "wilcoxon_signed_rank"
                row.update(estimate_a=ea, estimate_b=eb, diff=ea - eb, ci_low=lo, ci_high=hi, test=test, p_value=p)
            family.append(row)
        ps = np.array([r["p_value"] for r in family], dtype=float)
        ok = np.isfinite(ps)
        adj = np.full(len(ps), np.nan)
        if ok.any():
            adj[ok] = holm(ps[ok])
        for r, p in zip(family, adj):
            r["p_holm"] = float(p)
        rows += family
    return rows


def write_comparisons(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """``comparisons.csv`` (columns :data:`COMPARISON_COLUMNS`), atomically."""
    import csv
    import io

    from openmia import fileio

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COMPARISON_COLUMNS)
    for r in rows:
        w.writerow([r[c] if isinstance(r[c], str) else repr(float(r[c])) for c in COMPARISON_COLUMNS])
    return fileio.write_text(Path(path), buf.getvalue())


def _check_case_sets(preds: dict[str, str | Path], unpaired: bool) -> None:
    """Paired tests need the same cases in every prediction file, the unpaired test disjoint ones."""
    from openmia.evaluation.io import read_csv

    sets = {}
    for name, path in preds.items():
        t = read_csv(path)
        col = t.header.index("case_id")
        sets[name] = {r[col] for r in t.rows}
    (a, sa), *rest = sets.items()
    for b, sb in rest:
        shared = len(sa & sb)
        counts = f"{shared} shared, {len(sa - sb)} only in {a}, {len(sb - sa)} only in {b}"
        if not unpaired and sa != sb:
            eg = ", ".join(sorted(sa ^ sb)[:5])
            raise PredictionError(f"--pred {b}={preds[b]}: its {len(sb)} cases differ from those of --pred {a}={preds[a]} "
                                  f"({len(sa)}): {counts} (missing from one of them: {eg}"
                                  f"{', ...' if len(sa ^ sb) > 5 else ''}). compare tests models on the same cases "
                                  "(paired); for models scored on independent test sets (e.g. two sites) pass --unpaired "
                                  "(AUC: unpaired DeLong)")
        if unpaired and shared:
            raise PredictionError(f"--unpaired compares independent test sets, but --pred {a}={preds[a]} and --pred "
                                  f"{b}={preds[b]} share cases ({counts}); use the paired test (without --unpaired) "
                                  "for models scored on the same cases")
    if unpaired:
        for (a, sa), (b, sb) in itertools.combinations(list(sets.items())[1:], 2):
            if sa & sb:
                raise PredictionError(f"--unpaired compares independent test sets, but --pred {a} and --pred {b} share "
                                      f"{len(sa & sb)} cases")


def _classification_models(truth, preds: dict[str, str | Path], *, task_type, patients_csv,
                           unpaired: bool = False) -> tuple[list[ModelPredictions], dict]:
    from openmia.evaluation.io import align_classification
    from openmia.metrics import classification as M

    _check_case_sets(preds, unpaired)
    if unpaired:
        if patients_csv is not None:
            raise PredictionError("--patients is not supported with --unpaired (DeLong's unpaired test assumes "
                                  "independent cases)")
        return _unpaired_classification_models(truth, preds, task_type=task_type)
    models, ref = [], None
    for name, path in preds.items():
        d = align_classification(path, truth, task_type=task_type, patients_csv=patients_csv)
        if ref is None:
            ref = d
        pred = M.predict(d.probs, d.task_type)
        correct = (pred == d.y).mean(axis=1) if d.task_type == "multi-label" else (pred == d.y).astype(float)
        models.append(ModelPredictions(name, {("correct", "all"): correct,
                                              ("brier", "all"): M.brier_per_case(d.y, d.probs, d.task_type),
                                              ("nll", "all"): M.nll_per_case(d.y, d.probs, d.task_type)}, d.probs))
    ctx = {"case_ids": ref.case_ids, "y": ref.y, "task_type": ref.task_type,
           "groups": None if ref.patient_ids is None else np.asarray(ref.patient_ids)}
    return models, ctx


def _unpaired_classification_models(truth, preds: dict[str, str | Path], *, task_type) -> tuple[list[ModelPredictions], dict]:
    """Each model on its own cases (the truth file holds every set's cases); truth in ``extras["y"]``."""
    from openmia.evaluation.io import align_classification

    models, types, case_ids = [], set(), []
    for name, path in preds.items():
        d = align_classification(path, truth, task_type=task_type, allow_missing=True)
        keep = np.flatnonzero(~np.isin(np.asarray(d.case_ids, dtype=object), np.asarray(d.missing, dtype=object)))
        models.append(ModelPredictions(name, {}, d.probs[keep], extras={"y": d.y[keep]}))
        types.add(d.task_type)
        case_ids += [d.case_ids[i] for i in keep]
    if len(types) > 1:
        raise PredictionError(f"--unpaired: the prediction files imply different task types {sorted(types)}; pass --task-type")
    return models, {"case_ids": case_ids, "y": None, "task_type": types.pop(), "groups": None, "unpaired": True}


def _unpaired_auc_stability(models: Sequence[ModelPredictions], task_type: str, *, n_resamples: int,
                            seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """Rank stability of the AUC when every model has its own test set: each set is resampled
    independently (a stratified bootstrap), the models ranked on every joint resample."""
    from scipy.stats import kendalltau

    from openmia.metrics import classification as M
    from openmia.stats.bootstrap import resample_weights
    from openmia.stats.ranking import _rank

    scores = np.array([float(M.auc(m.extras["y"], m.probs, task_type)[0]) for m in models])
    aucs = np.column_stack([np.concatenate([M.auc(m.extras["y"], m.probs, task_type, w)
                                            for w in resample_weights(len(m.probs), n_resamples, seed + i).chunks()])
                            for i, m in enumerate(models)])
    full = _rank(scores, True)
    boot = np.array([_rank(a, True) for a in aucs])
    k = len(models)
    freq = np.array([np.bincount(np.clip(np.round(boot[:, j]).astype(int), 1, k) - 1, minlength=k) / len(boot)
                     for j in range(k)])
    with np.errstate(invalid="ignore"):
        taus = np.array([kendalltau(full, b).statistic if np.ptp(b) > 0 and np.ptp(full) > 0 else np.nan for b in boot])
    return {"scheme": "aggregate-then-rank", "ranks": full, "boot_ranks": boot, "rank_frequency": freq, "kendall_tau": taus,
            "kendall_tau_median": float(np.nanmedian(taus)) if np.isfinite(taus).any() else float("nan"),
            "n_resamples": n_resamples, "seed": seed}, scores


def _per_case_models(task: str, truth, preds: dict[str, str | Path], *, patients_csv, **kwargs) -> tuple[list[ModelPredictions], dict]:
    """Models scored by a per-case evaluator (segmentation, counting, inpainting)."""
    from openmia.evaluation.registry import get_evaluator

    evaluate = get_evaluator(task)  # the same evaluator as `openmia evaluate --task T`
    if task in CLUSTER_BOOTSTRAP:  # evaluators that take patients for a cluster bootstrap
        kwargs["patients_csv"] = patients_csv
    elif patients_csv is not None:
        raise PredictionError(f"--patients is not supported for compare --task {task} in this version")
    models, cases, groups, nan_rank = [], None, None, "worst"
    for name, path in preds.items():
        res = evaluate(path, truth, None, n_resamples=100, **kwargs)
        nan_rank = res.extras.get("nan_rank", nan_rank)
        if "table" in res.extras:  # the segmentation evaluator keeps its aligned table (labels and "all")
            order, table = res.extras["cases"], res.extras["table"]
            if res.extras.get("patient_ids") is not None:
                groups = np.asarray(res.extras["patient_ids"])
        else:  # counting / inpainting: rebuild it from the long-form rows
            order = list(dict.fromkeys(r[0] for r in res.per_case))
            idx = {c: i for i, c in enumerate(order)}
            table = {}
            for cid, label, metric, value in res.per_case:
                table.setdefault((metric, label), np.full(len(order), np.nan))[idx[cid]] = value
        if cases is None:
            cases = order
        elif order != cases:
            raise PredictionError(f"{path}: scored cases differ from the first model's; every model must cover the truth's cases")
        models.append(ModelPredictions(name, table))
    return models, {"case_ids": cases, "y": None, "task_type": None, "groups": groups, "nan_rank": nan_rank}


def _detection_models(task: str, truth, preds, *, task_type=None, patients_csv=None, **kwargs):
    from openmia.evaluation.detection_compare import detection_models

    return detection_models(truth, preds, patients_csv=patients_csv, **kwargs)


def _classification(task: str, truth, preds, *, task_type=None, patients_csv=None, unpaired: bool = False, **_):
    return _classification_models(truth, preds, task_type=task_type, patients_csv=patients_csv, unpaired=unpaired)


def _per_case(task: str, truth, preds, *, task_type=None, patients_csv=None, **kwargs):
    return _per_case_models(task, truth, preds, patients_csv=patients_csv, **kwargs)


# how each task's prediction files become ModelPredictions (one table: the tasks compare supports)
MODEL_LOADERS = {"classification": _classification, "segmentation": _per_case, "detection": _detection_models,
                 "counting": _per_case, "inpainting": _per_case, "landmarks": _per_case,
                 "denoising": _per_case}
CLUSTER_BOOTSTRAP = ("segmentation",)


def compare_files(task: str, truth: str | Path, preds: dict[str, str | Path], out_dir: str | Path | None = None, *,
                  metrics: Sequence[str] | None = None, labels: Sequence[str] = ("all",), scheme: str = "aggregate-then-rank",
                  task_type: str | None = None, patients_csv=None, n_resamples: int = 2000, rank_resamples: int = 1000,
                  seed: int = 0, alpha: float = 0.05, progress: Callable[[int, int], None] | None = None,
                  unpaired: bool = False, alternative: str = "two-sided", **task_kwargs: Any) -> dict[str, Any]:
    """Compare several models' prediction files against one truth; write the comparison outputs.

    Classification AUC only: ``unpaired`` compares models scored on independent test sets (disjoint
    case ids, all in ``truth``) with DeLong's unpaired test; ``alternative`` (``two-sided``,
    ``greater``: AUC_a > AUC_b, ``less``) makes DeLong's test one-sided.

    Returns ``{"comparisons": rows, "ranking": rows, "files": {...}}``. Rankings use ``scheme`` on
    per-case values; AUC has no per-case values, so it is always ranked aggregate-then-rank (the
    bootstrap still resamples cases), which the ranking table states. ``progress`` is called
    ``f(done, total)`` after loading the models, after the paired tests and after each ranking.
    """
    from openmia.stats.ranking import SCHEMES, plot_rank_stability, rank_stability

    if scheme not in SCHEMES:
        raise PredictionError(f"unknown ranking scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if len(preds) < 2:
        raise PredictionError(f"compare needs at least two --pred NAME=PATH, got {len(preds)}")
    if task not in MODEL_LOADERS:
        raise PredictionError(f"compare --task {task}: available for {', '.join(MODEL_LOADERS)}")
    from openmia.stats.delong import ALTERNATIVES

    if alternative not in ALTERNATIVES:
        raise PredictionError(f"--alternative must be one of {', '.join(ALTERNATIVES)}, found {alternative!r}")
    auc_only = [flag for flag, on in (("--unpaired", unpaired), (f"--alternative {alternative}", alternative != "two-sided"))
                if on]
    if auc_only and "auc" not in DEFAULT_METRICS.get(task, ()):  # DeLong's options: tasks scored by an AUC
        raise PredictionError(f"{' and '.join(auc_only)}: available for compare --task classification (AUC) only")
    if unpaired:
        task_kwargs["unpaired"] = True
    models, ctx = MODEL_LOADERS[task](task, truth, preds, task_type=task_type, patients_csv=patients_csv, **task_kwargs)
    metrics = list(metrics or (["auc"] if auc_only else None) or ctx.get("default_metrics") or DEFAULT_METRICS[task])
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown:
        raise PredictionError(f"unknown metric(s) {unknown} for compare; choose from {sorted(HIGHER_IS_BETTER)}")
    if auc_only and metrics != ["auc"]:
        raise PredictionError(f"{' and '.join(auc_only)} applies to the AUC (DeLong's test) only; the other metrics "
                              f"{[m for m in metrics if m != 'auc']} have paired two-sided tests: pass --metrics auc")
    pairs = [(m, lab) for m in metrics for lab in labels]
    n_steps = 2 + len(pairs)
    if progress is not None:
        progress(1, n_steps)
    rows = pairwise_comparisons(models, metrics=pairs, y=ctx["y"], task_type=ctx["task_type"], groups=ctx["groups"],
                                n_resamples=n_resamples, seed=seed, alpha=alpha, alternative=alternative, unpaired=unpaired)
    if progress is not None:
        progress(2, n_steps)
    names = [m.name for m in models]
    ranking, stabilities = [], {}
    for step, (metric, label) in enumerate(pairs, 3):
        hib = HIGHER_IS_BETTER[metric]
        if metric == "auc" and unpaired:  # every model on its own test set: resampled independently
            used = "aggregate-then-rank"
            stab, scores = _unpaired_auc_stability(models, ctx["task_type"], n_resamples=rank_resamples, seed=seed)
        elif metric == "auc":
            from openmia.metrics import classification as M

            y, tt = ctx["y"], ctx["task_type"]
            probs = [m.probs for m in models]

            def ranker(w, probs=probs, y=y, tt=tt):
                from openmia.stats.ranking import _rank

                return _rank(np.array([float(M.auc(y, p, tt, w[None])[0]) for p in probs]), True)

            values = np.zeros((len(ctx["case_ids"]), len(models)))
            used = "aggregate-then-rank"
            stab = rank_stability(values, used, higher_is_better=True, n_resamples=rank_resamples, seed=seed,
                                  groups=ctx["groups"], ranker=ranker)
            scores = np.array([float(M.auc(y, p, tt)[0]) for p in probs])
        elif (metric, label) in models[0].extras.get("stats", {}):  # detection AP-type: rank on image resamples
            from openmia.evaluation.detection_compare import rank_aggregate

            used = "aggregate-then-rank"
            stab, scores = rank_aggregate(models, (metric, label), higher_is_better=hib, n_resamples=rank_resamples,
                                          seed=seed, groups=ctx["groups"])
        else:
            key = ("correct", label) if metric == "acc" else (metric, label)
            values = np.column_stack([m.per_case[key] for m in models])
            used = scheme
            n_boot = rank_resamples if scheme != "test-then-rank" else min(rank_resamples, 200)
            nan_rank = ctx.get("nan_rank", "worst")  # what a NaN case means to this task's evaluator
            stab = rank_stability(values, used, higher_is_better=hib, n_resamples=n_boot, seed=seed,
                                  groups=ctx["groups"], alpha=alpha, nan_rank=nan_rank)
            from openmia.stats.ranking import rank_models

            scores = rank_models(values, used, higher_is_better=hib, alpha=alpha, nan_rank=nan_rank)["scores"]
        stabilities[(metric, label)] = stab
        for j, name in enumerate(names):
            ranking.append({"metric": metric, "label": label, "scheme": used, "model": name, "score": float(scores[j]),
                            "rank": float(stab["ranks"][j]), "mean_bootstrap_rank": float(stab["boot_ranks"][:, j].mean()),
                            "p_rank1": float(stab["rank_frequency"][j, 0]),
                            "kendall_tau_median": stab["kendall_tau_median"], "n_resamples": stab["n_resamples"]})
        if progress is not None:
            progress(step, n_steps)
    files: dict[str, Path] = {}
    if out_dir is not None:
        import csv
        import io

        from openmia import fileio

        out = Path(out_dir)
        with fileio.atomic_dir(out) as tmp:  # the files appear together, or not at all
            files["comparisons"] = write_comparisons(tmp / "comparisons.csv", rows)
            buf = io.StringIO()
            cols = list(ranking[0])
            w = csv.writer(buf)
            w.writerow(cols)
            for r in ranking:
                w.writerow([r[c] if isinstance(r[c], str) else repr(r[c]) for c in cols])
            files["ranking"] = fileio.write_text(tmp / "ranking.csv", buf.getvalue())
            first = pairs[0]
            files["rank_stability"] = plot_rank_stability(stabilities[first], names, tmp / "rank_stability.png",
                                                          title=f"{first[0]} ({first[1]}): {stabilities[first]['scheme']}, "
                                                                f"median Kendall tau {stabilities[first]['kendall_tau_median']:.2f}")
            from openmia.evaluation.forest_plot import forest_plot

            files["forest_plot"] = forest_plot(rows, tmp / "forest_plot.png", higher_is_better=HIGHER_IS_BETTER,
                                               title=f"{task}: {'unpaired' if unpaired else 'paired'} differences, "
                                                     "Holm-adjusted p per metric")["path"]
            files["summary"] = fileio.write_json(tmp / "compare.json", {
                "schema": "openmia.compare/1", "task": task, "models": {n: str(p) for n, p in preds.items()}, "truth": str(truth),
                "n_cases": len(ctx["case_ids"]), "metrics": metrics, "labels": list(labels), "scheme": scheme,
                "holm_family": "one metric and label across all model pairs", "bootstrap": {"n_resamples": n_resamples, "seed": seed},
                "unpaired": unpaired, "alternative": alternative,
                "comparisons": rows, "ranking": ranking})
        files = {k: out / v.name for k, v in files.items()}
    return {"comparisons": rows, "ranking": ranking, "files": files}
