"""The result every evaluator returns, and writing it (``per_case.csv``, ``summary.json``,
``report.html``) atomically — as a set: the files appear together or not at all."""

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
        from openmia.evaluation.table import summary_table

        return summary_table(self.summary, metrics=metrics, label=label)

    def to_pandas(self):
        """The per-case table as a pandas DataFrame with columns ``case_id, label, metric, value``
        (long form; ``df.pivot_table(index="case_id", columns="metric", values="value")`` widens it)."""
        try:
            import pandas as pd
        except ImportError as exc:
            from openmia.errors import OpenmiaError

            raise OpenmiaError("EvaluationResult.to_pandas needs pandas, which is not installed; "
                               "run `pip install pandas` (openmia itself does not depend on it)") from exc
        return pd.DataFrame(self.per_case, columns=["case_id", "label", "metric", "value"])

    def metric(self, name: str, label: str = "all") -> dict[str, Any]:
        """The summary row of ``name`` for ``label``."""
        for m in self.summary["metrics"]:
            if m["metric"] == name and str(m["label"]) == str(label):
                return m
        raise KeyError(f"{name}/{label}")


def write_outputs(result: EvaluationResult, out_dir: str | Path, provenance: dict[str, Any] | None = None,
                  report: bool = True, extra_json: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``per_case.csv``, ``summary.json`` and (``report``) ``report.html`` into ``out_dir``,
    plus ``extra_json`` (file name -> JSON-able object, written compactly; e.g. the detection
    evaluator's COCO files) in the same set.

    The files are written into a hidden temporary folder that replaces ``out_dir`` in one step
    (:func:`openmia.fileio.atomic_dir`): a reader — or a run killed midway — never leaves a
    ``per_case.csv`` without its ``summary.json``. Other files already in ``out_dir`` are kept.
    """
    from openmia import fileio
    from openmia.evaluation.io import write_per_case, write_summary

    out = Path(out_dir)
    summary = dict(result.summary)
    if provenance is not None:
        summary["provenance"] = provenance
    names = {"per_case": "per_case.csv", "summary": "summary.json", "report": "report.html"}
    with fileio.atomic_dir(out) as tmp:
        write_per_case(tmp / names["per_case"], result.per_case)
        write_summary(tmp / names["summary"], summary)
        if report:
            from openmia.evaluation import report as report_mod

            report_mod.write_report(summary, result.per_case, tmp / names["report"], result.extras)
        for name, obj in (extra_json or {}).items():
            import json

            (tmp / name).write_text(json.dumps(obj, separators=(",", ":"), default=fileio._json_default) + "\n")
            names[name] = name
    return {k: out / v for k, v in names.items() if report or k != "report"}
