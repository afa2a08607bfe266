"""Landmark evaluator (``openmia evaluate --task landmarks``): points files -> radial errors in mm.

Formats (DESIGN §4.1; docs/landmarks.md):
  points    ``case_id,landmark,x,y[,z]`` for predictions and truth (``case`` is accepted for
            ``case_id``); coordinates are voxel indices along the array axes (x = axis 0,
            y = axis 1, z = axis 2), fractional values allowed; one row per case and landmark.
  spacing   one global ``--spacing 1,1,1`` or ``--spacing-from`` CSV ``case_id,sx,sy[,sz]`` (mm per
            axis, same axis order); there is no default: an unknown spacing is an error.
  shapes    optional ``--shapes-from`` CSV ``case_id,nx,ny[,nz]`` (voxels per axis): a landmark
            outside the image (beyond the outer voxel edges, -0.5 .. n - 0.5) is then an error.

Metrics per case and landmark: ``radial_error`` (mm) and ``success_<r>mm`` (1 when the error is
at most r mm). Label ``all`` = per case, the mean over its landmarks. Summary per landmark and for
``all``: mean radial error (BCa bootstrap over cases), ``radial_error_median`` (BCa bootstrap of the
median), and the success rate within each radius (Wilson interval per landmark; for ``all`` with
several landmarks a BCa bootstrap over cases, because a case's landmarks are not independent).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from openmia.errors import PredictionError
from openmia.evaluation.io import read_csv
from openmia.evaluation.result import write_outputs
from openmia.evaluation.task_result import SCHEMA, TaskResult, _float_cell, _row

AXES = ("x", "y", "z")
DEFAULT_RADII = (2.0, 4.0)


@dataclass
class Points:
    """A points file: ``coords[(case_id, landmark)] = (D,)`` voxel coordinates, in file order."""

    path: Path
    coords: dict[tuple[str, str], np.ndarray]
    dims: int
    sha256: str


def _case_col(t, role: str) -> int:
    for name in ("case_id", "case"):
        if name in t.header:
            return t.header.index(name)
    raise PredictionError(f"{t.path}: missing column 'case_id' (or 'case') in the {role} points file; "
                          f"found columns {t.header}")


def read_points(path: str | Path, role: str = "points") -> Points:
    """Read a points CSV (``case_id,landmark,x,y[,z]``); every rule violation names file and line."""
    t = read_csv(path, ("landmark", "x", "y"))
    ci, li = _case_col(t, role), t.header.index("landmark")
    dims = 3 if "z" in t.header else 2
    cols = [t.header.index(a) for a in AXES[:dims]]
    out: dict[tuple[str, str], np.ndarray] = {}
    for line, r in enumerate(t.rows, start=2):
        key = (r[ci], r[li])
        if not key[0] or not key[1]:
            raise PredictionError(f"{t.path}, line {line}: empty case_id or landmark")
        if key in out:
            raise PredictionError(f"{t.path}, line {line}: duplicate row for case {key[0]!r} landmark {key[1]!r}; "
                                  "expected one row per case and landmark")
        out[key] = np.array([_float_cell(t, line, a, r[c]) for a, c in zip(AXES, cols)])
    return Points(t.path, out, dims, t.sha256)


def read_case_vectors(path: str | Path, prefix: str, *, positive: bool = True) -> dict[str, tuple[float, ...]]:
    """``case_id,<prefix>x,<prefix>y[,<prefix>z]`` rows (spacing ``s``, shapes ``n``) -> per-case tuples."""
    t = read_csv(path, (f"{prefix}x", f"{prefix}y"))
    ci = _case_col(t, "per-case")
    names = [f"{prefix}{a}" for a in AXES[: 3 if f"{prefix}z" in t.header else 2]]
    cols = [t.header.index(n) for n in names]
    out: dict[str, tuple[float, ...]] = {}
    for line, r in enumerate(t.rows, start=2):
        if r[ci] in out:
            raise PredictionError(f"{t.path}, line {line}: duplicate case {r[ci]!r}")
        vals = tuple(_float_cell(t, line, n, r[c]) for n, c in zip(names, cols))
        if positive and any(v <= 0 for v in vals):
            raise PredictionError(f"{t.path}, line {line}: {', '.join(names)} must be positive, found {vals}")
        out[r[ci]] = vals
    return out


def _list(items: Sequence[str]) -> str:
    return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def align_points(pred: Points, truth: Points) -> list[tuple[str, str]]:
    """The truth's (case, landmark) keys, checked to be exactly those of the prediction."""
    if pred.dims != truth.dims:
        raise PredictionError(f"{pred.path}: {pred.dims}D points (columns {', '.join(AXES[:pred.dims])}) but the truth "
                              f"{truth.path} has {truth.dims}D points; both files need the same coordinate columns")
    missing = [k for k in truth.coords if k not in pred.coords]
    if missing:
        cases = sorted({c for c, _ in missing})
        raise PredictionError(f"{pred.path}: {len(missing)} (case, landmark) pair(s) of the truth are missing: "
                              f"{_list([f'{c}/{lm}' for c, lm in missing])} (cases: {_list(cases)}); "
                              "every truth landmark needs a prediction")
    extra = [k for k in pred.coords if k not in truth.coords]
    if extra:
        raise PredictionError(f"{pred.path}: (case, landmark) pair(s) not in the truth {truth.path}: "
                              f"{_list([f'{c}/{lm}' for c, lm in extra])}")
    return list(truth.coords)


