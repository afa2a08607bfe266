"""Unsupervised benchmark (issue 23): clustering of test-split embeddings against the classes, and
patient profiles of the MSD Hippocampus cohort.

Section ``clustering`` — RetinaMNIST, AdrenalMNIST3D (28³), VesselMNIST3D and BUSI (benign /
malignant / normal): the test split is embedded by (a) PCA of the raw pixels (50 components,
fitted on the training split), (b) an autoencoder trained without labels (only when a
``reconstruction`` task is registered), (c) the penultimate layer of a short supervised
classification run (the upper reference); each embedding is clustered by k-means with k = the
number of classes. ARI and NMI with BCa bootstrap CIs (the clustering evaluator), and paired
bootstrap differences (same case resamples) of (b) - (a) and (c) - (a).

BUSI is in the catalogue as a segmentation set; its class is the prefix of each case id. The
benchmark builds a classification folder (``folder:`` user set, class sub-folders of single-channel PNGs of the
images) whose ``split.json`` is the catalogue's BUSI split, so every method sees the same test cases.

Section ``profiles`` — the 260 Hippocampus cases (train + val + test): anterior and posterior
hippocampus volumes (mm³, from the truth label maps), their ratio and pixel-PCA image embeddings
-> k-means with k chosen by silhouette, Hennig stability of each profile; a second run on the
volumes alone.

Usage::

    python benchmarks/unsupervised.py                       # both sections (~15 CPU-minutes)
    python benchmarks/unsupervised.py --sections profiles
    python benchmarks/unsupervised.py --data ../shared/data --minutes 2

Writes ``benchmarks/results/unsupervised.{md,json}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = {  # name -> (catalogue name or builder, data root below --data)
    "retinamnist": ("retinamnist", "medmnist"),
    "adrenalmnist3d": ("adrenalmnist3d", "medmnist"),
    "vesselmnist3d": ("vesselmnist3d", "medmnist"),
    "busi": (None, "busi"),
}


def busi_folder(data: Path, work: Path) -> str:
    """A ``folder:`` classification set of the BUSI images (class sub-folders), with the catalogue's
    BUSI split as its ``split.json``; returns the data set name. The images are stored as
    single-channel PNGs: BUSI's files are greyscale ultrasound saved as RGB (three equal channels),
    so one channel holds all the information (colour sets such as RetinaMNIST keep their three)."""
    from PIL import Image

    from openmia import api

    src = data / "busi" / "Dataset_BUSI_with_GT"
    dst = work / "busi_classes"
    rec = api.split_record("busi", root=str(data / "busi"), checksum=False)
    splits = rec["splits"]
    for split_ids in splits.values():
        for cid in split_ids:
            cls, num = cid.rsplit("_", 1)
            (dst / cls).mkdir(parents=True, exist_ok=True)
            target = dst / cls / f"{cid}.png"
            if not target.exists():
                with Image.open(src / cls / f"{cls} ({int(num)}).png") as im:
                    im.convert("L").save(target)
    # user-set case ids are the paths below the folder without suffix: "<class>/<case>"
    (dst / "split.json").write_text(json.dumps({k: [f"{c.rsplit('_', 1)[0]}/{c}" for c in v] for k, v in splits.items()}))
    return f"folder:{dst}"


# the short runs behind the embeddings: one thread, a CPU-time budget (fair under load), seed 0
RUNS: dict[str, list[str]] = {
    # the supervised encoder (upper reference): a cnn_small classifier
    "supervised": ["task=classification", "model.name=cnn_small", "model.kwargs.width=16", "train.epochs=60",
                   "optim.lr=0.003", "schedule.name=cosine", "data.batch_size=64", "eval.n_resamples=200"],
    # label-free: openmia's default autoencoder (task=reconstruction)
    "autoencoder": ["task=reconstruction", "train.epochs=60", "data.batch_size=64"],
    # label-free: SimCLR on the training split's images of the supervised reference's backbone
    "simclr": ["task=pretrain", "pretrain.method=simclr", "model.name=cnn_small", "model.kwargs.width=16",
               "train.epochs=200", "data.batch_size=128", "eval.n_resamples=200"],
}


def short_run(kind: str, dataset: str, root: str | None, runs: Path, minutes: float, name: str) -> Path:
    """The ``kind`` run of :data:`RUNS` on ``dataset``, reused when complete; returns its directory."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _runs import train_or_reuse

    from openmia.config import load_config

    over = [*RUNS[kind], f"data.dataset={dataset}", f"train.max_minutes={minutes}", "train.budget_clock=cpu",
            "train.threads=1", "train.seed=0", *([f"data.root={root}"] if root else [])]
    rd = runs / f"{name}-{kind}-{minutes:g}min"
    train_or_reuse(load_config(None, over), rd)
    return rd


