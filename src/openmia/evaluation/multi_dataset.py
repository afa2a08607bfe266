"""Ranking models across several data sets (``openmia rank``): Friedman, Nemenyi, Holm /
Bonferroni–Dunn against a control and the CD diagram (Demšar, JMLR 2006).

Inputs, one score per model and data set:

- ``--scores FILE.csv`` in long form ``dataset,model,score`` (optional ``metric`` and ``label``
  columns are filtered by ``metric``/``label``) or in wide form ``dataset,<one column per model>``;
- ``--dataset NAME=PATH`` per data set, PATH an ``openmia compare`` output (its folder,
  ``compare.json`` or ``ranking.csv``; the ``score`` of the chosen metric and label) or a CSV
  ``model,score``.

Every model must have a finite score on every data set (the Friedman test needs complete blocks);
``drop_incomplete=True`` drops the data sets that miss a model instead, and says which.
The direction comes from ``higher_is_better``, else from the metric (a metric known to
``openmia compare``), else higher is better; the outputs say which.

Statistics: :mod:`openmia.stats.multiple` (conventions there and in docs/evaluation.md).
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.errors import ConfigError, PredictionError, UnknownNameError

log = logging.getLogger(__name__)

SCHEMA = "openmia.rank/1"
RANK_FILES = ("ranks.csv", "average_ranks.csv", "friedman.csv", "nemenyi.csv", "control.csv", "cd_diagram.png", "rank.json")
# the direction of compare's ranking ``score`` under each scheme (aggregate-then-rank: the metric's own)
_SCHEME_DIRECTION = {"rank-then-aggregate": False, "test-then-rank": True}


@dataclass
class ScoreTable:
    """Scores ``(N data sets, k models)`` with names, and what the inputs say about direction."""

    datasets: list[str]
    models: list[str]
    scores: np.ndarray
    metric: str | None = None
    higher_is_better: bool | None = None  # known from the inputs (metric or compare scheme), else None
    sources: dict[str, str] = field(default_factory=dict)  # data set -> file it came from
    dropped: list[str] = field(default_factory=list)  # data sets dropped as incomplete

    @classmethod
    def from_array(cls, scores, datasets: Sequence[str], models: Sequence[str], **kwargs: Any) -> "ScoreTable":
        """A table from an in-memory ``(N, k)`` array (rows = ``datasets``, columns = ``models``)."""
        s = np.asarray(scores, dtype=float)
        if s.shape != (len(datasets), len(models)):
            raise PredictionError(f"scores of shape {s.shape} do not match {len(datasets)} data sets x {len(models)} models")
        return cls(list(map(str, datasets)), list(map(str, models)), s, **kwargs)


# ---------------------------------------------------------------------------------------------
# reading


def _read_table(path: Path):
    from openmia.evaluation.io import read_csv

    if path.is_file():
        try:
            empty = not path.read_bytes().strip()
        except OSError as exc:
            raise PredictionError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
        if empty:
            raise PredictionError(f"{path}: the file is empty; expected a header line such as 'dataset,model,score'")
    return read_csv(path, required=())


def _score(value: str, where: str, column: str) -> float:
    if value == "":
        raise PredictionError(f"{where}, column {column!r}: empty score")
    try:
        v = float(value)
    except ValueError:
        raise PredictionError(f"{where}, column {column!r}: {value!r} is not a number") from None
    if not np.isfinite(v):
        raise PredictionError(f"{where}, column {column!r}: {value!r} is not a finite number; every model needs a "
                              "finite score on every data set (drop the data set or the model)")
    return v


def _pick(rows: list[dict[str, Any]], key: str, wanted: str | None, source: str, prefer: str | None = None) -> list[dict]:
    """Keep the rows whose ``key`` equals ``wanted``; with no ``wanted``, the only value present
    (or ``prefer`` when present); an error naming ``source`` otherwise."""
    if not rows or key not in rows[0]:
        return rows
    values = list(dict.fromkeys(str(r[key]) for r in rows))
    if wanted is None:
        if len(values) == 1:
            return rows
        if prefer is not None and prefer in values:
            wanted = prefer
        else:
            raise PredictionError(f"{source}: holds several {key}s ({', '.join(values)}); choose one with --{key}")
    if wanted not in values:
        raise PredictionError(f"{source}: no rows with {key} {wanted!r}; found {', '.join(values)}")
    return [r for r in rows if str(r[key]) == wanted]


def _complete(entries: list[tuple[str, str, float, str]], *, drop_incomplete: bool, metric: str | None,
              higher_is_better: bool | None) -> ScoreTable:
    """A :class:`ScoreTable` from ``(dataset, model, score, where)``; duplicates and missing
    scores are errors naming the data set, model and file."""
    seen: dict[tuple[str, str], str] = {}
    for d, m, _, where in entries:
        if d == "":
            raise PredictionError(f"{where}: empty data set name")
        if m == "":
            raise PredictionError(f"{where}: empty model name")
        if (d, m) in seen:
            raise PredictionError(f"{where}: a second score for model {m!r} on data set {d!r} (the first is at {seen[(d, m)]})")
        seen[(d, m)] = where
    datasets = list(dict.fromkeys(e[0] for e in entries))
    models = list(dict.fromkeys(e[1] for e in entries))
    value = {(d, m): s for d, m, s, _ in entries}
    where_of = {e[0]: e[3].rsplit(", ", 1)[0] for e in entries}  # "FILE, line 3" -> FILE
    missing = {d: [m for m in models if (d, m) not in value] for d in datasets}
    missing = {d: ms for d, ms in missing.items() if ms}
    dropped: list[str] = []
    if missing:
        if not drop_incomplete:
            shown = "; ".join(f"data set {d!r} ({where_of[d]}) has no score for {', '.join(repr(m) for m in ms)}"
                              for d, ms in list(missing.items())[:5])
            more = f" and {len(missing) - 5} more data sets" if len(missing) > 5 else ""
            raise PredictionError(f"every model needs a score on every data set (the Friedman test compares complete "
                                  f"blocks): {shown}{more}; add the scores, or drop those data sets (--drop-incomplete)")
        dropped = list(missing)
        log.warning("dropped %d data set(s) missing a model: %s", len(dropped), ", ".join(dropped))
        datasets = [d for d in datasets if d not in missing]
    scores = np.array([[value[(d, m)] for m in models] for d in datasets], dtype=float).reshape(len(datasets), len(models))
    table = ScoreTable(datasets, models, scores, metric=metric, higher_is_better=higher_is_better,
                       sources={d: where_of[d] for d in datasets}, dropped=dropped)
    _check_size(table)
    return table


def _check_size(table: ScoreTable) -> None:
    where = ", ".join(dict.fromkeys(table.sources.values())) or "the scores"
    if len(table.models) < 2:
        raise PredictionError(f"{where}: ranking needs at least two models, found {len(table.models)} ({', '.join(table.models)})")
    if len(table.datasets) < 2:
        extra = f" after dropping {len(table.dropped)} incomplete one(s)" if table.dropped else ""
        raise PredictionError(f"{where}: ranking across data sets needs at least two data sets{extra}, found "
                              f"{len(table.datasets)} ({', '.join(table.datasets)})")


def _direction_of(metric: str | None) -> bool | None:
    from openmia.evaluation.compare import HIGHER_IS_BETTER

    return None if metric is None else HIGHER_IS_BETTER.get(metric)


def read_scores_csv(path: str | Path, *, metric: str | None = None, label: str | None = None,
                    drop_incomplete: bool = False) -> ScoreTable:
    """Read ``dataset,model,score`` (long) or ``dataset,<model>,<model>,...`` (wide) scores.

    Column names are matched without regard to case. A long file with a ``metric`` (``label``)
    column is filtered to ``metric`` (``label``); with several values and none chosen it is an error.
    """
    p = Path(path)
    t = _read_table(p)
    low = [h.lower() for h in t.header]
    if "dataset" not in low:
        raise PredictionError(f"{p}: expected columns dataset,model,score (one row per data set and model) or "
                              f"dataset,<one column per model>; found columns {t.header}")
    di = low.index("dataset")
    entries: list[tuple[str, str, float, str]] = []
    if "model" in low or "score" in low:
        for col in ("model", "score"):
            if col not in low:
                raise PredictionError(f"{p}: missing column {col!r} for the long form dataset,model,score; found columns {t.header}")
        rows = [{"_line": i, **{h: r[j] for j, h in enumerate(low)}} for i, r in enumerate(t.rows, start=2)]
        rows = _pick(rows, "metric", metric, str(p))
        rows = _pick(rows, "label", label, str(p), prefer="all")
        if metric is None and rows and "metric" in rows[0]:
            metric = str(rows[0]["metric"])
        for r in rows:
            where = f"{p}, line {r['_line']}"
            entries.append((r["dataset"], r["model"], _score(r["score"], where, t.header[low.index("score")]), where))
    else:
        models = [h for j, h in enumerate(t.header) if j != di]
        if len(set(models)) != len(models):
            raise PredictionError(f"{p}: duplicate model columns in header {t.header}")
        for i, r in enumerate(t.rows, start=2):
            where = f"{p}, line {i}"
            for j, h in enumerate(t.header):
                if j != di and r[j] != "":  # an empty cell is a missing score, reported as such below
                    entries.append((r[di], h, _score(r[j], where, h), where))
    return _complete(entries, drop_incomplete=drop_incomplete, metric=metric, higher_is_better=_direction_of(metric))


def _compare_rows(name: str, path: Path) -> tuple[list[dict[str, Any]], str]:
    """Rows (dicts with model, score and maybe metric, label, scheme) of one data set's file."""
    if path.is_dir():
        if not (path / "compare.json").is_file():
            raise PredictionError(f"data set {name!r}: folder {path} holds no compare.json (expected an `openmia compare` "
                                  "output folder, a compare.json, a ranking.csv or a model,score CSV)")
        path = path / "compare.json"
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise PredictionError(f"data set {name!r}: {path}: file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PredictionError(f"data set {name!r}: {path}: cannot read the file ({exc.strerror or exc})") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PredictionError(f"data set {name!r}: {path}: not a JSON file ({exc})") from exc
        if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("openmia.compare/") \
                or not isinstance(data.get("ranking"), list):
            raise PredictionError(f"data set {name!r}: {path}: not an `openmia compare` compare.json (expected "
                                  "'schema': 'openmia.compare/1' and a 'ranking' list)")
        rows = []
        for i, r in enumerate(data["ranking"]):
            if not isinstance(r, dict) or "model" not in r or "score" not in r:
                raise PredictionError(f"data set {name!r}: {path}: ranking entry {i} lacks 'model' or 'score'")
            rows.append({**r, "_where": f"{path}, ranking[{i}]"})
        return rows, str(path)
    t = _read_table(path)
    low = [h.lower() for h in t.header]
    for col in ("model", "score"):
        if col not in low:
            raise PredictionError(f"data set {name!r}: {path}: missing column {col!r}; expected model,score (or a "
                                  f"ranking.csv of `openmia compare`), found columns {t.header}")
    return [{**{h: r[j] for j, h in enumerate(low)}, "_where": f"{path}, line {i}"}
            for i, r in enumerate(t.rows, start=2)], str(path)


def read_dataset_files(datasets: dict[str, str | Path], *, metric: str | None = None, label: str | None = None,
                       drop_incomplete: bool = False) -> ScoreTable:
    """One score table from one file per data set (``{name: compare output or model,score CSV}``).

    From compare outputs the ``score`` of ``metric`` and ``label`` (default ``all``) is used: the
    mean under ``aggregate-then-rank`` (direction: the metric's), the mean within-case rank under
    ``rank-then-aggregate`` (lower is better), the number of significant wins under
    ``test-then-rank`` (higher is better); the direction must agree across data sets.
    """
    if not datasets:
        raise PredictionError("ranking needs scores: give --scores FILE or --dataset NAME=PATH for each data set")
    entries: list[tuple[str, str, float, str]] = []
    metrics: dict[str, str] = {}
    directions: dict[str, tuple[bool, str]] = {}
    for name, path in datasets.items():
        rows, source = _compare_rows(name, Path(path))
        rows = _pick(rows, "metric", metric, f"data set {name!r}: {source}")
        rows = _pick(rows, "label", label, f"data set {name!r}: {source}", prefer="all")
        m = str(rows[0]["metric"]) if rows and "metric" in rows[0] else metric
        if m is not None:
            metrics[name] = m
        scheme = str(rows[0].get("scheme", "")) if rows else ""
        schemes = {str(r.get("scheme", "")) for r in rows}
        if len(schemes) > 1:
            raise PredictionError(f"data set {name!r}: {source}: rows of several ranking schemes ({', '.join(sorted(schemes))})")
        hib = _SCHEME_DIRECTION.get(scheme, _direction_of(m))
        if hib is not None:
            what = f"scheme {scheme}" if scheme in _SCHEME_DIRECTION else f"metric {m}"
            directions[name] = (hib, what)
        for r in rows:
            entries.append((str(name), str(r["model"]), _score(str(r["score"]).strip(), r["_where"], "score"), r["_where"]))
    if len(set(metrics.values())) > 1:
        raise PredictionError("the data sets report different metrics (" + ", ".join(f"{d}: {m}" for d, m in metrics.items())
                              + "); choose one with --metric")
    if len({d for d, _ in directions.values()}) > 1:
        raise PredictionError("the data sets' scores point in different directions (" + ", ".join(
            f"{d}: {w}, {'higher' if h else 'lower'} is better" for d, (h, w) in directions.items())
                              + "); run `openmia compare` with the same --scheme on every data set")
    hib = next(iter(directions.values()))[0] if directions else None
    table = _complete(entries, drop_incomplete=drop_incomplete, metric=next(iter(metrics.values()), metric),
                      higher_is_better=hib)
    table.sources = {d: str(Path(datasets[d])) for d in table.datasets}
    return table


# ---------------------------------------------------------------------------------------------
# statistics


def _control_index(models: list[str], control: str) -> int:
    if control in models:
        return models.index(control)
    lower = {m.lower(): m for m in models}
    close = [lower[c] for c in difflib.get_close_matches(control.lower(), list(lower), n=3)]  # case-insensitive
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"control model {control!r} is not among the models {', '.join(models)}.{hint}")


