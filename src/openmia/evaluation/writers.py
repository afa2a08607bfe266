"""Writers of the evaluator's input formats (DESIGN §4.1), shared by training and ``openmia
predict`` / ``openmia count`` so every prediction file openmia writes is one the evaluator reads."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from openmia import fileio


def write_classification_predictions(path: str | Path, case_ids: Sequence[str], probs: np.ndarray, *,
                                     task_type: str, label_names: Sequence[str]) -> Path:
    """``case_id,score`` (binary: P(positive) = ``probs[:, 1]``) or ``case_id,<one column per class>``
    for probabilities ``(N, K)``; values written with full precision (``repr``)."""
    if task_type == "binary":
        rows = [["case_id", "score"], *([c, repr(float(p))] for c, p in zip(case_ids, probs[:, 1]))]
    else:
        rows = [["case_id", *label_names], *([c, *(repr(float(v)) for v in row)] for c, row in zip(case_ids, probs))]
    return fileio.write_csv(path, rows)


def write_classification_truth(path: str | Path, case_ids: Sequence[str], labels: np.ndarray, *, task_type: str,
                               label_names: Sequence[str]) -> Path:
    """``case_id,label`` (multi-label: one 0/1 column per label ``(N, L)``)."""
    if task_type == "multi-label":
        rows = [["case_id", *label_names], *([c, *(int(v) for v in row)] for c, row in zip(case_ids, labels))]
    else:
        rows = [["case_id", "label"], *([c, int(v)] for c, v in zip(case_ids, labels))]
    return fileio.write_csv(path, rows)


def detection_rows(case_id: str, objects: np.ndarray, scores: np.ndarray | None, labels: np.ndarray,
                   label_names: Sequence[str]) -> list[list[str]]:
    """Rows ``case_id,label[,score],<coords>`` of one image's boxes ``(n, 4)`` / points ``(n, d)``."""
    out = []
    for i, (o, k) in enumerate(zip(objects, labels)):
        score = [f"{scores[i]:.6g}"] if scores is not None else []
        out.append([case_id, label_names[int(k)], *score, *(f"{v:.6g}" for v in o)])
    return out


def detection_header(kind: str, dims: int, *, scores: bool) -> list[str]:
    """``case_id,label[,score],x1,y1,x2,y2`` (boxes) or ``...,x,y[,z]`` (points)."""
    coords = ["x1", "y1", "x2", "y2"] if kind == "box" else ["x", "y", "z"][:dims]
    return ["case_id", "label", *(["score"] if scores else []), *coords]
