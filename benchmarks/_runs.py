"""Plumbing shared by the training benchmarks: per-set budgets from the command line, a pool of
runs (one torch thread each, longest first so the cores stay busy until the end), and training
that reuses or resumes a cached run only when it was made with the same configuration."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

# keys that name where things are, not what is trained: a cached run may differ in these
WHERE_KEYS = ("data.root", "out_dir", "name")


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


def config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (``WHERE_KEYS`` ignored)."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if key in WHERE_KEYS:
            continue
        if isinstance(va, dict) and isinstance(vb, dict) and key != "model.kwargs":
            out += config_differences(va, vb, key + ".")
        elif va != vb:
            out.append(f"{key}: cached {va!r}, requested {vb!r}")
    return out


def train_or_reuse(cfg, run_dir: str | Path) -> bool:
    """Train ``cfg`` into ``run_dir``; a complete cached run is reused and a partial one resumed, but
    only when its saved configuration is ``cfg`` (else a RuntimeError lists the differences, so a
    stale cache never stands in for a changed recipe). Returns whether the run was reused."""
    from openmia.config import load_config
    from openmia.engine.trainer import resume, train

    rd = Path(run_dir)
    if not (rd / "config.yaml").is_file():
        train(cfg, run_dir=rd, progress=False)
        return False
    diff = config_differences(load_config(rd / "config.yaml").to_dict(), cfg.to_dict())
    if diff:
        raise RuntimeError(f"{rd} holds a run of another configuration ({'; '.join(diff)}); delete it or pass another --runs-dir")
    if (rd / "result.json").is_file():
        return True
    resume(rd, progress=False)
    return False
