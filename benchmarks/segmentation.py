"""Segmentation benchmark on real data: BUSI (breast ultrasound), Kvasir-SEG (polyps) and MSD
Task04 Hippocampus (3D MRI, fold 0; ``--folds`` for the others and their pooled cross-validation
result), with MONAI's standard 3D recipe run side by side on the same hippocampus fold, same padded
volumes and the same CPU-time budget.

Usage::

    python benchmarks/segmentation.py --data ../shared/data --parallel 2
    python benchmarks/segmentation.py --data ../shared/data --datasets busi --minutes busi=10
    python benchmarks/segmentation.py --data ../shared/data --datasets hippocampus --folds 0 1 2 3 4 --parallel 2

Every run trains with one torch thread against a CPU-time budget (process time, so parallel runs
get fair budgets), selects its model on the validation split, and is scored once on the test
split by openmia's evaluator (Dice / HD95 / NSD per class with BCa bootstrap CIs). Runs already
complete in ``--runs-dir`` are reused and interrupted ones resume. Writes
``benchmarks/results/segmentation.{md,json}``.

The published recipes are ``benchmarks/configs/{busi,kvasir_seg*,hippocampus}.yaml`` (``openmia
train --config`` runs them too); the variants below are overrides on top of them.

A thin wrapper over the suite ``benchmarks/suites/segmentation.yaml`` for what is an ordinary run:
openmia's main configuration on each set (the suite's model ``openmia``), the hippocampus folds other
than 0 (the suite's hippocampus entry with ``data.fold`` set), the ``VARIANTS`` (the suite's
``openmia`` model with keys set, added as models of the derived suite) and their seed replicates are
cells, trained by the suite runner into the suite's run directories and ``suite.sqlite``
(``--runs-dir`` is the suite's ``out_dir``, default OPENMIA_HOME/suites/segmentation): a cell
finished by ``openmia benchmark run benchmarks/suites/segmentation.yaml --data DATA --threads 1``
is reused here and the other way round. Three parts keep their own code path, under
``<runs-dir>/script/``, because they are not ordinary cells: the ``STAGED`` configurations (stage k
starts from stage k-1's run directory, ``train.init_from``, a path that would be part of a cell's
config), the ``RESCORED`` ones (no training: ``api.reevaluate`` of a finished run) and MONAI's
hippocampus recipe (not an openmia run). The script's own results on top: BUSI's case subgroups,
seed means, the pooled cross-validation, and the paired tests.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

from _monai_hippocampus import DESCRIPTION as MONAI_DESCRIPTION
from _runs import (SUITES, cell_recipe, derived_suite, describe, merge_suites, override_mapping, parse_budgets, read_suite,
                   recipe, recipe_value, run_cells, run_pool, train_or_reuse)
from _segmentation_records import (REFERENCE_DICE, pooled_records, records_for, seed_mean_records,  # noqa: F401
                                   subgroup_records, write_results)

ROOT = Path(__file__).resolve().parents[1]


# openmia's configuration per set: the recipe files (the reasons for their settings are in each)
RECIPES = {"busi": "busi", "kvasir_seg": "kvasir_seg", "hippocampus": "hippocampus"}
OPENMIA: dict[str, list[str]] = {ds: recipe(name) for ds, name in RECIPES.items()}
# the published budgets (CPU-minutes per run): the recipes' train.max_minutes
MINUTES = {ds: float(recipe_value(name, "train.max_minutes")) for ds, name in RECIPES.items()}
SUITE = SUITES / "segmentation.yaml"
MAIN = "openmia"  # the suite's model for openmia's main configuration


# further openmia configurations run beside the main one: name -> overrides added to OPENMIA[set]
# (each costs a full training budget; see git history for the hippocampus EMA/TTA ablation)
VARIANTS: dict[str, dict[str, list[str]]] = {
    # Kvasir-SEG: the earlier recipe (rotation ±15°, scaling 0.85-1.15), and heavy at 160 x 160
    "kvasir_seg": {"affine": ["data.augment=affine"], "heavy_160": ["data.size=160"]},
    # hippocampus: the same recipe in fp32 (91 epochs in the budget)
    "hippocampus": {"fp32": ["train.precision=fp32"]},
}


def _kvasir_staged(*extra: str, first: float = 2 / 3,
                   later: tuple[tuple[float, int, float], ...] = ((1 / 3, 192, 0.001),)) -> list[tuple[float, list[str]]]:
    """Kvasir-SEG in stages with ``extra`` overrides in each: a ``first`` share of the budget at
    128 x 128, then one stage per (share, size, lr) in ``later`` (default: 20 CPU-min at 128, then 10
    at 192 x 192 with lr 1e-3); every stage is scored like openmia_filled."""
    fill = ["segmentation.postprocess=none", "segmentation.fill_empty=0.2"]
    return [(first, [*extra, *fill]),
            *((share, [*extra, f"data.size={size}", f"optim.lr={lr}", *fill]) for share, size, lr in later)]


def _recipe_stages(*names: str) -> list[tuple[float, list[str]]]:
    """A staged configuration whose stages are recipe files: each stage's share of the budget is its
    ``train.max_minutes`` over theirs in total (stage k's ``train.init_from`` is set when it runs)."""
    minutes = [float(recipe_value(n, "train.max_minutes")) for n in names]
    return [(m / sum(minutes), recipe(n)) for m, n in zip(minutes, names)]


# openmia configurations trained in stages (progressive resizing) beside the main one: name ->
# [(share of the set's budget, overrides added to OPENMIA[set])]. Stage k starts from stage k-1's
# kept weights (train.init_from); the budget and the reported train_seconds / epochs are sums
# over the stages, and the last stage is the model scored. Earlier stages live in sibling run
# directories named "<run>-stage<k>".
STAGED: dict[str, dict[str, list[tuple[float, list[str]]]]] = {
    "kvasir_seg": {
        # the main recipe in two stages. The 20 + 10 split was chosen on validation Dice with TTA + fill
        # (2026-12-01 pilots, same 30-minute total): 0.859 vs 0.851 for 15 + 15 at 192, 0.841 for
        # 20 + 10 at 256, 0.840 single-stage
        "openmia_staged": _kvasir_staged(),
        # the chosen recipe (per-image Dice in the loss, so small polyps count as much as large ones)
        "staged_image_dice": _recipe_stages("kvasir_seg_chosen_stage1", "kvasir_seg_chosen_stage2"),
        # the same, wider (1.5x and 1.7x the CPU time per epoch at 128 x 128)
        "staged_image_dice_w24": _kvasir_staged("model.kwargs={channels: [24, 48, 96, 192, 320]}", "segmentation.batch_dice=false"),
        "staged_image_dice_w32": _kvasir_staged("model.kwargs={channels: [32, 64, 128, 256, 320]}", "segmentation.batch_dice=false"),
        # per-image Dice with the second stage at 224 x 224, and in three stages (15 min at 128, 10 at
        # 192, 5 at 256 with lr 5e-4)
        "staged_image_dice_224": _kvasir_staged("segmentation.batch_dice=false", later=((1 / 3, 224, 0.001),)),
        "staged3_image_dice": _kvasir_staged("segmentation.batch_dice=false", first=0.5,
                                             later=((1 / 3, 192, 0.001), (1 / 6, 256, 0.0005))),
        # a sixth level (4 x 4 bottom at 128 x 128) for a wider view of large polyps
        "staged_deep": _kvasir_staged("model.kwargs={channels: [16, 32, 64, 128, 256, 320]}"),
        # per-image Dice with more regularisation (validation curves plateau at about 0.835 after 60 of
        # 85 first-stage epochs while the training loss keeps falling): AdamW weight decay 0.05 instead
        # of 1e-4, or batches of 8 (twice the updates, noisier gradients). Neither was adopted: validation
        # Dice (TTA + fill) 0.826 and 0.832 against 0.857 for staged_image_dice (2026-12-02)
        "staged_image_dice_wd": _kvasir_staged("segmentation.batch_dice=false", "optim.weight_decay=0.05"),
        "staged_image_dice_b8": _kvasir_staged("segmentation.batch_dice=false", "data.batch_size=8"),
        # per-image Dice with deep supervision (1x1-conv heads on the 3 coarser decoder levels)
        "staged_image_dice_ds": _kvasir_staged("segmentation.batch_dice=false",
                                               "model.kwargs={channels: [16, 32, 64, 128, 256], deep_supervision: true}"),
        # the chosen recipe refit on all 880 training images (the authors' protocol; validation images
        # join training, nothing is selected: each stage keeps its last EMA weights)
        "staged_image_dice_refit": _recipe_stages("kvasir_seg_refit_stage1", "kvasir_seg_refit_stage2"),
    },
}


# how the paired tests read each set's label maps (labels compared; ids -> names; pixel spacing)
PAIRED: dict[str, dict[str, Any]] = {
    "busi": {"labels": ["lesion"], "label_names": {1: "lesion"}, "spacing": (1.0, 1.0)},
    "kvasir_seg": {"labels": ["polyp"], "label_names": {1: "polyp"}, "spacing": (1.0, 1.0)},
    "hippocampus": {"labels": ["anterior", "posterior", "all"], "label_names": {1: "anterior", 2: "posterior"},
                    "spacing": (1.0, 1.0, 1.0)},
}


# trained models scored again with other evaluation settings (no new training; same weights, budget
# and history): name -> (source configuration, overrides of eval.* and segmentation's inference options)
RESCORED: dict[str, dict[str, tuple[str, list[str]]]] = {
    "hippocampus": {"openmia_largest": ("openmia", ["segmentation.postprocess=largest"])},
    # Kvasir-SEG: every image shows a polyp, so an empty prediction is a certain miss; chosen on the
    # validation split (2026-12-01, the main run's model): no largest-component rule and fill_empty
    # 0.2 gave validation Dice 0.840, vs 0.838 (0.3), 0.832 (0.5), 0.829 (neither), 0.822 (largest)
    "kvasir_seg": {"openmia_filled": ("openmia", ["segmentation.postprocess=none", "segmentation.fill_empty=0.2"]),
                   # multi-scale flip TTA on the staged model, scales chosen on validation Dice (2026-12-01:
                   # 0.865 for 0.75-1.5, 0.859 for 1 + 1.25, 0.857 for 0.75-1.25, 0.850 for 1 alone)
                   "staged_multiscale": ("openmia_staged", ["segmentation.tta_scales=[0.75, 1.0, 1.25, 1.5]"]),
                   # the same scales on the per-image-Dice staged model (validation 0.871 vs 0.857 without)
                   "image_dice_multiscale": ("staged_image_dice", ["segmentation.tta_scales=[0.75, 1.0, 1.25, 1.5]"]),
                   "refit_multiscale": ("staged_image_dice_refit", ["segmentation.tta_scales=[0.75, 1.0, 1.25, 1.5]"])},
}


# seed replicates: configurations trained again (fold 0) with other seeds (train.seed and the run
# directory's s<seed>) to measure run-to-run spread; a re-scored configuration whose source is
# replicated is re-scored on every seed too. Each seed is reported, and so is their mean
REPLICATES: dict[str, dict[str, tuple[int, ...]]] = {
    # Kvasir-SEG: the chosen configuration's source (2026-12-02)
    "kvasir_seg": {"staged_image_dice": (1, 2, 3, 4), "staged_image_dice_refit": (1, 2, 3, 4)},
}


def _replicated(dataset: str, model: str) -> tuple[int, ...]:
    """The extra seeds of a configuration: its own replicates, or for a re-scored one its source's."""
    reps = REPLICATES.get(dataset, {})
    source = RESCORED.get(dataset, {}).get(model, (model,))[0]
    return reps.get(model) or reps.get(source) or ()


def _size(dataset: str, model: str) -> str | None:
    """The ``data.size`` a configuration trains and is scored at (the last override wins)."""
    sizes = [o.split("=", 1)[1] for o in _overrides(dataset, model) if o.startswith("data.size=")]
    return sizes[-1] if sizes else None


def _overrides(dataset: str, model: str) -> list[str]:
    if model == "openmia":
        return OPENMIA[dataset]
    if model == "monai_unet":
        return []
    if model in STAGED.get(dataset, {}):
        return OPENMIA[dataset] + STAGED[dataset][model][-1][1]
    if model in RESCORED.get(dataset, {}):
        source, extra = RESCORED[dataset][model]
        return [*_overrides(dataset, source), *extra]
    return OPENMIA[dataset] + VARIANTS[dataset][model]


def _run_dir(runs_dir: Path, dataset: str, model: str, minutes: float, seed: int, fold: int = 0) -> Path:
    """Where a run lives; fold 0 has no suffix (the issue's reported fold; older caches stay valid)."""
    return runs_dir / f"{dataset}-{model}-{minutes:g}cpumin-s{seed}{f'-fold{fold}' if fold else ''}"


def _trained(dataset: str, fold: int, monai: bool) -> list[str]:
    """The configurations trained on a set and fold: all of them on fold 0, else the main one (and MONAI's)."""
    ours = ["openmia", *VARIANTS.get(dataset, {}), *STAGED.get(dataset, {})] if fold == 0 else ["openmia"]
    return ours + (["monai_unet"] if dataset == "hippocampus" and monai else [])


def _pool_folders(fold_dirs: dict[int, Path], dest: Path) -> Path:
    """A run-like folder whose test predictions and truth are every fold's (case ids are unique
    across folds), for paired tests over the pooled cases; rebuilt on every call."""
    import shutil

    shutil.rmtree(dest, ignore_errors=True)
    for kind in ("predictions", "truth"):
        (dest / kind / "test").mkdir(parents=True)
        for d in fold_dirs.values():
            for f in sorted((d / kind / "test").iterdir()):
                shutil.copy2(f, dest / kind / "test" / f.name)
    return dest


def _rescore(job: dict[str, Any], where: Callable[..., Path]) -> dict[str, Any]:
    """Score a finished source run again with other evaluation settings; reuse a complete result."""
    import shutil

    from openmia import api

    rd = Path(job["run_dir"])
    if (rd / "result.json").is_file():
        return {**job, "reused": True}
    shutil.rmtree(rd, ignore_errors=True)  # an interrupted re-scoring starts over (it is cheap)
    source, extra = RESCORED[job["dataset"]][job["model"]]
    api.reevaluate(where(job["dataset"], source, job["seed"], job["fold"]), rd, extra)
    return {**job, "reused": False}


def stage_configs(job: dict[str, Any]) -> list[tuple[Any, str]]:
    """The RunConfig and run directory of each training stage of a job (one, unless the
    configuration is in STAGED); stage k + 1 starts from stage k's kept weights."""
    from openmia.config import load_config

    out, source = [], None
    for share, overrides, run_dir in _stages(job):
        init = [f"train.init_from={source}"] if source else []
        out.append((load_config(None, [*overrides, *init, f"train.max_minutes={job['minutes'] * share:g}",
                                       "train.budget_clock=cpu", "train.epochs=100000", "train.threads=1",
                                       f"train.seed={job['seed']}", f"eval.n_resamples={job['resamples']}",
                                       f"data.root={job['root']}", "task=segmentation"]), run_dir))
        source = run_dir
    return out


def _run_openmia(job: dict[str, Any]) -> dict[str, Any]:
    """Train one openmia configuration in a worker process (each stage of a staged one, in turn);
    reuse complete runs."""
    reused = True
    for cfg, run_dir in stage_configs(job):
        reused &= train_or_reuse(cfg, run_dir)
    return {**job, "reused": reused}


def _staged_description(dataset: str, model: str, minutes: float) -> str:
    """A staged configuration for the results table: the main overrides, then each stage's own."""
    out = describe(OPENMIA[dataset])
    for k, (share, extra) in enumerate(STAGED[dataset][model], start=1):
        start = f", from stage {k - 1}'s weights" if k > 1 else ""
        own = describe([o for o in extra if o not in OPENMIA[dataset]])  # a recipe file's stage: what differs
        out += f" ; stage {k} ({share * minutes:g} CPU-min{start}): {own or 'as is'}"
    return out


def _stages(job: dict[str, Any]) -> list[tuple[float, list[str], str]]:
    """(share of the budget, overrides, run directory) of each training stage of a job; one stage
    with the whole budget unless the configuration is in STAGED."""
    stages = STAGED.get(job["dataset"], {}).get(job["model"])
    if not stages:
        return [(1.0, job["overrides"], job["run_dir"])]
    n = len(stages)
    return [(share, [*OPENMIA[job["dataset"]], *extra], job["run_dir"] if k == n else f"{job['run_dir']}-stage{k}")
            for k, (share, extra) in enumerate(stages, start=1)]


def _earlier_stages(job: dict[str, Any], where: Callable[..., Path]) -> list[Path]:
    """Run directories of the stages before the scored one: a staged configuration's own, or for a
    re-scored one its source's (its weights, training time and epochs are the source's)."""
    ds, model = job["dataset"], job["model"]
    if model in RESCORED.get(ds, {}):
        source = RESCORED[ds][model][0]
        job = {**job, "model": source, "run_dir": str(where(ds, source, job["seed"], job["fold"]))}
    return [Path(d) for _, _, d in _stages(job)[:-1]]


def _is_cell(dataset: str, model: str) -> bool:
    """Whether a configuration is trained as a suite cell (the main one and the VARIANTS)."""
    return model == MAIN or model in VARIANTS.get(dataset, {})


def restricted_suite(args: argparse.Namespace, budgets: dict[str, float],
                     folds: dict[str, list[int]]) -> tuple[Any, dict[tuple[str, int], str]]:
    """The suite file with the command line's sets, folds, seed and budgets, the VARIANTS as models
    of fold 0, and their seed replicates; returns it with ``(set, fold) -> data set label``. A cell
    left as the file declares it keeps its id and run directory."""
    raw = read_suite(args.suite)
    entries = {e["name"]: e for e in ({"name": d} if isinstance(d, str) else dict(d) for d in raw.get("datasets") or [])}
    models = dict(raw["models"])
    main = dict(models[MAIN] or {})
    datasets, labels = [], {}
    for ds in args.datasets:
        if ds not in entries:
            raise SystemExit(f"{args.suite}: no data set {ds!r} (has {', '.join(entries)})")
        e = entries[ds]
        if budgets[ds] != MINUTES[ds]:  # the published budget stays the recipes' own (same cells)
            e = {**e, "set": {**(e.get("set") or {}), "train.max_minutes": budgets[ds]}}
        for name, extra in VARIANTS.get(ds, {}).items():
            models[name] = {**main, "set": {**(main.get("set") or {}), **override_mapping(extra)}}
        for k in folds[ds]:
            ek = e if k == 0 else {**e, "label": f"{ds}-fold{k}", "set": {**(e.get("set") or {}), "data.fold": k}}
            ek = {**ek, "models": [MAIN, *VARIANTS.get(ds, {})] if k == 0 else [MAIN]}
            labels[(ds, k)] = str(ek.get("label") or ek["name"])
            datasets.append(ek)
    raw.update(datasets=datasets, models=models, seeds=[args.seed])
    kw = {"out_dir": args.runs_dir, "data_root": args.data, "overrides": [f"eval.n_resamples={args.resamples}"]}
    suites = [derived_suite(args.suite, raw, **kw)]
    for e in datasets:  # seed replicates (fold 0): each replicated cell model with its extra seeds
        ds = e["name"]
        for m in e["models"] if labels.get((ds, 0)) == str(e.get("label") or ds) else []:
            if extra := [s for s in _replicated(ds, m) if s != args.seed]:
                suites.append(derived_suite(args.suite, {**raw, "datasets": [{**e, "models": [m]}], "seeds": extra}, **kw))
    return merge_suites(*suites), labels


def _run(job: dict[str, Any]) -> dict[str, Any]:
    if job["model"] == "monai_unet":
        from _monai_hippocampus import run_monai

        return run_monai(job)
    return _run_openmia(job)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding busi/, kvasir_seg/ and hippocampus/")
    ap.add_argument("--datasets", nargs="+", default=list(MINUTES), choices=list(MINUTES))
    ap.add_argument("--minutes", nargs="*", default=[], metavar="SET=MIN", help="override a budget, e.g. busi=10")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suite", type=Path, default=SUITE, help="the suite whose cells are trained (model openmia)")
    ap.add_argument("--runs-dir", default=None, help="the suite's out_dir: run directories and suite.sqlite "
                                                     "(default OPENMIA_HOME/suites/segmentation, as `openmia benchmark run`)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--no-monai", action="store_true", help="skip MONAI's hippocampus recipe")
    ap.add_argument("--folds", type=int, nargs="+", default=[0], choices=range(5), metavar="K",
                    help="hippocampus test folds (0-4; default 0). Folds other than 0 train openmia's main "
                         "configuration and MONAI's recipe only; with several folds their test cases are also "
                         "pooled into one cross-validation result")
    args = ap.parse_args(argv)
    if args.folds != [0] and "hippocampus" not in args.datasets:
        ap.error(f"--folds {' '.join(map(str, args.folds))} applies to the hippocampus only, which is not in --datasets")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import os

    from openmia.engine.provenance import git_commit

    budgets = parse_budgets(ap, MINUTES, args.minutes)
    monai = not args.no_monai
    folds = {ds: sorted(set(args.folds)) if ds == "hippocampus" else [0] for ds in args.datasets}
    suite, labels = restricted_suite(args, budgets, folds)
    script_dir = suite.out_dir / "script"  # runs that are not suite cells, and the comparisons
    t0 = time.time()
    cell_dirs = run_cells(suite, parallel=args.parallel, threads=1)

    def where(ds: str, model: str, seed: int, fold: int = 0) -> Path:
        """The run directory of a configuration: its suite cell's, or the script's own."""
        key = (labels.get((ds, fold)), model, seed)
        return cell_dirs[key] if key in cell_dirs else _run_dir(script_dir, ds, model, budgets[ds], seed, fold)

    def job(ds: str, model: str, fold: int, seed: int = args.seed) -> dict[str, Any]:
        return {"dataset": ds, "model": model, "fold": fold, "minutes": budgets[ds], "seed": seed,
                "overrides": [*_overrides(ds, model), *([f"data.fold={fold}"] if fold else [])],
                "run_dir": str(where(ds, model, seed, fold)), "root": str(Path(args.data) / ds), "resamples": args.resamples}

    jobs = [job(ds, m, k) for ds in args.datasets for k in folds[ds] for m in _trained(ds, k, monai)]
    rescored = [job(ds, m, 0) for ds in args.datasets for m in RESCORED.get(ds, {}) if 0 in folds[ds]]
    # seed replicates (fold 0): trained beside the main runs, re-scored after them
    replicas = [job(ds, m, 0, s) for ds in args.datasets if 0 in folds[ds] for m in [*_trained(ds, 0, monai), *RESCORED.get(ds, {})]
                for s in _replicated(ds, m) if s != args.seed]
    jobs += [j for j in replicas if j["model"] not in RESCORED.get(j["dataset"], {})]
    rescored += [j for j in replicas if j["model"] in RESCORED.get(j["dataset"], {})]
    run_pool(_run, [j for j in jobs if not _is_cell(j["dataset"], j["model"])], args.parallel)  # cells are trained above

    for j in rescored:  # after training: each needs its source run
        done = _rescore(j, where)
        logging.info("done %s %s (re-scored%s)", done["dataset"], done["model"], ", reused" if done["reused"] else "")
    jobs += rescored

    records, tests = [], []
    for j in jobs:
        rd = Path(j["run_dir"])
        recs = records_for(j["dataset"], j["model"], rd, _earlier_stages(j, where))
        if j["dataset"] == "hippocampus":
            recs = [{**r, "fold": j["fold"], "subset": f"fold {j['fold']}"} for r in recs]
        if j["seed"] != args.seed:  # a seed replicate: its own rows only (subsets and paired tests are the main seed's)
            records += [{**r, "seed": j["seed"], "subset": f"{r['subset']}, seed {j['seed']}" if "subset" in r
                         else f"seed {j['seed']}"} for r in recs]
            continue
        records += [{**r, "seed": j["seed"]} for r in recs]
        if j["dataset"] == "busi":
            from openmia.data.readers.image_mask import read_busi
            from openmia.tasks.segmentation import safe_name

            cat = {safe_name(c.case_id): c.category for c in read_busi(j["root"])}
            # the literature's lesion Dice is over images with a lesion; "all" above also holds the
            # normal images (empty masks, scored by the empty-mask convention)
            groups = {g: [c for c, gg in cat.items() if gg in g.split("+")] for g in ("benign+malignant", "benign", "malignant")}
            records += subgroup_records("busi", j["model"], rd, groups, "lesion", args.resamples)
    from openmia import api

    def paired(ds: str, fold: int | str, dirs: dict[str, Path], out_dir: Path, size: str | None = None) -> None:
        res = api.compare("segmentation", next(iter(dirs.values())) / "truth" / "test",
                            {m: d / "predictions" / "test" for m, d in dirs.items()}, out_dir,
                            metrics=["dice", "hd95", "nsd"], n_resamples=args.resamples, **PAIRED[ds])
        tests.extend({"dataset": ds, **({"fold": fold} if ds == "hippocampus" else {}), **({"size": size} if size else {}), **r}
                     for r in res["comparisons"])

    for ds in args.datasets:  # each replicated configuration: its seeds' mean
        for m in [*_trained(ds, 0, monai), *RESCORED.get(ds, {})]:
            if 0 in folds[ds] and (extra := [s for s in _replicated(ds, m) if s != args.seed]):
                seeds = [args.seed, *extra]
                records += seed_mean_records(ds, m, {s: where(ds, m, s) for s in seeds}, args.resamples,
                                             {s: _earlier_stages(job(ds, m, 0, s), where) for s in seeds})
    for ds in args.datasets:  # paired tests between the models trained on one set (and fold) with the main seed
        main_size = _size(ds, "openmia")
        for k in folds[ds]:
            names = [*_trained(ds, k, monai), *(RESCORED.get(ds, {}) if k == 0 else [])]
            # runs are paired case by case, pixel by pixel, so only those scored at one resolution:
            # each resolution is its own family of tests (the main run's first)
            by_size: dict[str | None, list[str]] = {main_size: []}
            for m in names:
                by_size.setdefault(main_size if m == "monai_unet" else _size(ds, m), []).append(m)
            for size, group in by_size.items():
                if len(group) > 1:
                    tag = f"{f'-fold{k}' if k else ''}{f'-{size}px' if size != main_size else ''}"
                    paired(ds, k, {m: where(ds, m, args.seed, k) for m in group},
                           script_dir / f"{ds}-compare{tag}", size if size != main_size else None)
        if len(folds[ds]) > 1:  # cross-validation: the folds' test cases pooled, per model
            names = _trained(ds, 1, monai)
            fold_dirs = {m: {k: where(ds, m, args.seed, k) for k in folds[ds]} for m in names}
            records += [r for m in names for r in pooled_records(ds, m, fold_dirs[m], args.resamples)]
            tag = "-".join(map(str, folds[ds]))
            pooled_dirs = {m: _pool_folders(fold_dirs[m], script_dir / f"{ds}-pooled-folds{tag}" / m) for m in names}
            if len(names) > 1:
                paired(ds, "pooled", pooled_dirs, script_dir / f"{ds}-compare-pooled-folds{tag}")
    for r in records:
        if "seeds" not in r:
            r.setdefault("seed", args.seed)
        if r["dataset"] == "hippocampus" and r["model"] != "monai_unet":  # the paired tests are the main seed's
            lab = "all" if r["label"] == "mean" else r["label"]
            main_seed = "seeds" not in r and r["seed"] == args.seed
            r["vs_monai"] = [t for t in tests if main_seed and t["dataset"] == "hippocampus" and t["label"] == lab
                             and t["fold"] == r["fold"] and {t["model_a"], t["model_b"]} == {r["model"], "monai_unet"}]
    cell_of = {(c.dataset, c.model, c.seed): c for c in suite.cells}

    def recipe_of(ds: str, m: str) -> list[str]:
        """What a configuration trains: its cell's overrides, or the script's own list."""
        c = cell_of.get((labels.get((ds, folds[ds][0])), m, args.seed))
        return cell_recipe(c, drop=("data.root", "train.seed", "eval.n_resamples", "data.fold")) if c else _overrides(ds, m)

    configs = {f"{ds} / {m}": recipe_of(ds, m) for ds in args.datasets
               for m in ["openmia", *VARIANTS.get(ds, {}), *RESCORED.get(ds, {})]}
    configs.update({f"{ds} / {m}": _staged_description(ds, m, budgets[ds]) for ds in args.datasets for m in STAGED.get(ds, {})})
    if "hippocampus" in args.datasets and not args.no_monai:
        configs["hippocampus / monai_unet"] = MONAI_DESCRIPTION
    hf = folds.get("hippocampus", [0])
    meta = {"budgets": ", ".join(f"{d} {budgets[d]:g}" for d in args.datasets), "parallel": args.parallel,
            "cpus": len(os.sched_getaffinity(0)), "date": time.strftime("%Y-%m-%d"), "git": git_commit(ROOT),
            "command": "python benchmarks/segmentation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "configs": configs, "resamples": args.resamples,
            "folds": f"fold {hf[0]}" if len(hf) == 1 else f"folds {', '.join(map(str, hf))} and pooled"}
    out = Path(args.out)
    write_results(records, tests, out, meta)
    logging.info("wrote %s in %.0f s", out / "segmentation.md", time.time() - t0)
    print((out / "segmentation.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