def _check_inside(points: Points, shapes: Mapping[str, Sequence[float]]) -> None:
    for (case, lm), p in points.coords.items():
        if case not in shapes:
            raise PredictionError(f"image shapes: no entry for case {case!r} of {points.path}")
        shape = np.asarray(shapes[case], dtype=float)
        if len(shape) != len(p):
            raise PredictionError(f"image shapes: case {case!r} has {len(shape)} axes but {points.path} gives "
                                  f"{len(p)}D points")
        if np.any(p < -0.5) or np.any(p > shape - 0.5):
            raise PredictionError(f"{points.path}: case {case!r} landmark {lm!r} at {tuple(float(v) for v in p)} lies "
                                  f"outside the image of shape {tuple(int(v) for v in shape)} (expected -0.5 <= "
                                  f"coordinate <= n - 0.5 on every axis)")


def _spacings(keys: list[tuple[str, str]], dims: int, spacing: Sequence[float] | None,
              spacing_per_case: Mapping[str, Sequence[float]] | None) -> tuple[np.ndarray, str]:
    if spacing is not None and spacing_per_case is not None:
        raise PredictionError("give one spacing (--spacing) or a per-case spacing file (--spacing-from), not both")
    if spacing is None and spacing_per_case is None:
        raise PredictionError("landmark errors are in mm: give --spacing (e.g. 1,1,1; use 1s for errors in voxels) "
                              "or --spacing-from CSV case_id,sx,sy[,sz]")
    if spacing is not None:
        s = tuple(float(v) for v in spacing)
        if len(s) != dims or any(not v > 0 for v in s):
            raise PredictionError(f"--spacing: expected {dims} positive values (one per axis of the {dims}D points), "
                                  f"found {s}")
        return np.tile(np.array(s), (len(keys), 1)), "global"
    rows = []
    for case, _ in keys:
        if case not in spacing_per_case:
            raise PredictionError(f"spacing file: no spacing for case {case!r}")
        s = tuple(spacing_per_case[case])
        if len(s) != dims:
            raise PredictionError(f"spacing file: case {case!r} has {len(s)} values but the points are {dims}D")
        rows.append(s)
    return np.array(rows, dtype=float), "per case"


def check_radii(radii: Sequence[float] | None) -> tuple[float, ...]:
    r = tuple(float(v) for v in (DEFAULT_RADII if radii is None else radii))
    if not r or any(not (v > 0 and np.isfinite(v)) for v in r) or len(set(r)) != len(r):
        raise PredictionError(f"--radii: expected distinct positive radii in mm, e.g. 2,4; found {r}")
    return r


def success_name(r: float) -> str:
    """``success_2mm``, ``success_2.5mm``."""
    return f"success_{r:g}mm"


