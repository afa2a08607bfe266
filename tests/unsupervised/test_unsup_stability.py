"""Hennig cluster stability: the Jaccard on shared cases by hand, and clusterboot cross-checked
against an independent brute-force implementation with Python sets."""

from __future__ import annotations

import numpy as np
import pytest

from openmia.unsupervised.stability import clusterboot, max_jaccard


def test_max_jaccard_hand_computed():
    # shared cases 0..5; original clusters A={0,1,2}, B={3,4,5}; resample clusters D5={0,1}, D7={2,3,4,5}
    # J(A, D5) = 2/3, J(A, D7) = 1/6 -> 2/3;  J(B, D5) = 0, J(B, D7) = 3/4 -> 3/4
    got = max_jaccard(np.array([0, 0, 0, 1, 1, 1]), np.array([5, 5, 7, 7, 7, 7]))
    assert got == {0: pytest.approx(2 / 3), 1: pytest.approx(0.75)}


def test_max_jaccard_ignores_noise():
    # noise (-1) is no cluster: original noise is not scored, resample noise is no candidate
    got = max_jaccard(np.array([0, 0, -1, 1]), np.array([-1, -1, 3, 3]))
    assert got == {0: 0.0, 1: pytest.approx(1 / 2)}  # B={3} vs D3={2,3}: 1/2


def _brute_force(x, labels, refit, n_boot, seed):
    """Independent implementation: sets of case indices, same resample draws."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    per = {c: [] for c in set(labels.tolist()) if c != -1}
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        new = refit(x[idx], seed + b)
        where = {}
        for pos, i in enumerate(idx):
            where.setdefault(int(i), int(new[pos]))
        shared = set(where)
        new_sets = {}
        for i, d in where.items():
            if d != -1:
                new_sets.setdefault(d, set()).add(i)
        for c in per:
            orig = {i for i in shared if labels[i] == c}
            if not orig:
                continue
            per[c].append(max((len(orig & s) / len(orig | s) for s in new_sets.values()), default=0.0))
    return {c: float(np.mean(v)) for c, v in per.items()}


def test_clusterboot_matches_brute_force_and_flags_unstable():
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(6, 1, (20, 2))]
    labels = np.r_[np.zeros(30, int), np.ones(20, int)]

    def noisy_refit(xb, s):  # a deliberately unstable "method": random labels
        return np.random.default_rng(s).integers(0, 3, len(xb))

    res = clusterboot(x, labels, noisy_refit, n_boot=25, seed=11)
    ref = _brute_force(x, labels, noisy_refit, 25, 11)
    for c in (0, 1):
        assert res["clusters"][c]["mean_jaccard"] == pytest.approx(ref[c], abs=1e-12)
        assert res["clusters"][c]["unstable"]  # random labels: Jaccard far below 0.6
        assert res["clusters"][c]["n_scored"] == 25


def test_clusterboot_separated_clusters_are_stable():
    from openmia.unsupervised.cluster import fit_partition

    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 0.3, (25, 2)), rng.normal(5, 0.3, (25, 2)), rng.normal([0, 5], 0.3, (25, 2))]
    labels = fit_partition(x, "kmeans", 3, 0)
    res = clusterboot(x, labels, lambda xb, s: fit_partition(xb, "kmeans", 3, s), n_boot=10, seed=0)
    assert all(v["mean_jaccard"] == 1.0 and v["recovered"] == 10 and not v["unstable"] for v in res["clusters"].values())
    # seeded: the same call gives the same numbers
    again = clusterboot(x, labels, lambda xb, s: fit_partition(xb, "kmeans", 3, s), n_boot=10, seed=0)
    assert again["clusters"] == res["clusters"]


def test_clusterboot_rejects_zero_resamples():
    from openmia.errors import ConfigError

    with pytest.raises(ConfigError, match="resamples"):
        clusterboot(np.zeros((4, 1)), np.array([0, 0, 1, 1]), lambda xb, s: np.zeros(len(xb), int), n_boot=0)
