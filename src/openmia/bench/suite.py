"""Benchmark suites (``openmia benchmark``): a YAML file declaring data sets x models/recipes x
seeds x budgets, expanded into *cells*, each an ordinary openmia training run.

Suite file (paths are relative to the suite file; ``$VARS`` are expanded)::

    name: quick                       # the suite's name (default: the file's stem)
    out_dir: runs/suites/quick        # where run directories and suite.sqlite go
                                      # (default: OPENMIA_HOME/suites/<name>; relative to the CWD)
    data_root: $OPENMIA_DATA          # optional: folder that dataset ``root`` entries are relative to
    base:                             # config for every cell (nested, in the config layout)
      train: {epochs: 2}
    datasets:                         # a name, or a mapping
      - synthetic/binary
      - {name: vgg_cells, label: vgg_cells-draw1, root: cells, set: {data.fold: 1}, models: [density]}
    models:                           # label -> recipe and/or overrides
      cnn: {set: {model.name: cnn_small, model.kwargs: {width: 16}}}
      best: {recipe: {retinamnist: ../configs/medmnist_best_retinamnist.yaml, "*": ../configs/medmnist_best_2d.yaml}}
    seeds: [0, 1]                     # train.seed
    budgets: [null]                   # train.max_minutes (null = the recipe's own)
    metrics: [auc, acc]               # leaderboard metrics (default: each task's own)
    nproc: 1                          # data-parallel processes per cell (also per model / data set)

A cell's config is built by applying, in order: ``base``, the model's ``recipe`` file (a mapping
``dataset pattern -> file`` picks the first matching pattern, fnmatch-style), the model's ``set``,
the data set's ``set``, ``data.dataset``, ``data.root``, ``train.seed``, ``train.max_minutes``
(the budget), ``train.deterministic`` (``--deterministic``) and the command line's ``--set``.
``task`` follows the data set's catalogue entry unless the recipe sets it.

``nproc`` (training processes per cell, DDP as ``openmia train --nproc``): the command line's
``--nproc`` if given, else the data set's ``nproc``, else the model's, else the suite's, else 1.
It is *not* part of a cell's id: it changes how a cell is computed (float summation order), not
what is trained, like the thread count; the run records it (``provenance.json``'s
``distributed.world_size``), and changing it reuses finished cells.

Cell id = sha256 (first 12 hex) of the canonical JSON of the resolved config
(:meth:`openmia.config.RunConfig.to_dict`, the same dict :meth:`RunConfig.hash` hashes) without the
keys that say *where* or *how fast* rather than *what* is trained (:data:`WHERE_KEYS`): changing
the data folder, the output folder or the thread count reuses finished cells.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmia.errors import ConfigError, OpenmiaError

SUITE_KEYS = ("name", "description", "out_dir", "data_root", "base", "datasets", "models", "seeds", "budgets", "metrics",
              "alpha", "resamples", "rank_resamples", "nproc")
DATASET_KEYS = ("name", "label", "root", "set", "models", "nproc")
MODEL_KEYS = ("recipe", "set", "description", "nproc")
# keys naming where data and outputs live, or how many threads a cell gets: not part of a cell's id
WHERE_KEYS = ("out_dir", "name", "data.root", "train.threads", "train.device")


@dataclass(frozen=True)
class Cell:
    """One (data set, model, seed, budget) of a suite: an openmia run.

    ``config`` is the resolved config dict (``RunConfig.to_dict()``), ``overrides`` the ``KEY=VALUE``
    list that builds it from the defaults."""

    id: str
    dataset: str  # the data set's label (its name unless the suite gives a label)
    model: str  # the model's label in the suite
    seed: int
    budget: float | None  # train.max_minutes; None = the recipe's own
    task: str
    overrides: tuple[str, ...]
    config: dict[str, Any] = field(repr=False, compare=False, hash=False)
    nproc: int = field(default=1, compare=False, hash=False)  # DDP processes; not part of the id

    @property
    def slot(self) -> str:
        """What the cell is *for* (data set, model, seed, budget), independent of its config: a
        changed recipe keeps the slot and gets a new id."""
        return f"{self.dataset}|{self.model}|{self.seed}|{'' if self.budget is None else f'{self.budget:g}'}"

    @property
    def label(self) -> str:
        b = "" if self.budget is None else f" budget {self.budget:g} min"
        return f"{self.dataset} x {self.model} x seed {self.seed}{b}"

    @property
    def dirname(self) -> str:
        b = "" if self.budget is None else f"-{self.budget:g}min"
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{self.dataset}-{self.model}-s{self.seed}{b}")
        return f"{safe}-{self.id}"


@dataclass
class Suite:
    """A loaded, validated suite and its cells (in declaration order)."""

    name: str
    path: Path
    out_dir: Path
    cells: list[Cell]
    metrics: tuple[str, ...] | None
    alpha: float = 0.05
    resamples: int = 2000
    rank_resamples: int = 500
    description: str = ""

    @property
    def store_path(self) -> Path:
        return self.out_dir / "suite.sqlite"

    def run_dir(self, cell: Cell) -> Path:
        return self.out_dir / "cells" / cell.dirname

    def log_path(self, cell: Cell) -> Path:
        return self.out_dir / "logs" / f"{cell.dirname}.log"


def cell_id(config: dict[str, Any]) -> str:
    """The id of a resolved config dict: sha256 of its canonical JSON without :data:`WHERE_KEYS`."""
    d = json.loads(json.dumps(config))
    for key in WHERE_KEYS:
        node = d
        *parents, last = key.split(".")
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def flatten(d: Any, prefix: str = "") -> list[str]:
    """A nested mapping as ``KEY=VALUE`` overrides (``model.kwargs`` stays one value; dotted keys
    such as ``{"data.fold": 1}`` are taken as they are)."""
    import yaml

    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key != "model.kwargs" and not key.endswith(".kwargs"):
            out += flatten(v, key + ".")
        else:
            text = yaml.safe_dump(v, default_flow_style=True, width=10**9, sort_keys=False).strip()
            if text.endswith("\n..."):
                text = text[: -len("...")].strip()
            out.append(f"{key}={text}")
    return out


def _unknown(where: str, keys: Any, allowed: tuple[str, ...]) -> None:
    bad = [k for k in keys if k not in allowed]
    if bad:
        close = difflib.get_close_matches(str(bad[0]), allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: unknown key {bad[0]!r}.{hint} Valid keys: {', '.join(allowed)}")


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(value).__name__} {value!r}")
    return value


def _list(where: str, value: Any, default: list[Any]) -> list[Any]:
    if value is None:
        return default
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list, found {value!r}")
    return value


def _read_yaml(path: Path, where: str) -> Any:
    from openmia.config import yaml_load

    if not path.is_file():
        raise ConfigError(f"{where}: file {path} does not exist")
    try:
        return yaml_load(path.read_text(encoding="utf-8"))
    except Exception as exc:  # YAMLError, UnicodeDecodeError, OSError: all mean "cannot read it"
        raise ConfigError(f"{where}: cannot read {path} as YAML ({exc})") from exc


def _recipe_file(where: str, recipe: Any, dataset: str, base: Path) -> Path | None:
    if recipe is None:
        return None
    if isinstance(recipe, str):
        return (base / os.path.expandvars(recipe)).resolve()
    if isinstance(recipe, dict):
        for pattern, file in recipe.items():
            if fnmatch.fnmatchcase(dataset, str(pattern)):
                return (base / os.path.expandvars(str(file))).resolve()
        raise ConfigError(f"{where}: no recipe pattern matches data set {dataset!r} (patterns: {', '.join(map(str, recipe))}); "
                          "add a '*' entry")
    raise ConfigError(f"{where}.recipe: expected a file name or a mapping pattern -> file, found {recipe!r}")


def _check_dataset(where: str, name: str) -> str | None:
    """The task of a catalogue data set (None for user data, ``prefix:PATH``); unknown names raise
    with the catalogue's close matches."""
    if ":" in name:
        return None
    from openmia.data.catalog import get_spec

    try:
        return get_spec(name).task
    except OpenmiaError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _check_model(where: str, name: Any) -> None:
    from openmia.models import MODELS, load_all

    load_all()
    try:
        MODELS.get(str(name))
    except LookupError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def check_nproc(where: str, value: Any) -> int | None:
    """``value`` as a positive int (None stays None), else ConfigError naming ``where``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer number of training processes per cell, found {value!r}")
    return value


def load_suite(path: str | Path, *, overrides: tuple[str, ...] | list[str] = (), deterministic: bool = False,
               data_root: str | Path | None = None, out_dir: str | Path | None = None, nproc: int | None = None) -> Suite:
    """Read, expand and validate a suite file; every cell's config is built and checked here, so a
    bad key, data set or model is reported (naming the cell) before anything runs.

    ``nproc`` (``--nproc``) sets every cell's training processes, over the suite's ``nproc`` keys.

    Raises:
        ConfigError: unknown key (with close matches), unknown data set or model, duplicate cell,
            budget <= 0, bad seeds, nproc < 1.
    """
    from openmia.config import RunConfig, apply_override
    from openmia.data.paths import openmia_home

    p = Path(path)
    raw = _read_yaml(p, f"suite {p}")
    if not isinstance(raw, dict):
        raise ConfigError(f"suite {p}: expected a mapping at the top level, found {type(raw).__name__}")
    where = f"suite {p}"
    _unknown(where, raw, SUITE_KEYS)
    nproc = check_nproc("--nproc", nproc)
    suite_nproc = check_nproc(f"{where}: nproc", raw.get("nproc"))
    name = str(raw.get("name") or p.stem)
    base_dir = p.resolve().parent
    out = Path(out_dir) if out_dir is not None else (Path(os.path.expandvars(str(raw["out_dir"]))) if raw.get("out_dir")
                                                    else openmia_home() / "suites" / name)
    droot = data_root if data_root is not None else raw.get("data_root")
    droot_path = Path(os.path.expandvars(str(droot))) if droot else None
    base = flatten(_mapping(f"{where}: base", raw.get("base")))
    seeds = _list(f"{where}: seeds", raw.get("seeds"), [0])
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ConfigError(f"{where}: seeds: expected non-negative integers, found {s!r}")
    budgets = _list(f"{where}: budgets", raw.get("budgets"), [None])
    for b in budgets:
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0):
            raise ConfigError(f"{where}: budgets: each budget is train.max_minutes > 0 (or null for the recipe's own), "
                              f"found {b!r}")
    datasets = []
    for i, d in enumerate(_list(f"{where}: datasets", raw.get("datasets"), [])):
        d = {"name": d} if isinstance(d, str) else d
        w = f"{where}: datasets[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise ConfigError(f"{w}: expected a data set name or a mapping with 'name', found {d!r}")
        _unknown(w, d, DATASET_KEYS)
        check_nproc(f"{w}: nproc", d.get("nproc"))
        datasets.append(d)
    models_raw = raw.get("models")
    if isinstance(models_raw, list):  # a plain list of registered model names
        models_raw = {str(m): {"set": {"model.name": m}} for m in models_raw}
    models = _mapping(f"{where}: models", models_raw)
    if not models:
        raise ConfigError(f"{where}: models: expected at least one model")
    for label, m in models.items():
        _unknown(f"{where}: models.{label}", _mapping(f"{where}: models.{label}", m), MODEL_KEYS)
        check_nproc(f"{where}: models.{label}: nproc", (m or {}).get("nproc"))
    metrics = raw.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not all(isinstance(x, str) for x in metrics)):
        raise ConfigError(f"{where}: metrics: expected a list of metric names, found {metrics!r}")

    cells: list[Cell] = []
    seen: dict[str, Cell] = {}
    for d in datasets:
        dname, dlabel = d["name"], str(d.get("label") or d["name"])
        dtask = _check_dataset(f"{where}: data set {dlabel!r}", dname)
        dset = flatten(_mapping(f"{where}: data set {dlabel!r}: set", d.get("set")))
        root = None
        if d.get("root") is not None:
            r = Path(os.path.expandvars(str(d["root"])))
            root = str(droot_path / r if droot_path is not None and not r.is_absolute() else r)
        elif droot_path is not None:
            root = str(droot_path)
        only = d.get("models")
        if only is not None:
            if not isinstance(only, list) or not only:
                raise ConfigError(f"{where}: data set {dlabel!r}: models: expected a non-empty list of model labels, found {only!r}")
            for x in only:
                if x not in models:
                    close = difflib.get_close_matches(str(x), list(models), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ConfigError(f"{where}: data set {dlabel!r}: models: {x!r} is not a model of this suite.{hint} "
                                      f"Models: {', '.join(models)}")
        for mlabel, m in models.items():
            if only is not None and mlabel not in only:
                continue
            m = m or {}
            recipe = _recipe_file(f"{where}: models.{mlabel}", m.get("recipe"), dname, base_dir)
            rec = []
            if recipe is not None:
                data = _read_yaml(recipe, f"{where}: models.{mlabel}")
                rec = flatten(_mapping(f"{where}: models.{mlabel}: recipe {recipe}", data))
            mset = flatten(_mapping(f"{where}: models.{mlabel}: set", m.get("set")))
            for seed in seeds:
                for budget in budgets:
                    ov = [*base, *rec, *mset, *dset, f"data.dataset={dname}"]
                    ov += [f"data.root={root}"] if root else []
                    ov += [f"train.seed={seed}"]
                    ov += [f"train.max_minutes={budget:g}"] if budget is not None else []
                    ov += ["train.deterministic=true"] if deterministic else []
                    ov += list(overrides)
                    label = f"{dlabel} x {mlabel} x seed {seed}" + ("" if budget is None else f" budget {budget:g} min")
                    try:
                        raw_cfg: dict[str, Any] = {}
                        for item in ov:
                            apply_override(raw_cfg, item)
                        if "task" not in raw_cfg and dtask is not None:
                            raw_cfg["task"] = dtask
                            ov.insert(0, f"task={dtask}")
                        mname = (raw_cfg.get("model") or {}).get("name")
                        if mname is not None:
                            _check_model("model.name", mname)
                        cfg = RunConfig.from_dict(raw_cfg)
                    except OpenmiaError as exc:
                        raise ConfigError(f"{where}: cell {label}: {exc}") from exc
                    conf = cfg.to_dict()
                    n = next((x for x in (nproc, d.get("nproc"), m.get("nproc"), suite_nproc) if x is not None), 1)
                    c = Cell(cell_id(conf), dlabel, str(mlabel), int(seed), None if budget is None else float(budget),
                             cfg.task, tuple(ov), conf, nproc=n)
                    if c.id in seen:
                        raise ConfigError(f"{where}: duplicate cell: {label} has the same resolved config (id {c.id}) as "
                                          f"{seen[c.id].label}; remove one, or make them differ")
                    seen[c.id] = c
                    cells.append(c)
    if not cells:
        raise ConfigError(f"{where}: no cells (datasets x models x seeds x budgets is empty)")
    alpha = float(raw.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise ConfigError(f"{where}: alpha: expected 0 < alpha < 1, found {alpha}")
    return Suite(name=name, path=p.resolve(), out_dir=out.resolve(), cells=cells,
                 metrics=tuple(metrics) if metrics else None, alpha=alpha,
                 resamples=int(raw.get("resamples", 2000)), rank_resamples=int(raw.get("rank_resamples", 500)),
                 description=str(raw.get("description") or ""))
