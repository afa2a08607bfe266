"""Sample sizes for evaluation studies (``openmia plan``, DESIGN §4): how many test cases are needed
to estimate a metric to a confidence-interval half-width ``w``, or to detect a difference ``d``
between two models with power ``1 - beta`` at level ``alpha``.

Closed forms (all normal approximations, as in their sources):

* **AUC** — Hanley & McNeil (1982, Radiology 143:29) standard error
  ``SE^2 = [A(1-A) + (nA-1)(Q1-A^2) + (nN-1)(Q2-A^2)] / (nA nN)``, ``Q1 = A/(2-A)``,
  ``Q2 = 2A^2/(1+A)``; or Obuchowski's binormal variance function (Obuchowski, Lieber & Wians 2004,
  Clin Chem 50:1118, formula 3, as pROC's ``power.roc.test``) ``nA Var(A) = V(A) =
  0.0099 exp(-a^2/2) [(5a^2 + 8) + (a^2 + 8)/kappa]`` with ``a = 1.414 Phi^-1(A)`` and
  ``kappa = nN/nA``. Sample size for a test (Obuchowski & McClish 1997, Stat Med 16:1529, eq. 2):
  ``nA = [z_alpha sqrt(V0) + z_beta sqrt(VA)]^2 / delta^2`` with ``V0`` the variance under H0 and
  ``VA`` under H1. Two models on the same cases: ``Var(A1 - A2) = V1 + V2 - 2 rho SE1 SE2`` (Hanley &
  McNeil 1983, Radiology 148:839), where ``rho``, the correlation of the two AUC *estimates*, follows
  from the correlation ``r`` of the two models' scores through Obuchowski & McClish's (1997, eq. 5)
  binormal covariance and the matching delta-method variance (so ``r = 0`` is two independent
  samples and ``r = 1`` with equal AUCs gives ``Var = 0``).
* **Proportions** — Wilson (1927) score-interval half-width
  ``z sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n)``, solved for ``n`` in closed form (a quadratic).
* **McNemar** (paired accuracy) — Connor (1987, Biometrics 43:207)
  ``n = [z_alpha sqrt(psi) + z_beta sqrt(psi - delta^2)]^2 / delta^2``, or Miettinen (1968,
  Biometrics 24:339) ``n = [z_alpha psi + z_beta sqrt(psi^2 - delta^2 (3+psi)/4)]^2 / (psi delta^2)``,
  with ``psi = p10 + p01`` (discordant pairs) and ``delta = p10 - p01``.

Per-case metrics (Dice, HD95, ...) have no closed form: the pilot's per-case values (or the paired
differences of two pilots on the same cases) are resampled with replacement at each candidate
``n`` (``resamples`` simulated studies, drawn as multinomial *counts* over the pilot cases, so the cost
does not grow with ``n``). Each simulated study gets the t-interval half-width of its mean (the
first-order equivalent of the evaluator's BCa interval), or the paired test ``openmia compare`` runs
— the Wilcoxon signed-rank test with Pratt's zero handling, normal approximation with the tie
correction, exactly as ``scipy.stats.wilcoxon(d, zero_method="pratt")`` computes it once ties are
present — or a paired t-test. The random stream of each ``n`` is seeded by ``(seed, n)``, so a value
does not depend on which other sizes were evaluated.

Everything here is numpy + ``scipy.special``; matplotlib is imported only by :func:`plan_figure`.

The module is split by method: :mod:`~openmia.stats.power_base` (shared checks and the result),
:mod:`~openmia.stats.power_auc` and :mod:`~openmia.stats.power_pilot`; proportions, McNemar and the
``plan`` dispatcher are here, and every public name is importable from here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from openmia.errors import ConfigError
from openmia.stats.power_base import MCNEMAR_METHODS, PlanResult, _check_alpha, _check_alternative, _check_half_width, _check_ns, _check_power, _check_prevalence, _grid, _num, _open_interval, _z_alpha
from openmia.stats.power_auc import plan_auc
from openmia.stats.power_pilot import plan_metric


# ----------------------------------------------------------------------------------------------
# proportions


def wilson_half_width(p: Any, n: Any, alpha: float = 0.05) -> np.ndarray:
    """Half-width of the Wilson (1927) score interval for an expected proportion ``p`` at ``n``:
    ``z sqrt(p(1-p)/n + z^2/(4 n^2)) / (1 + z^2/n)``."""
    z = _z_alpha(alpha)
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    return z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def wilson_n(p: float, half_width: float, alpha: float = 0.05) -> float:
    """The (real) ``n`` at which the Wilson half-width equals ``half_width``: the larger root of
    ``w^2 (n + z^2)^2 = z^2 (p(1-p) n + z^2/4)``."""
    z2 = _z_alpha(alpha) ** 2
    w2 = half_width * half_width
    b = 2 * w2 * z2 - z2 * p * (1 - p)
    c = w2 * z2 * z2 - z2 * z2 / 4
    disc = b * b - 4 * w2 * c
    return (-b + math.sqrt(max(disc, 0.0))) / (2 * w2)


def plan_proportion(p: float, *, half_width: float, alpha: float = 0.05, prevalence: float | None = None,
                    among: str = "all", ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed to estimate a proportion (accuracy, sensitivity, specificity) to a Wilson CI
    half-width. For sensitivity (``among="positives"``) or specificity (``"negatives"``) the count is
    of those cases; with ``prevalence`` it is also converted into total cases."""
    p = _num(p, "--p")
    if not 0 <= p <= 1:
        raise ConfigError(f"--p must lie in [0, 1] (the expected proportion), got {p:g}")
    alpha = _check_alpha(alpha)
    w = _check_half_width(half_width, upper=0.5)
    if among not in ("all", "positives", "negatives"):
        raise ConfigError(f"--among must be all, positives or negatives, got {among!r}")
    prev = None if prevalence is None else _check_prevalence(prevalence)
    if among == "all" and prev is not None:
        raise ConfigError("--prevalence only applies with --among positives (sensitivity) or --among negatives (specificity)")
    ns = _check_ns(ns)
    exact = wilson_n(p, w, alpha)
    n = max(1, int(math.ceil(exact - 1e-9)))
    while float(wilson_half_width(p, n, alpha)) > w + 1e-12:
        n += 1
    while n > 1 and float(wilson_half_width(p, n - 1, alpha)) <= w:
        n -= 1
    share = None if prev is None else (prev if among == "positives" else 1 - prev)
    params: dict[str, Any] = {"p": p, "half_width": w, "alpha": alpha, "among": among, "prevalence": prev}
    notes = []
    if among != "all":
        notes.append(f"the half-width is that of a proportion among {n} {among}" + (
            "; give --prevalence to convert into total cases" if share is None else
            f"; with prevalence {prev:g} that takes {int(math.ceil(n / share))} cases in all"))
    total = n if share is None else int(math.ceil(n / share))
    cols = ["n" if among == "all" else f"n {among}"] + ([] if share is None else ["n total"]) + ["CI half-width"]
    grid = ns if ns is not None else _grid(n, 1, None)
    rows = [[k] + ([] if share is None else [int(math.ceil(k / share))]) + [float(wilson_half_width(p, k, alpha))] for k in grid]
    cn = np.unique(np.geomspace(max(2, 0.1 * n), 2.5 * n + 4, 80).astype(int))
    return PlanResult("proportion", "half-width", w, total, "Wilson (1927) score interval half-width, solved for n",
                      params, cols, rows, {"n": [int(k) for k in cn], "value": [float(v) for v in wilson_half_width(p, cn, alpha)]},
                      n_positive=n if among == "positives" else None, n_negative=n if among == "negatives" else None,
                      exact={"n": exact}, notes=notes)


