"""openmia plan auc|proportion|mcnemar|metric: how many test cases a study needs (docs/evaluation.md,
"Planning a study")."""

from __future__ import annotations

import argparse

KINDS = ("auc", "proportion", "mcnemar", "metric")


def _common(p: argparse.ArgumentParser, *, test: bool) -> None:
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level; the CI level is 1 - alpha (default 0.05: 95%% CIs, 5%% tests)")
    if test:
        p.add_argument("--one-sided", action="store_true", help="plan a one-sided test (default two-sided)")
    p.add_argument("--n", metavar="N[,N...]", help="tabulate these sizes (total cases) instead of sizes around the answer")
    p.add_argument("--out", metavar="DIR", help="also write plan.json and the curve plan.png into DIR")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan", help="sample size: cases needed for a CI half-width or for power to detect a difference",
        description="How many test cases does an evaluation need? Estimate a metric to a CI half-width W, or detect a "
                    "difference D between two models with power 1-beta at alpha: AUC (Hanley-McNeil or Obuchowski "
                    "variance), proportions (Wilson), paired accuracy (McNemar: Connor or Miettinen), and per-case "
                    "metrics such as Dice or HD95 by resampling a pilot per_case.csv. Prints a table of n against "
                    "half-width/power; --out DIR writes plan.json and plan.png (the curve).")
    kinds = p.add_subparsers(dest="plan_kind", metavar="{auc,proportion,mcnemar,metric}", required=True)

    a = kinds.add_parser("auc", help="AUC: CI half-width, two models on the same cases, or one model vs a fixed AUC",
                         description="Positives and negatives needed for an AUC. Examples: "
                                     "--auc 0.85 --half-width 0.05 --prevalence 0.3;  "
                                     "--auc 0.80 --delta 0.05 --correlation 0.5 --power 0.8;  --auc 0.75 --null 0.5")
    a.add_argument("--auc", type=float, required=True, help="expected AUC (of model A), in (0.5, 1)")
    a.add_argument("--half-width", type=float, help="estimate the AUC to +- this half-width")
    a.add_argument("--delta", type=float, help="detect AUC_B - AUC_A = DELTA between two models")
    a.add_argument("--null", type=float, help="detect that the AUC differs from this fixed value (e.g. 0.5)")
    a.add_argument("--power", type=float, help="power 1 - beta for --delta/--null (default 0.8)")
    a.add_argument("--prevalence", type=float, default=0.5, help="share of positive cases (default 0.5)")
    a.add_argument("--correlation", type=float, default=0.0,
                   help="--delta: correlation of the two models' scores on the same cases (default 0 = independent; "
                        "typically 0.3-0.7 for two models scored on the same cases)")
    a.add_argument("--variance", choices=["hanley-mcneil", "obuchowski"], default="hanley-mcneil",
                   help="AUC variance: Hanley & McNeil 1982 (default) or Obuchowski's binormal (as pROC power.roc.test)")
    _common(a, test=True)

    q = kinds.add_parser("proportion", help="accuracy, sensitivity, specificity: Wilson CI half-width",
                         description="Cases needed to estimate a proportion to a Wilson CI half-width. Example: "
                                     "--p 0.9 --half-width 0.03 --among positives --prevalence 0.2 (sensitivity)")
    q.add_argument("--p", "--proportion", dest="p", type=float, required=True, help="expected proportion, in [0, 1]")
    q.add_argument("--half-width", type=float, required=True, help="estimate it to +- this half-width")
    q.add_argument("--among", choices=["all", "positives", "negatives"], default="all",
                   help="all cases (accuracy; default), positives (sensitivity) or negatives (specificity)")
    q.add_argument("--prevalence", type=float, help="with --among positives/negatives: also give total cases")
    _common(q, test=False)

    m = kinds.add_parser("mcnemar", help="paired accuracy of two models: McNemar test (Connor / Miettinen)",
                         description="Cases needed for McNemar's test to detect an accuracy difference between two "
                                     "models on the same cases. Example: --p10 0.12 --p01 0.05 --power 0.8, or "
                                     "--acc-a 0.85 --acc-b 0.9 --discordant 0.15")
    m.add_argument("--p10", type=float, help="share of cases only model A gets right")
    m.add_argument("--p01", type=float, help="share of cases only model B gets right")
    m.add_argument("--acc-a", type=float, help="expected accuracy of model A (with --acc-b, --discordant)")
    m.add_argument("--acc-b", type=float, help="expected accuracy of model B")
    m.add_argument("--discordant", type=float, help="share of cases on which the two models disagree (p10 + p01)")
    m.add_argument("--power", type=float, default=0.8, help="power 1 - beta (default 0.8)")
    m.add_argument("--method", choices=["connor", "miettinen"], default="connor",
                   help="normal approximation of Connor 1987 (default) or Miettinen 1968")
    _common(m, test=True)

    t = kinds.add_parser("metric", help="per-case metrics (Dice, HD95, ...) by resampling a pilot per_case.csv",
                         description="Cases needed for a per-case metric, by resampling a pilot per_case.csv "
                                     "(openmia evaluate's). One pilot + --half-width: the mean's CI. Two pilots "
                                     "(--pilot-b: the other model on the same cases): the paired differences A - B, "
                                     "for a CI half-width of the mean difference, or the power of the paired test. "
                                     "Example: --pilot a/per_case.csv --pilot-b b/per_case.csv --metric dice --power 0.8")
    t.add_argument("--pilot", required=True, help="pilot per_case.csv (case_id,label,metric,value, or one column per metric)")
    t.add_argument("--pilot-b", help="second model's per_case.csv on the same cases (paired differences A - B)")
    t.add_argument("--metric", required=True, help="metric to plan for, e.g. dice, hd95, nsd")
    t.add_argument("--label", default="all",
                   help="label to use (default all: rows labelled 'all', else each case's mean over its labels)")
    t.add_argument("--half-width", type=float, help="estimate the mean (difference) to +- this half-width")
    t.add_argument("--power", type=float, help="power 1 - beta of the paired test (default 0.8; needs --pilot-b)")
    t.add_argument("--delta", type=float,
                   help="plan for this mean difference (shifts the pilot's differences); default: the pilot's own")
    t.add_argument("--test", choices=["wilcoxon", "t"], default="wilcoxon",
                   help="paired test: wilcoxon (signed-rank, as openmia compare; default) or t (paired t-test)")
    t.add_argument("--resamples", type=int, default=2000, help="simulated studies per candidate n (default 2000)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--max-n", type=int, default=100_000, help="largest n searched (default 100000)")
    _common(t, test=False)