LABEL_FREE = ("autoencoder", "simclr")  # the label-free encoders the target is judged on


def _metric(summary: dict[str, Any], name: str) -> dict[str, Any]:
    m = next(m for m in summary["evaluation"]["metrics"] if m["metric"] == name)
    return {"value": m["value"], "ci_low": m["ci_low"], "ci_high": m["ci_high"]}


def clustering_section(args, work: Path) -> dict[str, Any]:
    from openmia import api

    out: dict[str, Any] = {"autoencoder": "task=reconstruction (openmia's default autoencoder, label-free); per-set "
                           "result or error below", "sets": {}}
    for name in args.sets:
        cat, sub = SETS[name]
        t0 = time.time()
        root = str(args.data / sub)
        dataset = cat if cat else busi_folder(args.data, work)
        if not cat:
            root = None
        embs: dict[str, Path] = {}
        embs["pixels-pca"] = work / name / "emb-pixels-pca"
        api.embed(embs["pixels-pca"], method="pixels-pca", dataset=dataset, split="test", fit_split="train", dims=50,
                  root=root, overwrite=True)
        methods: dict[str, Any] = {}
        for kind in LABEL_FREE:  # a failure is reported in the results, never hidden
            try:
                rd = short_run(kind, dataset, root, work / "runs", args.minutes, name)
                embs[kind] = work / name / f"emb-{kind}"
                api.embed(embs[kind], run_dir=rd, split="test", root=root, overwrite=True)
            except Exception as exc:  # noqa: BLE001
                methods[kind] = {"error": f"{type(exc).__name__}: {exc}"}
        rd = short_run("supervised", dataset, root, work / "runs", args.minutes, name)
        embs["supervised"] = work / name / "emb-supervised"
        api.embed(embs["supervised"], run_dir=rd, split="test", root=root, overwrite=True)
        res = json.loads((rd / "result.json").read_text()) if (rd / "result.json").is_file() else {}
        k = None
        for meth, folder in embs.items():
            with open(folder / "cases.csv", newline="") as f:
                k = len({row["label"] for row in csv.DictReader(f)})
            s = api.cluster(folder, work / name / f"clusters-{meth}", method="kmeans", k=k, n_boot=args.stability,
                            n_resamples=args.resamples, maps=("pca",), montage=False, overwrite=True)
            methods[meth] = {"ari": _metric(s, "ari"), "nmi": _metric(s, "nmi"), "dims": s["n_features"],
                             "unstable_clusters": s["unstable_clusters"],
                             "stability": [c["mean_jaccard"] for c in s["clusters"]],
                             "layer": json.loads((folder / "embed.json").read_text())["layer"]}
        diffs = {}
        for first in (*LABEL_FREE, "supervised"):
            if first in embs:
                d = api.compare_clusterings(work / name / "clusters-pixels-pca", work / name / f"clusters-{first}",
                                            work / name / "clusters-pixels-pca", n_resamples=args.resamples, seed=0)
                diffs[f"{first} - pixels-pca"] = {m: d[m] for m in ("ari", "nmi")}
        out["sets"][name] = {"dataset": dataset, "k": k, "n_test": methods["pixels-pca"].get("n", None), "methods": methods,
                             "paired_differences": diffs, "supervised_run": {"dir": str(rd), "seconds": res.get("train_seconds")},
                             "seconds": round(time.time() - t0, 1)}
        out["sets"][name]["n_test"] = len((embs["pixels-pca"] / "cases.csv").read_text().splitlines()) - 1
        logging.info("clustering %s done in %.0f s", name, time.time() - t0)
    return out


