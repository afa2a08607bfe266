"""openmia rank: models compared across several data sets — Friedman, Nemenyi, Holm /
Bonferroni–Dunn against a control, CD diagram (Demšar 2006)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("rank", help="rank models across several data sets: Friedman, Nemenyi, Holm vs a control, CD diagram",
                       description="Rank models across several data sets (Demšar, JMLR 2006): ranks within each data set "
                                   "(1 = best, ties averaged), the Friedman test (tie-corrected as scipy and R's "
                                   "friedman.test; --no-tie-correction for Demšar's uncorrected statistic) with the "
                                   "Iman-Davenport F, Nemenyi pairwise p-values and critical difference, and with --control "
                                   "Holm and Bonferroni-Dunn comparisons against that model. Writes ranks.csv, "
                                   "average_ranks.csv, friedman.csv, nemenyi.csv, control.csv (with --control), "
                                   "cd_diagram.png and rank.json.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores", metavar="CSV", help="scores as dataset,model,score (one row per data set and model; "
                                                     "optional metric/label columns) or dataset,<one column per model>")
    src.add_argument("--dataset", action="append", metavar="NAME=PATH",
                     help="one data set's scores: an `openmia compare` output folder, its compare.json or ranking.csv, or "
                          "a model,score CSV; repeat for every data set (at least two)")
    p.add_argument("--out", required=True, help="output folder (must not hold the inputs; an existing non-empty folder "
                                                 "needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--control", metavar="MODEL", help="compare every model with this one (Holm, Bonferroni-Dunn)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the post-hoc tests (default 0.05)")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--higher-is-better", dest="higher_is_better", action="store_const", const=True, default=None,
                   help="higher scores are better (the default unless the metric says otherwise)")
    d.add_argument("--lower-is-better", dest="higher_is_better", action="store_const", const=False,
                   help="lower scores are better (errors, distances such as HD95)")
    p.add_argument("--metric", help="the metric to rank by when the inputs hold several (e.g. dice); also sets the "
                                    "direction for metrics openmia knows")
    p.add_argument("--label", help="the label to rank by when the inputs hold several (default: all)")
    p.add_argument("--no-tie-correction", dest="tie_correction", action="store_false",
                   help="Friedman statistic without the tie correction (Demšar's formula; conservative with ties)")
    p.add_argument("--drop-incomplete", action="store_true",
                   help="drop data sets that miss a model's score instead of stopping with an error")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from openmia.cli._common import format_table
    from openmia.errors import ConfigError
    from openmia import api

    datasets: dict[str, str] = {}
    for item in args.dataset or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--dataset expects NAME=PATH, found {item!r}")
        if name in datasets:
            raise ConfigError(f"--dataset: data set name {name!r} given twice")
        datasets[name] = path
    if args.dataset is not None and len(datasets) < 2:
        raise ConfigError(f"ranking across data sets needs at least two --dataset NAME=PATH, got {len(datasets)}")
    res = api.rank(args.scores, args.out, datasets=datasets or None, metric=args.metric, label=args.label,
                     control=args.control, alpha=args.alpha, higher_is_better=args.higher_is_better,
                     tie_correction=args.tie_correction, drop_incomplete=args.drop_incomplete, overwrite=args.overwrite)

    def f(x: float) -> str:
        return f"{x:.4g}" if x == x else "nan"

    fr, nem, ctrl = res["friedman"], res["nemenyi"], res["control"]
    avg = res["average_ranks"]
    print(f"{res['n_models']} models on {res['n_datasets']} data sets; "
          f"{'higher' if res['higher_is_better'] else 'lower'} is better ({res['direction_source']})")
    print(format_table(["model", "average rank"], [[m, f"{avg[m]:.3f}"] for m in sorted(avg, key=avg.get)]))
    print()
    print(f"Friedman chi2 = {f(fr['chi2'])} ({'tie-corrected' if fr['tie_correction'] else 'uncorrected'}), "
          f"df = {fr['df']}, p = {f(fr['p_value'])}; Iman-Davenport F = {f(fr['iman_davenport_f'])} "
          f"(df {fr['df1']}, {fr['df2']}), p = {f(fr['iman_davenport_p'])}")
    print(f"Nemenyi: q_alpha = {nem['q_alpha']:.3f}, CD = {nem['critical_difference']:.3f} at alpha = {res['alpha']:g}")
    rows = [[f"{p['model_a']} - {p['model_b']}", f"{p['rank_diff']:+.3f}", f(p["p_value"]), "yes" if p["significant"] else "no"]
            for p in nem["pairs"]]
    print(format_table(["pair", "rank diff", "p (Nemenyi)", "significant"], rows))
    if ctrl is not None:
        print()
        print(f"against {ctrl['model']} (average rank {ctrl['average_rank']:.3f}); Bonferroni-Dunn CD = "
              f"{ctrl['critical_difference_bonferroni_dunn']:.3f}")
        rows = [[c["model"], f"{c['rank_diff']:+.3f}", f(c["z"]), f(c["p_value"]), f(c["p_holm"]), f(c["p_bonferroni_dunn"]),
                 "yes" if c["significant_holm"] else "no"] for c in ctrl["comparisons"]]
        print(format_table(["model", "rank diff", "z", "p", "p (Holm)", "p (Bonf.-Dunn)", "significant (Holm)"], rows))
    for note in res["notes"]:
        print(f"note: {note}")
    out = Path(args.out)
    names = ", ".join(str(out / p.name) for p in res["files"].values())
    print(f"wrote {names}")
    return 0
