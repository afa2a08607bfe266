"""Cluster stability by bootstrap resampling (Hennig 2007, "Cluster-wise assessment of cluster
stability", Comput. Stat. Data Anal. 52:258-271; R ``fpc::clusterboot``).

For each of ``B`` resamples (``n`` cases drawn with replacement, seeded), the resample is clustered
again with the same method and settings. Each original cluster ``C`` is compared with every cluster
``D`` of the resample *on the cases both contain* — the distinct cases drawn, ``S``:

    J(C, D) = |C ∩ D ∩ S| / |(C ∪ D) ∩ S|      (Jaccard similarity on the shared cases)

and its stability in that resample is ``max_D J(C, D)``. Over the resamples where ``C ∩ S`` is not
empty, openmia reports the mean (Hennig's ``bootmean``), how often the cluster *dissolved*
(max Jaccard <= 0.5, ``bootbrd``) and was *recovered* (>= 0.75, ``bootrecover``). A cluster whose mean
Jaccard is below 0.6 is flagged **unstable** (Hennig's rule of thumb: below 0.6 a cluster should not
be trusted; 0.6-0.75 indicates a pattern, above 0.85 a highly stable cluster).

Conventions: a case drawn several times is one case of ``S`` (duplicates are identical points, so
every method puts them in one cluster; the first copy's cluster is used). Noise (label ``-1``,
HDBSCAN) is no cluster: it is neither scored nor a candidate ``D``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

DISSOLVED, RECOVERED, UNSTABLE_BELOW = 0.5, 0.75, 0.6


def max_jaccard(original: np.ndarray, resampled: np.ndarray) -> dict[int, float]:
    """``{cluster: max_D J(C, D)}`` for two labelings of the *same* cases ``(m,)`` (the shared cases).

    Original clusters absent from these cases are left out; noise (``-1``) is ignored on both sides.
    """
    o = np.asarray(original)
    r = np.asarray(resampled)
    out: dict[int, float] = {}
    cand = [d for d in np.unique(r) if d != -1]
    for c in np.unique(o):
        if c == -1:
            continue
        in_c = o == c
        best = 0.0
        for d in cand:
            in_d = r == d
            inter = int(np.sum(in_c & in_d))
            if inter:
                best = max(best, inter / int(np.sum(in_c | in_d)))
        out[int(c)] = best
    return out


def clusterboot(x: np.ndarray, labels: np.ndarray, refit: Callable[[np.ndarray, int], np.ndarray], *,
                n_boot: int = 100, seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Hennig's bootstrap stability of each cluster of ``labels``.

    Args:
        x: ``(n, d)`` features the partition was made from.
        labels: ``(n,)`` cluster per case (``-1`` = noise).
        refit: ``refit(x_resample, seed) -> labels (m,)``: the same clustering applied to a resample.
        n_boot: resamples ``B``.
        seed: seeds the resampling (resample ``b`` is refitted with seed ``seed + b``).

    Returns:
        ``{"clusters": {c: {"mean_jaccard", "dissolved", "recovered", "n_scored", "unstable"}},
        "n_boot", "seed", "threshold"}``; ``n_scored`` = resamples in which the cluster had a case.
    """
    if n_boot < 1:
        from openmia.errors import ConfigError

        raise ConfigError(f"stability: the number of bootstrap resamples must be >= 1, found {n_boot}")
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    scores: dict[int, list[float]] = {int(c): [] for c in np.unique(labels) if c != -1}
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        new = np.asarray(refit(x[idx], seed + b))
        shared, first = np.unique(idx, return_index=True)  # distinct cases drawn, and a copy of each
        for c, j in max_jaccard(labels[shared], new[first]).items():
            scores[c].append(j)
        if progress is not None:
            progress(b + 1, n_boot)
    clusters = {}
    for c, js in scores.items():
        v = np.asarray(js, float)
        mean = float(v.mean()) if v.size else float("nan")
        clusters[c] = {"mean_jaccard": mean, "dissolved": int(np.sum(v <= DISSOLVED)),
                       "recovered": int(np.sum(v >= RECOVERED)), "n_scored": int(v.size),
                       "unstable": bool(not np.isfinite(mean) or mean < UNSTABLE_BELOW)}
    return {"clusters": clusters, "n_boot": n_boot, "seed": seed, "threshold": UNSTABLE_BELOW,
            "method": "Hennig (2007) clusterboot: bootstrap resamples re-clustered; per cluster the mean over "
                      "resamples of the max Jaccard similarity to a resample cluster on the shared cases"}