def evaluate_landmarks(pred: Points, truth: Points, *, spacing: Sequence[float] | None = None,
                       spacing_per_case: Mapping[str, Sequence[float]] | None = None,
                       shapes: Mapping[str, Sequence[float]] | None = None, radii: Sequence[float] | None = None,
                       n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> TaskResult:
    """Score aligned points; see the module docstring for the metrics and CIs."""
    from openmia.evaluation.aggregate import describe, weighted_nanmean
    from openmia.metrics.landmarks import radial_errors, success, weighted_median
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights
    from openmia.stats.proportions import wilson

    radii = check_radii(radii)
    keys = align_points(pred, truth)
    if shapes is not None:
        _check_inside(truth, shapes)
        _check_inside(pred, shapes)
    sp, sp_kind = _spacings(keys, truth.dims, spacing, spacing_per_case)
    err = radial_errors(np.stack([pred.coords[k] for k in keys]), np.stack([truth.coords[k] for k in keys]), sp)
    cases = list(dict.fromkeys(c for c, _ in keys))
    landmarks = list(dict.fromkeys(lm for _, lm in keys))
    missing_lm = [(c, lm) for c in cases for lm in landmarks if (c, lm) not in truth.coords]
    if missing_lm:
        raise PredictionError(f"{truth.path}: every case needs every landmark; missing "
                              f"{_list([f'{c}/{lm}' for c, lm in missing_lm])}")
    pos = {k: i for i, k in enumerate(keys)}
    E = np.array([[err[pos[(c, lm)]] for lm in landmarks] for c in cases])  # (cases, landmarks)
    per_case: list[tuple[str, str, str, float]] = []
    for i, c in enumerate(cases):
        for j, lm in enumerate(landmarks):
            per_case.append((c, lm, "radial_error", float(E[i, j])))
            per_case += [(c, lm, success_name(r), float(success(E[i, j : j + 1], r)[0])) for r in radii]
        per_case.append((c, "all", "radial_error", float(E[i].mean())))
        per_case += [(c, "all", success_name(r), float(success(E[i], r).mean())) for r in radii]
    n = len(cases)
    W = resample_weights(n, n_resamples, seed)  # one set of resamples for every row
    rows = []
    for lab in ("all", *landmarks):
        vals = E.mean(axis=1) if lab == "all" else E[:, landmarks.index(lab)]
        desc = describe(vals)
        r_mean = bootstrap_ci(weighted_nanmean(vals), n, weights=W, seed=seed, alpha=alpha)
        row = _row("radial_error", lab, r_mean.value, r_mean.ci_low, r_mean.ci_high, "bca_bootstrap", n)
        row.update({k: desc[k] for k in ("mean", "median", "q1", "q3")})
        rows.append(row)
        r_med = bootstrap_ci(weighted_median(vals), n, weights=W, seed=seed, alpha=alpha)
        rows.append(_row("radial_error_median", lab, r_med.value, r_med.ci_low, r_med.ci_high, "bca_bootstrap", n))
        for r in radii:
            if lab == "all" and len(landmarks) > 1:  # a case's landmarks move together: bootstrap over cases
                s = np.array([success(E[i], r).mean() for i in range(n)])
                b = bootstrap_ci(weighted_nanmean(s), n, weights=W, seed=seed, alpha=alpha)
                rows.append(_row(success_name(r), lab, b.value, b.ci_low, b.ci_high, "bca_bootstrap", n))
            else:
                k = int(success(vals, r).sum())
                lo, hi = wilson(k, n, alpha)
                rows.append(_row(success_name(r), lab, k / n, lo, hi, "wilson", n))
    summary = {
        "schema": SCHEMA, "task": "landmarks", "n_cases": n, "dims": truth.dims, "labels": ["all", *landmarks],
        "landmarks": landmarks, "radii_mm": list(radii), "spacing": sp_kind, "metrics": rows, "missing_cases": [],
        "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed, "unit": "case", "alpha": alpha},
        "conventions": {
            "coordinates": "voxel indices along the array axes (x = axis 0, y = axis 1, z = axis 2)",
            "radial_error": "Euclidean distance in mm after scaling each axis by the case's spacing",
            "success": "radial error <= r mm (inclusive)",
            "all": "per case, the mean over its landmarks; success CIs for 'all' with several landmarks: BCa bootstrap "
                   "over cases (Wilson per landmark)",
        },
    }
    return TaskResult(per_case, summary, {"cases": cases, "landmarks": landmarks, "errors": E})


def evaluate_landmark_files(pred_csv, truth_csv, out_dir=None, *, spacing: Sequence[float] | None = None,
                            spacing_csv=None, shapes_csv=None, radii: Sequence[float] | None = None,
                            allow_missing: bool = False, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                            provenance: dict[str, Any] | None = None, **_: Any) -> TaskResult:
    """``openmia evaluate --task landmarks``: read the points (and spacing / shape) files, score,
    and write ``per_case.csv``, ``summary.json``, ``report.html`` into ``out_dir`` (if given)."""
    if allow_missing:
        raise PredictionError("--allow-missing does not apply to landmarks: a missing landmark has no worst-case "
                              "radial error; predict every landmark of every case")
    truth = read_points(truth_csv, "truth")
    pred = read_points(pred_csv, "prediction")
    per_case_sp = read_case_vectors(spacing_csv, "s") if spacing_csv is not None else None
    shapes = read_case_vectors(shapes_csv, "n") if shapes_csv is not None else None
    res = evaluate_landmarks(pred, truth, spacing=spacing, spacing_per_case=per_case_sp, shapes=shapes, radii=radii,
                             n_resamples=n_resamples, seed=seed, alpha=alpha)
    if out_dir is not None:
        prov = {"pred": str(pred_csv), "truth": str(truth_csv), "pred_sha256": pred.sha256,
                "truth_sha256": truth.sha256, **(provenance or {})}
        write_outputs(res, out_dir, prov)
    return res


def write_points(path: str | Path, rows: Sequence[tuple[str, str, Sequence[float]]]) -> Path:
    """Write a points CSV ``case_id,landmark,x,y[,z]`` from ``(case_id, landmark, coords)`` rows."""
    from openmia import fileio

    if not rows:
        raise PredictionError(f"{path}: no points to write")
    dims = len(rows[0][2])
    return fileio.write_csv(path, [["case_id", "landmark", *AXES[:dims]],
                                   *([c, lm, *(repr(float(v)) for v in p)] for c, lm, p in rows)])


def write_case_vectors(path: str | Path, prefix: str, values: Mapping[str, Sequence[float]]) -> Path:
    """Write ``case_id,<prefix>x,<prefix>y[,<prefix>z]`` (spacing ``s`` / shapes ``n``)."""
    from openmia import fileio

    dims = len(next(iter(values.values())))
    return fileio.write_csv(path, [["case_id", *(prefix + a for a in AXES[:dims])],
                                   *([c, *(repr(float(v)) if prefix == "s" else str(int(v)) for v in s)]
                                     for c, s in values.items())])
