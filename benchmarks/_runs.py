"""Plumbing shared by the training benchmarks: the published recipes (``benchmarks/configs/*.yaml``)
as override lists, per-set budgets from the command line, a pool of runs (one torch thread each,
longest first so the cores stay busy until the end), and training that reuses or resumes a cached
run only when it was made with the same configuration.

The scripts import this module as a sibling (``python benchmarks/segmentation.py`` puts
``benchmarks/`` first on ``sys.path``); everything else they use is the installed ``openmia``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

CONFIGS = Path(__file__).resolve().parent / "configs"
# keys that name where things are, not what is trained: a cached run may differ in these
WHERE_KEYS = ("data.root", "out_dir", "name")


def recipe(name: str) -> list[str]:
    """The published recipe ``benchmarks/configs/<name>.yaml`` as ``KEY=VALUE`` overrides, in file
    order: ``load_config(None, recipe(name) + more)`` is ``load_config(<file>, more)``, and a script
    can add to a recipe, or print it, as a list (``model.kwargs`` stays one value)."""
    from openmia.config import yaml_load

    data = yaml_load((CONFIGS / f"{name}.yaml").read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{CONFIGS / f'{name}.yaml'}: expected a mapping at the top level")
    return _flatten(data, "")


def recipe_value(name: str, key: str) -> Any:
    """One dotted key of a recipe file (e.g. ``train.max_minutes``); KeyError when it is not set."""
    from openmia.config import yaml_load

    node: Any = yaml_load((CONFIGS / f"{name}.yaml").read_text())
    for part in key.split("."):
        node = node[part]
    return node


def _flatten(d: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key != "model.kwargs":
            out += _flatten(v, key + ".")
        else:
            out.append(f"{key}={_flow(v)}")
    return out


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (what ``--set`` parses back to the same value)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") else text


def describe(overrides: list[str], drop: tuple[str, ...] = ("train.max_minutes",)) -> str:
    """An override list for a results table: one item per key, with the value that takes effect
    (the last one given), in the order the keys first appear; keys in ``drop`` are left out (the
    tables state the budget they ran with in their header)."""
    last = {item.split("=", 1)[0]: item for item in overrides}  # insertion order: first appearance
    return " ".join(v for k, v in last.items() if k not in drop)


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


def cached_config(run_dir: str | Path) -> dict[str, Any]:
    """The configuration a run directory was made with, in today's layout: a run written before
    the sectioned config (task keys in ``train``/``eval``/``data``) is migrated on load, so it
    compares equal to the same recipe written the new way."""
    from openmia.config import load_run_config

    return load_run_config(Path(run_dir) / "config.yaml").to_dict()


def train_or_reuse(cfg, run_dir: str | Path) -> bool:
    """Train ``cfg`` into ``run_dir``; a complete cached run is reused and a partial one resumed, but
    only when its saved configuration is ``cfg`` (else a RuntimeError lists the differences, so a
    stale cache never stands in for a changed recipe). Returns whether the run was reused."""
    from openmia import api

    rd = Path(run_dir)
    if not (rd / "config.yaml").is_file():
        api.train(cfg, run_dir=rd, progress=False, index=False)  # a benchmark cache, not the user's runs
        return False
    diff = config_differences(cached_config(rd), cfg.to_dict())
    if diff:
        raise RuntimeError(f"{rd} holds a run of another configuration ({'; '.join(diff)}); delete it or pass another --runs-dir")
    if (rd / "result.json").is_file():
        return True
    api.resume(rd, progress=False, index=False)
    return False
