"""Deep belief network pre-training: greedy RBM (CD-1) vs greedy autoencoder vs none, same network,
same splits, same budget (docs/few-labels.md).

The zoo's ``dbn`` (stacked RBMs then a sigmoid MLP + linear head) is trained three ways:

- ``none``: supervised training from the random initialisation;
- ``rbm``: ``train.pretrain_epochs`` epochs of greedy layer-wise CD-1 per layer (Hinton et al. 2006), then fine-tuning;
- ``autoencoder``: the same epochs of greedy tied-weight autoencoders (Bengio et al. 2007), then fine-tuning.

Every run has the same ``train.max_minutes`` of CPU time (``train.budget_clock=cpu``); pre-training
time counts against it (the loop adds it to the budget clock), so the pre-trained arms fine-tune for
less. Per run: test AUC and accuracy with CIs (the evaluator's); per seed the paired differences to
``none`` on the same test cases (``openmia compare``: DeLong for AUC, Holm); over the seeds, each
arm's mean with a Student-t CI and its mean paired difference to ``none`` on the same seeds (t CI,
paired t-test) — a small gain that no single seed's test set resolves can still be consistent over
seeds. Runs in ``--runs`` are reused (or resumed) only when made with the same configuration.
Outputs: ``benchmarks/results/dbn_pretraining[_quick].{md,json}``.

    python benchmarks/dbn_pretraining.py --quick
    python benchmarks/dbn_pretraining.py --dataset retinamnist --root ../shared/data/medmnist --minutes 5 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _runs import t_interval, train_or_reuse
from openmia import api, fileio
from openmia.config import load_config

RESULTS = Path(__file__).resolve().parent / "results"
ARMS = {"none": [], "rbm": ["model.kwargs.pretrain_method=rbm"], "autoencoder": ["model.kwargs.pretrain_method=autoencoder"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = [f"data.root={args.root}"] if args.root else []
    hidden = "[" + ", ".join(str(h) for h in args.hidden) + "]"
    base = [f"data.dataset={args.dataset}", "model.name=dbn", f"model.kwargs.hidden={hidden}", *root,
            f"train.epochs={args.epochs}", "train.budget_clock=cpu", f"train.max_minutes={args.minutes}",
            f"optim.lr={args.lr}", f"eval.n_resamples={args.resamples}", "train.threads=1", *args.set]
    runs = Path(args.runs)
    out: dict[str, Any] = {"dataset": args.dataset, "hidden": list(args.hidden), "budget_cpu_minutes": args.minutes,
                           "pretrain_epochs": args.pretrain_epochs, "quick": args.quick, "seeds": list(args.seeds),
                           "runs": [], "paired": []}
    for seed in args.seeds:
        dirs = {}
        for arm, extra in ARMS.items():
            pre = [f"train.pretrain_epochs={0 if arm == 'none' else args.pretrain_epochs}"]
            rd = runs / f"{arm}-s{seed}"
            train_or_reuse(load_config(None, [*base, *pre, *extra, f"train.seed={seed}"]), rd)
            res = json.loads((rd / "result.json").read_text())
            first = json.loads((rd / "metrics.jsonl").read_text().splitlines()[0])
            pre_s = first["elapsed"] if first.get("phase") == "pretrain" else 0.0
            dirs[arm] = rd
            out["runs"].append({"arm": arm, "seed": seed, "run_dir": str(rd), "train_seconds": res["train_seconds"],
                                "pretrain_seconds": round(pre_s, 1), "epochs_done": res["epochs_done"],
                                "auc": res["test"]["auc"], "acc": res["test"]["acc"]})
            print(f"{arm:12s} seed {seed}: auc {res['test']['auc']['value']:.3f} acc {res['test']['acc']['value']:.3f}",
                  flush=True)
        cmp = api.compare("classification", dirs["none"] / "truth" / "test.csv",
                          {a: d / "predictions" / "test.csv" for a, d in dirs.items()}, runs / f"compare-s{seed}",
                          metrics=["auc", "acc"], n_resamples=args.resamples)
        out["paired"] += [{"seed": seed, **r} for r in cmp["comparisons"] if "none" in (r["model_a"], r["model_b"])]
    out["over_seeds"] = over_seeds(out)
    return out


def over_seeds(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Per metric and arm: the mean over seeds (Student-t CI) and the mean paired difference
    arm - none on the same seeds (t CI, paired t-test p; None for ``none`` itself)."""
    rows = []
    for metric in ("auc", "acc"):
        base = {r["seed"]: r[metric]["value"] for r in out["runs"] if r["arm"] == "none"}
        for arm in ARMS:
            vals = {r["seed"]: r[metric]["value"] for r in out["runs"] if r["arm"] == arm}
            diffs = [vals[s] - base[s] for s in vals if s in base]
            rows.append({"metric": metric, "arm": arm, "value": t_interval(list(vals.values())),
                         "difference_to_none": None if arm == "none" else t_interval(diffs)})
    return rows


