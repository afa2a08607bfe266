"""The critical-difference (CD) diagram of Demšar (JMLR 2006, §3.2.4, Fig. 1).

The average ranks of the models lie on an axis whose best end (rank 1) is on the right, as in
Demšar's figures. Each model's name is joined to its rank; groups of models with no significant
difference between any two of them (Nemenyi, p > α) are joined by a thick bar under the axis; the
Nemenyi CD is drawn above the axis. With a control model, its Bonferroni–Dunn interval
(average rank ± CD_BD) is marked as a band on the axis (Demšar's Fig. 1b): a model whose rank lies
outside it differs significantly from the control at α.

matplotlib (Agg canvas, no pyplot state) is imported when a diagram is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.errors import PredictionError


def plot_cd_diagram(average_ranks: Sequence[float], names: Sequence[str], path: str | Path, *,
                    critical_difference: float | None = None, significant: np.ndarray | None = None,
                    control: str | None = None, control_cd: float | None = None, title: str | None = None) -> Path:
    """Draw the CD diagram into ``path`` (PNG, SVG or PDF by suffix), atomically; returns ``path``.

    Args:
        average_ranks: ``(k,)`` average rank of each model (1 = best).
        names: the ``k`` model names, in the same order.
        critical_difference: the Nemenyi CD, drawn as a scale bar above the axis (omitted if None).
        significant: ``(k, k)`` bool, True where two models differ significantly; the groups
            joined by bars are computed from it (by default from ``critical_difference``).
        control: name of the control model: its name is set in bold and, with ``control_cd``,
            its Bonferroni–Dunn interval is drawn.
        control_cd: the Bonferroni–Dunn CD around the control.
        title: a line above the diagram.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from openmia.fileio import save_figure
    from openmia.stats.multiple import nonsignificant_groups

    r = np.asarray(average_ranks, dtype=float)
    names = [str(n) for n in names]
    k = r.size
    if r.ndim != 1 or k < 2 or len(names) != k or not np.all(np.isfinite(r)):
        raise PredictionError(f"a CD diagram needs finite average ranks for >= 2 models and one name each; "
                              f"found {r.size} ranks and {len(names)} names")
    if control is not None and control not in names:
        raise PredictionError(f"control {control!r} is not one of the models {names}")
    if significant is None:
        cd = np.inf if critical_difference is None else float(critical_difference)
        significant = np.abs(r[:, None] - r[None, :]) >= cd
    groups = nonsignificant_groups(r, significant)
    order = [int(j) for j in np.argsort(r, kind="stable")]  # best first
    n_right = (k + 1) // 2  # the better half is labelled on the right (rank-1) side

    step = 0.34  # vertical distance between name rows (data units)
    group_y = [-0.22 - 0.16 * g for g in range(len(groups))]
    first_row = (min(group_y) if group_y else 0.0) - 0.38
    n_rows = max(n_right, k - n_right)
    height = 1.35 + step * n_rows + 0.16 * len(groups)
    fig = Figure(figsize=(min(4.0 + 0.75 * k, 11.0), 0.9 + 0.42 * height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
    left, right = k + 0.15, 1 - 0.15  # inverted axis: worst rank on the left, rank 1 on the right
    ax.set_xlim(left, right)
    bottom = first_row - step * (n_rows - (0 if control_cd is not None else 1)) - 0.25
    ax.set_ylim(bottom, 1.05 if critical_difference is not None else 0.6)
    ax.axis("off")

    ax.hlines(0, 1, k, color="black", linewidth=1)
    for t in range(1, k + 1):
        ax.vlines(t, 0, 0.12, color="black", linewidth=1)
        ax.text(t, 0.18, str(t), ha="center", va="bottom", fontsize=9)
        if t < k:
            ax.vlines(t + 0.5, 0, 0.06, color="black", linewidth=0.8)
    if critical_difference is not None and np.isfinite(critical_difference):
        cd = float(critical_difference)
        ax.hlines(0.78, k, k - cd, color="black", linewidth=1.2, clip_on=False)
        ax.vlines([k, k - cd], 0.72, 0.84, color="black", linewidth=1.2, clip_on=False)
        ax.text(k - cd / 2, 0.88, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    if control is not None and control_cd is not None and np.isfinite(control_cd):
        rc = float(r[names.index(control)])
        lo, hi = max(1.0, rc - control_cd), min(float(k), rc + control_cd)
        ax.hlines(0, lo, hi, color="tab:red", linewidth=6, alpha=0.35, zorder=1)
        ax.text((1 + k) / 2, first_row - step * n_rows, f"red band: Bonferroni–Dunn interval {control} ± "
                f"{control_cd:.2f}; a rank outside it differs from {control}", ha="center", va="center", fontsize=7,
                color="tab:red")
    for g, members in enumerate(groups):
        lo, hi = r[members[0]], r[members[-1]]
        ax.hlines(group_y[g], lo - 0.03, hi + 0.03, color="black", linewidth=3.2, zorder=3)
    for i, j in enumerate(order):
        on_right = i < n_right
        row = i if on_right else k - 1 - i
        y = first_row - step * row
        end = right if on_right else left
        ax.plot([r[j], r[j], end], [0, y, y], color="0.35", linewidth=0.9, zorder=2)
        weight = "bold" if control is not None and names[j] == control else "normal"
        ax.text(end + (-0.05 if on_right else 0.05), y, f"{names[j]} ({r[j]:.2f})", ha="left" if on_right else "right",
                va="center", fontsize=9, fontweight=weight, clip_on=False)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, Path(path))


def plot_critical_difference(result: dict[str, Any], model_names: Sequence[str], path: str | Path) -> Path:
    """CD diagram of a :func:`~openmia.stats.multiple.friedman_nemenyi` result."""
    avg = np.asarray(result["average_ranks"], dtype=float)
    sig = result.get("nemenyi_significant")
    if sig is None:
        sig = np.abs(avg[:, None] - avg[None, :]) >= result["critical_difference"]
    return plot_cd_diagram(avg, model_names, path, critical_difference=result["critical_difference"], significant=sig,
                           title=f"Friedman p = {result['p_value']:.3g}, N = {result['n_datasets']} data sets")
