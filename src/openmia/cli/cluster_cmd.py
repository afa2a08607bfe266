"""openmia cluster: cluster an embeddings folder; stability, report, and scores against labels."""

from __future__ import annotations

import argparse


def k_value(text: str):
    """``auto`` or an integer (argparse type of ``--k``)."""
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', found {text!r}") from None


def add_parser(sub) -> None:
    p = sub.add_parser("cluster", help="cluster embeddings: k chosen or auto, stability, report, scores vs labels",
                       description="Clusters the embeddings of `openmia embed` (or any folder with embeddings.npy + "
                                   "cases.csv) with scikit-learn. Writes clusters.csv (case_id,cluster), summary.json, "
                                   "report.md/report.html (PCA/t-SNE/UMAP maps, montage, per-cluster profiles, Hennig "
                                   "bootstrap stability: mean Jaccard < 0.6 = unstable) and, when cases.csv has labels, "
                                   "eval/ (ARI, AMI, NMI, ... with bootstrap CIs).")
    p.add_argument("--embeddings", required=True, help="embeddings folder (embeddings.npy, cases.csv[, embed.json])")
    p.add_argument("--method", default="kmeans", choices=("kmeans", "gmm", "agglomerative", "hdbscan"), help="default: kmeans")
    p.add_argument("--k", type=k_value, default="auto",
                   help="number of clusters, or auto (silhouette for kmeans/agglomerative, BIC for gmm; k = 2..10); "
                        "hdbscan: auto only")
    p.add_argument("--min-cluster-size", type=int, default=5, help="hdbscan: smallest cluster (default 5)")
    p.add_argument("--scale", default="none", choices=("none", "standard"), help="z-score each feature first (default none)")
    p.add_argument("--stability-resamples", type=int, default=100, help="bootstrap resamples for stability (default 100)")
    p.add_argument("--n-resamples", type=int, default=500, help="bootstrap resamples for the CIs (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clusterers and the resampling (default 0)")
    p.add_argument("--maps", nargs="+", default=["pca", "tsne", "umap"], choices=("pca", "tsne", "umap"),
                   help="2D maps in the report (default: pca tsne umap; umap needs umap-learn)")
    p.add_argument("--no-montage", action="store_true", help="no montage of example images")
    p.add_argument("--root", help="folder of the embedded data set's images, for the montage (default: embed.json's)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout (human text on stderr)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    res = api.cluster(args.embeddings, args.out, method=args.method, k=args.k, seed=args.seed,
                      n_boot=args.stability_resamples, min_cluster_size=args.min_cluster_size,
                      n_resamples=args.n_resamples, scale=args.scale, maps=args.maps, montage=not args.no_montage,
                      root=args.root, overwrite=args.overwrite, progress=not getattr(args, "quiet", False))
    sel = res["k_selection"]
    how = f"auto, by {sel['criterion']}" if sel["mode"] == "auto" else "given"
    echo(f"{res['n_cases']} cases -> {res['k']} clusters ({res['method']}, k {how})"
         + (f", {res['noise_cases']} noise" if res["noise_cases"] else ""))
    for r in res["clusters"]:
        stab = "" if r["mean_jaccard"] is None else f"  stability {r['mean_jaccard']:.2f}{' UNSTABLE' if r['unstable'] else ''}"
        comp = ", ".join(f"{k}: {v}" for k, v in r["label_composition"].items())
        echo(f"  {'noise' if r['noise'] else 'cluster ' + str(r['cluster'])}: {r['size']} cases{stab}{'  [' + comp + ']' if comp else ''}")
    for m in res.get("evaluation", {}).get("metrics", []):
        if m["metric"] in ("ari", "nmi", "ami"):
            echo(f"  {m['metric']} = {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
    echo(f"wrote clusters.csv, summary.json, report.md, report.html to {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