def profiles_section(args, work: Path) -> dict[str, Any]:
    from openmia import api

    t0 = time.time()
    root = args.data / "hippocampus"
    emb = work / "hippocampus" / "emb-pixels-pca"
    api.embed(emb, method="pixels-pca", dataset="hippocampus", split="all", fit_split="all", dims=20, root=root,
              overwrite=True)
    out = {}
    for label, features in (("volumes + embeddings", "both"), ("volumes only", "covariates")):
        s = api.profile(emb, work / "hippocampus" / f"profiles-{features}", volumes_from=root / "labelsTr",
                        ratios=["volume_anterior_mm3/volume_posterior_mm3"], features=features, embedding_dims=5,
                        method="kmeans", k="auto", n_boot=args.stability, n_resamples=args.resamples, overwrite=True)
        out[label] = {"k": s["k"], "k_selection": s["k_selection"], "n_patients": s["n_patients"],
                      "features": s["features"]["description"], "unstable_profiles": s["unstable_profiles"],
                      "profiles": [{"profile": p["profile"], "size": p["size"], "mean_jaccard": p["mean_jaccard"],
                                    "unstable": p["unstable"],
                                    "covariates": {c: v["mean"] for c, v in p["covariates"].items()}}
                                   for p in s["profiles"]],
                      "silhouette": s["internal"]["silhouette"], "report": str(work / "hippocampus" / f"profiles-{features}")}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def _ci(m: dict[str, Any]) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Unsupervised benchmark (issue 23)", "",
             f"Machine: {res['machine']}; openmia {res['version']}; {res['date']}. Regenerate with "
             "`python benchmarks/unsupervised.py`.", ""]
    if "clustering" in res:
        c = res["clustering"]
        lines += ["## Clustering test-split embeddings (k-means, k = number of classes)", "",
                  "ARI / NMI against the classes with BCa bootstrap 95% CIs over cases (clustering evaluator); "
                  "paired differences: percentile bootstrap over the same case resamples. Embeddings: "
                  "(a) pixels-pca = 50 principal components of the normalised pixels fitted on the training split; "
                  "(b) autoencoder; (b') simclr = the cnn_small backbone pre-trained by SimCLR on the training "
                  "images without labels (label-free, as (b)); (c) supervised = penultimate layer of a cnn_small "
                  f"classification run (the upper reference; each run {res['minutes']:g} minutes, 1 thread).", "", f"Autoencoder (b): {c['autoencoder']}.", "",
                  "| data set | n test | k | method | ARI [95% CI] | NMI [95% CI] | unstable clusters |", "|---|---|---|---|---|---|---|"]
        for name, s in c["sets"].items():
            for meth, m in s["methods"].items():
                if "error" in m:
                    lines.append(f"| {name} | {s['n_test']} | {s['k']} | {meth} | error: {m['error']} | | |")
                    continue
                lines.append(f"| {name} | {s['n_test']} | {s['k']} | {meth} | {_ci(m['ari'])} | {_ci(m['nmi'])} | "
                             f"{m['unstable_clusters'] or 'none'} |")
        lines += ["", "Paired bootstrap differences (first - pixels-pca):", "",
                  "| data set | comparison | ΔARI [95% CI] | P(Δ ≤ 0) | ΔNMI [95% CI] | P(Δ ≤ 0) |", "|---|---|---|---|---|---|"]
        for name, s in c["sets"].items():
            for comp, d in s["paired_differences"].items():
                a, n = d["ari"], d["nmi"]
                lines.append(f"| {name} | {comp} | {a['diff']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | {a['p_not_better']:.3f} | "
                             f"{n['diff']:.3f} [{n['ci_low']:.3f}, {n['ci_high']:.3f}] | {n['p_not_better']:.3f} |")
        # the issue's target, checked from the numbers above, for each label-free encoder
        for enc in LABEL_FREE:
            won, lost, missing = [], [], []
            for name, s in c["sets"].items():
                d = s["paired_differences"].get(f"{enc} - pixels-pca")
                if d is None:
                    missing.append(f"{name} ({s['methods'].get(enc, {}).get('error', 'not run')})")
                elif d["ari"]["ci_low"] > 0:
                    won.append(name)
                else:
                    lost.append(f"{name} (ΔARI {d['ari']['diff']:.3f} [{d['ari']['ci_low']:.3f}, {d['ari']['ci_high']:.3f}])")
            lines += ["", f"**Target, {enc}** (label-free encoder beats pixel PCA on ARI, CI of the difference above 0, on at "
                      f"least 2 of 4 sets): {'met' if len(won) >= 2 else 'not met'} — above 0 on {len(won)} set(s)"
                      f"{': ' + ', '.join(won) if won else ''}; not above 0 on {', '.join(lost) or 'none'}; no result on "
                      f"{', '.join(missing) or 'none'}."]
        lines.append("")
    if "profiles" in res:
        p = res["profiles"]
        lines += ["## Patient profiles: MSD Hippocampus (260 patients, one volume each)", "",
                  "Covariates: anterior and posterior hippocampus volume (mm³, truth label maps, spacing from the NIfTI "
                  "headers) and their ratio; image embedding: 20 pixel-PCA components (fitted on all 260), 5 of their "
                  "principal components used. k-means, k chosen by silhouette over 2..10; Hennig bootstrap stability "
                  "(mean Jaccard < 0.6 = unstable). Covariate means with BCa bootstrap 95% CIs over the profile's patients.", ""]
        for label, r in p.items():
            if label == "seconds":
                continue
            sil = r["silhouette"]
            lines += [f"### Features: {label}", "", f"{r['features']}. k = {r['k']} (silhouette per k: "
                      + ", ".join(f"{k}: {v:.3f}" for k, v in r["k_selection"]["scores"].items())
                      + f"); silhouette of the partition {sil['value']:.3f} [{sil['ci_low']:.3f}, {sil['ci_high']:.3f}]. "
                      f"Unstable profiles: {r['unstable_profiles'] or 'none'}."
                      + (f" Note: {r['k_selection']['note']}." if r["k_selection"].get("note") else ""), ""]
            covs = list(r["profiles"][0]["covariates"]) if r["profiles"] else []
            lines += ["| profile | patients | stability (mean Jaccard) | " + " | ".join(f"{c} mean [95% CI]" for c in covs) + " |",
                      "|---|---|---|" + "---|" * len(covs)]
            for q in r["profiles"]:
                lines.append(f"| {q['profile']} | {q['size']} | {q['mean_jaccard']:.2f}{' (unstable)' if q['unstable'] else ''} | "
                             + " | ".join(_ci(q["covariates"][c]) for c in covs) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", default=["clustering", "profiles"], choices=("clustering", "profiles"))
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--work", type=Path, default=None, help="runs and outputs (default OPENMIA_HOME/bench/unsupervised)")
    ap.add_argument("--minutes", type=float, default=2.0, help="training budget per run (CPU-minutes)")
    ap.add_argument("--stability", type=int, default=50, help="bootstrap resamples for cluster stability")
    ap.add_argument("--resamples", type=int, default=500, help="bootstrap resamples for CIs and paired differences")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import platform

    import openmia
    from openmia.data.paths import openmia_home

    work = args.work or openmia_home() / "bench" / "unsupervised"
    work.mkdir(parents=True, exist_ok=True)
    res_path = args.out / "unsupervised.json"
    res: dict[str, Any] = json.loads(res_path.read_text()) if res_path.is_file() else {}
    res.update({"version": openmia.__version__, "date": time.strftime("%Y-%m-%d"), "minutes": args.minutes,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch 1 thread per run"})
    t0 = time.time()
    if "clustering" in args.sections:
        new = clustering_section(args, work)
        if "clustering" in res:  # a run on some of the sets keeps the others' earlier results
            new["sets"] = {**res["clustering"]["sets"], **new["sets"]}
            new["sets"] = {k: new["sets"][k] for k in SETS if k in new["sets"]}
        res["clustering"] = new
    if "profiles" in args.sections:
        res["profiles"] = profiles_section(args, work)
    res["seconds_this_invocation"] = round(time.time() - t0, 1)
    from openmia import fileio

    fileio.write_json(res_path, res)
    fileio.write_text(args.out / "unsupervised.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
