"""Bootstrap confidence intervals over cases, or over patients (cluster bootstrap).

Statistics are functions of case *weights*: ``stat(w)`` takes ``(B, N)`` multiplicities (how often
each case is in each resample) and returns ``(B,)`` values, so all resamples are evaluated at
once. Resampling patients draws whole patients with replacement and gives each of their cases the
patient's multiplicity — cases of one patient are not independent, so they must move together.

BCa (bias-corrected and accelerated, Efron 1987) is the default; the acceleration comes from the
jackknife (leave one case out, or one patient out; above 2,000 cases/patients, leave one of 2,000
random blocks out). Resample weights are generated lazily in chunks, so memory stays bounded
(about 160 MB) for any number of cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
# the normal CDF and quantile from scipy.special (scipy.stats costs ~1 s to import; the values are the same)
from scipy.special import ndtr, ndtri

Stat = Callable[[np.ndarray], np.ndarray]


@dataclass
class BootstrapResult:
    value: float
    ci_low: float
    ci_high: float
    method: str  # "bca" | "percentile"
    n_resamples: int
    n_dropped: int  # resamples where the statistic was undefined (NaN), excluded


class Resamples:
    """Bootstrap resamples as case multiplicities, generated lazily in chunks of rows.

    A full ``(B, N)`` matrix does not fit in memory for large N (2000 x 100,000 float64 = 1.6 GB),
    so rows are drawn chunk by chunk from one seeded generator; iterating again replays exactly
    the same rows, which is what lets every metric of a report (and both models of a paired
    comparison) share resamples.
    """

    def __init__(self, n: int, n_resamples: int, seed: int, groups: np.ndarray | None = None,
                 chunk: int | None = None) -> None:
        self.n, self.n_resamples, self.seed = int(n), int(n_resamples), seed
        self.inv = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        self.chunk = chunk or int(max(1, min(512, 20_000_000 // max(self.n, 1))))  # <= ~160 MB per chunk
        self._cache: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n_resamples

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_resamples, self.n)

    def _counts(self) -> Iterator[np.ndarray]:
        """Multiplicities per case or cluster, ``(c, G)`` chunks, drawn from the seeded generator."""
        rng = np.random.default_rng(self.seed)
        g = self.n if self.inv is None else int(self.inv.max()) + 1
        done = 0
        while done < self.n_resamples:
            c = min(self.chunk, self.n_resamples - done)
            yield rng.multinomial(g, np.full(g, 1.0 / g), size=c)
            done += c

    def chunks(self) -> Iterator[np.ndarray]:
        """Weight matrices ``(c, N)`` covering all resamples, in a fixed order.

        Drawing is the slow part, so after the first pass the counts are kept compactly (uint8,
        or uint16 if a multiplicity exceeds 255) when they take <= 512 MB, and replayed.
        """
        if self._cache is None:
            g = self.n if self.inv is None else int(self.inv.max()) + 1
            if self.n_resamples * g <= 512 * 2**20:
                blocks = list(self._counts())
                top = max(int(b.max()) for b in blocks) if blocks else 0
                dtype = np.uint8 if top < 256 else np.uint16
                self._cache = [b.astype(dtype) for b in blocks]
        source = self._cache if self._cache is not None else self._counts()
        for counts in source:
            w = counts.astype(float)
            yield w if self.inv is None else w[:, self.inv]

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.chunks():
            yield from block

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.concatenate(list(self.chunks()), axis=0)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        return np.asarray(self)[key]


def resample_weights(n: int, n_resamples: int, seed: int, groups: np.ndarray | None = None) -> Resamples:
    """Multiplicities ``(B, N)`` for case (or cluster) resampling; deterministic from ``seed``, lazy."""
    return Resamples(n, n_resamples, seed, groups)


MAX_JACKKNIFE = 2000  # leave-one-out rows beyond this become leave-one-block-out


def _jackknife_index(n: int, groups: np.ndarray | None, max_rows: int, seed: int) -> tuple[np.ndarray, int]:
    """Which left-out unit each case belongs to, and the number of units (rows)."""
    inv = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    g = int(inv.max()) + 1 if n else 0
    if g > max_rows:
        block = np.random.default_rng(seed).permutation(g) % max_rows
        inv, g = block[inv], max_rows
    return inv, g


def jackknife_weights(n: int, groups: np.ndarray | None = None, *, max_rows: int = MAX_JACKKNIFE,
                      seed: int = 0) -> np.ndarray:
    """Leave-one-out weights ``(G, N)`` (one row per left-out case or cluster).

    With more than ``max_rows`` cases (clusters) the acceleration is estimated by a grouped
    (delete-d) jackknife: cases are split at random into ``max_rows`` blocks and one block is left
    out per row (an N x N matrix would not fit in memory for 100,000 cases).
    """
    inv, g = _jackknife_index(n, groups, max_rows, seed)
    return (inv[None, :] != np.arange(g)[:, None]).astype(float)


def _jackknife_values(stat: Stat, n: int, groups: np.ndarray | None) -> np.ndarray:
    """``stat`` on every jackknife row, built chunk by chunk (memory ~ chunk x N)."""
    inv, g = _jackknife_index(n, groups, MAX_JACKKNIFE, 0)
    step = max(1, min(512, 20_000_000 // max(n, 1)))
    out = [np.asarray(stat((inv[None, :] != np.arange(i, min(i + step, g))[:, None]).astype(float)), dtype=float)
           for i in range(0, g, step)]
    return np.concatenate(out) if out else np.zeros(0)


def _apply(stat: Stat, w, chunk: int = 512) -> np.ndarray:
    if isinstance(w, Resamples):
        return np.concatenate([np.asarray(stat(block), dtype=float) for block in w.chunks()])
    return np.concatenate([np.asarray(stat(w[i : i + chunk]), dtype=float) for i in range(0, len(w), chunk)])


def bootstrap_ci(stat: Stat, n: int, *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                 method: str = "bca", groups: np.ndarray | None = None, weights: np.ndarray | None = None) -> BootstrapResult:
    """Bootstrap CI of ``stat`` over ``n`` cases.

    Args:
        stat: weights ``(B, N)`` -> values ``(B,)``.
        groups: optional cluster id per case (e.g. patient id) for the cluster bootstrap.
        weights: precomputed resample weights (used for paired comparisons: the same resamples
            for two models).
    """
    if method not in ("bca", "percentile"):
        raise ValueError(f"bootstrap method must be 'bca' or 'percentile', found {method!r}")
    theta = float(_apply(stat, np.ones((1, n)))[0])
    w = resample_weights(n, n_resamples, seed, groups) if weights is None else weights
    boot = _apply(stat, w)
    ok = np.isfinite(boot)
    dropped = int((~ok).sum())
    boot = boot[ok]
    if not np.isfinite(theta) or boot.size == 0:
        return BootstrapResult(theta, np.nan, np.nan, method, len(w), dropped)
    if np.ptp(boot) == 0:  # degenerate: every resample gives the same value
        return BootstrapResult(theta, float(boot[0]), float(boot[0]), method, len(w), dropped)
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    if method == "bca":
        # bias correction: proportion of resamples below the estimate (ties count half)
        prop = (np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / boot.size
        prop = min(max(prop, 1.0 / (boot.size + 1)), 1 - 1.0 / (boot.size + 1))
        z0 = ndtri(prop)
        jack = _jackknife_values(stat, n, groups)
        jack = jack[np.isfinite(jack)]
        d = jack.mean() - jack
        denom = 6.0 * (np.sum(d**2) ** 1.5)
        a = float(np.sum(d**3) / denom) if denom > 0 else 0.0
        za, zb = ndtri(lo_q), ndtri(hi_q)
        lo_q = float(ndtr(z0 + (z0 + za) / (1 - a * (z0 + za))))
        hi_q = float(ndtr(z0 + (z0 + zb) / (1 - a * (z0 + zb))))
    lo, hi = np.quantile(boot, [lo_q, hi_q])
    return BootstrapResult(theta, float(lo), float(hi), method, len(w), dropped)


def paired_bootstrap_diff(stat_a: Stat, stat_b: Stat, n: int, **kwargs) -> BootstrapResult:
    """CI of ``stat_a - stat_b`` with the same resamples for both (a paired comparison)."""
    return bootstrap_ci(lambda w: stat_a(w) - stat_b(w), n, **kwargs)
