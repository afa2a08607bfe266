"""Plumbing shared by the training benchmarks: the published recipes (``benchmarks/configs/*.yaml``)
as override lists, per-set budgets from the command line, the shipped suites
(``benchmarks/suites/*.yaml``) restricted to a script's options and run through the suite runner
(:func:`derived_suite`, :func:`run_cells`), a pool for the runs that are not suite cells (one
torch thread each, longest first so the cores stay busy until the end), and training that reuses or
resumes a cached run only when it was made with the same configuration.

The scripts import this module as a sibling (``python benchmarks/segmentation.py`` puts
``benchmarks/`` first on ``sys.path``); everything else they use is the installed ``openmia``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

CONFIGS = Path(__file__).resolve().parent / "configs"
SUITES = Path(__file__).resolve().parent / "suites"
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
        raise RuntimeError(f"{rd} holds a run of another configuration ({'; '.join(diff)}); delete it or use another runs folder (the script's --runs/--runs-dir)")
    if (rd / "result.json").is_file():
        return True
    api.resume(rd, progress=False, index=False)
    return False


def read_suite(path: str | Path) -> dict[str, Any]:
    """A suite file as its raw mapping, for a script to restrict or extend before :func:`derived_suite`."""
    from openmia.config import yaml_load

    data = yaml_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a suite mapping at the top level, found {type(data).__name__}")
    return data


def override_mapping(overrides: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides as a suite ``set`` mapping (dotted keys, YAML values), so a script's
    variant of a suite model is that model with these keys set."""
    import yaml

    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def derived_suite(path: str | Path, raw: dict[str, Any], *, out_dir: str | Path | None = None,
                  data_root: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()):
    """The :class:`openmia.bench.suite.Suite` of ``raw`` (the suite file ``path`` as read by
    :func:`read_suite`, with a script's data sets, models, seeds or budgets put in), built by
    :func:`openmia.bench.suite.load_suite` exactly as ``openmia benchmark run`` builds it: same
    name, same default ``out_dir`` (so the same run directories and ``suite.sqlite``), recipe files
    relative to ``path``. A cell left as the file declares it keeps its id and run directory."""
    import tempfile

    import yaml

    from openmia.bench.suite import load_suite

    src = Path(path).resolve()
    data = dict(raw)
    data.setdefault("name", src.stem)
    models = {}
    for label, m in (data.get("models") or {}).items():  # recipe paths are relative to the suite file: make them absolute
        m = dict(m or {})
        rec = m.get("recipe")
        if isinstance(rec, str):
            m["recipe"] = str((src.parent / rec).resolve())
        elif isinstance(rec, dict):
            m["recipe"] = {k: str((src.parent / v).resolve()) for k, v in rec.items()}
        models[label] = m
    data["models"] = models
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / src.name
        f.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        suite = load_suite(f, overrides=tuple(overrides), out_dir=out_dir, data_root=data_root)
    suite.path = src
    return suite


def merge_suites(first, *more):
    """One suite holding the cells of several derived from the same file (e.g. extra seeds for some
    models only: a suite's seeds apply to all its models); a cell in two of them is kept once."""
    import dataclasses

    cells, seen = [], set()
    for s in (first, *more):
        if (s.name, s.out_dir) != (first.name, first.out_dir):
            raise ValueError(f"suite {s.name} in {s.out_dir} cannot be merged into {first.name} in {first.out_dir}")
        for c in s.cells:
            if c.id not in seen:
                seen.add(c.id)
                cells.append(c)
    return dataclasses.replace(first, cells=cells)


def cell_recipe(cell, drop: tuple[str, ...] = ("data.root", "train.seed", "eval.n_resamples")) -> list[str]:
    """A cell's overrides for a results table's list of configurations, without the keys that say
    where the data is or that the table states elsewhere (the last value of a key wins)."""
    return [o for o in cell.overrides if o.split("=", 1)[0] not in drop]