# ----------------------------------------------------------------------------------------------
# McNemar


def _mcnemar_terms(p10: float, p01: float, method: str) -> tuple[float, float, float]:
    """(null sd, alternative sd, |delta|) per sqrt(pair): power = Phi((|d| sqrt(n) - z sd0) / sd1)."""
    psi, d = p10 + p01, p10 - p01
    if method == "connor":
        return math.sqrt(psi), math.sqrt(max(psi - d * d, 0.0)), abs(d)
    if method == "miettinen":  # Miettinen (1968): |d| sqrt(n psi) vs z psi and sqrt(psi^2 - d^2 (3 + psi) / 4)
        return math.sqrt(psi), math.sqrt(max(psi * psi - d * d * (3 + psi) / 4, 0.0)) / math.sqrt(psi), abs(d)
    raise ConfigError(f"--method must be one of {', '.join(MCNEMAR_METHODS)}, got {method!r}")


def mcnemar_power(n: Any, p10: float, p01: float, alpha: float = 0.05, method: str = "connor",
                  alternative: str = "two-sided") -> np.ndarray:
    """Power of McNemar's test with ``n`` pairs when the discordant-pair proportions are ``p10``
    (model A right, B wrong) and ``p01`` (A wrong, B right); normal approximation of Connor (1987)
    or Miettinen (1968), far tail ignored."""
    s0, s1, d = _mcnemar_terms(p10, p01, method)
    z = _z_alpha(alpha, alternative)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore"):
        return ndtr((d * np.sqrt(n) - z * s0) / s1) if s1 > 0 else np.where(d * np.sqrt(n) > z * s0, 1.0, 0.0)


