"""Forest plot of paired differences (``openmia compare``'s ``forest_plot.png``).

One panel per metric and label (their scales differ: Dice vs mm), one row per model pair of the
comparison table: the point is ``diff = estimate_a - estimate_b`` (for per-case metrics the mean
paired difference; for AUC the DeLong difference) with its 95% CI as a bar, a
vertical line at zero (no difference), and the Holm-adjusted p of the pair's test in the row label.
The numbers are the rows of ``comparisons.csv`` as they are; nothing is recomputed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


def _fmt_p(p: float) -> str:
    if p != p:  # NaN: no test (e.g. no case where both models are defined)
        return "p(Holm) n/a"
    return "p(Holm) < 0.001" if p < 1e-3 else f"p(Holm) = {p:.3f}"


def forest_panels(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group comparison rows by ``(metric, label)``, in table order: ``[{"metric", "label",
    "pairs", "x", "ci_low", "ci_high", "p_holm"}]`` (lists, one entry per pair)."""
    panels: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r["metric"]), str(r["label"]))
        p = panels.setdefault(key, {"metric": key[0], "label": key[1], "pairs": [], "x": [], "ci_low": [],
                                    "ci_high": [], "p_holm": []})
        p["pairs"].append(f"{r['model_a']} - {r['model_b']}")
        for src, dst in (("diff", "x"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("p_holm", "p_holm")):
            p[dst].append(float(r[src]))
    return list(panels.values())


def forest_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *,
                higher_is_better: Mapping[str, bool] | None = None, title: str | None = None) -> dict[str, Any]:
    """Draw the forest plot of ``rows`` (``comparisons.csv`` rows) into ``path`` (atomically).

    Returns ``{"path": Path, "panels": forest_panels(rows)}``, each panel with ``drawn_x``: the
    marker positions read back from the figure (the finite differences, in table order).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from openmia import fileio
    from openmia.errors import PredictionError

    panels = forest_panels(rows)
    if not panels:
        raise PredictionError("forest plot: the comparison table has no rows")
    heights = [0.9 + 0.42 * len(p["pairs"]) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.0, sum(heights) + 0.4), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, p in zip(axes[:, 0], panels):
        x, lo, hi = (np.asarray(p[k], float) for k in ("x", "ci_low", "ci_high"))
        y = np.arange(len(x))[::-1]  # first pair on top
        ok = np.isfinite(x)
        err = np.vstack([np.where(np.isfinite(lo), x - lo, 0.0), np.where(np.isfinite(hi), hi - x, 0.0)])
        drawn = ax.errorbar(x[ok], y[ok], xerr=err[:, ok], fmt="s", color="tab:blue", ecolor="tab:blue", capsize=3,
                            markersize=5, linewidth=1.3)
        # what the markers show, read back from the artist (top to bottom = table order of the finite rows)
        p["drawn_x"] = [float(v) for v in np.asarray(drawn.lines[0].get_xdata(), float)]
        ax.axvline(0.0, color="black", linewidth=0.9, linestyle="--")
        ax.set_yticks(y, [f"{pair}   ({_fmt_p(ph)})" for pair, ph in zip(p["pairs"], p["p_holm"])], fontsize=8)
        ax.set_ylim(-0.7, len(x) - 0.3)
        finite = np.concatenate([v[np.isfinite(v)] for v in (x, lo, hi)] + [np.zeros(1)])
        span = float(finite.max() - finite.min()) or 1.0
        ax.set_xlim(float(finite.min()) - 0.08 * span, float(finite.max()) + 0.08 * span)
        hib = (higher_is_better or {}).get(p["metric"])
        better = "" if hib is None else ("; > 0: model a better" if hib else "; < 0: model a better")
        ax.set_title(f"{p['metric']} (label {p['label']}): difference a - b with its 95% CI{better}", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        out = fileio.save_figure(fig, Path(path), dpi=110)
    finally:
        plt.close(fig)
    return {"path": out, "panels": panels}
