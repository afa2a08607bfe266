"""The result every evaluator returns, and writing it (``per_case.csv``, ``summary.json``,
``report.html``) atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EvaluationResult:
    """``per_case`` long-form rows ``(case_id, label, metric, value)``, the ``summary.json`` dict
    (schema ``openmia.summary/1``) and task-specific ``extras`` (arrays the report draws from)."""

    per_case: list[tuple[str, str, str, float]]
    summary: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)

    def table(self, metrics: list[str] | None = None, label: str = "all") -> str:
        """Aligned text table ``metric, value, 95% CI, method`` of one label's summary rows."""
        from openmia.cli._common import summary_table

        return summary_table(self.summary, metrics=metrics, label=label)

    def metric(self, name: str, label: str = "all") -> dict[str, Any]:
        """The summary row of ``name`` for ``label``."""
        for m in self.summary["metrics"]:
            if m["metric"] == name and str(m["label"]) == str(label):
                return m
        raise KeyError(f"{name}/{label}")


def write_outputs(result: EvaluationResult, out_dir: str | Path, provenance: dict[str, Any] | None = None,
                  report: bool = True) -> dict[str, Path]:
    """Write ``per_case.csv``, ``summary.json`` and (``report``) ``report.html`` into ``out_dir``."""
    from openmia.evaluation.io import write_per_case, write_summary

    out = Path(out_dir)
    summary = dict(result.summary)
    if provenance is not None:
        summary["provenance"] = provenance
    files = {"per_case": write_per_case(out / "per_case.csv", result.per_case),
             "summary": write_summary(out / "summary.json", summary)}
    if report:
        from openmia.evaluation.report import write_report

        files["report"] = write_report(summary, result.per_case, out / "report.html", result.extras)
    return files
