"""Self-supervised pre-training for segmentation (issue 24's first benchmark): does an encoder
pre-trained on the training images without their masks beat the same recipe trained from scratch?

Protocol, per data set (Kvasir-SEG, BUSI; docs/few-labels.md):

- **pre-training**: ``openmia pretrain --method simclr|byol|mim`` on the training split's images
  only (no masks; validation and test images are never read), ``--pretrain-minutes`` CPU-minutes
  (default 60, ``train.budget_clock=cpu``), with the recipe's own backbone (``model.name`` and
  ``model.kwargs`` of the recipe, at its ``data.size``), so ``encoder.pt`` loads into the recipe
  by name. One pre-training run serves every fine-tuning seed; its CPU time is counted once.
- **fine-tuning**: the chosen segmentation recipe with ``train.init_from=<pre-training run>`` in its
  first stage, seeds 0-4. Kvasir-SEG: the chosen two-stage recipe (``kvasir_seg_chosen_stage1.yaml``
  20 CPU-min at 128 px, then ``..._stage2.yaml`` 10 CPU-min at 192 px from stage 1's weights),
  scored with multi-scale flip TTA like its published five-seed mean ("image_dice_multiscale" in
  ``benchmarks/results/segmentation.md``); BUSI: ``busi.yaml`` (20 CPU-min, one stage);
- **scratch**: the same recipe, same seeds, no ``init_from`` in the first stage;
- per seed: test Dice with the evaluator's CI for both arms and the paired difference
  pretrained - scratch over the same test cases (``openmia compare``: paired bootstrap); where some
  test images have no lesion (BUSI's normal images), the same over the images with a lesion, the
  set the published Dice is computed on;
- over seeds: the mean test Dice of each arm with a t interval over seeds, and the seed-level mean
  difference (pretrained - scratch on the same seed) with a t interval and a paired t-test;
- CPU time: scratch = the sum of its runs' training CPU time; pretrained = the sum of its
  fine-tuning runs plus the pre-training once (the "total" column).

Finished runs in ``--runs`` are reused when their saved configuration is the one this script would
train (else it stops and lists the differences); an interrupted one is resumed from its checkpoint.
``--merge`` adds seeds to an earlier results file whose runs folder was not kept (five seeds of the
Kvasir recipe are 6 CPU-hours, more than one working session): the file's seeds are kept after
their settings are checked against this call's, the new ones are trained, and each seed row names
the pre-training run it was fine-tuned from (a digest of the encoder's tensors), so a second
pre-training run is reported as such and counted in the total.
Outputs: ``benchmarks/results/ssl_segmentation[_quick].{md,json}``. ``--quick`` is a pilot on
``synthetic/seg2d`` with tiny budgets and 2 seeds (1-2 minutes): its numbers say only that the
pipeline works.

    python benchmarks/ssl_segmentation.py --quick
    python benchmarks/ssl_segmentation.py --datasets kvasir_seg busi --root ../shared/data --method simclr
    python benchmarks/ssl_segmentation.py --datasets kvasir_seg --root ../shared/data --pretrain-only  # step 1 alone
    python benchmarks/ssl_segmentation.py --datasets kvasir_seg --root ../shared/data --seeds 0 1 2 3 4 --merge
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from _runs import (cached_config, check_pretrain_owner, config_differences, encoder_digest, kept_pretrains, portable,
                   read_results, settings_differences, t_interval, train_or_reuse)
from openmia import api, fileio
from openmia.config import load_config, load_run_config

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# data set -> (recipe files trained one after the other, stage k from stage k-1's weights; overrides
# of the final re-scoring, none = the last stage is scored as trained)
RECIPES: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "kvasir_seg": (("kvasir_seg_chosen_stage1", "kvasir_seg_chosen_stage2"), ["segmentation.tta_scales=[0.75, 1.0, 1.25, 1.5]"]),
    "busi": (("busi",), []),
}
TARGET_DICE = 0.84  # issue 24: Kvasir-SEG five-seed mean test Dice
QUICK = ["data.dataset=synthetic/seg2d", "data.size=64", "train.epochs=2", "train.max_minutes=0.5",
         "model.kwargs.channels=[8,16,32,64,128]", "data.batch_size=32", "train.precision=fp32"]


def _result(scored: Path, stages: list[Path]) -> dict[str, Any]:
    """The test Dice of the scored run and the training CPU time and epochs of its stages."""
    d = json.loads((scored / "result.json").read_text())["test"]["dice"]
    trained = [json.loads((rd / "result.json").read_text()) for rd in stages]
    return {"run_dir": str(scored), "stages": [str(rd) for rd in stages], "dice": d["value"], "ci_low": d["ci_low"],
            "ci_high": d["ci_high"], "train_seconds": sum(r["train_seconds"] for r in trained),
            "epochs_done": [r["epochs_done"] for r in trained]}


def _stage_budgets(files: tuple[Path, ...], minutes: float | None) -> list[list[str]]:
    """Per stage, the budget override of ``--minutes`` (the recipe's total, shared out as the
    recipe's stages share it), or nothing (each stage keeps its own)."""
    if minutes is None:
        return [[] for _ in files]
    own = [float(load_config(f).train.max_minutes) for f in files]
    return [[f"train.max_minutes={minutes * m / sum(own):g}"] for m in own]


def _train_arm(files: tuple[Path, ...], rescore: list[str], common: list[str], init: list[str], run_dir: Path,
               budgets: list[list[str]]) -> tuple[Path, list[Path], bool]:
    """Train the recipe's stages (the first with ``init``, stage k from stage k-1's run; each with
    its ``budgets`` overrides) and re-score the last one when the recipe says so; returns the scored
    run, the stage runs and whether everything was reused."""
    stages: list[Path] = []
    reused = True
    for k, (f, budget) in enumerate(zip(files, budgets)):
        rd = run_dir if len(files) == 1 and not rescore else run_dir.with_name(f"{run_dir.name}-stage{k + 1}")
        prev = init if k == 0 else [f"train.init_from={stages[-1]}"]
        reused &= train_or_reuse(load_config(f, [*common, *budget, *prev]), rd)
        stages.append(rd)
    if not rescore:
        return stages[-1], stages, reused
    done = (run_dir / "result.json").is_file()
    if not reused or not done or config_differences(cached_config(run_dir),
                                                    load_run_config(stages[-1] / "config.yaml", rescore).to_dict()):
        if run_dir.exists():
            shutil.rmtree(run_dir)  # scored from an earlier stage run, unfinished, or with other settings
        api.reevaluate(stages[-1], run_dir, rescore, index=False)
        reused = False
    return run_dir, stages, reused


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Pre-train once, then fine-tune and train from scratch on every seed; the per-seed and
    seed-level comparisons of one data set (None with ``--pretrain-only``)."""
    names, rescore = RECIPES["kvasir_seg" if args.quick else name]
    files = tuple(HERE / "configs" / f"{n}.yaml" for n in names)
    root = [f"data.root={Path(args.root) / name}"] if args.root else []
    common = [*root, "train.threads=1", f"eval.n_resamples={args.resamples}", *(QUICK if args.quick else []), *args.set]
    runs = Path(args.runs) / name.replace("/", "-")
    cfg = load_config(files[0], common)
    # the pre-training backbone = the recipe's model, built at its first stage's size on the same data
    backbone = [f"data.dataset={cfg.data.dataset}", f"data.size={cfg.data.size}", f"model.name={cfg.model.name}",
                f"model.kwargs={json.dumps(dict(cfg.model.kwargs))}", f"data.batch_size={cfg.data.batch_size}"]
    pre_ov = ["task=pretrain", f"pretrain.method={args.method}", *root, *backbone, "train.threads=1",
              f"eval.n_resamples={args.resamples}", "train.budget_clock=cpu", f"train.max_minutes={args.pretrain_minutes}",
              f"train.epochs={args.pretrain_epochs}", *args.pretrain_set]
    pre_dir = runs / f"pretrain-{args.method}"
    pre_rec: dict[str, Any] = {}

    def pretrained() -> dict[str, Any]:
        """This invocation's pre-training run (trained or reused on first use) as a record."""
        if not pre_rec:
            check_pretrain_owner(pre_dir, sorted(runs.glob(f"{args.method}-s*")))
            print(f"{name}: pre-training {args.method} -> {pre_dir}", flush=True)
            train_or_reuse(load_config(None, pre_ov), pre_dir)
            pre_rec.update(_pretrain_record(pre_dir, args))
        return pre_rec

    if args.pretrain_only:
        pretrained()
        return None
    budgets = _stage_budgets(files, args.minutes)
    minutes = sum(float(load_config(f, [*common, *b]).train.max_minutes) for f, b in zip(files, budgets))
    settings = {"fine_tune": portable(common), "pretrain": portable(pre_ov)}
    kept, kept_pretrains = _kept_rows(args.merge, name, settings, minutes, args) if args.merge else ({}, {})

    def trained_here(seed: int) -> bool:
        return any((runs / f"{arm}-s{seed}{stage}").exists() for arm in ("scratch", args.method) for stage in ("", "-stage1"))

    seeds = []
    keep = {seed for seed in args.seeds if seed in kept and not trained_here(seed)}
    if set(args.seeds) - keep and args.arm != "scratch":
        pretrained()  # first, so a stale or mismatched pre-training run stops the script before any training
    for seed in args.seeds:
        if seed in keep:
            seeds.append(kept[seed])  # its runs are gone (an earlier session); its numbers are in the results file
            print(f"{name} seed {seed}: kept from {args.merge} (test Dice scratch {kept[seed]['scratch']['dice']:.3f}, "
                  f"pretrained {kept[seed]['pretrained']['dice']:.3f})", flush=True)
            continue
        row: dict[str, Any] = {"seed": seed, "pretrain_id": pre_rec.get("id")}
        for arm, init in (("scratch", []), ("pretrained", [f"train.init_from={pre_dir}"])):
            if args.arm and arm != args.arm:
                continue
            scored, stages, reused = _train_arm(files, rescore, [*common, f"train.seed={seed}"], init,
                                                runs / f"{'scratch' if arm == 'scratch' else args.method}-s{seed}", budgets)
            row[arm] = _result(scored, stages)
            print(f"{name} seed {seed} {arm}: test Dice {row[arm]['dice']:.3f}{' (reused)' if reused else ''}", flush=True)
        if args.arm:
            continue  # one arm of two parallel processes: the call without --arm compares and writes
        row["paired"] = _paired(row, runs / f"compare-s{seed}", args.resamples)
        lesion = _lesion_images(row, args.resamples)
        if lesion is not None:
            row["lesion_images"] = lesion
        seeds.append(row)
    if args.arm:
        return None  # one arm's runs only: nothing to compare or summarise
    # every distinct pre-training run the seeds used, in order of first use; each counted once
    pool = {**kept_pretrains, **({pre_rec["id"]: pre_rec} if pre_rec else {})}
    pretrains = [pool[i] for i in dict.fromkeys(r["pretrain_id"] for r in seeds)]
    pre_s = sum(float(r["cpu_seconds"]) for r in pretrains)
    scr = [r["scratch"]["dice"] for r in seeds]
    ptd = [r["pretrained"]["dice"] for r in seeds]
    out = {"dataset": name, "recipe": " + ".join(str(f.relative_to(HERE.parent)) for f in files), "rescore": rescore,
           "model": cfg.model.name, "model_kwargs": dict(cfg.model.kwargs), "size": cfg.data.size,
           "budget_cpu_minutes": minutes, "settings": settings,
           "pretrain": pretrains[0], "pretrains": pretrains,
           "seeds": seeds,
           "scratch": {**t_interval(scr), "cpu_seconds_total": sum(r["scratch"]["train_seconds"] for r in seeds)},
           "pretrained": {**t_interval(ptd), "cpu_seconds_finetune": sum(r["pretrained"]["train_seconds"] for r in seeds)},
           "difference": t_interval([a - b for a, b in zip(ptd, scr)])}
    out["pretrained"]["cpu_seconds_total"] = out["pretrained"]["cpu_seconds_finetune"] + pre_s  # each pre-training once
    les = [r["lesion_images"] for r in seeds if "lesion_images" in r]
    if les:  # the seeds whose runs were at hand (a kept row of an older file may lack the view)
        out["lesion_images"] = {"seeds": [r["seed"] for r in seeds if "lesion_images" in r], "n_cases": les[0]["n_cases"],
                                **{arm: t_interval([x[arm]["dice"] for x in les]) for arm in ("scratch", "pretrained")},
                                "difference": t_interval([x["pretrained"]["dice"] - x["scratch"]["dice"] for x in les])}
    return out


def _lesion_images(row: dict[str, Any], resamples: int) -> dict[str, Any] | None:
    """A seed's Dice over the test images whose truth has a lesion — BUSI's published Dice (0.769 in
    ``segmentation.md``) is over those; its headline here also holds the normal images, whose empty
    masks count only a false positive (Dice 0) and otherwise drop out (both empty). Each arm's mean
    with its BCa CI, and the paired difference (BCa bootstrap of the mean difference, Wilcoxon p).
    None when every test image has a lesion (Kvasir-SEG: the headline is this already)."""
    import csv

    import numpy as np

    from openmia.evaluation.aggregate import weighted_nanmean
    from openmia.evaluation.label_maps import index_folder, read_label_map
    from openmia.stats.bootstrap import bootstrap_ci, paired_bootstrap_diff
    from openmia.stats.paired import wilcoxon_signed_rank

    truth = index_folder(Path(row["scratch"]["run_dir"]) / "truth" / "test", "truth")
    cases = sorted(c for c, path in truth.items() if np.any(read_label_map(path, c).array))
    if len(cases) == len(truth):
        return None
    dice = {}
    for arm in ("scratch", "pretrained"):
        with open(Path(row[arm]["run_dir"]) / "eval" / "test" / "per_case.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["metric"] == "dice"]
        labels = {r["label"] for r in rows}
        label = "all" if "all" in labels else labels.pop()  # one foreground label: its own rows are "all"
        per = {r["case_id"]: float(r["value"]) for r in rows if r["label"] == label}
        dice[arm] = np.array([per[c] for c in cases])
    out: dict[str, Any] = {"n_cases": len(cases), "n_test": len(truth)}
    for arm, v in dice.items():
        ci = bootstrap_ci(weighted_nanmean(v), len(v), n_resamples=resamples, seed=0)
        out[arm] = {"dice": ci.value, "ci_low": ci.ci_low, "ci_high": ci.ci_high}
    d = paired_bootstrap_diff(weighted_nanmean(dice["pretrained"]), weighted_nanmean(dice["scratch"]), len(cases),
                              n_resamples=resamples, seed=0)
    out["paired"] = {"diff": d.value, "ci_low": d.ci_low, "ci_high": d.ci_high,
                     "p": wilcoxon_signed_rank(dice["pretrained"], dice["scratch"])["p_value"], "test": "wilcoxon_signed_rank"}
    return out


def _paired(row: dict[str, Any], out_dir: Path, resamples: int) -> dict[str, Any]:
    """``openmia compare`` of one seed's two scored runs on the same test cases: the paired
    bootstrap difference of Dice, written as pretrained - scratch."""
    scored_runs = {arm: Path(row[arm]["run_dir"]) for arm in ("pretrained", "scratch")}
    cmp = api.compare("segmentation", scored_runs["scratch"] / "truth" / "test",
                      {arm: rd / "predictions" / "test" for arm, rd in scored_runs.items()},
                      out_dir, metrics=["dice"], n_resamples=resamples, seed=0)
    rows = [r for r in cmp["comparisons"] if r.get("metric", "dice") == "dice"]
    c = next((r for r in rows if r.get("label") == "all"), rows[0])
    sign = 1 if c["model_a"] == "pretrained" else -1
    lo, hi = sign * c["ci_low"], sign * c["ci_high"]
    return {"diff": sign * c["diff"], "ci_low": min(lo, hi), "ci_high": max(lo, hi), "p": c.get("p_value"),
            "test": c.get("test"), "label": c.get("label")}


def _pretrain_record(pre_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A pre-training run as the results file keeps it; ``id`` is the digest of the encoder's
    tensors, so a later session that pre-trains again is told apart from this run."""
    pre = json.loads((pre_dir / "result.json").read_text())
    cases_file = pre_dir / "pretrain_cases.json"
    cases = json.loads(cases_file.read_text()) if cases_file.is_file() else None
    return {"id": encoder_digest(pre_dir), "method": args.method, "run_dir": str(pre_dir), "cpu_seconds": float(pre["train_seconds"]),
            "epochs_done": pre.get("epochs_done"), "budget_cpu_minutes": args.pretrain_minutes,
            "train_images": cases.get("n") if isinstance(cases, dict) else None}


def _kept_rows(path: Path, name: str, settings: dict[str, Any], minutes: float,
               args: argparse.Namespace) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The seed rows of data set ``name`` in an earlier results file (by seed) and the pre-training
    runs they used (by id), after checking they were made with this invocation's settings (an
    error listing the differences otherwise). Files written before the settings were recorded are
    checked on what they kept: budget, method, pre-training budget, no extra overrides."""
    old = read_results(path)
    d = next((d for d in old.get("datasets") or [] if d and d.get("dataset") == name), None)
    if d is None:
        return {}, {}
    if "settings" in d:
        diffs = settings_differences(d["settings"], settings)
    else:
        now = {"budget_cpu_minutes": minutes, "method": args.method, "pretrain_budget": args.pretrain_minutes}
        was = {"budget_cpu_minutes": d["budget_cpu_minutes"], "method": d["pretrain"]["method"],
               "pretrain_budget": d["pretrain"]["budget_cpu_minutes"]}
        diffs = [f"{k}: kept {was[k]}, now {now[k]}" for k in now if now[k] != was[k]]
        if args.set or args.pretrain_set:
            diffs.append(f"extra overrides now {[*args.set, *args.pretrain_set]}; the kept file predates recorded settings")
    if diffs:
        raise SystemExit(f"--merge {path}: {name} was run with other settings; " + "; ".join(diffs))
    pool, legacy_id = kept_pretrains(d)
    rows = {int(r["seed"]): {**r, "pretrain_id": r.get("pretrain_id", legacy_id)} for r in d["seeds"]}
    return rows, pool


def _ci(v: float | None, lo: float | None, hi: float | None, f: str = ".3f") -> str:
    return f"{v:{f}}" + ("" if lo is None else f" [{lo:{f}}, {hi:{f}}]")


def _pretrain_text(d: dict[str, Any]) -> str:
    """The pre-training sentence of a data set's section: one run serving every seed, or (seeds
    added in a later session, whose runs folder did not keep the first run) each run and its seeds."""
    runs = d.get("pretrains") or [d["pretrain"]]
    pre = runs[0]
    what = (f"Pre-training: {pre['method']} on the {pre['train_images'] or 'all'} training images without masks "
            f"(budget {pre['budget_cpu_minutes']:g} CPU-min), the same backbone as the recipe")
    if len(runs) == 1:
        return (f"{what}, {pre['cpu_seconds']:.0f} CPU-s ({pre['epochs_done']} epochs); one pre-training run serves "
                "every seed and is counted once in the total.")
    parts = []
    for k, r in enumerate(runs, 1):
        used = [str(row["seed"]) for row in d["seeds"] if row.get("pretrain_id") == r.get("id")]
        parts.append(f"run {k} ({r['cpu_seconds']:.0f} CPU-s, {r['epochs_done']} epochs) served seed{'s' if len(used) > 1 else ''} "
                     f"{', '.join(used)}")
    return (f"{what}, in {len(runs)} runs with the same settings (seeds were added in a later session, whose runs "
            f"folder no longer held the first run): {'; '.join(parts)}; each run is counted once in the total.")


def _lesion_lines(d: dict[str, Any]) -> list[str]:
    """The lesion-image view of a data set's section (none when every test image has a lesion)."""
    les = d.get("lesion_images")
    if not les:
        return []
    rows = [r for r in d["seeds"] if "lesion_images" in r]
    lines = ["", f"Test images with a lesion only ({les['n_cases']} of {rows[0]['lesion_images']['n_test']}; the "
             "published BUSI Dice is over these):", "",
             "| seed | scratch Dice [95% CI] | pretrained Dice [95% CI] | paired diff pretrained - scratch [95% CI] | p |",
             "|---|---|---|---|---|"]
    for r in rows:
        a, b, c = r["lesion_images"]["scratch"], r["lesion_images"]["pretrained"], r["lesion_images"]["paired"]
        lines.append(f"| {r['seed']} | {_ci(a['dice'], a['ci_low'], a['ci_high'])} | {_ci(b['dice'], b['ci_low'], b['ci_high'])} "
                     f"| {_ci(c['diff'], c['ci_low'], c['ci_high'], '+.3f')} | {c['p']:.3g} |")
    s, p, diff = les["scratch"], les["pretrained"], les["difference"]
    lines += ["", f"Over {diff['n']} seeds (95% t CI): scratch {_ci(s['mean'], s['ci_low'], s['ci_high'])}, pretrained "
              f"{_ci(p['mean'], p['ci_low'], p['ci_high'])}, difference {_ci(diff['mean'], diff['ci_low'], diff['ci_high'], '+.3f')}"
              + ("" if diff["p"] is None else f", paired t-test p = {diff['p']:.3g}") + "."]
    return lines


def write(out: dict[str, Any], stem: Path) -> None:
    """The tables (``.md``) and every number (``.json``)."""
    lines = ["# Self-supervised pre-training for segmentation", ""]
    if out["quick"]:
        lines += ["**Quick pilot** (`--quick`: synthetic/seg2d, tiny budgets, 2 seeds): it shows the pipeline runs end "
                  "to end; the numbers are not a benchmark result.", ""]
    for d in out["datasets"]:
        pre, s, p, diff = d["pretrain"], d["scratch"], d["pretrained"], d["difference"]
        pretrains = d.get("pretrains") or [pre]
        several = len(pretrains) > 1
        run_no = {r.get("id"): k + 1 for k, r in enumerate(pretrains)}
        lines += [f"## {d['dataset']}", "",
                  f"Recipe `{d['recipe']}` ({d['model']} {d['model_kwargs']} at {d['size']} px, "
                  f"{d['budget_cpu_minutes']:g} CPU-min per run"
                  + (f", scored with `{' '.join(d['rescore'])}`" if d.get("rescore") else "") + "). "
                  + _pretrain_text(d), "",
                  "| seed | scratch Dice [95% CI] | pretrained Dice [95% CI] | paired diff pretrained - scratch [95% CI] "
                  "| p | CPU-s scratch | CPU-s fine-tune |" + (" pre-training run |" if several else ""),
                  "|---|---|---|---|---|---|---|" + ("---|" if several else "")]
        for r in d["seeds"]:
            a, b, c = r["scratch"], r["pretrained"], r["paired"]
            pv = "" if c["p"] is None else f"{c['p']:.3g}"
            lines.append(f"| {r['seed']} | {_ci(a['dice'], a['ci_low'], a['ci_high'])} | "
                         f"{_ci(b['dice'], b['ci_low'], b['ci_high'])} | {_ci(c['diff'], c['ci_low'], c['ci_high'], '+.3f')} "
                         f"| {pv} | {a['train_seconds']:.0f} | {b['train_seconds']:.0f} |"
                         + (f" {run_no[r.get('pretrain_id')]} |" if several else ""))
        n = diff["n"]
        lines += ["", f"| arm | mean test Dice over {n} seeds [95% t CI] | total CPU-s |", "|---|---|---|",
                  f"| scratch | {_ci(s['mean'], s['ci_low'], s['ci_high'])} | {s['cpu_seconds_total']:.0f} |",
                  f"| pretrained ({pre['method']}) | {_ci(p['mean'], p['ci_low'], p['ci_high'])} | "
                  f"{p['cpu_seconds_total']:.0f} (fine-tuning {p['cpu_seconds_finetune']:.0f} + pre-training "
                  f"{sum(r['cpu_seconds'] for r in pretrains):.0f}) |", "",
                  f"Seed-level difference pretrained - scratch (same seeds): {_ci(diff['mean'], diff['ci_low'], diff['ci_high'], '+.3f')}"
                  + ("" if diff["p"] is None else f", paired t-test p = {diff['p']:.3g}") + "."]
        lines += _lesion_lines(d)
        if d["dataset"] == "kvasir_seg":
            # judged on five seeds only: a mean over fewer is reported but not called met or missed
            met = ("met" if p["mean"] >= TARGET_DICE else "missed") if p["n"] >= 5 else f"not judged yet, {p['n']} of 5 seeds"
            lines.append(f"Target (five-seed mean test Dice >= {TARGET_DICE}): {met} ({p['mean']:.3f}).")
        lines.append("")
    fileio.write_text(stem.with_suffix(".md"), "\n".join(lines))
    fileio.write_json(stem.with_suffix(".json"), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["kvasir_seg", "busi"], choices=sorted(RECIPES))
    ap.add_argument("--root", help="folder holding one data folder per set (e.g. ../shared/data: kvasir_seg/, busi/)")
    ap.add_argument("--method", default="simclr", choices=("simclr", "byol", "mim"))
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default 0-4 (--quick: 0 1)")
    ap.add_argument("--minutes", type=float, default=None, help="CPU-minutes per fine-tuning/scratch run, its stages together (default: the recipe's)")
    ap.add_argument("--pretrain-minutes", type=float, default=60.0)
    ap.add_argument("--pretrain-epochs", type=int, default=100000, help="epoch cap (the budget ends the run)")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override of every fine-tuning run")
    ap.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE", help="extra pre-training override")
    ap.add_argument("--runs", default=None, help="folder of the runs (default runs/ssl_segmentation[_quick])")
    ap.add_argument("--out", default=None, help="output stem (default benchmarks/results/ssl_segmentation[_quick])")
    ap.add_argument("--quick", action="store_true", help="pilot: synthetic/seg2d, tiny budgets, seeds 0 1")
    ap.add_argument("--merge", nargs="?", const="", default=None, metavar="RESULTS_JSON",
                    help="keep the seeds of an earlier results file (default: the output's own .json) whose runs are no "
                         "longer in --runs, after checking they were made with the same settings; its other data sets "
                         "are kept as they are")
    ap.add_argument("--arm", choices=("scratch", "pretrained"),
                    help="train only this arm's runs of the seeds and write nothing: two such processes share the "
                         "cores, then a call without --arm reuses both and writes the tables")
    ap.add_argument("--pretrain-only", action="store_true",
                    help="only the pre-training runs (the long first step; a later call reuses them and writes the tables)")
    args = ap.parse_args(argv)
    if args.quick:
        args.datasets, args.root = ["synthetic/seg2d"], None
        args.pretrain_minutes, args.pretrain_epochs, args.resamples = 0.5, 2, 200
    args.seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    args.runs = args.runs or f"runs/ssl_segmentation{'_quick' if args.quick else ''}"
    stem = Path(args.out) if args.out else RESULTS / f"ssl_segmentation{'_quick' if args.quick else ''}"
    if args.merge == "":
        args.merge = stem.with_suffix(".json")
    args.merge = Path(args.merge) if args.merge else None
    datasets = [run_dataset(name, args) for name in args.datasets]
    if args.pretrain_only or args.arm:
        return 0
    if args.merge:  # the earlier file's other data sets stay as they were
        others = [d for d in json.loads(args.merge.read_text())["datasets"] if d and d["dataset"] not in args.datasets]
        datasets = [*others, *datasets]
    out = {"quick": args.quick, "method": args.method, "seeds": sorted({r["seed"] for d in datasets for r in d["seeds"]}),
           "datasets": datasets}
    write(out, stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
