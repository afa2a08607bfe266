"""Reading prediction/truth files and writing evaluator outputs (DESIGN §4.1, §4.3).

Classification formats:
  predictions  ``case_id,<one column per class probability>`` (binary may be ``case_id,score``)
  truth        ``case_id,label`` (multi-label: ``case_id,<one 0/1 column per label>``),
               optional ``patient_id`` column
  patients     ``case_id,patient_id`` (alternative to the truth column)
Every rule violation is a PredictionError naming the file, line or case.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.errors import PredictionError


PROB_SUM_TOL = 1e-3  # the same tolerance as openmia.metrics._checks.check_classification


@dataclass
class Table:
    path: Path
    header: list[str]
    rows: list[list[str]]
    sha256: str


# longest cell accepted: case ids, numbers and labels are short; a longer "cell" means the file is
# not the CSV it claims to be (csv's own limit, 131072, would raise a bare csv.Error)
MAX_FIELD = 100_000


def _line_of(text: str, index: int) -> int:
    r"""1-based line number of ``text[index]`` counting ``\n``, ``\r\n`` and lone ``\r`` endings."""
    head = text[:index]
    return head.count("\n") + head.count("\r") - head.count("\r\n") + 1


def read_csv(path: str | Path, required: tuple[str, ...] = ("case_id",)) -> Table:
    r"""Read a small CSV with a header; clear errors for a missing/empty file or ragged rows.

    Line ends may be ``\n``, ``\r\n`` or a lone ``\r`` (spreadsheets' "CSV (Macintosh)"); NUL
    bytes, over-long fields and malformed quoting are PredictionErrors naming the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise PredictionError(f"{p}: file not found")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PredictionError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PredictionError(f"{p}: the file is UTF-16 text; expected UTF-8 — save it as 'CSV UTF-8'")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PredictionError(f"{p}: not a UTF-8 text CSV ({exc}); save it as 'CSV UTF-8'") from exc
    nul = text.find("\x00")
    if nul >= 0:
        raise PredictionError(f"{p}, line {_line_of(text, nul)}: NUL byte in the file; expected UTF-8 text "
                              "(is it a binary file, or UTF-16 text? save it as 'CSV UTF-8')")
    reader = csv.reader(io.StringIO(text, newline=""))  # newline="": csv itself splits \n, \r\n and \r
    rows = []
    try:
        for r in reader:
            if any(len(c) > MAX_FIELD for c in r):
                raise PredictionError(f"{p}, line {reader.line_num}: a field is longer than {MAX_FIELD} characters; "
                                      "expected short cells (case ids, numbers, labels) — is this the right file?")
            if any(c.strip() for c in r):
                rows.append(r)
    except csv.Error as exc:
        msg = str(exc)
        if "field larger than field limit" in msg:
            msg = f"a field is longer than {csv.field_size_limit()} characters; expected short cells — is this the right file?"
        raise PredictionError(f"{p}, line {reader.line_num}: not a readable CSV row ({msg})") from exc
    if not rows:
        raise PredictionError(f"{p}: the file is empty; expected a header line such as 'case_id,label'")
    header = [h.strip() for h in rows[0]]
    for col in required:
        if col not in header:
            raise PredictionError(f"{p}: missing column {col!r}; found columns {header}")
    if len(set(header)) != len(header):
        raise PredictionError(f"{p}: duplicate column names in header {header}")
    body = rows[1:]
    if not body:
        raise PredictionError(f"{p}: header only, no cases")
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise PredictionError(f"{p}, line {i}: {len(r)} fields, expected {len(header)} ({', '.join(header)})")
    return Table(p, header, [[c.strip() for c in r] for r in body], hashlib.sha256(raw).hexdigest())


def _ids(t: Table) -> list[str]:
    col = t.header.index("case_id")
    ids = [r[col] for r in t.rows]
    seen: dict[str, int] = {}
    dups = []
    for i, c in enumerate(ids):
        if c == "":
            raise PredictionError(f"{t.path}, line {i + 2}: empty case_id")
        if c in seen:
            dups.append(c)
        seen[c] = i
    if dups:
        raise PredictionError(f"{t.path}: duplicate case_id {', '.join(sorted(set(dups))[:5])}"
                              + (f" and {len(set(dups)) - 5} more" if len(set(dups)) > 5 else ""))
    return ids


def _float(t: Table, line: int, col: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise PredictionError(f"{t.path}, line {line}, column {col!r}: {value!r} is not a number") from None
    return v


def _list(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "") + f" ({len(ids)} in all)"


@dataclass
class AlignedClassification:
    case_ids: list[str]
    probs: np.ndarray
    y: np.ndarray
    task_type: str
    label_names: list[str]
    patient_ids: list[str] | None
    missing: list[str]
    pred_sha256: str
    truth_sha256: str


def align_classification(pred_csv, truth_csv, *, task_type: str | None = None, patients_csv=None,
                         allow_missing: bool = False) -> AlignedClassification:
    """Read, validate and align predictions with truth (order of the truth file)."""
    pt, tt = read_csv(pred_csv), read_csv(truth_csv)
    p_ids, t_ids = _ids(pt), _ids(tt)
    prob_cols = [h for h in pt.header if h != "case_id"]
    if not prob_cols:
        raise PredictionError(f"{pt.path}: no probability columns after case_id")
    label_cols = [h for h in tt.header if h not in ("case_id", "patient_id")]
    multilabel = len(label_cols) > 1 or (label_cols and label_cols[0] != "label")
    if task_type is None:
        task_type = "multi-label" if multilabel else ("binary" if len(prob_cols) <= 2 else "multi-class")
    if task_type == "multi-label":
        if label_cols != prob_cols:
            raise PredictionError(f"multi-label: truth columns {label_cols} ({tt.path}) must equal the prediction "
                                  f"columns {prob_cols} ({pt.path}), in the same order")
    elif label_cols != ["label"]:
        raise PredictionError(f"{tt.path}: expected columns case_id,label[,patient_id] for {task_type}, found {tt.header}")
    if task_type == "binary" and len(prob_cols) not in (1, 2):
        raise PredictionError(f"{pt.path}: binary predictions need 'case_id,score' or two probability columns, found {prob_cols}")

    p_index = {c: i for i, c in enumerate(p_ids)}
    extra = [c for c in p_ids if c not in set(t_ids)]
    if extra:
        raise PredictionError(f"{pt.path}: case(s) not in the truth file {tt.path}: {_list(extra)}")
    missing = [c for c in t_ids if c not in p_index]
    if missing and not allow_missing:
        raise PredictionError(f"{pt.path}: case(s) of the truth file missing from the predictions: {_list(missing)}. "
                              f"Pass --allow-missing to score them as worst case")

    # truth values
    y_rows = []
    for i, r in enumerate(tt.rows):
        vals = [r[tt.header.index(c)] for c in label_cols]
        parsed = []
        for c, v in zip(label_cols, vals):
            f = _float(tt, i + 2, c, v)
            if not math.isfinite(f) or f != int(f):
                raise PredictionError(f"{tt.path}, line {i + 2} (case {t_ids[i]}), column {c!r}: label {v!r} is not an integer")
            parsed.append(int(f))
        y_rows.append(parsed)
    y = np.array(y_rows, dtype=np.int64)
    y = y if task_type == "multi-label" else y[:, 0]

    k = len(prob_cols)
    probs = np.zeros((len(t_ids), k))
    for j, c in enumerate(t_ids):
        if c in p_index:
            r = pt.rows[p_index[c]]
            line = p_index[c] + 2
            for q, col in enumerate(prob_cols):
                v = _float(pt, line, col, r[pt.header.index(col)])
                if not math.isfinite(v):
                    raise PredictionError(f"{pt.path}, line {line} (case {c}), column {col!r}: probability is {v}")
                if not 0.0 <= v <= 1.0:
                    raise PredictionError(f"{pt.path}, line {line} (case {c}), column {col!r}: probability {v:g} is "
                                          "outside [0, 1]; expected probabilities, not logits or percentages")
                probs[j, q] = v
            total = float(probs[j].sum())
            if task_type != "multi-label" and k > 1 and abs(total - 1.0) > PROB_SUM_TOL:
                raise PredictionError(f"{pt.path}, line {line} (case {c}): class probabilities sum to {total:.6g}; "
                                      f"expected 1 (tolerance {PROB_SUM_TOL:g}) across columns {', '.join(prob_cols)}")
        else:  # worst case: probability 0 on the truth (1 on the wrong side), stated in the summary
            probs[j] = _worst_case(y[j], k, task_type)
    if task_type == "binary" and k == 1:
        probs = np.column_stack([1 - probs[:, 0], probs[:, 0]])
    n_classes = probs.shape[1]
    if task_type != "multi-label":
        bad = [t_ids[i] for i in np.flatnonzero((y < 0) | (y >= n_classes))]
        if bad:
            raise PredictionError(f"{tt.path}: label out of range 0..{n_classes - 1} (the predictions have {n_classes} "
                                  f"probability columns) for case(s) {_list(bad)}")

    patient_ids = None
    if "patient_id" in tt.header:
        col = tt.header.index("patient_id")
        patient_ids = [r[col] for r in tt.rows]
    if patients_csv is not None:
        pp = read_csv(patients_csv, ("case_id", "patient_id"))
        mp = {r[pp.header.index("case_id")]: r[pp.header.index("patient_id")] for r in pp.rows}
        lacking = [c for c in t_ids if c not in mp]
        if lacking:
            raise PredictionError(f"{pp.path}: no patient_id for case(s) {_list(lacking)}")
        patient_ids = [mp[c] for c in t_ids]
    if patient_ids is not None:
        empty = [c for c, p in zip(t_ids, patient_ids) if p == ""]
        if empty:
            raise PredictionError(f"{tt.path}: empty patient_id for case(s) {_list(empty)}")
    names = prob_cols if (k > 1 and task_type != "binary") or task_type == "multi-label" else ["0", "1"]
    if task_type == "binary" and k == 2:
        names = prob_cols
    return AlignedClassification(t_ids, probs, y, task_type, names, patient_ids, missing, pt.sha256, tt.sha256)


def _worst_case(y_row, k: int, task_type: str) -> np.ndarray:
    if task_type == "multi-label":
        return 1.0 - np.asarray(y_row, dtype=float)
    out = np.zeros(k)
    if k == 1:  # binary score column
        out[0] = 0.0 if y_row == 1 else 1.0
        return out
    out[(int(y_row) + 1) % k] = 1.0  # all mass on a wrong class
    return out


def write_per_case(path: Path, rows: list[tuple[str, str, str, float]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["case_id", "label", "metric", "value"])
    for r in rows:
        w.writerow([r[0], r[1], r[2], repr(float(r[3]))])
    return fileio.write_text(path, buf.getvalue())


def write_summary(path: Path, summary: dict[str, Any]) -> Path:
    return fileio.write_json(path, summary)