def write(out: dict[str, Any], stem: Path) -> None:
    lines = [f"# DBN pre-training: {out['dataset']} (hidden {out['hidden']})", ""]
    if out["quick"]:
        lines += ["**Quick pilot** (`--quick`: synthetic data, tiny budget; the runs end at the 3-epoch cap, before the CPU budget): the pipeline runs end to end; the numbers "
                  "are not a benchmark result.", ""]
    lines += [f"Same network, splits and budget ({out['budget_cpu_minutes']} CPU-min per run, pre-training included; "
              f"{out['pretrain_epochs']} pre-training epochs per layer).", "",
              "| arm | seed | test AUC [95% CI] | test ACC [95% CI] | pre-training CPU-s | total CPU-s | epochs |",
              "|---|---|---|---|---|---|---|"]
    f = lambda m: f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"  # noqa: E731
    for r in out["runs"]:
        lines.append(f"| {r['arm']} | {r['seed']} | {f(r['auc'])} | {f(r['acc'])} | {r['pretrain_seconds']:.1f} | "
                     f"{r['train_seconds']:.1f} | {r['epochs_done']} |")
    lines += ["", "Paired differences on the same test cases (`openmia compare`, Holm within each metric):", "",
              "| seed | metric | comparison | difference [95% CI] | test | p (Holm) |", "|---|---|---|---|---|---|"]
    for r in out["paired"]:
        lines.append(f"| {r['seed']} | {r['metric']} | {r['model_a']} - {r['model_b']} | {r['diff']:.3f} "
                     f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['test']} | {r['p_holm']:.3g} |")
    ci = lambda t, fmt: "-" if t["ci_low"] is None else f"[{t['ci_low']:{fmt}}, {t['ci_high']:{fmt}}]"  # noqa: E731
    lines += ["", "Over the seeds (mean, Student-t 95% CI over seeds; difference = arm - none on the same seed, "
              "paired t-test p):", "", "| metric | arm | seeds | mean [95% CI] | difference to none | p |",
              "|---|---|---|---|---|---|"]
    for r in out.get("over_seeds", []):
        v, d = r["value"], r["difference_to_none"]
        diff = "-" if d is None else f"{d['mean']:+.4f} {ci(d, '+.4f')}"
        p = "-" if d is None or d["p"] is None else f"{d['p']:.3g}"
        lines.append(f"| {r['metric']} | {r['arm']} | {v['n']} | {v['mean']:.3f} {ci(v, '.3f')} | {diff} | {p} |")
    fileio.write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    fileio.write_json(stem.with_suffix(".json"), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="retinamnist")
    ap.add_argument("--root", help="data folder (e.g. ../shared/data/medmnist)")
    ap.add_argument("--hidden", nargs="+", type=int, default=[500, 250])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--minutes", type=float, default=5.0, help="CPU-minutes per run (pre-training included)")
    ap.add_argument("--epochs", type=int, default=300, help="epoch cap (the budget usually ends a run first)")
    ap.add_argument("--pretrain-epochs", type=int, default=10, help="pre-training epochs per layer")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override of every run")
    ap.add_argument("--runs", default=None, help="folder of the runs (default runs/dbn_pretraining/<dataset>)")
    ap.add_argument("--quick", action="store_true", help="pilot: synthetic/binary, hidden 64 32, 1 seed, a few epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.dataset, args.hidden, args.seeds = "synthetic/binary", [64, 32], [0]
        args.minutes, args.epochs, args.pretrain_epochs, args.resamples = 1.0, 3, 2, 500
    args.runs = args.runs or f"runs/dbn_pretraining/{args.dataset.replace('/', '-')}{'-quick' if args.quick else ''}"
    out = run(args)
    write(out, RESULTS / ("dbn_pretraining_quick" if args.quick else f"dbn_pretraining_{args.dataset.replace('/', '-')}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
