"""openmia evaluate: score prediction files from any tool against truth (DESIGN §4)."""

from __future__ import annotations

import argparse

TASKS = ("classification", "segmentation", "detection", "counting", "clustering", "inpainting")


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score prediction files from any tool against truth",
                       description="Score predictions with the evaluation standard: per-case table + summary with 95%% CIs. "
                                   "Formats: docs/evaluation.md.")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--pred", required=True, help="prediction CSV: case_id,<class probabilities> (binary: case_id,score)")
    p.add_argument("--truth", required=True, help="truth CSV: case_id,label[,patient_id] (multi-label: one 0/1 column per label)")
    p.add_argument("--out", required=True, help="output folder for per_case.csv and summary.json")
    p.add_argument("--task-type", choices=["binary", "multi-class", "ordinal", "multi-label"],
                   help="default: inferred (ordinal must be given)")
    p.add_argument("--patients", help="CSV case_id,patient_id: bootstrap over patients")
    p.add_argument("--allow-missing", action="store_true", help="score cases missing from --pred as worst case (reported)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--threshold", type=float, help="decision threshold for binary/multi-label (default 0.5)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from openmia import api

    res = api.evaluate(args.task, args.pred, args.truth, args.out, task_type=args.task_type, patients_csv=args.patients,
                       allow_missing=args.allow_missing, n_resamples=args.resamples, seed=args.seed, threshold=args.threshold)
    s = res.summary
    print(f"{s['n_cases']} cases, task type {s['task_type']}"
          + (f", {s['n_patients']} patients (bootstrap over patients)" if s.get("n_patients") else ""))
    if s["missing_cases"]:
        print(f"WARNING: {len(s['missing_cases'])} case(s) missing from the predictions were scored as worst case")
    print(res.table())
    out = Path(args.out)
    print(f"wrote {out / 'per_case.csv'} and {out / 'summary.json'}")
    return 0
