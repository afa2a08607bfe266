"""What every ``openmia plan`` calculation shares: the result record, input checks and the table grid
(see :mod:`openmia.stats.power` for the methods and their sources)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from scipy.special import ndtri

from openmia.errors import ConfigError


SCHEMA = "openmia.plan/1"
VARIANCES = ("hanley-mcneil", "obuchowski")
MCNEMAR_METHODS = ("connor", "miettinen")
PAIRED_TESTS = ("wilcoxon", "t")
ALTERNATIVES = ("two-sided", "one-sided")
_TABLE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
_MAX_CELLS = 4_000_000  # resampling works in chunks of at most this many counts


# ----------------------------------------------------------------------------------------------
# the result


@dataclass
class PlanResult:
    """A sample-size plan: the required size, the table of sizes around it and the curve behind
    the figure.

    Attributes:
        kind: ``auc``, ``proportion``, ``mcnemar`` or ``metric``.
        goal: ``half-width`` (estimate to a CI half-width) or ``power`` (detect a difference).
        target: the half-width ``w`` or the power ``1 - beta`` asked for.
        n: cases (pairs for McNemar) needed in total; None when not reached up to ``max_n``.
        n_positive, n_negative: for AUC (and proportions of positives/negatives), the split of ``n``.
        exact: the unrounded solution of the closed form (comparable with pROC / published tables).
        columns, rows: the table printed by the CLI (``rows[i][0]`` is a total size).
        curve: ``{"n": [...], "value": [...]}`` — half-width or power against total size.
        method: the formula or simulation used, with its source.
        params: the inputs, as given.
        notes: caveats worth printing (e.g. few discordant pairs, Monte-Carlo error).
    """

    kind: str
    goal: str
    target: float
    n: int | None
    method: str
    params: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]]
    curve: dict[str, list[float]]
    n_positive: int | None = None
    n_negative: int | None = None
    exact: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def value_label(self) -> str:
        return "CI half-width" if self.goal == "half-width" else "power"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form written to ``plan.json`` (schema ``openmia.plan/1``)."""
        return {"schema": SCHEMA, "kind": self.kind, "goal": self.goal, "target": self.target, "n": self.n,
                "n_positive": self.n_positive, "n_negative": self.n_negative, "exact": self.exact,
                "method": self.method, "params": self.params, "notes": self.notes,
                "table": {"columns": self.columns, "rows": self.rows}, "curve": self.curve}

    def summary_line(self) -> str:
        """One sentence: what is needed for what."""
        what = (f"a {100 * (1 - self.params.get('alpha', 0.05)):g}% CI half-width <= {self.target:g}"
                if self.goal == "half-width" else f"power >= {self.target:g} at alpha = {self.params.get('alpha', 0.05):g}")
        unit = "pairs of results (cases)" if self.kind == "mcnemar" else "cases"
        if self.n is None:
            return f"{what}: not reached with up to {self.params.get('max_n')} {unit}"
        among = self.params.get("among", "all")
        if self.kind == "proportion" and among != "all":
            k = self.n_positive if among == "positives" else self.n_negative
            return (f"{what}: n = {k} {among}" if self.params.get("prevalence") is None
                    else f"{what}: n = {self.n} {unit} ({k} {among} at prevalence {self.params['prevalence']:g})")
        split = (f" ({self.n_positive} positive + {self.n_negative} negative)"
                 if self.n_positive is not None and self.n_negative is not None else "")
        return f"{what}: n = {self.n} {unit}{split}"


# ----------------------------------------------------------------------------------------------
# validation helpers: every message names the option


def _num(x: Any, flag: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{flag} must be a finite number, got {x!r}")
    return v


def _open_interval(x: Any, lo: float, hi: float, flag: str, what: str = "") -> float:
    v = _num(x, flag)
    if not lo < v < hi:
        raise ConfigError(f"{flag} must lie strictly between {lo:g} and {hi:g}{what}, got {v:g}")
    return v


def _check_alpha(alpha: Any) -> float:
    return _open_interval(alpha, 0.0, 0.5, "--alpha", " (the significance level, e.g. 0.05)")


def _check_power(power: Any) -> float:
    return _open_interval(power, 0.0, 1.0, "--power", " (1 - beta, e.g. 0.8)")


def _check_half_width(w: Any, upper: float | None = None) -> float:
    v = _num(w, "--half-width")
    if v <= 0:
        raise ConfigError(f"--half-width must be > 0 (the CI half-width to reach), got {v:g}")
    if upper is not None and v >= upper:
        raise ConfigError(f"--half-width must be < {upper:g} for this quantity, got {v:g}")
    return v


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    return alternative


def _z_alpha(alpha: float, alternative: str = "two-sided") -> float:
    return float(ndtri(1 - alpha / 2)) if alternative == "two-sided" else float(ndtri(1 - alpha))


def _check_prevalence(p: Any) -> float:
    return _open_interval(p, 0.0, 1.0, "--prevalence", " (the share of positive cases)")


def _check_ns(ns: Sequence[int] | None, minimum: int = 1) -> list[int] | None:
    if ns is None:
        return None
    out = []
    for x in ns:
        try:
            v = int(x)
            if v != float(x):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"--n must be whole numbers of cases, got {x!r}") from None
        if v < minimum:
            raise ConfigError(f"--n values must be >= {minimum}, got {v}")
        out.append(v)
    if not out:
        raise ConfigError("--n needs at least one size")
    return sorted(set(out))


def _grid(n_star: float | None, minimum: int, ns: list[int] | None) -> list[int]:
    """Table sizes: the user's, or fractions and multiples of the solution."""
    if ns is not None:
        return ns
    if n_star is None:
        return []
    return sorted({max(minimum, int(math.ceil(f * n_star))) for f in _TABLE_FACTORS} | {max(minimum, int(math.ceil(n_star)))})


