"""Hypothesis profiles of the reader fuzz tests (issue 21, "Stay hardened").

* ``quick`` (default): a few dozen inputs per reader, the whole folder in well under 30 s.
* ``medium``: about 10,000 inputs (a few minutes), for a local check after changing a reader.
* ``slow``: >= 100,000 inputs in all (``OPENMIA_FUZZ_PROFILE=slow pytest tests/fuzz``, or
  ``pytest -m slow tests/fuzz``, which runs the slow variant of every fuzz test).

Each test's share of the profile's inputs is its ``weight`` (see test_fuzz_readers.fuzz); the
session prints how many inputs were tried and how long they took.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                      HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])
# max_examples is per unit of weight; the weights in test_fuzz_readers add up to 12.65 (slow: ~107,500 inputs)
settings.register_profile("quick", max_examples=40, **_COMMON)
settings.register_profile("medium", max_examples=800, **_COMMON)
settings.register_profile("slow", max_examples=8500, **_COMMON)

FUZZ_STATS = {"inputs": 0, "seconds": 0.0, "by_test": {}}


@pytest.fixture
def fuzz_stats(request):
    """Counts the inputs a fuzz test tried (printed at the end of the session)."""
    start, before = time.perf_counter(), FUZZ_STATS["inputs"]
    yield FUZZ_STATS
    FUZZ_STATS["seconds"] += time.perf_counter() - start
    FUZZ_STATS["by_test"][request.node.name] = FUZZ_STATS["inputs"] - before


def pytest_terminal_summary(terminalreporter):
    if FUZZ_STATS["inputs"]:
        terminalreporter.write_line(f"fuzz: {FUZZ_STATS['inputs']} inputs in {FUZZ_STATS['seconds']:.1f} s "
                                    f"({len(FUZZ_STATS['by_test'])} fuzz tests)")
        for name, n in FUZZ_STATS["by_test"].items():
            terminalreporter.write_line(f"  {name}: {n}")
