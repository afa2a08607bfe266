"""openmia compare --unpaired (models on independent test sets: DeLong's unpaired test) and
--alternative greater|less (one-sided DeLong), through api.compare and the CLI.

Cross-check: an independent transcription of pROC's ``roc.test(paired = FALSE, method = "delong")``
written here from the structural components (DeLong et al. 1988: V10/V01 placement values from
explicit pairwise comparisons, AUC from scipy.stats.mannwhitneyu), with the Welch-Satterthwaite t
reference; and a 4 + 4 case example computed by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from openmia import api
from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.compare import compare_files
from openmia.stats.delong import delong_paired_test


def _write(tmp_path, sets: dict[str, tuple[list[str], np.ndarray, np.ndarray]]):
    """Truth with every set's cases; one prediction file per set (its cases only)."""
    truth = tmp_path / "truth.csv"
    truth.write_text("case_id,label\n" + "".join(f"{c},{int(v)}\n" for ids, y, _ in sets.values() for c, v in zip(ids, y)))
    preds = {}
    for name, (ids, _, s) in sets.items():
        p = tmp_path / f"{name}.csv"
        p.write_text("case_id,score\n" + "".join(f"{c},{float(v)!r}\n" for c, v in zip(ids, s)))
        preds[name] = p
    return truth, preds


def _structural(y, s):
    """AUC (Mann-Whitney U / mn, scipy) and DeLong's variance S10/m + S01/n from pairwise placements."""
    y = np.asarray(y).astype(bool)
    x, z = s[y], s[~y]
    auc = stats.mannwhitneyu(x, z).statistic / (len(x) * len(z))
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    return auc, np.var(psi.mean(1), ddof=1) / len(x) + np.var(psi.mean(0), ddof=1) / len(z), len(y)


def test_unpaired_hand_computed(tmp_path):
    # site 1: AUC 0.75, V10 = (0.5, 1), V01 = (1, 0.5) -> Var = 0.125/2 + 0.125/2 = 0.125
    # site 2: perfectly separated -> AUC 1, Var 0; D = -0.25 / sqrt(0.125), df = 0.125^2 / (0.125^2 / 3) = 3
    truth, preds = _write(tmp_path, {"A": (["a1", "a2", "a3", "a4"], np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])),
                                     "B": (["b1", "b2", "b3", "b4"], np.array([0, 0, 1, 1]), np.array([0.2, 0.3, 0.6, 0.9]))})
    res = api.compare("classification", truth, preds, tmp_path / "out", unpaired=True, rank_resamples=50)
    (row,) = res["comparisons"]
    assert row["test"] == "unpaired_delong" and (row["estimate_a"], row["estimate_b"]) == (0.75, 1.0)
    assert row["diff"] == -0.25
    se, df = np.sqrt(0.125), 3.0
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(0.25 / se, df))
    q = stats.t.ppf(0.975, df)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.25 - q * se, -0.25 + q * se))
    summary = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert summary["unpaired"] is True and summary["n_cases"] == 8
    assert {r["model"]: r["rank"] for r in res["ranking"]} == {"A": 2.0, "B": 1.0}


def test_unpaired_matches_proc_transcription_and_one_sided(tmp_path):
    rng = np.random.default_rng(3)
    sets = {}
    for name, n, shift in (("site1", 70, 1.2), ("site2", 90, 0.6)):
        y = rng.integers(0, 2, n)
        s = np.round(1 / (1 + np.exp(-(shift * (2 * y - 1) + rng.standard_normal(n)))), 2)  # ties
        sets[name] = ([f"{name}_{i}" for i in range(n)], y, s)
    truth, preds = _write(tmp_path, sets)
    (a, va, na), (b, vb, nb) = (_structural(sets[k][1], sets[k][2]) for k in ("site1", "site2"))
    d = (a - b) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))  # pROC's delong.unpaired.test
    for alt, p_ref in (("two-sided", 2 * stats.t.sf(abs(d), df)), ("greater", stats.t.sf(d, df)),
                       ("less", stats.t.cdf(d, df))):
        res = compare_files("classification", truth, preds, None, unpaired=True, alternative=alt, rank_resamples=20)
        (row,) = res["comparisons"]
        assert row["diff"] == pytest.approx(a - b) and row["p_value"] == pytest.approx(p_ref, rel=1e-9)
        assert row["test"] == "unpaired_delong" + ("" if alt == "two-sided" else f"_{alt}")


