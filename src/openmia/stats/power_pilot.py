"""Sample sizes for per-case metrics (Dice, HD95, ...) by resampling a pilot ``per_case.csv`` — see
:mod:`openmia.stats.power` for the method."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from openmia.errors import ConfigError, PredictionError
from openmia.stats.power_base import PAIRED_TESTS, PlanResult, _MAX_CELLS, _check_alpha, _check_half_width, _check_ns, _check_power, _grid, _num


# ----------------------------------------------------------------------------------------------
# per-case metrics from a pilot


def read_pilot(path: str | Path, metric: str, label: str = "all", option: str = "--pilot") -> dict[str, float]:
    """Per-case values of ``metric`` for ``label`` from a pilot ``per_case.csv`` (see :func:`load_pilot`)."""
    return load_pilot(path, metric, label, option)[0]


def load_pilot(path: str | Path, metric: str, label: str = "all",
               option: str = "--pilot") -> tuple[dict[str, float], list[str] | None]:
    """Per-case values of ``metric`` for ``label`` from a pilot ``per_case.csv``.

    Accepts the evaluator's long form (``case_id,label,metric,value``) and wide tables
    (``case_id[,label],<one column per metric>``). ``label="all"`` takes rows labelled ``all``
    (classification, counting, ...); a file without them (segmentation: one row per foreground
    label) gives each case's mean over its labels (NaNs, e.g. both masks empty, left out of that
    mean). NaN values are kept (the caller drops them, and says how many); anything else that is
    not a number, or a case listed twice, is an error naming the file and case.

    Returns:
        ``{case_id: value}`` and the labels averaged per case (None when one label was used).
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{option} {path}: no such file (expected a per_case.csv written by openmia evaluate)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PredictionError(f"{option} {path}: cannot be read as CSV ({exc})") from exc
    if "case_id" not in header:
        raise PredictionError(f"{option} {path}: no case_id column (columns: {', '.join(header) or 'none'}); "
                              "expected openmia's per_case.csv (case_id,label,metric,value)")
    long_form = "metric" in header and "value" in header
    if long_form:
        metrics = sorted({r["metric"] for r in rows})
        rows = [r for r in rows if r["metric"] == metric]
        get = lambda r: r["value"]  # noqa: E731
        if not rows:
            raise PredictionError(f"{option} {path}: no rows with metric {metric!r} in its metric column; "
                                  f"metrics in the file: {', '.join(metrics) or 'none'} (--metric)")
    else:
        if metric not in header:
            others = [h for h in header if h not in ("case_id", "label", "patient_id")]
            raise PredictionError(f"{option} {path}: no column {metric!r}; metric columns: {', '.join(others) or 'none'} (--metric)")
        get = lambda r: r[metric]  # noqa: E731
    has_label = "label" in header
    labels = sorted({r["label"] for r in rows}) if has_label else ["all"]
    if label == "all" and has_label and "all" not in labels:
        use, mean_over = rows, True
    else:
        if label not in labels:
            raise PredictionError(f"{option} {path}: no rows for label {label!r} of metric {metric!r}; "
                                  f"labels: {', '.join(labels)} (--label)")
        use, mean_over = ([r for r in rows if r["label"] == label] if has_label else rows), False
    per_case: dict[str, list[float]] = {}
    seen: set[tuple[str, str]] = set()
    for r in use:
        cid = r["case_id"]
        lab = r.get("label", "all")
        if (cid, lab) in seen:
            raise PredictionError(f"{option} {path}: case {cid!r} is listed twice for metric {metric!r}, label {lab!r}")
        seen.add((cid, lab))
        raw = get(r)
        try:
            v = float(raw) if raw.lower() not in ("", "nan") else math.nan
        except ValueError:
            raise PredictionError(f"{option} {path}: case {cid!r}: {metric} value {raw!r} is not a number") from None
        if math.isinf(v):
            raise PredictionError(f"{option} {path}: case {cid!r}: {metric} is infinite; a pilot needs finite values")
        per_case.setdefault(cid, []).append(v)
    out = {}
    for cid, vals in per_case.items():
        finite = [v for v in vals if not math.isnan(v)]
        out[cid] = (sum(finite) / len(finite) if finite else math.nan) if mean_over else vals[0]
    return out, (labels if mean_over else None)


