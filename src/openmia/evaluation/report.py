"""``report.html``: one self-contained page per evaluation — the summary table with CIs and the
figures a reader wants (ROC and PR curves, reliability diagram, confusion matrix, decision curve,
per-case box/strip plots, FROC curve, segmentation worst-case overlays). Figures are PNGs embedded
as base64, so the file can be mailed or attached to a paper's supplement as is; the worst-case overlays
are also saved beside it (``worst_cases/worst_<rank>_<case>.png``).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _roc_pr(probs: np.ndarray, y: np.ndarray, task_type: str, names: list[str]) -> list[tuple[str, str]]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _plt()
    if task_type == "binary":
        curves = [(names[1] if len(names) > 1 else "positive", (y == 1).astype(int), probs[:, 1])]
    elif task_type == "multi-label":
        curves = [(n, y[:, k], probs[:, k]) for k, n in enumerate(names)]
    else:
        curves = [(n, (y == k).astype(int), probs[:, k]) for k, n in enumerate(names)]
    figs = []
    for kind in ("ROC", "PR"):
        fig, ax = plt.subplots(figsize=(4.2, 4))
        undefined = []
        for name, t, s in curves:
            if t.min() == t.max():
                undefined.append(name)  # a class without positives or negatives has no curve
                continue
            if kind == "ROC":
                fpr, tpr, _ = roc_curve(t, s)
                ax.plot(fpr, tpr, label=name, linewidth=1.2)
            else:
                prec, rec, _ = precision_recall_curve(t, s)
                ax.step(rec, prec, where="post", label=name, linewidth=1.2)
        if kind == "ROC":
            ax.plot([0, 1], [0, 1], ":", color="gray")
            ax.set_xlabel("1 - specificity")
            ax.set_ylabel("sensitivity")
        else:
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        ax.set_title(f"{kind} curve" + (" (one-vs-rest)" if task_type in ("multi-class", "ordinal") else ""), fontsize=9)
        if undefined:  # said on the figure; an empty legend would only draw a matplotlib warning
            ax.text(0.5, 0.5, "undefined for " + ", ".join(undefined[:6]) + (" …" if len(undefined) > 6 else "")
                    + "\n(no positive or no negative case)", ha="center", va="center", fontsize=7, color="gray",
                    transform=ax.transAxes)
        if len(curves) <= 12 and len(undefined) < len(curves):
            ax.legend(fontsize=7)
        figs.append((f"{kind} curve", _png(fig)))
    return figs


def _reliability(rel: dict[str, list]) -> tuple[str, str]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    conf, acc, cnt = (np.asarray(rel[k], float) for k in ("confidence", "accuracy", "count"))
    ok = cnt > 0
    lo, hi = np.asarray(rel["bin_lower"], float), np.asarray(rel["bin_upper"], float)
    ax.bar(lo[ok], acc[ok], width=(hi - lo)[ok], align="edge", alpha=0.6, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect calibration")
    ax.plot(conf[ok], acc[ok], "o", color="tab:red", markersize=3, label="mean confidence")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram", fontsize=9)
    ax.legend(fontsize=7)
    return "reliability diagram", _png(fig)


def _confusion(y: np.ndarray, pred: np.ndarray, names: list[str]) -> tuple[str, str]:
    plt = _plt()
    k = len(names)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y, pred), 1)
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * k, 1.3 + 0.5 * k))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix", fontsize=9)
    return "confusion matrix", _png(fig)


def _per_case_plots(per_case: list[tuple[str, str, str, float]], metrics: list[str]) -> list[tuple[str, str]]:
    """Box + strip plot of per-case values for each metric, one box per label."""
    plt = _plt()
    figs = []
    by: dict[str, dict[str, list[float]]] = {}
    for _, label, metric, value in per_case:
        if metric in metrics and np.isfinite(value):
            by.setdefault(metric, {}).setdefault(label, []).append(value)
    rng = np.random.default_rng(0)
    for metric in metrics:
        groups = by.get(metric)
        if not groups:
            continue
        labels = list(groups)
        fig, ax = plt.subplots(figsize=(1.6 + 0.9 * len(labels), 3.4))
        ax.boxplot([groups[lab] for lab in labels], showfliers=False)
        for i, lab in enumerate(labels, start=1):
            v = np.asarray(groups[lab])
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=8, alpha=0.5, color="tab:blue")
        ax.set_xticks(range(1, len(labels) + 1), [f"label {lab}" for lab in labels], fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"per-case {metric} (n_cases per box = points)", fontsize=9)
        figs.append((f"per-case {metric}", _png(fig)))
    return figs


def _decision_curve(dc: dict[str, Any]) -> tuple[str, str]:
    """Net benefit of the model (with its bootstrap band), treat-all and treat-none against the threshold."""
    plt = _plt()
    rows = dc["rows"]
    t = np.array([r["threshold"] for r in rows], float)

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r.get(key) is None else r[key] for r in rows], float)

    nb, lo, hi, nb_all = col("net_benefit"), col("ci_low"), col("ci_high"), col("treat_all")
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    ax.fill_between(t, lo, hi, color="tab:blue", alpha=0.2, linewidth=0, label="model, 95% bootstrap band")
    ax.plot(t, nb, color="tab:blue", linewidth=1.4, label="model")
    ax.plot(t, nb_all, color="tab:gray", linewidth=1.0, label="treat all")
    ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--", label="treat none")
    prevalence = nb_all[0] if len(nb_all) and np.isfinite(nb_all[0]) else 0.0
    top = np.nanmax(np.r_[hi, nb, prevalence, 0.01])
    ax.set_ylim(-0.1 * max(top, 0.05), 1.1 * top)  # treat-all plunges to -inf near threshold 1: keep the model visible
    ax.set_xlim(float(t.min()), float(t.max()))
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit")
    ax.set_title("decision curve (Vickers & Elkin 2006)", fontsize=9)
    ax.legend(fontsize=7)
    return "decision curve", _png(fig)


def _froc(curve: dict[str, list]) -> tuple[str, str]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    ax.step(curve["fppi"], curve["sensitivity"], where="post")
    ax.set_xscale("symlog", linthresh=0.125)
    for f in (0.125, 0.25, 0.5, 1, 2, 4, 8):
        ax.axvline(f, color="gray", alpha=0.2)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("sensitivity")
    ax.set_ylim(0, 1.02)
    ax.set_title("FROC curve", fontsize=9)
    return "FROC curve", _png(fig)


def _table(summary: dict[str, Any]) -> str:
    def f(x):
        return "" if x is None else f"{x:.4g}" if isinstance(x, float) else html.escape(str(x))

    head = "<tr><th>metric</th><th>label</th><th>value</th><th>95% CI</th><th>CI method</th><th>n</th><th>NaN</th><th>median [IQR]</th></tr>"
    rows = []
    for m in summary["metrics"]:
        ci = "" if m.get("ci_low") is None else f"[{f(m['ci_low'])}, {f(m['ci_high'])}]"
        iqr = "" if m.get("median") is None else f"{f(m['median'])} [{f(m['q1'])}, {f(m['q3'])}]"
        rows.append(f"<tr><td>{f(m['metric'])}</td><td>{f(m['label'])}</td><td>{f(m.get('value'))}</td><td>{ci}</td>"
                    f"<td>{f(m.get('ci_method'))}</td><td>{f(m.get('n'))}</td><td>{f(m.get('n_nan'))}</td><td>{iqr}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


WORST_CASES_DIR = "worst_cases"


def _worst_cases(entries: list[dict[str, Any]], folder: Path) -> list[tuple[str, str]]:
    """Write the worst-case overlays (segmentation) as PNGs under ``folder/worst_cases`` and
    return them as ``(caption, base64)`` for the page."""
    if not entries:
        return []
    from openmia.evaluation.overlays import write_overlays

    paths = write_overlays(entries, folder / WORST_CASES_DIR)
    return [(f"#{e['rank']} {e['case']} (Dice {e['dice']:.3f})", base64.b64encode(p.read_bytes()).decode("ascii"))
            for e, p in zip(entries, paths)]


PER_CASE_METRICS = {
    "segmentation": ["dice", "hd95", "nsd", "assd"],
    "counting": ["count_abs_error", "count_rel_error"],
    "inpainting": ["psnr", "ssim", "mae", "psnr_mask", "ssim_mask"],
    "classification": ["brier", "nll"],
}


def write_report(summary: dict[str, Any], per_case: list[tuple[str, str, str, float]], path: str | Path,
                 extras: dict[str, Any] | None = None) -> Path:
    """Write ``report.html`` (atomically) for any task's evaluator output."""
    from openmia import fileio

    extras = extras or {}
    task = summary.get("task", "?")
    figs: list[tuple[str, str]] = []
    if "probs" in extras:  # classification evaluators pass their probabilities
        names = [str(n) for n in summary.get("labels", [])]
        figs += _roc_pr(extras["probs"], extras["y"], summary["task_type"], names)
        if summary.get("reliability"):
            figs.append(_reliability(summary["reliability"]))
        if summary["task_type"] != "multi-label":
            figs.append(_confusion(np.asarray(extras["y"]), np.asarray(extras["pred"]), names))
        if summary.get("decision_curve"):
            figs.append(_decision_curve(summary["decision_curve"]))
    if summary.get("froc_curve"):  # detection
        figs.append(_froc(summary["froc_curve"]))
    figs += _per_case_plots(per_case, PER_CASE_METRICS.get(task, []))
    worst = _worst_cases(extras.get("worst_cases") or [], Path(path).parent)
    boot = summary.get("bootstrap", {})
    missing = summary.get("missing_cases") or []
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>openmia evaluation report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}figure{display:inline-block;margin:8px}"
        "figcaption{font-size:12px;color:#555;text-align:center}.warn{color:#a00}</style></head><body>",
        f"<h1>openmia evaluation — {html.escape(task)}</h1>",
        f"<p>{summary.get('n_cases')} cases"
        + (f", {summary['n_patients']} patients (cluster bootstrap)" if summary.get("n_patients") else "")
        + f". Uncertainty: 95% intervals; bootstrap {html.escape(str(boot.get('method', '')))} with "
          f"{boot.get('n_resamples')} resamples over {html.escape(str(boot.get('unit', 'case')))}s, seed {boot.get('seed')}. "
          f"Schema {html.escape(summary.get('schema', ''))}.</p>",
    ]
    if missing:
        parts.append(f"<p class='warn'>{len(missing)} case(s) missing from the predictions were scored as worst case: "
                     f"{html.escape(', '.join(map(str, missing[:20])))}{' …' if len(missing) > 20 else ''}</p>")
    parts += ["<h2>Summary</h2>", _table(summary)]
    if figs:
        parts.append("<h2>Figures</h2>")
        parts += [f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'><figcaption>{html.escape(t)}</figcaption></figure>"
                  for t, b in figs]
    if worst:
        parts.append(f"<h2>Worst cases</h2><p>The {len(worst)} case(s) with the lowest Dice (label all; ties by case id), "
                     "each on the slice (first axis) with the most voxels where prediction and truth disagree. "
                     f"Also saved as {WORST_CASES_DIR}/*.png.</p>")
        parts += [f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'><figcaption>{html.escape(t)}</figcaption></figure>"
                  for t, b in worst]
    conv = summary.get("conventions") or {}
    if conv:
        parts.append("<h2>Conventions</h2><ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                                                         for k, v in conv.items()) + "</ul>")
    prov = summary.get("provenance")
    if prov:
        parts.append("<h2>Provenance</h2><pre>" + html.escape(__import__("json").dumps(prov, indent=2, default=str)[:20000]) + "</pre>")
    parts.append("</body></html>")
    return fileio.write_text(Path(path), "\n".join(parts))
