"""Bootstrap confidence intervals over cases, or over patients (cluster bootstrap).

Statistics are functions of case *weights*: ``stat(w)`` takes ``(B, N)`` multiplicities (how often
each case is in each resample) and returns ``(B,)`` values, so all resamples are evaluated at
once. Resampling patients draws whole patients with replacement and gives each of their cases the
patient's multiplicity — cases of one patient are not independent, so they must move together.

BCa (bias-corrected and accelerated, Efron 1987) is the default; the acceleration comes from the
jackknife (leave one case out, or one patient out; above 2,000 cases/patients, leave one of 2,000
random blocks out). Resample weights are generated lazily in chunks, so memory stays bounded
(about 160 MB) for any number of cases.

Many statistics at scale (:func:`bootstrap_many`): every statistic is evaluated on each chunk of
resamples as it is drawn (one pass, nothing cached), statistics of weighted sums
(:class:`LinearStat`, ``stat(w) = fn(w @ F)``) share one matrix product per chunk and get their
jackknife in closed form (leave-block-out sums = total - block sums), and the counts come from an
exact, faster multinomial sampler (``sampler="poissonized"``, :func:`multinomial_counts`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

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


_TABLE_BITS = 8  # the inverse-CDF lookup table of the Poissonised sampler has 2**8 cells (numpy draws uint8 fast)


def _poisson_table(lam: float) -> tuple[np.ndarray, np.ndarray]:
    """CDF of Poisson(``lam``) (``lam`` <= 1; truncated at 40, where the tail is < 1e-48) and a
    ``2**8``-cell lookup table: cell ``u`` holds the inverse CDF on ``[u, u+1) / 2**8`` where that
    is one value, and 255 where a CDF step falls inside the cell (resolved with more bits)."""
    k = np.arange(41)
    logpmf = k * math.log(lam) - lam - np.array([math.lgamma(v + 1) for v in k]) if lam > 0 else np.where(k == 0, 0.0, -np.inf)
    cdf = np.cumsum(np.exp(logpmf))
    cdf[-1] = 1.0
    edges = np.arange(2**_TABLE_BITS + 1) / 2**_TABLE_BITS
    lo = np.searchsorted(cdf, edges[:-1], side="right")  # inverse CDF at the cell's left edge
    hi = np.searchsorted(cdf, edges[1:], side="left")  # ... just below its right edge
    return cdf, np.where(lo == hi, lo, 255).astype(np.uint8)  # values <= 40: 255 is free as the marker


def multinomial_counts(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` exact draws of Multinomial(``n``, uniform over ``n`` cells): ``(size, n)`` uint8
    (uint16 in the astronomically unlikely case a count exceeds 255).

    numpy's ``multinomial`` draws one binomial per cell (13 s for 2,000 x 100,000 here); this is
    an order of magnitude faster and exact (Poissonisation): X_i ~ iid Poisson(lam), lam = 1 - 4 / sqrt(n),
    by inverse CDF from an 8-bit lookup table (cells containing a CDF step, ~1 in 50 draws, are
    resolved with 53 more random bits); given S = sum X_i, X is Multinomial(S, uniform), so adding
    an independent Multinomial(n - S, uniform) (~4 sqrt(n) uniform draws) gives Multinomial(n,
    uniform) whatever S was. Rows with S > n (probability ~3e-5) are drawn again.
    """
    lam = max(0.0, 1.0 - 4.0 / math.sqrt(max(n, 1)))
    cdf, table = _poisson_table(lam) if lam > 0 else (None, None)
    out = np.zeros((size, n), dtype=np.uint8)
    todo = np.arange(size) if table is not None else np.zeros(0, np.int64)
    while todo.size:
        u = rng.integers(0, 2**_TABLE_BITS, size=(todo.size, n), dtype=np.uint8)
        x = table[u]
        amb = np.flatnonzero(x == 255)
        if amb.size:  # a CDF step inside the cell: the uniform's further bits decide
            fine = (u.ravel()[amb] + rng.random(amb.size)) / 2**_TABLE_BITS  # uniform in the cell
            x.ravel()[amb] = np.searchsorted(cdf, fine, side="right")
        if todo.size == size:
            out = x
        else:
            out[todo] = x
        todo = todo[x.sum(axis=1, dtype=np.int64) > n]  # over n: draw those rows again (exact either way)
    rem = n - out.sum(axis=1, dtype=np.int64)
    if rem.any():
        flat = np.repeat(np.arange(size, dtype=np.int64) * n, rem) + rng.integers(0, n, size=int(rem.sum()))
        pos, cnt = np.unique(flat, return_counts=True)
        new = out.ravel()[pos].astype(np.int64) + cnt
        if new.max() > 255:
            out = out.astype(np.uint16)
        out.ravel()[pos] = new
    return out


