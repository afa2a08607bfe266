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
    from openmia.bench.store import RunStore
    from openmia.cli._common import format_table

    store = RunStore.default()
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
        print(format_table(["run", "dataset", "model", "seed", "epochs", "train s", "test AUC", "test ACC"],
                           [[r["run_dir"], r["dataset"], r["model"], r["seed"], r["epochs"], r["train_seconds"],
                             r["test_auc"], r["test_acc"]] for r in rows]))
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