def _sizes(text: str | None) -> list[int] | None:
    from openmia.errors import ConfigError

    if text is None:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise ConfigError(f"--n expects whole numbers separated by commas, e.g. 100,200,400; got {text!r}") from None


def _options(args: argparse.Namespace) -> dict:
    kind = args.plan_kind
    common = {"alpha": args.alpha, "ns": _sizes(args.n)}
    alternative = {"alternative": "one-sided" if getattr(args, "one_sided", False) else "two-sided"}
    if kind == "auc":
        return {"auc": args.auc, "half_width": args.half_width, "delta": args.delta, "null": args.null, "power": args.power,
                "prevalence": args.prevalence, "correlation": args.correlation, "variance": args.variance,
                **alternative, **common}
    if kind == "proportion":
        return {"p": args.p, "half_width": args.half_width, "among": args.among, "prevalence": args.prevalence, **common}
    if kind == "mcnemar":
        return {"p10": args.p10, "p01": args.p01, "acc_a": args.acc_a, "acc_b": args.acc_b, "discordant": args.discordant,
                "power": args.power, "method": args.method, **alternative, **common}
    return {"pilot": args.pilot, "pilot_b": args.pilot_b, "metric": args.metric, "label": args.label,
            "half_width": args.half_width, "power": args.power, "delta": args.delta, "test": args.test,
            "resamples": args.resamples, "seed": args.seed, "max_n": args.max_n, **common}


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from openmia import api
    from openmia.cli._common import format_table

    res = api.plan(args.plan_kind, out=args.out, overwrite=args.overwrite, **_options(args))
    print(f"method: {res.method}")
    print(format_table(res.columns, res.rows))
    print()
    print(res.summary_line())
    for note in res.notes:
        print(f"note: {note}")
    if args.out:
        out = Path(args.out)
        print(f"wrote {out / 'plan.json'} and {out / 'plan.png'}")
    return 0
