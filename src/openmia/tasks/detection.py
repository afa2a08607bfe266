"""Detection task: boxes (or points) with class labels and scores, scored by AP@0.5, mAP@0.5:0.95
and FROC; counts per image come with it (see :mod:`openmia.tasks.objects`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openmia.tasks.base import CompareInputs
from openmia.tasks.objects import ObjectTask
from openmia.tasks.registry import register_task


@register_task("detection")
class DetectionTask(ObjectTask):
    """Lesion / object detection in 2D images and 3D volumes (boxes or points)."""

    default_dataset = "synthetic/lesions"
    default_model = "centernet"
    select_metrics = ("map50",)
    headline_metrics = ("ap50", "map")
    leaderboard_metrics = ("ap50", "map")

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """``predictions/test.csv`` against ``truth/test.csv`` (boxes or points); a run whose model
        gives counts only (a density map) has none."""
        pred, truth = run_dir / "predictions" / "test.csv", run_dir / "truth" / "test.csv"
        return CompareInputs("detection", pred, truth) if pred.is_file() and truth.is_file() else None

    def scores(self, preds: list[dict], va) -> dict[str, float]:
        """``map50``: AP@0.5 (boxes) or AP at the point-matching radius (points) on validation."""
        from openmia.metrics.detection import detection_metrics

        key = "boxes" if self.kind == "box" else "points"
        p = {c: {key: q["objects"], "scores": q["scores"], "labels": q["labels"]} for c, q in zip(va.case_ids, preds)}
        t = {c: {key: o, "labels": k} for c, o, k in zip(va.case_ids, va.objects, va.classes)}
        m = detection_metrics(p, t, kind=self.kind)
        return {"map50": float(m["ap50"] if self.kind == "box" else m["ap"])}