def test_paired_one_sided_through_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(5)
    n = 100
    y = rng.integers(0, 2, n)
    ids = [f"c{i}" for i in range(n)]
    good, poor = y * 0.8 + rng.random(n), y * 0.3 + rng.random(n)
    good, poor = good / good.max(), poor / poor.max()
    truth = tmp_path / "truth.csv"
    truth.write_text("case_id,label\n" + "".join(f"{c},{v}\n" for c, v in zip(ids, y)))
    for name, s in (("good", good), ("poor", poor)):
        (tmp_path / f"{name}.csv").write_text("case_id,score\n" + "".join(f"{c},{float(v)!r}\n" for c, v in zip(ids, s)))
    rc = main(["compare", "--task", "classification", "--truth", str(truth), "--pred", f"good={tmp_path / 'good.csv'}",
               "--pred", f"poor={tmp_path / 'poor.csv'}", "--out", str(tmp_path / "out"), "--alternative", "greater",
               "--rank-resamples", "50", "--json"])
    assert rc == 0
    (row,) = json.loads(capsys.readouterr().out)["comparisons"]
    ref = delong_paired_test(y, good, poor, alternative="greater")
    assert row["test"] == "paired_delong_greater" and row["p_value"] == pytest.approx(ref["p_value"])
    assert row["p_value"] == pytest.approx(delong_paired_test(y, good, poor)["p_value"] / 2) and row["ci_high"] == 1.0


def _two_sites(tmp_path, overlap=0):
    rng = np.random.default_rng(0)
    ya, yb = rng.integers(0, 2, 30), rng.integers(0, 2, 40)
    ids_b = [f"a{i}" for i in range(overlap)] + [f"b{i}" for i in range(40 - overlap)]
    sets = {"A": ([f"a{i}" for i in range(30)], ya, rng.random(30)), "B": (ids_b, yb, rng.random(40))}
    truth = tmp_path / "truth.csv"
    rows = {c: v for ids, y, _ in sets.values() for c, v in zip(ids, y)}
    truth.write_text("case_id,label\n" + "".join(f"{c},{v}\n" for c, v in rows.items()))
    preds = {}
    for name, (ids, _, s) in sets.items():
        preds[name] = tmp_path / f"{name}.csv"
        preds[name].write_text("case_id,score\n" + "".join(f"{c},{float(v)!r}\n" for c, v in zip(ids, s)))
    return truth, preds


def test_different_cases_without_unpaired_name_the_counts(tmp_path):
    truth, preds = _two_sites(tmp_path)
    with pytest.raises(PredictionError, match=r"0 shared, 30 only in A, 40 only in B.*--unpaired"):
        api.compare("classification", truth, preds, tmp_path / "out")


def test_unpaired_with_shared_cases_is_refused(tmp_path):
    truth, preds = _two_sites(tmp_path, overlap=5)
    with pytest.raises(PredictionError, match=r"share cases \(5 shared, 25 only in A, 35 only in B\)"):
        api.compare("classification", truth, preds, tmp_path / "out", unpaired=True)


def test_auc_only_options_refuse_other_metrics_and_tasks(tmp_path):
    truth, preds = _two_sites(tmp_path)
    with pytest.raises(PredictionError, match=r"applies to the AUC .* only.*\['acc'\]"):
        api.compare("classification", truth, preds, tmp_path / "o1", unpaired=True, metrics=["auc", "acc"])
    with pytest.raises(PredictionError, match="--alternative must be one of"):
        api.compare("classification", truth, preds, tmp_path / "o2", unpaired=True, alternative="bigger")
    with pytest.raises(PredictionError, match="classification .AUC. only"):
        api.compare("segmentation", truth, preds, tmp_path / "o3", alternative="less")
