"""openmia cluster: reading embeddings (bad input named), k choice, the clustering run and its
files, scores against labels, paired differences; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmia.errors import ConfigError, DataError
from openmia.unsupervised.cluster import (choose_k, cluster_embeddings, compare_partitions, fit_partition,
                                          read_embeddings)


def write_embeddings(folder, x, ids=None, labels=None, patients=None):
    from openmia import fileio

    folder.mkdir(parents=True, exist_ok=True)
    ids = ids or [f"c{i:03d}" for i in range(len(x))]
    head = ["case_id"] + (["label"] if labels is not None else []) + (["patient_id"] if patients is not None else [])
    rows = [[c] + ([labels[i]] if labels is not None else []) + ([patients[i]] if patients is not None else [])
            for i, c in enumerate(ids)]
    np.save(folder / "embeddings.npy", np.asarray(x, np.float32))
    fileio.write_csv(folder / "cases.csv", [head, *rows])
    return folder


def blobs(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0]], float)
    x = np.concatenate([rng.normal(c, 0.5, (n_per, 3)) for c in centres])
    y = np.repeat(["a", "b", "c"], n_per)
    return x, list(y)


# ----------------------------------------------------------------------------- bad input


def test_different_lengths_named(tmp_path):
    d = write_embeddings(tmp_path / "e", np.zeros((5, 2)), ids=[f"c{i}" for i in range(5)])
    np.save(d / "embeddings.npy", np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match="4 rows but cases.csv lists 5 cases"):
        read_embeddings(d)


def test_nan_embedding_names_the_case(tmp_path):
    x = np.ones((4, 2))
    x[2, 1] = np.nan
    d = write_embeddings(tmp_path / "e", x, ids=["p", "q", "r", "s"])
    with pytest.raises(DataError, match="case\\(s\\) r contains NaN"):
        read_embeddings(d)


def test_not_2d_and_duplicate_ids(tmp_path):
    d = write_embeddings(tmp_path / "e", np.zeros((3, 2)), ids=["a", "b", "a"])
    with pytest.raises(DataError, match="duplicate case id\\(s\\) a"):
        read_embeddings(d)
    np.save(d / "embeddings.npy", np.zeros(3, np.float32))
    with pytest.raises(DataError, match="2-D array"):
        read_embeddings(d)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="embeddings.npy not found"):
        read_embeddings(tmp_path)


def test_k_larger_than_cases(tmp_path):
    d = write_embeddings(tmp_path / "e", np.random.default_rng(0).normal(size=(6, 2)))
    with pytest.raises(ConfigError, match="--k 7 is larger than the number of cases \\(6\\)"):
        cluster_embeddings(d, tmp_path / "out", k=7, n_boot=2)
    with pytest.raises(ConfigError, match="hdbscan chooses"):
        cluster_embeddings(d, tmp_path / "out", method="hdbscan", k=3)
    with pytest.raises(ConfigError, match="integer >= 2"):
        cluster_embeddings(d, tmp_path / "out", k=1)


# ----------------------------------------------------------------------------- choice of k


@pytest.mark.parametrize("method,criterion", [("kmeans", "silhouette"), ("agglomerative", "silhouette"), ("gmm", "bic")])
def test_auto_k_finds_three_blobs(method, criterion):
    x, _ = blobs()
    k, sel = choose_k(x, method, seed=0, k_max=5)
    assert k == 3 and sel["criterion"] == criterion
    assert set(sel["scores"]) == {str(v) for v in range(2, 6)}
    if criterion == "silhouette":  # the criterion's value at k=3 is sklearn's silhouette of that partition
        from sklearn.metrics import silhouette_score

        assert sel["scores"]["3"] == pytest.approx(silhouette_score(x, fit_partition(x, method, 3, 0)))


def test_relabelled_by_size():
    x = np.r_[np.zeros((3, 1)), np.full((7, 1), 10.0)]
    lab = fit_partition(x, "kmeans", 2, 0)
    assert lab.tolist() == [1] * 3 + [0] * 7  # 0 = the largest cluster


# ----------------------------------------------------------------------------- the run


def test_cluster_run_with_labels(tmp_path):
    x, y = blobs()
    d = write_embeddings(tmp_path / "e", x, labels=y)
    res = cluster_embeddings(d, tmp_path / "out", method="kmeans", k="auto", n_boot=5, n_resamples=50,
                             maps=("pca",), montage=True)
    out = tmp_path / "out"
    for f in ("clusters.csv", "summary.json", "report.md", "report.html", "truth.csv", "map_pca.png", "eval/summary.json"):
        assert (out / f).is_file(), f
    s = json.loads((out / "summary.json").read_text())
    assert s["k"] == 3 and s["k_selection"]["criterion"] == "silhouette"
    ari = next(m for m in s["evaluation"]["metrics"] if m["metric"] == "ari")
    assert ari["value"] == pytest.approx(1.0)
    assert sorted(r["size"] for r in s["clusters"]) == [20, 20, 20]
    assert all(len(r["label_composition"]) == 1 for r in s["clusters"])  # each cluster is one class
    assert s["unstable_clusters"] == [] and res["internal"]["silhouette"]["ci_low"] is not None
    # no data set in embed.json: the montage is skipped, and the report says why
    assert any("montage: skipped" in n for n in s["report"]["notes"])
    assert "montage: skipped" in (out / "report.md").read_text()


def test_cluster_without_labels_reports_internal_and_hdbscan_noise(tmp_path):
    x, _ = blobs()
    x = np.r_[x, [[30.0, 30.0, 30.0]]]  # an outlier: HDBSCAN noise
    d = write_embeddings(tmp_path / "e", x)
    res = cluster_embeddings(d, tmp_path / "out", method="hdbscan", k="auto", n_boot=3, n_resamples=20,
                             maps=("pca",), montage=False)
    assert "evaluation" not in res and res["k"] == 3 and res["noise_cases"] == 1
    assert res["clusters"][-1]["noise"] and res["clusters"][-1]["mean_jaccard"] is None
    from sklearn.metrics import davies_bouldin_score

    lab = np.array([int(line.split(",")[1]) for line in (tmp_path / "out" / "clusters.csv").read_text().split()[1:]])
    keep = lab != -1
    assert res["internal"]["davies_bouldin"]["value"] == pytest.approx(davies_bouldin_score(x[keep], lab[keep]))


def test_compare_partitions_paired():
    from sklearn.metrics import adjusted_rand_score

    truth = {f"c{i}": "ab"[i % 2] for i in range(40)}
    a = dict(truth)  # perfect
    b = {c: ("a" if i < 20 else "b") for i, c in enumerate(truth)}  # unrelated to the classes
    d = compare_partitions(truth, a, b, n_resamples=100, seed=1)
    t, pb = list(truth.values()), list(b.values())
    assert d["ari"]["diff"] == pytest.approx(1.0 - adjusted_rand_score(t, pb))
    assert d["ari"]["ci_low"] > 0.5 and d["ari"]["p_not_better"] == 0.0
    with pytest.raises(DataError, match="no cluster for case"):
        compare_partitions(truth, {"c0": "a"}, b)


def test_cli_cluster_json_and_error(tmp_path, capsys):
    from openmia.cli.main import main

    x, y = blobs(10)
    d = write_embeddings(tmp_path / "e", x, labels=y)
    rc = main(["cluster", "--embeddings", str(d), "--k", "3", "--method", "agglomerative", "--out", str(tmp_path / "o"),
               "--stability-resamples", "3", "--n-resamples", "30", "--maps", "pca", "--no-montage", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 3 and out["k_selection"] == {"mode": "given", "k": 3}
    rc = main(["cluster", "--embeddings", str(d), "--k", "31", "--out", str(tmp_path / "o2")])
    assert rc == 2 and "larger than the number of cases (30)" in capsys.readouterr().err


def test_internal_indices_match_sklearn_and_cis_cover_them():
    from sklearn import metrics as skm

    from openmia.unsupervised.cluster import internal_indices

    x, _ = blobs(15, seed=2)
    x = x + np.random.default_rng(1).normal(0, 1.5, x.shape)  # overlapping: values well inside (−1, 1)
    lab = fit_partition(x, "kmeans", 3, 0)
    ind = internal_indices(x, lab, n_resamples=200, seed=0)
    for name, fn in (("silhouette", skm.silhouette_score), ("calinski_harabasz", skm.calinski_harabasz_score),
                     ("davies_bouldin", skm.davies_bouldin_score)):
        assert ind[name]["value"] == pytest.approx(fn(x, lab))
    s = ind["silhouette"]  # a CI of the per-case mean: it brackets the estimate (no duplicate-case bias)
    assert s["ci_low"] < s["value"] < s["ci_high"]
