"""Label-efficiency curves: the test metric against the share of training labels, for training from
scratch, fine-tuning a self-supervised encoder, and semi-supervised learning (docs/few-labels.md).

Protocol (every arm of a point has the same labelled subset, seed and budget):

- fractions 1 / 5 / 10 / 25 / 100 % of the training split keep their labels
  (``data.labelled_fraction``: seeded by ``train.seed``, stratified);
- ``scratch``: supervised training on the labelled subset only;
- ``ssl``: the same, starting from an encoder pre-trained by ``openmia pretrain`` (SimCLR by
  default) on *all* training images without labels; one pre-training run serves every fraction and
  seed, its time is reported once, separately (the "total" column adds it);
- ``semi``: the labelled subset plus the unlabelled rest (FixMatch for classification, mean teacher
  for segmentation); not defined at 100 % (nothing is unlabelled);
- each run: ``train.max_minutes`` of CPU time (``train.budget_clock=cpu``), enough epochs to use it;
- per point: the test metric with its CI (the evaluator's), and the paired difference to scratch
  on the same seed and test cases (``openmia compare``: DeLong for AUC, bootstrap CI, Holm).

Outputs: ``benchmarks/results/label_efficiency[_quick].{md,json,png}`` (PNG: metric vs fraction,
log x, one line per arm, CI bars). ``--quick`` is a pilot on a synthetic set with a tiny budget
(minutes on a laptop; its runs end at the 4-epoch cap, not at the budget); its numbers say only
that the pipeline works. Runs in ``--runs`` are reused when finished and resumed when interrupted
(a rerun only adds what is missing), but only when made with the same configuration: a run of
another one is an error naming the keys that differ. ``--merge`` adds fractions or seeds to an
earlier results file whose runs folder was not kept: the (fraction, seed) points of the file are
kept once its settings match this call's, the others are trained, and every ssl point names its
pre-training run by a digest of the encoder's tensors (a second run is reported as such).

    python benchmarks/label_efficiency.py --quick
    python benchmarks/label_efficiency.py --dataset retinamnist --root ../shared/data/medmnist \\
        --minutes 5 --pretrain-minutes 30 --seeds 0 1 2
    python benchmarks/label_efficiency.py --dataset kvasir_seg --root ../shared/data --model unet_small ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _runs import (check_pretrain_owner, encoder_digest, kept_pretrains, portable, read_results, settings_differences,
                   t_interval, train_or_reuse)
from openmia import api, fileio
from openmia.config import load_config

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.01, 0.05, 0.1, 0.25, 1.0)
ARMS = ("scratch", "ssl", "semi")


def _headline(run_dir: Path, metric: str) -> dict[str, Any]:
    res = json.loads((run_dir / "result.json").read_text())
    return {"run_dir": str(run_dir), "train_seconds": res["train_seconds"], "epochs_done": res["epochs_done"],
            **res["test"][metric]}


def _pred(run_dir: Path, kind: str) -> Path:
    """The test predictions (or truth) of a run: ``<kind>/test.csv`` or the ``<kind>/test/`` folder."""
    f = run_dir / kind / "test.csv"
    return f if f.is_file() else run_dir / kind / "test"


def run(args: argparse.Namespace) -> dict[str, Any]:
    task = api.describe_dataset(args.dataset).task
    metric = "auc" if task == "classification" else "dice"
    semi = (["semi.method=fixmatch", f"semi.ratio={args.semi_ratio}", "semi.threshold=0.9"] if task == "classification"
            else ["semi.method=mean_teacher", "train.ema=0.99", "semi.rampup_epochs=5"])
    root = [f"data.root={args.root}"] if args.root else []
    base = [f"task={task}", f"data.dataset={args.dataset}", f"model.name={args.model}", *root,
            f"train.epochs={args.epochs}", "train.budget_clock=cpu", f"train.max_minutes={args.minutes}",
            f"eval.n_resamples={args.resamples}", "train.threads=1", *args.set, *args.train_set]
    runs = Path(args.runs)
    t0 = time.process_time()
    pre_dir = runs / f"pretrain-{args.method}"
    pre_ov = ["task=pretrain", f"pretrain.method={args.method}", f"data.dataset={args.dataset}", f"model.name={args.model}",
              *root, f"train.epochs={args.pretrain_epochs}", "train.budget_clock=cpu", f"train.max_minutes={args.pretrain_minutes}",
              f"eval.n_resamples={args.resamples}", "train.threads=1", *args.set, *args.pretrain_set]
    settings = {"train": portable(base), "semi": semi, "pretrain": portable(pre_ov)}
    kept, kept_pretrains = _kept_points(args, settings) if args.merge else ({}, {})
    pre_rec: dict[str, Any] = {}

    def pretrained() -> dict[str, Any]:
        """This invocation's pre-training run (trained or reused on first use) as a record."""
        if not pre_rec:
            check_pretrain_owner(pre_dir, sorted(runs.glob("ssl-*")))
            # a cached run (pre-training or training) is reused or resumed only when it was made with
            # the same configuration: a changed recipe is an error naming what changed, never a stale number
            train_or_reuse(load_config(None, pre_ov), pre_dir)
            pre = json.loads((pre_dir / "result.json").read_text())
            pre_rec.update({"id": encoder_digest(pre_dir), "method": args.method, "run_dir": str(pre_dir),
                            "cpu_seconds": pre["train_seconds"], "probe_test": pre.get("test", {}).get(metric)})
        return pre_rec

    out: dict[str, Any] = {"dataset": args.dataset, "task": task, "metric": metric, "model": args.model,
                           "budget_cpu_minutes": args.minutes, "quick": args.quick, "fractions": list(args.fractions),
                           "seeds": list(args.seeds), "seeds_at": {str(f): s for f, s in args.seeds_at.items()},
                           "settings": settings, "points": [], "paired": []}
    points = [(frac, seed) for frac in args.fractions for seed in args.seeds_at.get(frac, args.seeds)]
    keep = {key for key in points if key in kept and not any(runs.glob(f"*-f{key[0]}-s{key[1]}"))}
    if set(points) - keep:
        pretrained()  # first, so a stale or mismatched pre-training run stops the script before any training
    for frac, seed in points:
        if (frac, seed) in keep:
            out["points"] += kept[(frac, seed)]["points"]  # its runs are gone (an earlier session); its numbers are kept
            out["paired"] += kept[(frac, seed)]["paired"]
            print(f"fraction {frac:g} seed {seed}: kept from {args.merge}", flush=True)
            continue
        dirs = {}
        for arm in ARMS:
            if arm == "semi" and frac >= 1:
                continue  # nothing is unlabelled at 100 %
            ov = [*base, f"train.seed={seed}", f"data.labelled_fraction={frac}"]
            ov += [f"train.init_from={pre_dir}"] if arm == "ssl" else semi if arm == "semi" else []
            rd = runs / f"{arm}-f{frac}-s{seed}"
            train_or_reuse(load_config(None, ov), rd)
            dirs[arm] = rd
            point = {"arm": arm, "fraction": frac, "seed": seed, **_headline(rd, metric)}
            out["points"].append({**point, "pretrain_id": pre_rec["id"]} if arm == "ssl" else point)
            print(f"{arm:8s} {frac:5.2f} seed {seed}: {metric} {out['points'][-1]['value']:.3f}", flush=True)
        cmp = api.compare(task, _pred(dirs["scratch"], "truth"), {a: _pred(d, "predictions") for a, d in dirs.items()},
                          runs / f"compare-f{frac}-s{seed}", metrics=[metric], n_resamples=args.resamples)
        for row in cmp["comparisons"]:
            if row["model_a"] == "scratch":  # written as arm - scratch
                row = {**row, "model_a": row["model_b"], "model_b": "scratch", "estimate_a": row["estimate_b"],
                       "estimate_b": row["estimate_a"], "diff": -row["diff"], "ci_low": -row["ci_high"],
                       "ci_high": -row["ci_low"]}
            if row["model_b"] == "scratch":
                out["paired"].append({"fraction": frac, "seed": seed, **row})
    # every distinct pre-training run the ssl points used, in order of first use
    pool = {**kept_pretrains, **({pre_rec["id"]: pre_rec} if pre_rec else {})}
    used = [pool[i] for i in dict.fromkeys(p["pretrain_id"] for p in out["points"] if p["arm"] == "ssl")]
    out["pretrains"] = used
    out["pretrain"] = used[0] if used else None
    out["cpu_seconds_total"] = round(time.process_time() - t0, 1)
    out["over_seeds"] = over_seeds(out)
    return out