def run_cells(suite, *, parallel: int = 1, threads: int | None = None) -> dict[tuple[str, str, int], Path]:
    """Train the suite's cells with the suite runner (``openmia benchmark run``'s code: finished
    cells reused, interrupted ones resumed, everything recorded in ``suite.sqlite``); returns
    ``(data set label, model label, seed) -> run directory``. A cell that failed is an error naming
    it and its log, after the other cells have run."""
    from openmia.bench.runner import run_suite

    logging.info("suite %s: %d cell(s) in %s", suite.name, len(suite.cells), suite.out_dir)
    res = run_suite(suite, parallel=parallel, threads=threads, echo=logging.info)
    failed = [r for r in res["results"] if r["status"] == "failed"]
    if failed:
        by_id = {c.id: c for c in suite.cells}
        raise RuntimeError("; ".join(f"cell {by_id[r['cell_id']].label} failed ({r.get('error')}), log "
                                     f"{suite.log_path(by_id[r['cell_id']])}" for r in failed))
    return {(c.dataset, c.model, c.seed): suite.run_dir(c) for c in suite.cells}


def t_interval(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean of ``values`` with a Student-t interval (None bounds for fewer than 2 values) and the
    two-sided p-value of mean = 0 (the paired t-test when the values are paired differences)."""
    import math

    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "p": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1)) if sd > 0 else (1.0 if mean == 0 else 0.0)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "p": p, "n": n}


# --- results kept across sessions: a runs folder is a cache that a later session may not have, so a
# script can keep the rows of its earlier results file (``--merge``) after checking their settings,
# and every row names the pre-training run it used by a digest of the encoder's tensors


def portable(overrides: list[str]) -> list[str]:
    """Overrides without the keys that say where things are (they may differ between machines)."""
    return [o for o in overrides if o.split("=", 1)[0] not in WHERE_KEYS]


def encoder_digest(pretrain_dir: str | Path) -> str:
    """12 hex digits of a SHA-256 over a pre-training run's ``encoder.pt`` tensors (names and bytes,
    in name order): two runs that produced the same weights share it, any other pair does not."""
    import hashlib

    import torch

    state = torch.load(Path(pretrain_dir) / "encoder.pt", map_location="cpu", weights_only=True)["model"]
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def check_pretrain_owner(pretrain_dir: Path, fine_tuned: list[Path]) -> None:
    """Refuse to pre-train again while runs fine-tuned from a vanished pre-training run are still
    there: a new encoder is not theirs, and reusing them would mix two pre-training runs silently."""
    if (pretrain_dir / "result.json").is_file():
        return
    stale = sorted(str(p.name) for p in fine_tuned if p.exists())
    if stale:
        raise SystemExit(f"{pretrain_dir.parent}: fine-tuned runs {stale} are here but their pre-training run {pretrain_dir} "
                         "is not; remove them (or use another --runs) before pre-training again")


def read_results(path: str | Path) -> dict[str, Any]:
    """An earlier results file for ``--merge``; a missing or unreadable one is an error naming it."""
    import json

    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"--merge {p}: no such results file")
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise SystemExit(f"--merge {p}: not a JSON results file ({exc})") from exc


def kept_pretrains(section: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """The pre-training runs a results section recorded (``pretrains``), by id, and the id that rows
    without one used: a file from before ids were recorded had one run (``pretrain``), named by
    where it was and what it cost."""
    legacy = dict(section.get("pretrain") or {})
    legacy.setdefault("id", f"{legacy.get('run_dir')}@{float(legacy.get('cpu_seconds', 0)):.3f}")
    return {r["id"]: r for r in section.get("pretrains") or [legacy]}, legacy["id"]


def settings_differences(kept: dict[str, list[str]], now: dict[str, list[str]]) -> list[str]:
    """Per part (e.g. ``fine_tune``, ``pretrain``), the overrides only the kept file had and those
    only this call has."""
    out = []
    for part in sorted(set(kept) | set(now)):
        a, b = set(kept.get(part, [])), set(now.get(part, []))
        if a != b:
            out.append(f"{part}: kept {sorted(a - b)}, now {sorted(b - a)}")
    return out
