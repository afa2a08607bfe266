"""The segmentation benchmark's records and results table (``benchmarks/segmentation.py``): records
per run read from the evaluator's files (``eval/test/summary.json`` and ``per_case.csv``), with the
seed means, cross-validation pools and case subgroups the benchmark reports, each with a BCa
bootstrap CI over test cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from _runs import describe

# Dice the issue compares with (literature): BUSI attention U-Net 0.742 (full BUSI); Kvasir-SEG
# U-Net about 0.82; hippocampus nnU-Net about 0.90 / 0.89 (anterior / posterior).
REFERENCE_DICE = {("busi", "lesion"): 0.742, ("kvasir_seg", "polyp"): 0.82, ("hippocampus", "anterior"): 0.90,
                  ("hippocampus", "posterior"): 0.89, ("hippocampus", "mean"): 0.895}
# the case subset a literature Dice describes, where it is not the whole test split
REFERENCE_SUBSET = {"busi": "benign+malignant"}


def _summary_row(summary: dict[str, Any], metric: str, label: str) -> dict[str, Any]:
    for m in summary["metrics"]:
        if m["metric"] == metric and str(m["label"]) == label:
            return m
    raise KeyError(f"{metric}/{label}")


def _record_labels(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(evaluator label, record label) pairs: each foreground label, then "all" as "mean" when
    there are several."""
    labels = sorted({str(m["label"]) for m in summary["metrics"] if m["metric"] == "dice" and m["label"] != "all"})
    return [(lab, lab) for lab in labels] + ([("all", "mean")] if len(labels) > 1 else [])


def records_for(dataset: str, model: str, run_dir: Path, earlier: list[Path] | None = None) -> list[dict[str, Any]]:
    """Benchmark records (one per foreground label and one ``mean``) from a finished run; the
    training time and epochs of ``earlier`` stages (a staged configuration) are added in."""
    summary = json.loads((run_dir / "eval" / "test" / "summary.json").read_text())
    results = [json.loads((d / "result.json").read_text()) for d in [*(earlier or []), run_dir]]
    result = {"train_seconds": round(sum(r["train_seconds"] for r in results), 3),
              "epochs_done": sum(r["epochs_done"] for r in results)}
    out = []
    for lab, name in _record_labels(summary):
        d = _summary_row(summary, "dice", lab)
        out.append({
            "dataset": dataset, "model": model, "label": name, "dice_mean": d["value"], "dice_ci_low": d["ci_low"],
            "dice_ci_high": d["ci_high"], "hd95_mean": _summary_row(summary, "hd95", lab)["value"],
            "nsd_mean": _summary_row(summary, "nsd", lab)["value"], "train_seconds": result["train_seconds"],
            "reference_dice": REFERENCE_DICE.get((dataset, name)), "epochs": result["epochs_done"],
            "n_test_cases": summary.get("n_cases"),
            **({"stage_epochs": [r["epochs_done"] for r in results]} if earlier else {}),
        })
    return out


def _case_values(run_dirs: list[Path], label: str) -> dict[tuple[str, str], float]:
    """(case id, metric) -> value of ``label`` from the test ``per_case.csv`` of each run; the label
    "all" is the per-case mean over the foreground labels (how the evaluator aggregates)."""
    import csv

    rows: dict[tuple[str, str], list[float]] = {}
    for rd in run_dirs:
        with open(rd / "eval" / "test" / "per_case.csv") as f:
            for row in csv.DictReader(f):
                if label in ("all", row["label"]):
                    v = float(row["value"]) if row["value"] not in ("", "nan") else np.nan
                    rows.setdefault((row["case_id"], row["metric"]), []).append(v)
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for k, v in rows.items()}


def _ci_record(base: dict[str, Any], vals: dict[tuple[str, str], float], cases: list[str], n_resamples: int) -> dict[str, Any]:
    """``base`` plus Dice / HD95 / NSD means over ``cases``, with the BCa bootstrap CI of the Dice."""
    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.stats.bootstrap import bootstrap_ci

    rec = {**base, "n_test_cases": len(cases)}
    for metric in ("dice", "hd95", "nsd"):
        v = np.array([vals.get((c, metric), np.nan) for c in cases])
        ci = bootstrap_ci(weighted_nanmean(v), len(v), n_resamples=n_resamples, seed=0)
        rec[f"{metric}_mean"] = ci.value
        if metric == "dice":
            rec["dice_ci_low"], rec["dice_ci_high"] = ci.ci_low, ci.ci_high
    return rec


def subgroup_records(dataset: str, model: str, run_dir: Path, groups: dict[str, list[str]], label: str,
                     n_resamples: int) -> list[dict[str, Any]]:
    """Dice / HD95 / NSD of ``label`` within named case subsets (BUSI: benign, malignant, both) with BCa
    CIs. ``train_seconds`` is the run's; ``reference_dice`` is the literature's only for a subset named
    in ``REFERENCE_SUBSET`` (BUSI's lesion Dice is over the images with a lesion), else None."""
    vals = _case_values([run_dir], label)
    seconds = json.loads((run_dir / "result.json").read_text())["train_seconds"]
    return [_ci_record({"dataset": dataset, "model": model, "label": label, "subset": g, "train_seconds": seconds,
                        "reference_dice": REFERENCE_DICE.get((dataset, label)) if REFERENCE_SUBSET.get(dataset) == g else None},
                       vals, sorted(c for c in members if (c, "dice") in vals), n_resamples) for g, members in groups.items()]