def _kept_points(args: argparse.Namespace, settings: dict[str, Any]) -> tuple[dict, dict]:
    """The points (with their paired rows) of an earlier results file by (fraction, seed), and the
    pre-training runs they used by id, after checking the file was made with these settings (an
    error listing the differences otherwise). A file written before the settings were recorded is
    checked on what it kept (data set, model, budget, pre-training method); it did not record
    the recipe's overrides, so the call must pass the same ones (docs/benchmarks.md lists them)."""
    old = read_results(args.merge)
    if "settings" in old:
        diffs = settings_differences(old["settings"], settings)
    else:
        now = {"dataset": args.dataset, "model": args.model, "budget_cpu_minutes": args.minutes, "method": args.method}
        was = {"dataset": old.get("dataset"), "model": old.get("model"), "budget_cpu_minutes": old.get("budget_cpu_minutes"),
               "method": (old.get("pretrain") or {}).get("method")}
        diffs = [f"{k}: kept {was[k]}, now {now[k]}" for k in now if now[k] != was[k]]
    if diffs:
        raise SystemExit(f"--merge {args.merge}: made with other settings; " + "; ".join(diffs))
    pool, legacy_id = kept_pretrains(old)
    kept: dict[tuple[float, int], dict[str, list]] = {}
    for p in old["points"]:
        row = {**p, "pretrain_id": p.get("pretrain_id", legacy_id)} if p["arm"] == "ssl" else p
        kept.setdefault((float(p["fraction"]), int(p["seed"])), {"points": [], "paired": []})["points"].append(row)
    for r in old["paired"]:
        key = (float(r["fraction"]), int(r["seed"]))
        kept[key]["paired"].append(_estimates_in_order(r, kept[key]["points"]))
    return kept, pool