def _finite(values: dict[str, float], path: Any, option: str, minimum: int = 3) -> tuple[list[str], np.ndarray, int]:
    ids = [c for c, v in values.items() if not math.isnan(v)]
    dropped = len(values) - len(ids)
    if len(ids) < minimum:
        raise PredictionError(f"{option} {path}: only {len(ids)} case(s) with a defined value; a pilot needs at least "
                              f"{minimum} (NaN values, e.g. both masks empty, are left out)")
    return ids, np.array([values[c] for c in ids], dtype=float), dropped


def _resample_counts(rng: np.random.Generator, m: int, n: int, size: int) -> np.ndarray:
    """``(size, m)`` counts of each pilot case in ``size`` resamples of ``n`` cases with replacement."""
    if n < m:  # cheaper from indices when the study is smaller than the pilot
        idx = rng.integers(0, m, size=(size, n)) + (m * np.arange(size))[:, None]
        return np.bincount(idx.ravel(), minlength=size * m).reshape(size, m)
    return rng.multinomial(n, np.full(m, 1.0 / m), size=size)


def _chunks(resamples: int, m: int, n: int) -> list[int]:
    per = max(1, _MAX_CELLS // max(m, min(n, _MAX_CELLS)))
    return [min(per, resamples - s) for s in range(0, resamples, per)]


def _rng(seed: int, n: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(n)])


def simulate_half_width(values: Any, n: int, *, alpha: float = 0.05, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Half-widths ``t_{1-alpha/2, n-1} s / sqrt(n)`` of the mean's CI in ``resamples`` studies of
    ``n`` cases drawn with replacement from the pilot ``values`` (shape ``(resamples,)``)."""
    v = np.asarray(values, dtype=float)
    v = v - v.mean()  # centred: the sums below lose no precision
    m, rng, out = v.size, _rng(seed, n), []
    t = float(stdtrit(n - 1, 1 - alpha / 2))
    for size in _chunks(resamples, m, n):
        c = _resample_counts(rng, m, n, size).astype(float)
        s1, s2 = c @ v, c @ (v * v)
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
        out.append(t * np.sqrt(var / n))
    return np.concatenate(out)


class _SignedRankGroups:
    """The pilot's differences grouped by |d| (ties), for signed-rank statistics from counts."""

    def __init__(self, d: np.ndarray) -> None:
        a = np.abs(d)
        self.order = np.argsort(a, kind="stable")
        sa = a[self.order]
        self.starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])  # first case of each |d| group
        self.positive = (d[self.order] > 0).astype(float)
        self.has_zero = bool(sa[0] == 0)

    def p_values(self, counts: np.ndarray) -> np.ndarray:
        """Two-sided p of ``scipy.stats.wilcoxon(x, zero_method="pratt", method="asymptotic",
        correction=False)`` for each resample ``x`` given as a row of counts."""
        c = counts[:, self.order].astype(float)
        g = np.add.reduceat(c, self.starts, axis=1)  # (R, K) cases per |d| group
        gpos = np.add.reduceat(c * self.positive, self.starts, axis=1)
        n = g.sum(axis=1)
        avg_rank = np.cumsum(g, axis=1) - (g - 1) / 2  # ranks 1..n, ties averaged, zeros ranked (Pratt)
        r_plus = np.sum(avg_rank * gpos, axis=1)
        n0 = g[:, 0] if self.has_zero else np.zeros_like(n)
        mn = n * (n + 1) / 4 - n0 * (n0 + 1) / 4
        var = n * (n + 1) * (2 * n + 1) - n0 * (n0 + 1) * (2 * n0 + 1)
        tie = g[:, 1:] if self.has_zero else g  # zeros are not tie-corrected (Pratt)
        var = (var - np.sum(tie ** 3 - tie, axis=1) / 2) / 24
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (r_plus - mn) / np.sqrt(var)
        return np.where(var > 0, 2 * ndtr(-np.abs(z)), 1.0)


def _paired_t_p(counts: np.ndarray, d: np.ndarray) -> np.ndarray:
    c = counts.astype(float)
    n = c.sum(axis=1)
    s1, s2 = c @ d, c @ (d * d)
    mean = s1 / n
    sd = np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(mean) / (sd / np.sqrt(n))
        p = 2 * stdtr(n - 1, -t)
    return np.where(sd > 0, p, np.where(mean != 0, 0.0, 1.0))


