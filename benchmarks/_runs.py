"""Plumbing shared by the training benchmarks: per-set budgets from the command line, and a pool
of runs (one torch thread each, longest first so the cores stay busy until the end)."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable


def parse_budgets(ap: argparse.ArgumentParser, defaults: dict[str, float], items: list[str]) -> dict[str, float]:
    """``defaults`` updated with ``SET=MINUTES`` items; a bad item is a usage error."""
    budgets = dict(defaults)
    for item in items:
        name, _, val = item.partition("=")
        try:
            minutes = float(val)
        except ValueError:
            minutes = -1.0
        if name not in budgets or minutes <= 0:
            ap.error(f"--minutes expects SET=MINUTES with SET in {list(budgets)} and MINUTES > 0, found {item!r}")
        budgets[name] = minutes
    return budgets


def run_pool(run: Callable[[dict[str, Any]], dict[str, Any]], jobs: list[dict[str, Any]], parallel: int) -> None:
    """``run(job)`` for every job, ``parallel`` at a time in spawned worker processes."""
    logging.info("%d runs, %d at a time", len(jobs), parallel)

    def report(done: dict[str, Any]) -> None:
        logging.info("done %s %s%s", done["dataset"], done["model"], " (reused)" if done.get("reused") else "")

    if parallel <= 1:
        for job in jobs:
            report(run(job))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn")) as pool:
        for done in pool.map(run, sorted(jobs, key=lambda j: -j["minutes"])):
            report(done)
