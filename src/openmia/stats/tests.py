"""Paired significance tests and multiplicity correction."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired 0/1 correctness: two-sided binomial test on the discordant pairs.

    Returns b (a right, b wrong), c (a wrong, b right) and the p-value min(1, 2 P(X <= min(b, c))).
    """
    a = np.asarray(correct_a).astype(bool)
    b_ = np.asarray(correct_b).astype(bool)
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    n = b + c
    p = 1.0 if n == 0 else float(min(1.0, 2 * binom.cdf(min(b, c), n, 0.5)))
    return {"b": b, "c": c, "p_value": p}


# The other paired and multi-model tests live in their own modules; re-exported here so that
# ``openmia.stats.tests`` is the one place to find every test (DESIGN §1).
from openmia.stats.multiple import friedman_nemenyi, holm  # noqa: E402,F401
from openmia.stats.paired import paired_permutation_test, wilcoxon_signed_rank  # noqa: E402,F401
from openmia.stats.multiple import compare_to_control, friedman_test, nemenyi_test  # noqa: E402,F401