def simulate_power(differences: Any, n: int, *, alpha: float = 0.05, test: str = "wilcoxon", resamples: int = 2000,
                   seed: int = 0) -> float:
    """Share of ``resamples`` studies of ``n`` pairs, drawn with replacement from the pilot's paired
    ``differences``, in which the two-sided paired test (``wilcoxon``: signed-rank with Pratt's
    zero handling, as ``openmia compare``; ``t``: paired t-test) rejects at ``alpha``."""
    d = np.asarray(differences, dtype=float)
    if test not in PAIRED_TESTS:
        raise ConfigError(f"--test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    groups = _SignedRankGroups(d) if test == "wilcoxon" else None
    rng, rejected = _rng(seed, n), 0
    for size in _chunks(resamples, d.size, n):
        counts = _resample_counts(rng, d.size, n, size)
        p = groups.p_values(counts) if groups is not None else _paired_t_p(counts, d)
        rejected += int(np.sum(p < alpha))
    return rejected / resamples


def _smallest_n(ok: Callable[[int], bool], guess: int, n_min: int, n_max: int) -> int | None:
    """Smallest n in [n_min, n_max] with ok(n), assuming ok is monotone (False ... False True ...)."""
    g = int(min(max(guess, n_min), n_max))
    if ok(g):
        hi, lo = g, n_min - 1
        step = max(1, g // 2)
        while hi - step >= n_min and ok(hi - step):
            hi -= step
            step *= 2
        lo = max(n_min - 1, hi - step)
    else:
        lo, hi = g, None
        nxt = g
        while hi is None:
            if nxt >= n_max:
                return None
            nxt = min(n_max, max(nxt + 1, int(nxt * 1.6)))
            if ok(nxt):
                hi = nxt
            else:
                lo = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def plan_metric(pilot: str | Path, *, metric: str, pilot_b: str | Path | None = None, label: str = "all",
                half_width: float | None = None, power: float | None = None, delta: float | None = None,
                test: str = "wilcoxon", alpha: float = 0.05, resamples: int = 2000, seed: int = 0,
                max_n: int = 100_000, ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed for a per-case metric (Dice, HD95, NSD, ...) by resampling a pilot.

    One pilot + ``half_width``: the mean's CI half-width. Two pilots (``pilot_b``: the other model's
    ``per_case.csv`` on the same cases): the paired differences ``A - B``, for a CI half-width of the
    mean difference or for the power of the paired test (``test``: ``wilcoxon`` or ``t``). ``delta``
    shifts the pilot's differences so that their mean is ``delta`` (a location-shift alternative);
    without it the observed differences are used as they are.
    """
    alpha = _check_alpha(alpha)
    if not metric:
        raise ConfigError("--metric is required (a metric column of the pilot, e.g. dice or hd95)")
    try:
        resamples, seed, max_n = int(resamples), int(seed), int(max_n)
    except (TypeError, ValueError):
        raise ConfigError("--resamples, --seed and --max-n must be whole numbers") from None
    if resamples < 100:
        raise ConfigError(f"--resamples must be >= 100 (Monte-Carlo error), got {resamples}")
    if max_n < 3:
        raise ConfigError(f"--max-n must be >= 3, got {max_n}")
    if test not in PAIRED_TESTS:
        raise ConfigError(f"--test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    if half_width is not None and (power is not None or delta is not None):
        raise ConfigError("give either --half-width (precision of an estimate) or --power/--delta (a paired test), not both")
    ns = _check_ns(ns, minimum=3)
    a, averaged = load_pilot(pilot, metric, label, "--pilot")
    notes: list[str] = []
    params: dict[str, Any] = {"pilot": str(pilot), "pilot_b": None if pilot_b is None else str(pilot_b), "metric": metric,
                              "label": label, "alpha": alpha, "resamples": resamples, "seed": seed, "max_n": max_n}
    if pilot_b is None:
        if half_width is None:
            raise ConfigError("a power calculation needs paired differences: give --pilot-b (the other model's "
                              "per_case.csv on the same cases), or --half-width W to plan the precision of one model's mean")
        ids, values, dropped = _finite(a, pilot, "--pilot")
        what = f"mean {metric}"
    else:
        b, _ = load_pilot(pilot_b, metric, label, "--pilot-b")
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if only_a or only_b:
            def show(x: list[str]) -> str:
                return ", ".join(x[:5]) + (f" and {len(x) - 5} more" if len(x) > 5 else "")
            raise PredictionError("--pilot and --pilot-b must hold the same cases (paired design): "
                                  + "; ".join(s for s in (f"only in {pilot}: {show(only_a)}" if only_a else "",
                                                          f"only in {pilot_b}: {show(only_b)}" if only_b else "") if s))
        diff = {c: (a[c] - b[c]) for c in a}
        ids, values, dropped = _finite(diff, f"{pilot} - {pilot_b}", "--pilot/--pilot-b")
        what = f"mean paired difference of {metric} (A - B)"
    if averaged is not None:
        notes.append(f"--label all: each case's mean {metric} over labels {', '.join(averaged)} (the pilot has no "
                     "'all' rows); give --label L to plan for one label")
        params["labels_averaged"] = averaged
    if dropped:
        notes.append(f"{dropped} pilot case(s) with an undefined (NaN) value left out, as the evaluator leaves them out of the mean")
    m = values.size
    params.update(pilot_cases=m, pilot_mean=float(values.mean()), pilot_sd=float(values.std(ddof=1)))
    if m < 10:
        notes.append(f"the pilot has only {m} cases: its spread, and so the plan, is uncertain")
    cache: dict[int, float] = {}
    if half_width is not None:
        w = _check_half_width(half_width)
        sd = float(values.std(ddof=1))
        params["half_width"] = w

        def val(n: int) -> float:
            if n not in cache:
                cache[n] = float(np.mean(simulate_half_width(values, n, alpha=alpha, resamples=resamples, seed=seed)))
            return cache[n]

        guess = int(math.ceil((float(ndtri(1 - alpha / 2)) * sd / w) ** 2)) if sd > 0 else 3
        n = _smallest_n(lambda k: val(k) <= w, guess, 3, max_n)
        goal, target = "half-width", w
        method = (f"pilot resampling ({resamples} simulated studies per n, seeded): expected t-interval half-width of the "
                  f"{what}")
        probs: dict[int, float] = {}

        def extra(k: int) -> float:
            if k not in probs:
                probs[k] = float(np.mean(simulate_half_width(values, k, alpha=alpha, resamples=resamples, seed=seed) <= w))
            return probs[k]
        cols = ["n", "CI half-width", f"P(half-width <= {w:g})"]
    else:
        power = 0.8 if power is None else _check_power(power)
        d = values
        if delta is not None:
            dv = _num(delta, "--delta")
            d = values - values.mean() + dv
            params["delta"] = dv
            notes.append(f"pilot differences shifted by {dv - values.mean():+.4g} so that their mean is --delta {dv:g} "
                         "(their spread is the pilot's)")
        if np.all(d == 0):
            raise PredictionError(f"the paired differences of {metric} are all 0: the pilots show no difference to "
                                  "detect; give --delta D to plan for a difference of D")
        params.update(power=power, test=test)

        def val(n: int) -> float:
            if n not in cache:
                cache[n] = simulate_power(d, n, alpha=alpha, test=test, resamples=resamples, seed=seed)
            return cache[n]

        mean, sd = float(d.mean()), float(d.std(ddof=1))
        z = float(ndtri(1 - alpha / 2)) + float(ndtri(power))
        guess = int(math.ceil((z * sd / abs(mean)) ** 2)) if mean != 0 and sd > 0 else 10
        n = _smallest_n(lambda k: val(k) >= power, guess, 5, max_n)
        goal, target = "power", power
        name = ("Wilcoxon signed-rank test (Pratt zeros, normal approximation with tie correction: the test openmia "
                "compare runs)" if test == "wilcoxon" else "paired t-test")
        method = (f"pilot resampling of paired differences ({resamples} simulated studies per n, seeded): power of the "
                  f"two-sided {name}")
        se = math.sqrt(power * (1 - power) / resamples)
        notes.append(f"simulated power has a Monte-Carlo standard error of about {se:.3f} at {resamples} resamples; "
                     "raise --resamples for a steadier n")
        extra = None
        cols = ["n", "power"]
    grid = ns if ns is not None else (_grid(n, 3 if goal == "half-width" else 5, None) if n is not None
                                      else sorted(cache)[-7:])
    rows = []
    for k in grid:
        rows.append([k, val(k)] + ([extra(k)] if extra is not None else []))
    if n is None:
        notes.append(f"not reached with up to --max-n {max_n} cases")
    keys = sorted(cache)
    return PlanResult("metric", goal, target, n, method, params, cols, rows,
                      {"n": keys, "value": [cache[k] for k in keys]}, notes=notes)


