"""Plain aligned text tables of evaluation summaries (used by results, reports and the CLI)."""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain aligned text table (stable for docs and tests; no terminal escapes)."""
    rows = [["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def summary_table(summary: dict, metrics: Sequence[str] | None = None, label: str = "all") -> str:
    """Text table ``metric, value, 95% CI, method`` from a ``summary.json`` dict (aggregate label)."""
    by_metric = {m["metric"]: m for m in summary.get("metrics", []) if str(m.get("label")) == label}
    names = list(metrics) if metrics is not None else list(by_metric)
    rows = []
    for name in names:
        m = by_metric.get(name)
        if m is None:
            continue
        v, lo, hi = m.get("value"), m.get("ci_low"), m.get("ci_high")
        ci = "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"
        rows.append([name, "nan" if v is None else f"{v:.3f}", ci, m.get("ci_method", "")])
    return format_table(["metric", "value", "95% CI", "CI method"], rows)
