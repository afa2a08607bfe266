"""openmia profile: patient profiles from image embeddings, covariates and structure volumes."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from openmia.cli.cluster_cmd import k_value

    p = sub.add_parser("profile", help="patient profiles: embeddings + covariates/volumes clustered, with CIs",
                       description="Averages image embeddings per patient (patient_id column of cases.csv; else one "
                                   "case = one patient), joins covariates (CSV patient_id,<numeric columns>) and "
                                   "structure volumes in mm^3 from label maps, clusters the patients and reports each "
                                   "profile: size, covariate means/medians with bootstrap CIs, label composition, "
                                   "stability.")
    p.add_argument("--embeddings", required=True, help="embeddings folder (openmia embed)")
    p.add_argument("--covariates", help="CSV with patient_id and numeric columns (one row per patient)")
    p.add_argument("--volumes-from", help="folder of label maps <case_id>.nii.gz|.png|.npy (truth, or `openmia predict` "
                                          "output of a segmentation run): volume per label in mm^3")
    p.add_argument("--spacing", type=float, nargs="+", help="voxel spacing in mm for label maps without a header")
    p.add_argument("--label-names", nargs="+", help="names of labels 0..K for the volume columns (default: the data set's)")
    p.add_argument("--ratio", action="append", default=[], metavar="A/B", help="add the covariate A / B (repeatable)")
    p.add_argument("--features", default="auto", choices=("auto", "both", "embeddings", "covariates"),
                   help="what the patients are clustered on (auto: both when covariates exist, else embeddings)")
    p.add_argument("--embedding-dims", type=int, default=5, help="principal components of the embeddings used (default 5)")
    p.add_argument("--method", default="kmeans", choices=("kmeans", "gmm", "agglomerative", "hdbscan"), help="default: kmeans")
    p.add_argument("--k", type=k_value, default="auto", help="number of profiles, or auto (default)")
    p.add_argument("--min-cluster-size", type=int, default=5, help="hdbscan: smallest profile (default 5)")
    p.add_argument("--stability-resamples", type=int, default=100, help="bootstrap resamples for stability (default 100)")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout (human text on stderr)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import human_echo

    echo = human_echo(args)
    res = api.profile(args.embeddings, args.out, covariates=args.covariates, volumes_from=args.volumes_from,
                      spacing=args.spacing, label_names=args.label_names, ratios=args.ratio, features=args.features,
                      embedding_dims=args.embedding_dims, method=args.method, k=args.k, seed=args.seed,
                      n_boot=args.stability_resamples, n_resamples=args.n_resamples,
                      min_cluster_size=args.min_cluster_size, overwrite=args.overwrite,
                      progress=not getattr(args, "quiet", False))
    sel = res["k_selection"]
    echo(f"{res['n_patients']} patients -> {res['k']} profiles ({res['method']}, k "
         f"{'auto, by ' + sel['criterion'] if sel['mode'] == 'auto' else 'given'}); features: {res['features']['description']}")
    for r in res["profiles"]:
        covs = "; ".join(f"{c} {v['mean']['value']:.4g}" for c, v in r["covariates"].items() if v["mean"]["value"] is not None)
        stab = "" if r["mean_jaccard"] is None else f", stability {r['mean_jaccard']:.2f}{' UNSTABLE' if r['unstable'] else ''}"
        echo(f"  profile {r['profile']}: {r['size']} patients{stab}{'  (' + covs + ')' if covs else ''}")
    echo(f"wrote profiles.csv, patients.csv, summary.json, report.md, report.html to {res['out']}")
    if args.json:
        from openmia.cli._common import print_json

        print_json(res)
    return 0
