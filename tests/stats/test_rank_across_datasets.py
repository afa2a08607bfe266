"""openmia rank: score tables across data sets (CSV long/wide, compare outputs), the statistics of
openmia.stats.multiple on them, the CD diagram, the CLI and api.rank.

The numbers are Demšar's worked example (JMLR 7, 2006, Table 6 and §3.2.2) fed through the files,
cross-checked against scipy.stats.friedmanchisquare and the hand values of test_friedman_posthoc.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from openmia import api
from openmia.cli.main import main
from openmia.errors import ConfigError, OutputConflictError, PredictionError, UnknownNameError
from openmia.evaluation.cd_diagram import plot_cd_diagram
from openmia.evaluation.multi_dataset import ScoreTable, rank_files, rank_table, read_dataset_files, read_scores_csv

NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DATASETS = ["adult", "breast", "wisconsin", "cmc", "ionosphere", "iris", "liver", "lung", "lymph", "mushroom", "tumor",
            "rheum", "voting", "wine"]
# Demšar 2006, Table 6: the ranks printed in parentheses (1 = best), his worked example's input
RANKS = np.array([
    [4, 3, 2, 1], [1, 2, 3, 4], [4, 1, 2, 3], [4, 1, 3, 2], [4, 2, 3, 1], [1, 2.5, 4, 2.5], [3, 2, 4, 1], [2.5, 2.5, 4, 1],
    [4, 3, 2, 1], [2.5, 2.5, 2.5, 2.5], [4, 2.5, 1, 2.5], [3, 2, 4, 1], [4, 1, 2, 3], [3, 1, 4, 2]])


def _long_csv(path, values=RANKS, header="dataset,model,score"):
    lines = [header] + [f"{d},{m},{v:g}" for d, row in zip(DATASETS, values) for m, v in zip(NAMES, row)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _wide_csv(path, values=RANKS):
    lines = ["Dataset," + ",".join(NAMES)] + [d + "," + ",".join(f"{v:g}" for v in row) for d, row in zip(DATASETS, values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_long_and_wide_csv_give_the_same_table_and_demsar_numbers(tmp_path):
    a = read_scores_csv(_long_csv(tmp_path / "long.csv"))
    b = read_scores_csv(_wide_csv(tmp_path / "wide.csv"))
    assert a.datasets == b.datasets == DATASETS and a.models == b.models == NAMES
    np.testing.assert_array_equal(a.scores, RANKS) and np.testing.assert_array_equal(b.scores, RANKS)
    res = rank_table(a, control="C4.5", higher_is_better=False, alpha=0.05)
    # Demšar §3.2.2: average ranks 3.143, 2.000, 2.893, 1.964; Nemenyi CD 1.25; Bonferroni-Dunn CD 1.16; Holm rejects
    # C4.5+m+cf and C4.5+m against C4.5, Bonferroni-Dunn only C4.5+m+cf
    assert [round(res["average_ranks"][m], 3) for m in NAMES] == [3.143, 2.0, 2.893, 1.964]
    assert res["nemenyi"]["critical_difference"] == pytest.approx(1.25, abs=5e-3)
    assert not any(p["significant"] for p in res["nemenyi"]["pairs"])
    assert res["nemenyi"]["groups"] == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    ctrl = {c["model"]: c for c in res["control"]["comparisons"]}
    assert res["control"]["critical_difference_bonferroni_dunn"] == pytest.approx(1.16, abs=1e-2)
    assert [ctrl[m]["significant_holm"] for m in NAMES[1:]] == [True, False, True]
    assert [ctrl[m]["significant_bonferroni_dunn"] for m in NAMES[1:]] == [False, False, True]
    # Friedman: tie-corrected by default (source: SciPy), Demšar's 9.28 uncorrected also reported
    assert res["friedman"]["tie_correction"] is True
    assert res["friedman"]["chi2"] == pytest.approx(stats.friedmanchisquare(*RANKS.T).statistic, rel=1e-12)
    assert res["friedman"]["chi2_uncorrected"] == pytest.approx(9.28, abs=5e-3)
    assert rank_table(a, higher_is_better=False, tie_correction=False)["friedman"]["chi2"] == pytest.approx(9.28, abs=5e-3)


def test_metric_and_label_columns_and_direction(tmp_path):
    p = tmp_path / "s.csv"
    rows = ["dataset,model,metric,label,score"]
    for d, hd, dice in (("d1", (3.0, 5.0, 9.0), (0.9, 0.8, 0.7)), ("d2", (2.0, 4.0, 8.0), (0.95, 0.85, 0.75)),
                        ("d3", (4.0, 3.0, 7.0), (0.85, 0.9, 0.6))):
        for m, h, s in zip("ABC", hd, dice):
            rows += [f"{d},{m},hd95,all,{h}", f"{d},{m},dice,all,{s}", f"{d},{m},dice,1,{1 - s}"]
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(PredictionError, match="several metrics .*choose one with --metric"):
        read_scores_csv(p)
    hd = read_scores_csv(p, metric="hd95")
    assert hd.metric == "hd95" and hd.higher_is_better is False and hd.scores[0].tolist() == [3.0, 5.0, 9.0]
    res = rank_table(hd)
    assert res["higher_is_better"] is False and res["direction_source"] == "metric hd95"
    assert res["ranks"][0].tolist() == [1.0, 2.0, 3.0] and res["ranks"][2].tolist() == [2.0, 1.0, 3.0]
    dice = read_scores_csv(p, metric="dice")  # label "all" is preferred when several labels are present
    assert dice.scores[0].tolist() == [0.9, 0.8, 0.7]
    assert read_scores_csv(p, metric="dice", label="1").scores[0].tolist() == pytest.approx([0.1, 0.2, 0.3])
    # the same ranking from dice (higher is better) and hd95 (lower is better)
    assert rank_table(dice)["average_ranks"] == res["average_ranks"]
    with pytest.raises(ConfigError, match="--higher-is-better contradicts"):
        rank_table(hd, higher_is_better=True)
    with pytest.raises(PredictionError, match="no rows with metric 'nsd'; found hd95, dice"):
        read_scores_csv(p, metric="nsd")
    # no metric known: higher is better by default, and the result says so
    plain = ScoreTable.from_array([[1, 2], [3, 4]], ["x", "y"], ["m1", "m2"])
    r = rank_table(plain)
    assert r["higher_is_better"] is True and r["direction_source"].startswith("default")
    assert rank_table(plain, higher_is_better=False)["direction_source"] == "option"


@pytest.mark.parametrize("text, match", [
    ("", "is empty; expected a header line such as 'dataset,model,score'"),
    ("model,score\nA,1\n", r"expected columns dataset,model,score .* found columns \['model', 'score'\]"),
    ("dataset,model\nd1,A\n", "missing column 'score'"),
    ("dataset,model,score\nd1,A,0.9\nd1,B,high\n", r"line 3, column 'score': 'high' is not a number"),
    ("dataset,model,score\nd1,A,0.9\nd1,B,nan\n", r"line 3, column 'score': 'nan' is not a finite number"),
    ("dataset,model,score\nd1,A,0.9\nd1,B,0.8\nd1,A,0.7\n", r"line 4: a second score for model 'A' on data set 'd1' \(the first is at .*line 2\)"),
    ("dataset,model,score\nd1,A,0.9\nd1,B,0.8\nd2,A,0.7\n", r"data set 'd2' \(.*s.csv\) has no score for 'B'"),
    ("dataset,A,B\nd1,0.9,0.8\nd2,0.7,\n", r"data set 'd2' \(.*s.csv\) has no score for 'B'"),
    ("dataset,model,score\nd1,A,0.9\nd1,B,0.8\n", "at least two data sets, found 1 \\(d1\\)"),
    ("dataset,model,score\nd1,A,0.9\nd2,A,0.8\n", "at least two models, found 1 \\(A\\)"),
])
def test_bad_score_files_name_the_file_and_column(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(PredictionError, match=match) as e:
        read_scores_csv(p)
    assert str(p) in str(e.value)


def test_drop_incomplete_and_unknown_control(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("dataset,model,score\nd1,A,3\nd1,B,2\nd2,A,3\nd2,B,1\nd3,A,1\n")
    t = read_scores_csv(p, drop_incomplete=True)
    assert t.datasets == ["d1", "d2"] and t.dropped == ["d3"]
    res = rank_table(t)
    assert any("dropped 1 data set(s) missing a model: d3" in n for n in res["notes"])
    with pytest.raises(UnknownNameError, match="control model 'a' is not among the models A, B. Did you mean 'A'"):
        rank_table(t, control="a")
    with pytest.raises(ConfigError, match="alpha"):
        rank_files(p, alpha=0)


def _counting_compare(tmp_path, name, shift_b, shift_c):
    """A real `openmia compare --task counting` output for three models (a best, c worst)."""
    from openmia.evaluation.compare import compare_files

    d = tmp_path / name
    d.mkdir()
    (d / "t.csv").write_text("case_id,count\n" + "".join(f"c{i},{10 + i}\n" for i in range(8)))
    for m, shift in (("a", 0), ("b", shift_b), ("c", shift_c)):
        (d / f"{m}.csv").write_text("case_id,count\n" + "".join(f"c{i},{10 + i + shift + (i % 2)}\n" for i in range(8)))
    compare_files("counting", d / "t.csv", {m: d / f"{m}.csv" for m in "abc"}, d / "cmp", n_resamples=50, rank_resamples=10)
    return d / "cmp"


def test_compare_outputs_as_datasets(tmp_path):
    outs = {"one": _counting_compare(tmp_path, "one", 2, 5), "two": _counting_compare(tmp_path, "two", 3, 4),
            "three": _counting_compare(tmp_path, "three", 6, 1)}
    with pytest.raises(PredictionError, match="holds several metrics .*count_abs_error"):
        read_dataset_files(outs)
    # folder, compare.json and ranking.csv are all accepted; the metric gives the direction (an error: lower is better)
    t = read_dataset_files({"one": outs["one"], "two": outs["two"] / "compare.json", "three": outs["three"] / "ranking.csv"},
                           metric="count_abs_error")
    assert t.models == ["a", "b", "c"] and t.higher_is_better is False and t.metric == "count_abs_error"
    # mean absolute error: model a is off by (i % 2) -> 0.5; b by shift + (i % 2) -> shift + 0.5
    assert t.scores.tolist() == [[0.5, 2.5, 5.5], [0.5, 3.5, 4.5], [0.5, 6.5, 1.5]]
    res = rank_table(t)
    assert res["ranks"].tolist() == [[1, 2, 3], [1, 2, 3], [1, 3, 2]]
    # the same through the CLI, one --dataset per compare output
    assert main(["rank", "--out", str(tmp_path / "r"), "--metric", "count_abs_error", "--control", "a",
                 *[x for n, o in outs.items() for x in ("--dataset", f"{n}={o}")]]) == 0
    saved = json.loads((tmp_path / "r" / "rank.json").read_text())
    assert saved["direction_source"] == "metric count_abs_error" and saved["scores"] == t.scores.tolist()
    assert saved["average_ranks"] == {"a": 1.0, "b": pytest.approx(7 / 3), "c": pytest.approx(8 / 3)}
    with pytest.raises(PredictionError, match="holds no compare.json"):
        read_dataset_files({"x": tmp_path, "y": outs["one"]}, metric="count_abs_error")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "openmia.evaluate/1"}')
    with pytest.raises(PredictionError, match="not an `openmia compare` compare.json"):
        read_dataset_files({"x": bad, "y": outs["one"]}, metric="count_abs_error")
    # model,score CSVs per data set
    (tmp_path / "p.csv").write_text("model,score\nA,0.9\nB,0.8\n")
    (tmp_path / "q.csv").write_text("model,score\nA,0.7\nB,0.75\n")
    t2 = read_dataset_files({"p": tmp_path / "p.csv", "q": tmp_path / "q.csv"}, metric="dice")
    assert t2.scores.tolist() == [[0.9, 0.8], [0.7, 0.75]] and t2.higher_is_better is True


def test_cli_rank_writes_every_table_and_refuses_a_full_folder(tmp_path, capsys):
    scores = _long_csv(tmp_path / "scores.csv")
    out = tmp_path / "out"
    rc = main(["rank", "--scores", str(scores), "--out", str(out), "--control", "C4.5", "--lower-is-better", "--alpha", "0.1"])
    printed = capsys.readouterr().out
    assert rc == 0 and "Friedman chi2 = 10.23 (tie-corrected)" in printed and "CD = 1.118" in printed
    assert sorted(p.name for p in out.iterdir()) == ["average_ranks.csv", "cd_diagram.png", "control.csv", "friedman.csv",
                                                     "nemenyi.csv", "rank.json", "ranks.csv"]
    summary = json.loads((out / "rank.json").read_text())
    assert summary["schema"] == "openmia.rank/1" and summary["higher_is_better"] is False and summary["alpha"] == 0.1
    assert summary["friedman"]["chi2_uncorrected"] == pytest.approx(9.27857142857, abs=1e-9)
    # Demšar at p = 0.10: C4.5 differs from C4.5+m and C4.5+m+cf (Nemenyi); groups as his Figure 1(a)
    sig = {(p["model_a"], p["model_b"]) for p in summary["nemenyi"]["pairs"] if p["significant"]}
    assert sig == {("C4.5", "C4.5+m"), ("C4.5", "C4.5+m+cf")}
    assert summary["nemenyi"]["groups"] == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]
    nem = list(csv.DictReader(open(out / "nemenyi.csv")))
    assert len(nem) == 6 and {r["significant"] for r in nem} == {"true", "false"}
    ctrl = list(csv.DictReader(open(out / "control.csv")))
    assert [r["model"] for r in ctrl] == ["C4.5+m", "C4.5+cf", "C4.5+m+cf"] and ctrl[0]["control"] == "C4.5"
    fried = {r["test"]: r for r in csv.DictReader(open(out / "friedman.csv"))}
    assert fried["friedman_chi2_tie_corrected"]["used"] == "true" and fried["iman_davenport_f"]["df2"] == "39"
    ranks = list(csv.DictReader(open(out / "ranks.csv")))
    assert len(ranks) == 56 and ranks[0] == {"dataset": "adult", "model": "C4.5", "score": "4.0", "rank": "4.0"}
    assert (out / "cd_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a non-empty --out is refused without --overwrite (nothing rewritten), accepted with it
    before = (out / "rank.json").stat().st_mtime_ns
    assert main(["rank", "--scores", str(scores), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (out / "rank.json").stat().st_mtime_ns == before
    assert main(["rank", "--scores", str(scores), "--out", str(out), "--overwrite", "--no-tie-correction",
                 "--lower-is-better"]) == 0
    assert "Friedman chi2 = 9.279 (uncorrected)" in capsys.readouterr().out
    assert json.loads((out / "rank.json").read_text())["control"] is None
    assert not (out / "control.csv").exists()  # the earlier run's control table would contradict rank.json
    # argument and input errors: exit 2 with the file / option named
    assert main(["rank", "--dataset", "x", "--out", str(tmp_path / "o2")]) == 2
    assert "--dataset expects NAME=PATH, found 'x'" in capsys.readouterr().err
    assert main(["rank", "--scores", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o3")]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err
    assert main(["rank", "--scores", str(scores), "--out", str(tmp_path / "o4"), "--control", "C45"]) == 2
    assert "Did you mean 'C4.5'" in capsys.readouterr().err


def test_api_rank_matches_the_cli_and_protects_outputs(tmp_path):
    scores = _wide_csv(tmp_path / "wide.csv")
    res = api.rank(scores, tmp_path / "out", control="C4.5", higher_is_better=False)
    assert set(res["files"]) == {"ranks", "average_ranks", "friedman", "nemenyi", "control", "cd_diagram", "summary"}
    assert all(p.is_file() for p in res["files"].values())
    assert res["friedman"]["p_value"] == pytest.approx(stats.friedmanchisquare(*RANKS.T).pvalue)  # source: SciPy
    with pytest.raises(OutputConflictError, match="pass --overwrite"):
        api.rank(scores, tmp_path / "out")
    with pytest.raises(OutputConflictError):
        api.rank(scores, tmp_path, overwrite=True)  # the output folder would contain the input
    with pytest.raises(ConfigError, match="not both"):
        api.rank(scores, datasets={"a": scores})
    assert api.rank(scores)["files"] == {}  # no out: nothing written


def test_cd_diagram_files(tmp_path):
    avg = [3.143, 2.0, 2.893, 1.964]
    p = plot_cd_diagram(avg, NAMES, tmp_path / "cd.png", critical_difference=1.25)
    assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 2000
    s = plot_cd_diagram(avg, NAMES, tmp_path / "cd.svg", critical_difference=1.12, control="C4.5", control_cd=1.04, title="t")
    assert b"<svg" in s.read_bytes()[:500]
    with pytest.raises(PredictionError, match="control 'X' is not one of the models"):
        plot_cd_diagram(avg, NAMES, tmp_path / "x.png", control="X")
    with pytest.raises(PredictionError, match="one name each"):
        plot_cd_diagram(avg, NAMES[:3], tmp_path / "x.png")


def test_modules_import_neither_torch_nor_matplotlib():
    code = ("import sys, openmia.evaluation.multi_dataset, openmia.evaluation.cd_diagram, openmia.cli.rank_cmd, "
            "openmia.stats.multiple; print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