def resolve_direction(table: ScoreTable, higher_is_better: bool | None) -> tuple[bool, str]:
    """The direction to rank by and where it came from (``option``, ``metric <name>``,
    ``scheme``, ``default``); an option contradicting a known metric is an error."""
    known = table.higher_is_better
    if higher_is_better is not None:
        if known is not None and known != higher_is_better:
            word = "higher" if known else "lower"
            raise ConfigError(f"--{'higher' if higher_is_better else 'lower'}-is-better contradicts the inputs: "
                              f"for {table.metric or 'these scores'} {word} is better; leave the option out")
        return bool(higher_is_better), "option"
    if known is not None:
        return known, f"metric {table.metric}" if table.metric else "inputs"
    return True, "default; pass --lower-is-better for errors and distances"


def rank_table(table: ScoreTable, *, alpha: float = 0.05, control: str | None = None,
               higher_is_better: bool | None = None, tie_correction: bool = True) -> dict[str, Any]:
    """Friedman (tie-corrected by default), Nemenyi all pairs, and — with ``control`` — Holm and
    Bonferroni–Dunn against the control, on a :class:`ScoreTable`; a JSON-ready dict."""
    from openmia.stats import multiple as M

    _check_size(table)
    hib, source = resolve_direction(table, higher_is_better)
    ci = None if control is None else _control_index(table.models, control)
    fr = M.friedman_test(table.scores, higher_is_better=hib, tie_correction=tie_correction)
    nem = M.nemenyi_from_ranks(fr["average_ranks"], fr["n_datasets"], alpha=alpha)
    models, avg, k, n = table.models, fr["average_ranks"], len(table.models), len(table.datasets)
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            pairs.append({"model_a": models[i], "model_b": models[j], "average_rank_a": float(avg[i]),
                          "average_rank_b": float(avg[j]), "rank_diff": float(avg[i] - avg[j]),
                          "z": float(nem["z"][i, j]), "statistic": float(nem["statistic"][i, j]),
                          "p_value": float(nem["p_values"][i, j]), "significant": bool(nem["significant"][i, j])})
    groups = [[models[j] for j in g] for g in M.nonsignificant_groups(avg, nem["significant"])]
    ctrl = None
    if ci is not None:
        c = M.control_from_ranks(avg, n, ci, alpha=alpha)
        ctrl = {"model": models[ci], "average_rank": c["rank_control"], "standard_error": c["standard_error"],
                "q_alpha_bonferroni_dunn": c["q_alpha_bonferroni_dunn"],
                "critical_difference_bonferroni_dunn": c["critical_difference_bonferroni_dunn"],
                "comparisons": [{"model": models[j], "average_rank": float(c["ranks"][t]), "rank_diff": float(c["rank_diff"][t]),
                                 "z": float(c["z"][t]), "p_value": float(c["p_values"][t]), "p_holm": float(c["p_holm"][t]),
                                 "p_bonferroni_dunn": float(c["p_bonferroni_dunn"][t]),
                                 "significant_holm": bool(c["significant_holm"][t]),
                                 "significant_bonferroni_dunn": bool(c["significant_bonferroni_dunn"][t])}
                                for t, j in enumerate(c["models"])]}
    notes = []
    if not fr["p_value"] <= alpha:
        notes.append(f"the Friedman test does not reject at alpha = {alpha:g} (p = {fr['p_value']:.3g}); the post-hoc "
                     "results are shown, but Demšar (2006) reads them only after a rejection")
    if n <= 10 or k <= 5:
        notes.append("chi-square approximation with N <= 10 data sets or k <= 5 models (Demšar's rule of thumb asks for "
                     "N > 10 and k > 5); the Iman–Davenport F is less conservative")
    if table.dropped:
        notes.append(f"dropped {len(table.dropped)} data set(s) missing a model: {', '.join(table.dropped)}")
    return {
        "schema": SCHEMA, "metric": table.metric, "higher_is_better": hib, "direction_source": source, "alpha": alpha,
        "n_datasets": n, "n_models": k, "datasets": table.datasets, "models": models, "sources": table.sources,
        "dropped_datasets": table.dropped, "scores": table.scores, "ranks": fr["ranks"],
        "average_ranks": {m: float(r) for m, r in zip(models, avg)},
        "friedman": {"tie_correction": tie_correction, "chi2": fr["chi2"], "df": fr["df"], "p_value": fr["p_value"],
                     "chi2_tie_corrected": fr["chi2_tie_corrected"], "p_value_tie_corrected": fr["p_value_tie_corrected"],
                     "chi2_uncorrected": fr["chi2_uncorrected"], "p_value_uncorrected": fr["p_value_uncorrected"],
                     "tie_factor": fr["tie_factor"], "iman_davenport_f": fr["iman_davenport_f"], "df1": fr["df1"],
                     "df2": fr["df2"], "iman_davenport_p": fr["iman_davenport_p"], "significant": bool(fr["p_value"] <= alpha)},
        "nemenyi": {"q_alpha": nem["q_alpha"], "standard_error": nem["standard_error"],
                    "critical_difference": nem["critical_difference"], "pairs": pairs, "groups": groups},
        "control": ctrl, "notes": notes,
        "conventions": {
            "ranks": "within each data set, 1 = best, ties share the average rank",
            "friedman": "tie-corrected as scipy.stats.friedmanchisquare and R friedman.test" if tie_correction
                        else "uncorrected for ties (Demšar 2006, eq. of section 3.2.2)",
            "nemenyi": "p = P(studentized range(k, inf) >= sqrt(2)|R_i - R_j|/SE), SE = sqrt(k(k+1)/(6N)); "
                       "significant when p <= alpha, i.e. |R_i - R_j| >= CD",
            "control": "z = (R_j - R_control)/SE, two-sided normal p; Holm step-down; Bonferroni-Dunn min(1, (k-1)p)",
        },
    }