def mcnemar_n(p10: float, p01: float, power: float = 0.8, alpha: float = 0.05, method: str = "connor",
              alternative: str = "two-sided") -> float:
    """The (real) number of pairs for McNemar's test: Connor (1987)
    ``[z_a sqrt(psi) + z_b sqrt(psi - d^2)]^2 / d^2`` or Miettinen (1968)
    ``[z_a psi + z_b sqrt(psi^2 - d^2 (3+psi)/4)]^2 / (psi d^2)``."""
    s0, s1, d = _mcnemar_terms(p10, p01, method)
    return (_z_alpha(alpha, alternative) * s0 + float(ndtri(power)) * s1) ** 2 / (d * d)


def plan_mcnemar(*, p10: float | None = None, p01: float | None = None, acc_a: float | None = None,
                 acc_b: float | None = None, discordant: float | None = None, power: float = 0.8, alpha: float = 0.05,
                 method: str = "connor", alternative: str = "two-sided", ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed for McNemar's test to detect a difference in accuracy (sensitivity, ...)
    between two models on the same cases, from the discordant-pair proportions ``p10``/``p01`` or
    from the two accuracies and the share of cases on which the models disagree (``discordant``)."""
    given_cells = p10 is not None or p01 is not None
    given_marg = acc_a is not None or acc_b is not None or discordant is not None
    if given_cells == given_marg:
        raise ConfigError("plan mcnemar needs either --p10 and --p01 (shares of cases only model A / only model B gets "
                          "right) or --acc-a, --acc-b and --discordant (the two accuracies and the share of cases on "
                          "which the models disagree)")
    if given_cells:
        if p10 is None or p01 is None:
            raise ConfigError("give both --p10 and --p01")
        p10 = _num(p10, "--p10")
        p01 = _num(p01, "--p01")
        for v, flag in ((p10, "--p10"), (p01, "--p01")):
            if not 0 <= v < 1:
                raise ConfigError(f"{flag} must lie in [0, 1), got {v:g}")
    else:
        if acc_a is None or acc_b is None or discordant is None:
            raise ConfigError("give all of --acc-a, --acc-b and --discordant")
        aa = _open_interval(acc_a, 0.0, 1.0, "--acc-a")
        ab = _open_interval(acc_b, 0.0, 1.0, "--acc-b")
        psi = _open_interval(discordant, 0.0, 1.0, "--discordant", " (share of cases the two models disagree on)")
        if psi < abs(aa - ab) or psi > min(aa + ab, 2 - aa - ab):
            raise ConfigError(f"--discordant {psi:g} is impossible with accuracies {aa:g} and {ab:g}: it must lie between "
                              f"|acc-a - acc-b| = {abs(aa - ab):g} and {min(aa + ab, 2 - aa - ab):g}")
        p10, p01 = (psi + aa - ab) / 2, (psi - aa + ab) / 2
    if p10 + p01 > 1:
        raise ConfigError(f"--p10 + --p01 must be <= 1, got {p10 + p01:g}")
    if p10 == p01:
        raise ConfigError("--p10 equals --p01: the two models are equally accurate, there is no difference to detect")
    alpha = _check_alpha(alpha)
    power = _check_power(power)
    _check_alternative(alternative)
    if method not in MCNEMAR_METHODS:
        raise ConfigError(f"--method must be one of {', '.join(MCNEMAR_METHODS)}, got {method!r}")
    ns = _check_ns(ns)
    exact = mcnemar_n(p10, p01, power, alpha, method, alternative)
    n = max(1, int(math.ceil(exact - 1e-9)))
    psi = p10 + p01
    notes = []
    if n * psi < 20:
        notes.append(f"only ~{n * psi:.0f} discordant pairs expected at n = {n}: the normal approximation is rough "
                     "there; openmia compare runs the exact McNemar test, which needs somewhat more cases")
    grid = ns if ns is not None else _grid(n, 1, None)
    rows = [[k, k * psi, float(mcnemar_power(k, p10, p01, alpha, method, alternative))] for k in grid]
    cn = np.unique(np.geomspace(max(2, 0.1 * n), 2.5 * n + 4, 80).astype(int))
    src = "Connor (1987)" if method == "connor" else "Miettinen (1968)"
    params = {"p10": p10, "p01": p01, "discordant": psi, "delta": p10 - p01, "power": power, "alpha": alpha,
              "method": method, "alternative": alternative}
    return PlanResult("mcnemar", "power", power, n, f"McNemar test sample size, {src} normal approximation", params,
                      ["n", "discordant pairs", "power"], rows,
                      {"n": [int(k) for k in cn], "value": [float(v) for v in mcnemar_power(cn, p10, p01, alpha, method, alternative)]},
                      exact={"n": exact}, notes=notes)




# ----------------------------------------------------------------------------------------------
# dispatch and outputs

KINDS: dict[str, Callable[..., PlanResult]] = {"auc": plan_auc, "proportion": plan_proportion, "mcnemar": plan_mcnemar,
                                               "metric": plan_metric}


def plan_study(kind: str, **options: Any) -> PlanResult:
    """Run the planner of ``kind`` (auc, proportion, mcnemar, metric) with its keyword options."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plan kind {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind](**options)


def plan_figure(result: PlanResult, path: str | Path) -> Path:
    """Draw the power (or half-width) curve against n, with the target and the solution marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from openmia.fileio import save_figure

    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x, y = result.curve["n"], result.curve["value"]
    ax.plot(x, y, "-" if result.kind != "metric" else "o-", color="tab:blue", ms=3, lw=1.5)
    if result.rows:
        vi = 1 if result.kind == "metric" else -1  # the value column of the table
        ax.plot([r[0] for r in result.rows], [r[vi] for r in result.rows], "o", color="tab:blue", ms=4)
    ax.axhline(result.target, color="tab:red", ls="--", lw=1, label=f"target {result.value_label} {result.target:g}")
    if result.n is not None:
        ax.axvline(result.n, color="tab:green", ls=":", lw=1.2, label=f"n = {result.n}")
    ax.set_xlabel("pairs of results (cases)" if result.kind == "mcnemar" else "cases (n)")
    ax.set_ylabel(result.value_label)
    if result.goal == "power":
        ax.set_ylim(0, 1.02)
    ax.set_title(f"openmia plan {result.kind}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def write_plan(result: PlanResult, out: str | Path) -> dict[str, Path]:
    """Write ``plan.json`` and ``plan.png`` into ``out`` as one set (atomic folder swap); the
    folder is expected to be checked first with :func:`openmia.fileio.prepare_output_dir`."""
    from openmia import fileio

    with fileio.atomic_dir(out) as tmp:
        fileio.write_json(tmp / "plan.json", result.to_dict())
        plan_figure(result, tmp / "plan.png")
    out = Path(out)
    return {"json": out / "plan.json", "figure": out / "plan.png"}

# every public name of the split modules stays importable from openmia.stats.power
from openmia.stats.power_base import SCHEMA, VARIANCES, PAIRED_TESTS, ALTERNATIVES  # noqa: E402,F401
from openmia.stats.power_auc import hanley_mcneil_se, obuchowski_variance, auc_estimate_correlation, auc_se, auc_half_width, auc_power, plan_auc  # noqa: E402,F401
from openmia.stats.power_pilot import read_pilot, load_pilot, simulate_half_width, simulate_power, plan_metric  # noqa: E402,F401