def seed_mean_records(dataset: str, model: str, run_dirs: dict[int, Path], n_resamples: int,
                      earlier: dict[int, list[Path]] | None = None) -> list[dict[str, Any]]:
    """Seed replicates of one configuration summarised: per foreground label (and their mean), each
    test case's value averaged over the seeds, then the mean over cases with its BCa CI (the
    expected score of one run, with case sampling as the uncertainty); ``dice_by_seed`` holds each
    run's own mean Dice and ``dice_seed_sd`` their standard deviation (run-to-run spread);
    ``train_seconds`` is the mean per run, with each seed's ``earlier`` stages added in."""
    summaries = {s: json.loads((d / "eval" / "test" / "summary.json").read_text()) for s, d in run_dirs.items()}
    seeds = sorted(run_dirs)
    seconds = np.mean([sum(json.loads((d / "result.json").read_text())["train_seconds"] for d in [*(earlier or {}).get(s, []), rd])
                       for s, rd in run_dirs.items()])
    out = []
    for lab, name in _record_labels(summaries[seeds[0]]):
        by_seed = [_summary_row(summaries[s], "dice", lab)["value"] for s in seeds]
        vals = _case_values([run_dirs[s] for s in seeds], lab)
        base = {"dataset": dataset, "model": model, "label": name, "subset": f"mean of seeds {'+'.join(map(str, seeds))}",
                "seeds": seeds, "dice_by_seed": by_seed, "dice_seed_sd": float(np.std(by_seed, ddof=1)),
                "reference_dice": REFERENCE_DICE.get((dataset, name)), "train_seconds": round(float(seconds), 3)}
        out.append(_ci_record(base, vals, sorted({c for c, _ in vals}), n_resamples))
    return out


def pooled_records(dataset: str, model: str, run_dirs: dict[int, Path], n_resamples: int) -> list[dict[str, Any]]:
    """Cross-validation summary: every test case of the given folds in one sample (each case is tested
    by exactly one fold), per foreground label and their mean, with BCa CIs over the pooled cases."""
    summary = json.loads((next(iter(run_dirs.values())) / "eval" / "test" / "summary.json").read_text())
    folds = sorted(run_dirs)
    seconds = round(sum(json.loads((d / "result.json").read_text())["train_seconds"] for d in run_dirs.values()), 3)
    out = []
    for lab, name in _record_labels(summary):
        vals = _case_values(list(run_dirs.values()), lab)
        base = {"dataset": dataset, "model": model, "label": name, "fold": "pooled",
                "subset": f"folds {'+'.join(map(str, folds))} pooled", "folds": folds,
                "reference_dice": REFERENCE_DICE.get((dataset, name)), "train_seconds": seconds}
        out.append(_ci_record(base, vals, sorted({c for c, _ in vals}), n_resamples))
    return out


def write_results(records: list[dict[str, Any]], tests: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    from openmia import fileio

    fileio.write_json(out / "segmentation.json", records)
    f = lambda v, d=3: "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"  # noqa: E731
    lines = [
        f"# Segmentation on real data: BUSI, Kvasir-SEG, MSD Hippocampus ({meta['folds']})", "",
        f"Budget per run: {meta['budgets']} CPU-minutes of training (train + validation, process CPU time), one torch "
        f"thread per run, {meta['parallel']} run(s) in parallel on {meta['cpus']} cores. Generated by `{meta['command']}` "
        f"on {meta['date']} (openmia git {meta['git']}). Test split scored once by openmia's evaluator; Dice CI = BCa "
        f"bootstrap over test cases ({meta['resamples']:,} resamples); HD95 in pixels (2D) or mm (3D); NSD tolerance 1.5.", "",
        "| dataset | model | label | subset | test cases | Dice | 95% CI | HD95 | NSD | train s | epochs | literature Dice |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['label']} | {r.get('subset', 'all')} | {r.get('n_test_cases', '')} "
                     f"| {f(r['dice_mean'])} | {f(r['dice_ci_low'])}–{f(r['dice_ci_high'])} | {f(r['hd95_mean'], 2)} "
                     f"| {f(r['nsd_mean'])} | {f(r.get('train_seconds'), 0)} | {r.get('epochs', '')} | {f(r.get('reference_dice'))} |")
    if tests:
        lines += ["", "## Paired comparisons on the same test cases (A - B; Wilcoxon signed-rank, Holm within metric x label and scoring resolution)", "",
                  "| dataset | metric | label | A | B | A | B | diff | 95% CI | Wilcoxon p | Holm p |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in tests:
            where = t["dataset"] + ("" if "fold" not in t else " (folds pooled)" if t["fold"] == "pooled" else f" (fold {t['fold']})")
            where += f" (scored at {t['size']}²)" if "size" in t else ""
            lines.append(f"| {where} | {t['metric']} | {t['label']} | {t['model_a']} | {t['model_b']} | {f(t['estimate_a'])} "
                         f"| {f(t['estimate_b'])} | {t['diff']:+.3f} | {t['ci_low']:+.3f}–{t['ci_high']:+.3f} | {t['p_value']:.3g} "
                         f"| {t['p_holm']:.3g} |")
    reps = [r for r in records if "seeds" in r]
    if reps:
        lines += ["", "## Seed replicates (the same configuration trained again with other seeds)", "",
                  "| dataset | model | label | seeds | Dice per seed | SD over seeds | seed mean | 95% CI |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['model']} | {r['label']} | {', '.join(map(str, r['seeds']))} "
                  f"| {', '.join(f(v) for v in r['dice_by_seed'])} | {f(r['dice_seed_sd'])} | {f(r['dice_mean'])} "
                  f"| {f(r['dice_ci_low'])}–{f(r['dice_ci_high'])} |" for r in reps]
    lines += ["", "Configurations:", ""]
    for key, ov in meta["configs"].items():
        lines.append(f"- {key}: `{ov if isinstance(ov, str) else describe(ov)}`")
    fileio.write_text(out / "segmentation.md", "\n".join(lines) + "\n")
