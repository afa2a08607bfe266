"""openmia benchmark: run a suite of cells (data sets x models x seeds x budgets), show its status,
and report its leaderboard (docs/scale-out.md)."""

from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="the suite YAML file (e.g. benchmarks/suites/quick.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every cell (part of the cells' ids; give the same to run, status and report)")
    p.add_argument("--deterministic", action="store_true",
                   help="train.deterministic=true in every cell (bit-exact CPU training; part of the cells' ids)")
    p.add_argument("--data", dest="data_root", help="folder that the suite's data set roots are relative to (its data_root)")
    p.add_argument("--out-dir", help="where the cells' run directories and suite.sqlite go (default: the suite's out_dir)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (human text goes to stderr)")


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="run benchmark suites on a process pool or Ray; status; leaderboard report",
                       description="Benchmark suites: every cell (data set x model x seed x budget) is an ordinary openmia "
                                   "run identified by a hash of its resolved config, so running a suite again reuses "
                                   "finished cells, resumes interrupted ones and trains only what changed.")
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = s.add_parser("run", help="run the suite's unfinished cells")
    _common(r)
    r.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: a process pool; ray: Ray tasks (needs openmia[ray])")
    r.add_argument("--parallel", type=int, default=1, help="cells at once (default 1)")
    r.add_argument("--threads", type=int, help="torch threads per cell (default: usable CPUs // --parallel)")
    r.add_argument("--address", help="Ray cluster address (HOST:PORT or ray://HOST:PORT; default: start a local Ray)")
    r.add_argument("--gpus-per-cell", type=float, default=0.0,
                   help="Ray: GPUs reserved per cell, per training process with --nproc (default 0)")
    r.add_argument("--nproc", type=int, help="data-parallel training processes per cell (DDP, as `openmia train --nproc`; "
                                             "default: the suite's nproc keys, else 1); not part of the cell ids")
    r.add_argument("--connect-timeout", type=float, default=10.0, help="Ray: seconds to wait for --address to answer")
    r.add_argument("--tracking", choices=["mlflow"], help="log every finished cell to MLflow")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (file:/path or http://host:port)")
    st = s.add_parser("status", help="done / running / failed / pending cells with a progress bar")
    _common(st)
    rep = s.add_parser("report", help="leaderboard: report.html, leaderboard.csv, leaderboard.json")
    _common(rep)
    rep.add_argument("--out", required=True, help="output folder")
    rep.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    rep.add_argument("--allow-missing", action="store_true", help="report the finished cells even if some are not")


def _bar(counts: dict[str, int], width: int = 30) -> str:
    total = sum(counts.values()) or 1
    done = round(width * counts.get("done", 0) / total)
    failed = round(width * counts.get("failed", 0) / total)
    running = round(width * counts.get("running", 0) / total)
    return "[" + "#" * done + "!" * failed + ">" * running + "." * max(0, width - done - failed - running) + "]"


def _mean_rank(block: dict, model: str) -> str:
    """The model's aggregate-then-rank rank averaged over the block's ranked seeds ("" if unranked)."""
    r = block.get("rankings", {}).get("aggregate-then-rank", {}).get(model, {}).get("rank")
    return "" if r is None else f"{r:.2f}"


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import format_table, human_echo, print_json

    echo = human_echo(args)
    common = {"deterministic": args.deterministic, "overrides": args.overrides, "data_root": args.data_root,
              "out_dir": args.out_dir}
    if args.action == "run":
        res = api.benchmark_run(args.suite, executor=args.executor, parallel=args.parallel, address=args.address,
                                threads=args.threads, gpus_per_cell=args.gpus_per_cell, tracking=args.tracking,
                                tracking_uri=args.tracking_uri, connect_timeout=args.connect_timeout, nproc=args.nproc,
                                echo=echo, **common)
        c = res["counts"]
        echo(f"{_bar(c)} {c['done']}/{sum(c.values())} done, {c['failed']} failed, {c['pending']} pending "
             f"({res['wall_seconds']:.1f} s on {res['executor']})")
        if args.json:
            print_json({k: v for k, v in res.items()})
        return 1 if c["failed"] else 0
    if args.action == "status":
        cells = api.benchmark_status(args.suite, **common)
        counts = {s: sum(1 for x in cells if x["status"] == s) for s in ("done", "running", "failed", "pending")}
        if args.json:
            print_json({"counts": counts, "cells": cells})
            return 0
        rows = [[x["cell_id"], x["dataset"], x["model"], x["seed"], "" if x["budget"] is None else f"{x['budget']:g}",
                 x["status"], "" if x["wall_seconds"] is None else f"{x['wall_seconds']:.0f}",
                 (x["note"] or "")[:60]] for x in cells]
        echo(format_table(["cell", "dataset", "model", "seed", "budget", "status", "wall s", "note"], rows))
        echo(f"{_bar(counts)} {counts['done']}/{len(cells)} done, {counts['running']} running, {counts['failed']} failed, "
             f"{counts['pending']} pending")
        for x in cells:
            if x["status"] == "failed":
                echo(f"failed: {x['cell_id']} log: {x['log']}")
        return 0
    board = api.benchmark_report(args.suite, args.out, overwrite=args.overwrite, allow_missing=args.allow_missing, **common)
    if args.json:
        print_json({"files": {k: str(v) for k, v in board["files"].items()}, "blocks": board["blocks"],
                    "across": board["across"]})
        return 0
    for b in board["blocks"]:
        rows = [[r["position"], r["model"], f"{r['value']:.3f}",
                 "" if r["ci_low"] is None else f"{r['ci_low']:.3f}-{r['ci_high']:.3f}",
                 "" if r["seed_sd"] is None else f"{r['seed_sd']:.3f}",
                 "best" if r["model"] == b["best"] else f"{r['seeds_worse_than_best']}/{r['seeds_tested']}",
                 _mean_rank(b, r["model"])]
                for r in b["rows"]]
        echo(f"\n{b['dataset']} · {b['metric']}")
        echo(format_table(["#", "model", "value", "95% CI", "seed SD", "worse than best (seeds)",
                           f"mean rank ({len(b.get('rank_seeds') or [])} seeds)"], rows))
    echo(f"\nwrote {board['files']['html']}, {board['files']['csv']}, {board['files']['json']}")
    return 0