def _estimates_in_order(row: dict[str, Any], points: list[dict[str, Any]]) -> dict[str, Any]:
    """A kept paired row with ``estimate_b`` = scratch's: files written before 2026-12-04 turned
    ``scratch - arm`` rows round (names, difference, CI) but left the two estimates in place."""
    scratch = next((p["value"] for p in points if p["arm"] == "scratch"), None)
    if row["model_b"] == "scratch" and scratch is not None and row.get("estimate_a") == scratch != row.get("estimate_b"):
        return {**row, "estimate_a": row["estimate_b"], "estimate_b": row["estimate_a"]}
    return row


METRIC_RANGE = (0.0, 1.0)  # AUC and Dice, the two headline metrics of this script
RANGE_TXT = f"[{METRIC_RANGE[0]:g}, {METRIC_RANGE[1]:g}]"


def outside_range(t: dict[str, Any]) -> bool:
    """Whether a t interval ``{"ci_low", "ci_high"}`` reaches past ``METRIC_RANGE``."""
    return t["ci_low"] is not None and (t["ci_low"] < METRIC_RANGE[0] or t["ci_high"] > METRIC_RANGE[1])


def over_seeds(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fraction and arm: the mean test metric over the seeds (Student-t CI over seeds) and the
    mean paired difference to scratch on the same seeds (t CI, paired t-test p) — the numbers the
    target is judged on (never the best seed)."""
    rows = []
    for frac in out["fractions"]:
        for arm in ARMS:
            vals = [p["value"] for p in out["points"] if p["fraction"] == frac and p["arm"] == arm]
            if not vals:
                continue
            diffs = [r["diff"] for r in out["paired"] if r["fraction"] == frac and r["model_a"] == arm]
            rows.append({"fraction": frac, "arm": arm, "metric": t_interval(vals),
                         "difference_to_scratch": t_interval(diffs) if diffs else None})
    return rows


def _served(points: list[dict[str, Any]], pretrain_id: str) -> str:
    """Which ssl points a pre-training run served, by fraction: 'at 0.1 (seeds 0, 1), 1 (seed 0)'."""
    by: dict[float, set[int]] = {}
    for p in points:
        if p["arm"] == "ssl" and p.get("pretrain_id") == pretrain_id:
            by.setdefault(float(p["fraction"]), set()).add(int(p["seed"]))
    return "at " + ", ".join(f"{f:g} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                             for f, s in sorted(by.items()))


def write(out: dict[str, Any], stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m, pts = out["metric"], out["points"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, arm in enumerate(ARMS):
        rows = [r for r in out["over_seeds"] if r["arm"] == arm]
        if not rows:
            continue
        x = np.array([r["fraction"] for r in rows]) * (1 + 0.03 * (i - 1))  # a little apart so the bars show
        y = np.array([r["metric"]["mean"] for r in rows])
        lo, hi = [], []
        for r in rows:  # CI over seeds; with one seed, that run's own CI over test cases
            one = next(p for p in pts if p["arm"] == arm and p["fraction"] == r["fraction"])
            lo.append(r["metric"]["ci_low"] if r["metric"]["ci_low"] is not None else one["ci_low"])
            hi.append(r["metric"]["ci_high"] if r["metric"]["ci_high"] is not None else one["ci_high"])
        # a t interval over 2-3 seeds can reach past the metric's range; drawn within it (the table keeps it whole)
        lo, hi = np.clip(lo, *METRIC_RANGE), np.clip(hi, *METRIC_RANGE)
        ax.errorbar(x, y, yerr=np.array([y - np.array(lo), np.array(hi) - y]), marker="o", capsize=3, label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("share of training labels")
    ax.set_ylabel(f"test {m}, mean over seeds (95% CI within {RANGE_TXT})")
    ax.set_title(f"{out['dataset']}: label efficiency{' (quick pilot)' if out['quick'] else ''}")
    ax.legend()
    fileio.save_figure(fig, stem.with_suffix(".png"))
    plt.close(fig)
    lines = [f"# Label efficiency: {out['dataset']} ({out['task']}, {out['model']})", ""]
    if out["quick"]:
        lines += ["**Quick pilot** (`--quick`: synthetic data, tiny budget; the runs end at the 4-epoch cap, before "
                  "the CPU budget): it shows the pipeline runs end to end; the numbers are not a benchmark result.", ""]
    pretrains = out.get("pretrains") or ([out["pretrain"]] if out.get("pretrain") else [])
    cost = {r.get("id"): float(r["cpu_seconds"]) for r in pretrains}
    if len(pretrains) > 1:
        runs_txt = "; ".join(f"run {k} {r['cpu_seconds']:.0f} CPU-s served the ssl points {_served(pts, r['id'])}"
                             for k, r in enumerate(pretrains, 1))
        pre_txt = (f"in {len(pretrains)} runs with the same settings (points were added in a later session, whose runs folder "
                   f"no longer held the first run): {runs_txt}; each ssl point's total adds the run it used")
    elif pretrains:
        pre_txt = (f"{pretrains[0]['cpu_seconds']:.0f} CPU-s, once for every fraction and seed (counted once in the total)")
    else:
        pre_txt = "not run (no ssl point)"
    lines += [f"Budget per run: {out['budget_cpu_minutes']} CPU-min (`train.budget_clock=cpu`). Self-supervised "
              f"pre-training ({pretrains[0]['method'] if pretrains else '-'}, all training images, no labels): {pre_txt}. "
              f"This invocation of the script (finished runs are reused): {out['cpu_seconds_total']:.0f} CPU-s.", "",
              f"| fraction | seed | arm | test {m} [95% CI] | epochs | train CPU-s | total CPU-s |", "|---|---|---|---|---|---|---|"]
    for p in pts:
        total = p["train_seconds"] + (cost.get(p.get("pretrain_id"), cost.get(None, 0.0)) if p["arm"] == "ssl" else 0)
        lines.append(f"| {p['fraction']:g} | {p['seed']} | {p['arm']} | {p['value']:.3f} [{p['ci_low']:.3f}, "
                     f"{p['ci_high']:.3f}] | {p['epochs_done']} | {p['train_seconds']:.1f} | {total:.1f} |")
    if out["paired"]:
        lines += ["", "Paired differences on the same test cases (`openmia compare`; Holm over the arms of a point):", "",
                  "| fraction | seed | comparison | difference [95% CI] | test | p (Holm) |", "|---|---|---|---|---|---|"]
        for r in out["paired"]:
            lines.append(f"| {r['fraction']:g} | {r['seed']} | {r['model_a']} - {r['model_b']} | {r['diff']:.3f} "
                         f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['test']} | {r['p_holm']:.3g} |")
    if any(r["metric"]["n"] > 1 for r in out["over_seeds"]):
        def ci(t: dict[str, Any] | None, sign: str = "+") -> str:
            if t is None or t["ci_low"] is None:
                return "-"
            return f"{t['mean']:{sign}.3f} [{t['ci_low']:{sign}.3f}, {t['ci_high']:{sign}.3f}]"

        lines += ["", "Over the seeds of each point (mean, Student-t 95% CI over seeds; difference = arm - scratch on "
                      "the same seed and labelled subset, paired t-test p):", "",
                  f"| fraction | arm | seeds | mean test {m} | difference to scratch | p |", "|---|---|---|---|---|---|"]
        for r in out["over_seeds"]:
            d = r["difference_to_scratch"]
            p_txt = f"{d['p']:.3g}" if d is not None and d["p"] is not None else "-"
            lines.append(f"| {r['fraction']:g} | {r['arm']} | {r['metric']['n']} | {ci(r['metric'], '')} | {ci(d)} | {p_txt} |")
        if any(outside_range(r["metric"]) for r in out["over_seeds"]):
            lines += ["", f"A Student-t interval over 2-3 seeds can reach past {m}'s range {RANGE_TXT} (the normal "
                          "approximation of a bounded quantity from few values); the table keeps it whole, the plot "
                          f"draws it within {RANGE_TXT}."]
    fileio.write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    fileio.write_json(stem.with_suffix(".json"), out)


def _seeds_at(items: list[str], ap: argparse.ArgumentParser) -> dict[float, list[int]]:
    """``["1.0=0,1,2"]`` -> ``{1.0: [0, 1, 2]}``; a malformed item is a usage error naming it."""
    out = {}
    for item in items:
        try:
            frac, seeds = item.split("=", 1)
            out[float(frac)] = [int(x) for x in seeds.split(",")]
        except ValueError:
            ap.error(f"--seeds-at {item!r}: expected FRACTION=SEED,SEED,... (e.g. 1.0=0,1,2)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="retinamnist")
    ap.add_argument("--root", help="data folder (e.g. ../shared/data/medmnist)")
    ap.add_argument("--model", default="cnn_small")
    ap.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seeds-at", action="append", default=[], metavar="FRACTION=SEED,SEED",
                    help="other seeds for one fraction (e.g. 1.0=0,1,2: the costly full-label point on fewer seeds)")
    ap.add_argument("--minutes", type=float, default=5.0, help="CPU-minutes per training run")
    ap.add_argument("--epochs", type=int, default=200, help="epoch cap (the budget usually ends a run first)")
    ap.add_argument("--method", default="simclr", choices=("simclr", "byol", "mim"))
    ap.add_argument("--pretrain-minutes", type=float, default=30.0)
    ap.add_argument("--pretrain-epochs", type=int, default=200)
    ap.add_argument("--semi-ratio", type=int, default=3, help="FixMatch: unlabelled images per labelled one")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override of every run")
    ap.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra override of the training runs only (not pre-training): a recipe's optimiser, EMA ...")
    ap.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE", help="extra pre-training override")
    ap.add_argument("--runs", default=None, help="folder of the runs (default runs/label_efficiency/<dataset>)")
    ap.add_argument("--quick", action="store_true", help="pilot: synthetic/binary, 3 fractions, 1 seed, a few epochs")
    ap.add_argument("--merge", nargs="?", const="", default=None, metavar="RESULTS_JSON",
                    help="keep the (fraction, seed) points of an earlier results file (default: this set's own .json) "
                         "whose runs are no longer in --runs, after checking they were made with the same settings")
    args = ap.parse_args(argv)
    args.seeds_at = _seeds_at(args.seeds_at, ap)
    if args.quick:
        args.dataset, args.fractions, args.seeds = "synthetic/binary", [0.05, 0.25, 1.0], [0]
        args.minutes, args.epochs, args.pretrain_minutes, args.pretrain_epochs, args.resamples = 1.0, 4, 1.5, 4, 500
        args.set = ["model.kwargs.width=8", "data.batch_size=64", *args.set]
    missing = sorted(set(args.seeds_at) - set(args.fractions))
    if missing:
        ap.error(f"--seeds-at names fraction(s) {', '.join(f'{f:g}' for f in missing)} that --fractions "
                 f"({' '.join(f'{f:g}' for f in args.fractions)}) does not train; add them to --fractions")
    args.runs = args.runs or f"runs/label_efficiency/{args.dataset.replace('/', '-')}{'-quick' if args.quick else ''}"
    stem = RESULTS / ("label_efficiency_quick" if args.quick else f"label_efficiency_{args.dataset.replace('/', '-')}")
    if args.merge is not None:
        args.merge = Path(args.merge) if args.merge else stem.with_suffix(".json")
    out = run(args)
    write(out, stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
