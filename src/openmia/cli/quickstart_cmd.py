"""openmia quickstart: train + evaluate on the synthetic default, no download."""

from __future__ import annotations

import argparse

QUICK_METRICS = ["auc", "acc", "balanced_acc", "f1", "sensitivity", "specificity", "ece", "brier"]


def add_parser(sub) -> None:
    p = sub.add_parser("quickstart", help="train + evaluate a small CNN on synthetic data (no download, ~1 min)",
                       description="Train a small CNN on the synthetic binary-classification default, evaluate it on the "
                                   "test split and print every metric with its 95% confidence interval.")
    p.add_argument("--out-dir", default="runs", help="where the run directory is created (default: runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5")


def run(args: argparse.Namespace) -> int:
    import time

    from openmia import api

    t0 = time.perf_counter()
    print("openmia quickstart: training cnn_small on synthetic/binary (2000 train / 400 val / 800 test, no download)")
    res = api.quickstart(args.out_dir, progress=not args.quiet, extra=tuple(args.overrides))
    from openmia.cli._common import summary_table

    print()
    print(f"Test split ({res.test_summary['n_cases']} cases), best epoch {res.best_epoch}/{res.epochs_done} by validation AUC:")
    print(summary_table(res.test_summary, metrics=QUICK_METRICS))
    print()
    print(f"run directory: {res.run_dir}")
    print(f"  report: {res.run_dir / 'eval' / 'test' / 'report.html'}  (summary.json, per_case.csv beside it)")
    print(f"done in {time.perf_counter() - t0:.0f} s (training {res.train_seconds:.0f} s)")
    return 0