SAMPLERS = ("multinomial", "poissonized")


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """numpy asks the kernel for transparent huge pages on every large array (``madvise``); the
    bootstrap loop allocates and frees tens of MB per chunk, and each fault of a fresh huge page
    zeroes (and may first compact) 2 MB. Measured on 100,000 cases x 2,000 resamples: 5.2 -> 3.6 s
    wall (benchmarks/evaluation_scale.py). Restored on exit; a no-op where numpy lacks the switch."""
    try:
        from numpy._core import multiarray as _ma
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as _ma
    switch = getattr(_ma, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    previous = switch(False)
    try:
        yield
    finally:
        switch(previous)


class Resamples:
    """Bootstrap resamples as case multiplicities, generated lazily in chunks of rows.

    A full ``(B, N)`` matrix does not fit in memory for large N (2000 x 100,000 float64 = 1.6 GB),
    so rows are drawn chunk by chunk from one seeded generator; iterating again replays exactly
    the same rows, which is what lets every metric of a report (and both models of a paired
    comparison) share resamples.
    """

    def __init__(self, n: int, n_resamples: int, seed: int, groups: np.ndarray | None = None,
                 chunk: int | None = None, sampler: str = "multinomial") -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, found {sampler!r}")
        if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
            from openmia.errors import ConfigError

            raise ConfigError(f"bootstrap resamples (--resamples / n_resamples): expected a positive whole number "
                              f"(e.g. 2000), found {n_resamples!r}")
        self.n, self.n_resamples, self.seed, self.sampler = int(n), int(n_resamples), seed, sampler
        self.inv = None if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        # <= ~160 MB of float weights per chunk; the Poissonised stream is drawn in chunks of
        # ~10M counts (its values depend on the chunk size, so it is fixed by n alone)
        limit = 20_000_000 if sampler == "multinomial" else 10_000_000
        self.chunk = chunk or int(max(1, min(512, limit // max(self.n, 1))))
        self._cache: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n_resamples

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_resamples, self.n)

    def _counts(self) -> Iterator[np.ndarray]:
        """Multiplicities per case or cluster, ``(c, G)`` chunks, drawn from the seeded generator."""
        rng = np.random.default_rng(self.seed)
        g = self.n_units
        done = 0
        while done < self.n_resamples:
            c = min(self.chunk, self.n_resamples - done)
            yield rng.multinomial(g, np.full(g, 1.0 / g), size=c) if self.sampler == "multinomial" \
                else multinomial_counts(g, c, rng)
            done += c

    @property
    def n_units(self) -> int:
        """Resampled units: cases, or clusters with ``groups``."""
        return self.n if self.inv is None else int(self.inv.max()) + 1

    def count_chunks(self) -> Iterator[np.ndarray]:
        """Integer multiplicities per case ``(c, N)`` (clusters expanded to their cases), drawn on
        the fly and not cached: the single-pass path of :func:`bootstrap_many`."""
        for counts in (self._cache if self._cache is not None else self._counts()):
            yield counts if self.inv is None else counts[:, self.inv]

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
    _check_method(method)
    theta = float(_apply(stat, np.ones((1, n)))[0])
    w = resample_weights(n, n_resamples, seed, groups) if weights is None else weights
    boot = _apply(stat, w)
    return ci_from_replicates(theta, boot, lambda: _jackknife_values(stat, n, groups), alpha=alpha, method=method)


def _check_method(method: str) -> None:
    if method not in ("bca", "percentile"):
        raise ValueError(f"bootstrap method must be 'bca' or 'percentile', found {method!r}")


def ci_from_replicates(theta: float, boot: np.ndarray, jack: np.ndarray | Callable[[], np.ndarray], *,
                       alpha: float = 0.05, method: str = "bca") -> BootstrapResult:
    """The interval from the estimate ``theta``, its bootstrap replicates ``boot`` ``(B,)`` and its
    jackknife values ``jack`` ``(G,)`` (or a function computing them, called only when BCa needs them)."""
    _check_method(method)
    boot = np.asarray(boot, dtype=float)
    n_boot = len(boot)
    ok = np.isfinite(boot)
    dropped = int((~ok).sum())
    boot = boot[ok]
    if not np.isfinite(theta) or boot.size == 0:
        return BootstrapResult(theta, np.nan, np.nan, method, n_boot, dropped)
    if np.ptp(boot) == 0:  # degenerate: every resample gives the same value
        return BootstrapResult(theta, float(boot[0]), float(boot[0]), method, n_boot, dropped)
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    if method == "bca":
        # bias correction: proportion of resamples below the estimate (ties count half)
        prop = (np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / boot.size
        prop = min(max(prop, 1.0 / (boot.size + 1)), 1 - 1.0 / (boot.size + 1))
        z0 = ndtri(prop)
        jack = np.asarray(jack() if callable(jack) else jack, dtype=float)
        jack = jack[np.isfinite(jack)]
        d = jack.mean() - jack
        denom = 6.0 * (np.sum(d**2) ** 1.5)
        a = float(np.sum(d**3) / denom) if denom > 0 else 0.0
        za, zb = ndtri(lo_q), ndtri(hi_q)
        lo_q = float(ndtr(z0 + (z0 + za) / (1 - a * (z0 + za))))
        hi_q = float(ndtr(z0 + (z0 + zb) / (1 - a * (z0 + zb))))
    lo, hi = np.quantile(boot, [lo_q, hi_q])
    return BootstrapResult(theta, float(lo), float(hi), method, n_boot, dropped)


class LinearStat:
    """A statistic of weighted sums: ``stat(w) = fn(w @ F)``, ``F`` ``(N, p)`` per-case features,
    ``fn`` ``(B, p)`` sums -> ``(B,)`` values (a proportion, a confusion-matrix metric, a mean, ECE...).

    Callable like any statistic; :func:`bootstrap_many` computes the sums of all linear statistics
    with one matrix product per chunk of resamples (statistics holding the same ``F`` object share
    it) and their jackknife in closed form.
    """

    def __init__(self, F: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        F = np.asarray(F, dtype=float)
        self.F = F[:, None] if F.ndim == 1 else F
        self.fn = fn

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        return self.fn((w[None] if w.ndim == 1 else w) @ self.F)


ROW_JACKKNIFE_CASES = 20_000_000  # bootstrap_many: case-rows of jackknife for statistics that are not LinearStat

# a statistic returning several named values at once: weights (B, N) -> {name: (B,) or (B, T)}
BlockStat = Callable[[np.ndarray], Mapping[str, np.ndarray]]


@dataclass
class Replicates:
    """A statistic on all cases (``theta``), on every resample (``boot``, ``(B, ...)``) and on every
    jackknife row (``jack``, ``(G, ...)``)."""

    theta: np.ndarray
    boot: np.ndarray
    jack: np.ndarray

    def ci(self, alpha: float = 0.05, method: str = "bca") -> BootstrapResult:
        return ci_from_replicates(float(self.theta), self.boot, self.jack, alpha=alpha, method=method)


def bootstrap_many(stats: Mapping[str, Stat], n: int, *, block_stats: Sequence[BlockStat] = (), n_resamples: int = 2000,
                   seed: int = 0, groups: np.ndarray | None = None, sampler: str = "poissonized",
                   row_jackknife: int | None = None, jackknife_seed: int = 0) -> dict[str, Replicates]:
    """Bootstrap and jackknife replicates of many statistics in one pass over the resamples.

    ``stats`` map a name to a statistic (weights ``(B, N)`` -> ``(B,)``); ``block_stats`` return
    several named values at once (e.g. everything derived from one sort of the scores). Each chunk
    of resample counts is drawn once and handed (as integers: ``uint8``/``uint16``, cast as needed)
    to every statistic, so nothing is cached: memory is a few chunks, whatever N. :class:`LinearStat`
    sums are one matrix product per chunk for all of them, and their jackknife (the same
    leave-one-out or leave-block-out rows as :func:`bootstrap_ci`) is closed-form. The other
    statistics' jackknife evaluates them on leave-block-out rows: at most ``row_jackknife`` of them
    (default :data:`ROW_JACKKNIFE_CASES` / N, between 200 and 2,000, so 2,000 as
    :func:`bootstrap_ci` up to 10,000 cases; fewer, larger blocks only make the estimate of the
    acceleration noisier, and the acceleration moves the interval by O(1/sqrt(N)) anyway).

    With ``sampler="multinomial"`` the resamples are exactly those of :func:`bootstrap_ci` for the
    same seed, so the results are identical; ``"poissonized"`` (default) is the faster exact sampler.
    Returns ``{name: Replicates}``; apply :meth:`Replicates.ci` for an interval.
    """
    if not stats and not block_stats:
        return {}
    if row_jackknife is None:
        row_jackknife = int(min(MAX_JACKKNIFE, max(200, ROW_JACKKNIFE_CASES // max(n, 1))))
    linear = {k: s for k, s in stats.items() if isinstance(s, LinearStat)}
    other = {k: s for k, s in stats.items() if not isinstance(s, LinearStat)}
    feats: dict[int, np.ndarray] = {}
    for s in linear.values():
        feats.setdefault(id(s.F), s.F)
    cols, start = {}, 0
    for key, F in feats.items():
        cols[key] = slice(start, start + F.shape[1])
        start += F.shape[1]
    F_all = np.hstack(list(feats.values())) if feats else np.zeros((n, 0))

    buffers: dict[tuple[int, ...], np.ndarray] = {}  # float copies of the counts, reused: no fresh pages per chunk

    def evaluate(w: np.ndarray, skip_linear: bool = False) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if linear and not skip_linear:
            if w.shape not in buffers:
                buffers[w.shape] = np.empty(w.shape)
            wf = buffers[w.shape]
            np.copyto(wf, w)
            sums = wf @ F_all
            for k, s in linear.items():
                out[k] = np.asarray(s.fn(sums[:, cols[id(s.F)]]), dtype=float)
        for k, s in other.items():
            out[k] = np.asarray(s(w), dtype=float)
        for b in block_stats:
            out.update({k: np.asarray(v, dtype=float) for k, v in b(w).items()})
        return out

    with _small_pages():  # the pass allocates tens of MB per chunk
        theta = evaluate(np.ones((1, n), dtype=np.uint8))
        parts: dict[str, list[np.ndarray]] = {k: [] for k in theta}
        for counts in Resamples(n, n_resamples, seed, groups, sampler=sampler).count_chunks():
            for k, v in evaluate(counts).items():
                parts[k].append(v)
        boot = {k: np.concatenate(v) if v else np.zeros((0,) + theta[k].shape[1:]) for k, v in parts.items()}

        # jackknife: closed form for the sums (total - block sums); row by row for the rest, with at
        # most ``row_jackknife`` rows (each row costs a pass over the N cases)
        jack: dict[str, np.ndarray] = {}
        if linear:
            inv, g = _jackknife_index(n, groups, MAX_JACKKNIFE, jackknife_seed)
            block = np.zeros((g, F_all.shape[1]))
            np.add.at(block, inv, F_all)
            jack_sums = F_all.sum(axis=0)[None, :] - block
            jack.update({k: np.asarray(s.fn(jack_sums[:, cols[id(s.F)]]), dtype=float) for k, s in linear.items()})
        if other or block_stats:
            inv, g = _jackknife_index(n, groups, row_jackknife, jackknife_seed)
            jparts: dict[str, list[np.ndarray]] = {}
            step = max(1, min(512, 10_000_000 // max(n, 1)))
            for i in range(0, g, step):
                rows = (inv[None, :] != np.arange(i, min(i + step, g))[:, None]).view(np.uint8)
                for k, v in evaluate(rows, skip_linear=True).items():
                    jparts.setdefault(k, []).append(v)
            jack.update({k: np.concatenate(v) for k, v in jparts.items()})
        return {k: Replicates(theta[k][0], boot[k], jack[k]) for k in theta}


def paired_bootstrap_diff(stat_a: Stat, stat_b: Stat, n: int, **kwargs) -> BootstrapResult:
    """CI of ``stat_a - stat_b`` with the same resamples for both (a paired comparison)."""
    return bootstrap_ci(lambda w: stat_a(w) - stat_b(w), n, **kwargs)