# ---------------------------------------------------------------------------------------------
# writing


def _f(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return str(x)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.bool_, bool)):
        return bool(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None  # strict JSON: NaN/inf become null
    return o


def write_rank_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ranks.csv, average_ranks.csv, friedman.csv, nemenyi.csv, control.csv (with a
    control), cd_diagram.png and rank.json into ``out_dir``, as one set (atomically)."""
    from openmia import fileio
    from openmia.evaluation.cd_diagram import plot_cd_diagram

    models, datasets = result["models"], result["datasets"]
    scores, ranks = np.asarray(result["scores"]), np.asarray(result["ranks"])
    fr, nem, ctrl = result["friedman"], result["nemenyi"], result["control"]
    out = Path(out_dir)
    files: dict[str, Path] = {}
    with fileio.atomic_dir(out) as tmp:
        files["ranks"] = fileio.write_csv(tmp / "ranks.csv", [["dataset", "model", "score", "rank"]] + [
            [d, m, _f(scores[i, j]), _f(ranks[i, j])] for i, d in enumerate(datasets) for j, m in enumerate(models)])
        files["average_ranks"] = fileio.write_csv(tmp / "average_ranks.csv", [["model", "average_rank", "n_datasets"]] + [
            [m, _f(result["average_ranks"][m]), _f(result["n_datasets"])] for m in models])
        files["friedman"] = fileio.write_csv(tmp / "friedman.csv", [
            ["test", "statistic", "df1", "df2", "p_value", "used"],
            ["friedman_chi2_tie_corrected", _f(fr["chi2_tie_corrected"]), _f(fr["df"]), "", _f(fr["p_value_tie_corrected"]),
             _f(fr["tie_correction"])],
            ["friedman_chi2_uncorrected", _f(fr["chi2_uncorrected"]), _f(fr["df"]), "", _f(fr["p_value_uncorrected"]),
             _f(not fr["tie_correction"])],
            ["iman_davenport_f", _f(fr["iman_davenport_f"]), _f(fr["df1"]), _f(fr["df2"]), _f(fr["iman_davenport_p"]), "true"]])
        cols = ["model_a", "model_b", "average_rank_a", "average_rank_b", "rank_diff", "z", "statistic", "p_value", "significant"]
        files["nemenyi"] = fileio.write_csv(tmp / "nemenyi.csv", [cols + ["critical_difference"]] + [
            [_f(p[c]) for c in cols] + [_f(nem["critical_difference"])] for p in nem["pairs"]])
        if ctrl is not None:
            cols = ["model", "average_rank", "rank_diff", "z", "p_value", "p_holm", "p_bonferroni_dunn", "significant_holm",
                    "significant_bonferroni_dunn"]
            files["control"] = fileio.write_csv(tmp / "control.csv", [
                ["control", "average_rank_control"] + cols + ["critical_difference_bonferroni_dunn"]] + [
                [ctrl["model"], _f(ctrl["average_rank"])] + [_f(c[col]) for col in cols]
                + [_f(ctrl["critical_difference_bonferroni_dunn"])] for c in ctrl["comparisons"]])
        sig = np.zeros((len(models), len(models)), dtype=bool)
        for p in nem["pairs"]:
            i, j = models.index(p["model_a"]), models.index(p["model_b"])
            sig[i, j] = sig[j, i] = p["significant"]
        what = f"{result['metric']}, " if result.get("metric") else ""
        title = (f"{what}scores: {'higher' if result['higher_is_better'] else 'lower'} is better; Friedman p = {fr['p_value']:.3g} "
                 f"({'tie-corrected' if fr['tie_correction'] else 'uncorrected'}), N = {result['n_datasets']} data sets, "
                 f"Nemenyi alpha = {result['alpha']:g}")
        files["cd_diagram"] = plot_cd_diagram([result["average_ranks"][m] for m in models], models, tmp / "cd_diagram.png",
                                              critical_difference=nem["critical_difference"], significant=sig,
                                              control=None if ctrl is None else ctrl["model"],
                                              control_cd=None if ctrl is None else ctrl["critical_difference_bonferroni_dunn"],
                                              title=title)
        files["summary"] = fileio.write_json(tmp / "rank.json", _jsonable({**result, "files": {
            k: v.name for k, v in files.items()} | {"summary": "rank.json"}}))
    written = {v.name for v in files.values()}
    for name in RANK_FILES:  # a control.csv of an earlier run (with --overwrite) would contradict rank.json
        if name not in written:
            (out / name).unlink(missing_ok=True)
    return {k: out / v.name for k, v in files.items()}


def rank_files(scores: str | Path | None = None, out: str | Path | None = None, *,
               datasets: dict[str, str | Path] | None = None, metric: str | None = None, label: str | None = None,
               control: str | None = None, alpha: float = 0.05, higher_is_better: bool | None = None,
               tie_correction: bool = True, drop_incomplete: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Read the scores (``scores`` CSV or one file per data set), rank and test, and write the
    outputs into ``out`` (refusing a non-empty folder unless ``overwrite``). Returns the result
    dict of :func:`rank_table` with ``files``."""
    from openmia.stats.multiple import _check_alpha

    if (scores is None) == (not datasets):
        raise ConfigError("give either a scores CSV (--scores) or one file per data set (--dataset NAME=PATH), not both"
                          if scores is not None else "no scores given: pass --scores FILE or --dataset NAME=PATH (repeated)")
    alpha = _check_alpha(alpha)
    if out is not None:
        from openmia.fileio import prepare_output_dir

        prepare_output_dir(out, inputs=[scores, *(datasets or {}).values()], overwrite=overwrite)
    if scores is not None:
        table = read_scores_csv(scores, metric=metric, label=label, drop_incomplete=drop_incomplete)
    else:
        table = read_dataset_files(datasets, metric=metric, label=label, drop_incomplete=drop_incomplete)
    res = rank_table(table, alpha=alpha, control=control, higher_is_better=higher_is_better, tie_correction=tie_correction)
    res["inputs"] = {"scores": None if scores is None else str(scores),
                     "datasets": {k: str(v) for k, v in (datasets or {}).items()}}
    res["files"] = write_rank_outputs(res, out) if out is not None else {}
    return res
