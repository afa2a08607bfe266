"""openmia runs list|show|rebuild: the run index (SQLite), one run's summary, and re-indexing."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list and show recorded runs")
    rs = p.add_subparsers(dest="runs_command", metavar="{list,show,rebuild}", required=True)
    lp = rs.add_parser("list", help="one line per recorded run")
    lp.add_argument("--dataset")
    lp.add_argument("--model")
    sp = rs.add_parser("show", help="config, provenance and test metrics of one run")
    sp.add_argument("run", help="run directory (or the end of its path, as listed)")
    bp = rs.add_parser("rebuild", help="re-create the index from the run directories (after a corrupt or lost index)",
                       description="Re-index every run directory (a folder holding result.json) under DIR. A corrupt "
                                   "index is moved aside to runs.sqlite.corrupt; rows of deleted runs are dropped.")
    bp.add_argument("dirs", nargs="*", metavar="DIR",
                    help="folders to search (default: the folders of the runs already indexed, and ./runs)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import format_table

    store = api.run_index()
    if args.runs_command == "rebuild":
        roots = args.dirs or store.default_roots()
        n, skipped = store.rebuild(roots)
        print(f"indexed {n} run(s) from {', '.join(map(str, roots))} into {store.path}")
        if skipped:
            print(f"skipped {len(skipped)} folder(s):")
            for msg in skipped:
                print(f"  {msg}")
        return 0
    if args.runs_command == "list":
        rows = store.list(dataset=args.dataset, model=args.model)
        if not rows:
            print(f"no runs recorded in {store.path}")
            return 0
        headline = {t.name: t.headline_metrics for t in api.list_tasks()}  # once, not per row
        print(format_table(["run", "task", "dataset", "model", "seed", "epochs", "train s", "test (headline metrics)"],
                           [[_shown(r["run_dir"]), r["task"], r["dataset"], r["model"], r["seed"], r["epochs"], r["train_seconds"],
                             _headline(r, headline)] for r in rows]))
        return 0
    from pathlib import Path

    from openmia.engine.run_dir import check_run_dir

    rd = Path(args.run) if Path(args.run).is_dir() else Path(store.get(args.run)["run_dir"])
    check_run_dir(rd)
    print(f"run: {rd}")
    print((rd / "config.yaml").read_text().rstrip())
    if (rd / "provenance.json").is_file():
        prov = json.loads((rd / "provenance.json").read_text())
        print(f"provenance: git {prov.get('git_commit')}, torch {prov['versions'].get('torch')}, "
              f"{prov.get('parameters')} parameters, peak RSS {prov.get('peak_rss_bytes', 0) / 2**20:.0f} MiB")
    rep = rd / "eval" / "test" / "report.txt"
    print(rep.read_text().rstrip() if rep.is_file() else "(run not complete: no test report yet)")
    return 0


def _shown(run_dir: str) -> str:
    """A run directory relative to the working folder when it lies below it (as the README shows)."""
    import os

    rel = os.path.relpath(run_dir)
    return rel if not rel.startswith("..") else run_dir


def _headline(row: dict, headline: dict[str, tuple[str, ...]]) -> str:
    """The task's headline test metrics of an index row (``Task.headline_metrics``), e.g. ``dice 0.812, hd95 4.1``."""
    import json

    test = (json.loads(row.get("result_json") or "{}").get("test") or {})
    vals = [(m, (test.get(m) or {}).get("value")) for m in headline.get(row.get("task"), ())]
    return ", ".join(f"{m} {v:.4g}" for m, v in vals if v is not None) or "-"
