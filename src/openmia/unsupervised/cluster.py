"""Clustering embeddings (``openmia cluster``): reading an embeddings folder, scikit-learn's
clusterers, choosing k, internal indices with bootstrap CIs, and the clustering run that writes
``clusters.csv``, ``summary.json`` and the report.

Methods (scikit-learn):

``kmeans``         ``KMeans(n_clusters=k, n_init=10, random_state=seed)``
``gmm``            ``GaussianMixture(k, covariance_type="diag", n_init=3, random_state=seed)``; diagonal
                   covariances because embeddings have tens of dimensions and few hundred cases
                   (a full covariance per component would be singular)
``agglomerative``  ``AgglomerativeClustering(k, linkage="ward")``
``hdbscan``        ``HDBSCAN(min_cluster_size=...)``: chooses its own number of clusters (``k`` must be
                   ``auto``); cases it leaves unassigned are noise, cluster ``-1``

``k="auto"`` tries k = 2 .. min(10, n - 1) and keeps the best by the **silhouette** (kmeans,
agglomerative; highest) or the **BIC** (gmm; lowest); the criterion and every score are in
``summary.json``. Cluster ids are renumbered by size (0 = largest; ties by first case), so they do
not depend on the library's arbitrary numbering.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia.errors import ConfigError, DataError

METHODS = ("kmeans", "gmm", "agglomerative", "hdbscan")
CRITERION = {"kmeans": "silhouette", "agglomerative": "silhouette", "gmm": "bic"}
K_MAX = 10
SCHEMA = "openmia.clustering/1"


@dataclass
class Embeddings:
    """An embeddings folder (``openmia embed``'s output, or the user's own in that format).

    Attributes:
        x: float64 ``(n, d)``.
        case_ids: ``n`` unique ids.
        labels: truth label per case (``label_name`` when present, else ``label``) or None.
        patient_ids: per case, or None.
        meta: ``embed.json`` (empty when absent).
        folder: where it was read.
    """

    x: np.ndarray
    case_ids: list[str]
    labels: list[str] | None = None
    patient_ids: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None


def read_embeddings(folder: str | Path) -> Embeddings:
    """Read and check ``embeddings.npy`` + ``cases.csv`` (+ ``embed.json``) of ``folder``.

    Raises DataError naming the file and case for: a missing file, an array that is not
    ``(n, d)``, a row count different from the case list, duplicate case ids, empty ids, and
    NaN or infinite values.
    """
    import json

    d = Path(folder)
    npy, cases = d / "embeddings.npy", d / "cases.csv"
    for f in (npy, cases):
        if not f.is_file():
            raise DataError(f"embeddings folder {d}: {f.name} not found (expected embeddings.npy and cases.csv, "
                            "as written by `openmia embed`)")
    try:
        x = np.load(npy, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{npy}: cannot read it as a .npy array ({exc})") from exc
    if x.ndim != 2 or x.shape[1] < 1:
        raise DataError(f"{npy}: expected a 2-D array (cases, features), found shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{npy}: expected real numbers, found dtype {x.dtype}")
    with open(cases, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "case_id" not in rows[0]:
        raise DataError(f"{cases}: expected a header with a case_id column, found {rows[0] if rows else 'an empty file'}")
    head = rows[0]
    body = [r for r in rows[1:] if r]
    for i, r in enumerate(body, start=2):
        if len(r) != len(head):
            raise DataError(f"{cases}, line {i}: {len(r)} cells for {len(head)} columns")
    col = {h: [r[head.index(h)] for r in body] for h in head}
    ids = col["case_id"]
    if len(ids) != x.shape[0]:
        raise DataError(f"{d}: embeddings.npy has {x.shape[0]} rows but cases.csv lists {len(ids)} cases; "
                        "each case needs exactly one embedding (rows in cases.csv order)")
    empty = [i + 2 for i, c in enumerate(ids) if not c.strip()]
    if empty:
        raise DataError(f"{cases}, line {empty[0]}: empty case_id")
    seen: set[str] = set()
    dup = [c for c in ids if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if dup:
        raise DataError(f"{cases}: duplicate case id(s) {', '.join(sorted(set(dup))[:5])}; each case needs one row")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise DataError(f"{npy}: the embedding of case(s) {', '.join(ids[i] for i in bad[:5])} contains NaN or infinite "
                        f"values ({bad.size} case(s) in all)")
    labels = col.get("label_name") or col.get("label")
    if labels is not None and any(not v.strip() for v in labels):
        missing = [ids[i] for i, v in enumerate(labels) if not v.strip()]
        raise DataError(f"{cases}: empty label for case(s) {', '.join(missing[:5])}")
    patients = col.get("patient_id")
    if patients is not None and any(not v.strip() for v in patients):
        missing = [ids[i] for i, v in enumerate(patients) if not v.strip()]
        raise DataError(f"{cases}: empty patient_id for case(s) {', '.join(missing[:5])}")
    meta = json.loads((d / "embed.json").read_text()) if (d / "embed.json").is_file() else {}
    return Embeddings(x.astype(np.float64), ids, labels, patients, meta, d)


# ----------------------------------------------------------------------------- clusterers


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (ties: first case), keeping noise ``-1``."""
    labels = np.asarray(labels)
    ids = [c for c in np.unique(labels) if c != -1]
    order = sorted(ids, key=lambda c: (-int(np.sum(labels == c)), int(np.argmax(labels == c))))
    out = np.full(labels.shape, -1, dtype=np.int64)
    for new, c in enumerate(order):
        out[labels == c] = new
    return out


def check_method(method: str, k: int | str) -> None:
    if method not in METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(METHODS)}, found {method!r}")
    if method == "hdbscan" and k != "auto":
        raise ConfigError(f"--k {k}: hdbscan chooses the number of clusters itself; pass --k auto "
                          "(and --min-cluster-size to control it)")
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2):
        raise ConfigError(f"--k: expected an integer >= 2 or 'auto', found {k!r}")


def fit_partition(x: np.ndarray, method: str, k: int | None, seed: int = 0, *, min_cluster_size: int = 5) -> np.ndarray:
    """Cluster ``x`` ``(n, d)`` into ``k`` clusters (hdbscan: its own number); labels ``(n,)``,
    renumbered by size, ``-1`` = noise."""
    from sklearn import cluster, mixture

    if method == "kmeans":
        lab = cluster.KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    elif method == "gmm":
        lab = mixture.GaussianMixture(k, covariance_type="diag", n_init=3, random_state=seed).fit(x).predict(x)
    elif method == "agglomerative":
        lab = cluster.AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
    elif method == "hdbscan":
        lab = cluster.HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(x)
    else:
        raise ConfigError(f"unknown clustering method {method!r}; expected one of {', '.join(METHODS)}")
    return _relabel(lab)


def choose_k(x: np.ndarray, method: str, seed: int = 0, k_max: int = K_MAX) -> tuple[int, dict[str, Any]]:
    """The k of ``method`` in 2..min(k_max, n-1) by its criterion; returns ``(k, selection)``
    with ``selection = {"mode": "auto", "criterion", "better", "scores": {k: value}}``."""
    from sklearn import mixture
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n < 3:
        raise ConfigError(f"--k auto needs at least 3 cases (k from 2 to n - 1), found {n}")
    crit = CRITERION[method]
    scores: dict[int, float] = {}
    for k in range(2, min(k_max, n - 1) + 1):
        if crit == "bic":
            scores[k] = float(mixture.GaussianMixture(k, covariance_type="diag", n_init=3, random_state=seed).fit(x).bic(x))
        else:
            lab = fit_partition(x, method, k, seed)
            scores[k] = float(silhouette_score(x, lab)) if len(np.unique(lab)) > 1 else float("nan")
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not finite:
        raise ConfigError(f"--k auto: the {crit} is undefined for every k in 2..{max(scores)} (all cases identical?)")
    best = min(finite, key=finite.get) if crit == "bic" else max(finite, key=finite.get)
    sel = {"mode": "auto", "criterion": crit, "better": "lower" if crit == "bic" else "higher",
           "scores": {str(k): v for k, v in scores.items()}, "k": best}
    if best == max(scores) and len(scores) > 1:  # said, not hidden: the criterion may still improve beyond the range
        sel["note"] = (f"k = {best} is the largest k tried: the {crit} was still improving, so the data may have no "
                       "clear number of clusters in 2..10")
    return best, sel


def internal_indices(x: np.ndarray, labels: np.ndarray, *, n_resamples: int = 200, seed: int = 0,
                     alpha: float = 0.05) -> dict[str, dict[str, Any]]:
    """Silhouette (higher is better), Calinski-Harabasz (higher) and Davies-Bouldin (lower) of a
    fixed partition (noise excluded), each with a bootstrap CI over cases; None when fewer than
    2 clusters.

    Silhouette: the mean of the per-case silhouette values ``s_i`` (computed once on all cases),
    BCa bootstrap of that mean — re-computing the silhouette on a resample would be biased upward,
    since a drawn-twice case sits at distance 0 from its copy. Calinski-Harabasz and Davies-Bouldin
    are not per-case means: percentile bootstrap of the index recomputed on each resample (the
    partition kept)."""
    from sklearn import metrics as skm

    from openmia.stats.bootstrap import bootstrap_ci

    keep = labels != -1
    xs, ls = x[keep], labels[keep]
    n = len(ls)
    out: dict[str, dict[str, Any]] = {}
    names = ("silhouette", "calinski_harabasz", "davies_bouldin")
    if n < 3 or not 2 <= len(np.unique(ls)) <= n - 1:
        out = {name: {"value": None, "ci_low": None, "ci_high": None, "n": int(n)} for name in names}
    else:
        s_i = skm.silhouette_samples(xs, ls)

        def sil(w):
            w = np.atleast_2d(w)
            return (w @ s_i) / w.sum(axis=1)

        r = bootstrap_ci(sil, n, n_resamples=n_resamples, seed=seed, alpha=alpha, method="bca")
        out["silhouette"] = {"value": _num(r.value), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high), "n": int(n),
                             "ci_method": f"BCa bootstrap of the mean per-case silhouette ({n_resamples} resamples, seed {seed})"}
        for name, fn in (("calinski_harabasz", skm.calinski_harabasz_score), ("davies_bouldin", skm.davies_bouldin_score)):
            def stat(w, fn=fn):
                vals = []
                for row in np.atleast_2d(w):
                    idx = np.repeat(np.arange(n), row.astype(int))
                    vals.append(fn(xs[idx], ls[idx]) if len(np.unique(ls[idx])) >= 2 else np.nan)
                return np.asarray(vals, float)

            r = bootstrap_ci(stat, n, n_resamples=n_resamples, seed=seed, alpha=alpha, method="percentile")
            out[name] = {"value": _num(r.value), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high), "n": int(n),
                         "ci_method": f"percentile bootstrap over cases ({n_resamples} resamples, seed {seed}; partition fixed)"}
    out["silhouette"]["better"] = out["calinski_harabasz"]["better"] = "higher"
    out["davies_bouldin"]["better"] = "lower"
    return out


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


@dataclass
class Partition:
    """A clustering of ``n`` cases with everything reported about it."""

    labels: np.ndarray  # (n,) int, -1 = noise
    k: int
    selection: dict[str, Any]
    stability: dict[str, Any]
    internal: dict[str, dict[str, Any]]
    method: str
    seed: int
    min_cluster_size: int


def cluster_features(x: np.ndarray, method: str, k: int | str, *, seed: int = 0, n_boot: int = 100,
                     min_cluster_size: int = 5, n_resamples: int = 200,
                     progress: Callable[[int, int], None] | None = None) -> Partition:
    """Cluster ``x`` ``(n, d)`` (``k`` an int or ``"auto"``), then its internal indices and the
    stability of each cluster (:func:`openmia.unsupervised.stability.clusterboot`, ``n_boot`` resamples)."""
    from openmia.unsupervised.stability import clusterboot

    check_method(method, k)
    n = len(x)
    if k != "auto" and k > n:
        raise ConfigError(f"--k {k} is larger than the number of cases ({n}); pass --k {n} or fewer, or --k auto")
    if method == "hdbscan":
        if min_cluster_size < 2 or min_cluster_size > n:
            raise ConfigError(f"--min-cluster-size: expected 2..{n} (the number of cases), found {min_cluster_size}")
        kk, selection = None, {"mode": "auto", "criterion": "HDBSCAN's own (cluster persistence; noise = -1)",
                               "min_cluster_size": min_cluster_size}
    elif k == "auto":
        kk, selection = choose_k(x, method, seed)
    else:
        kk, selection = int(k), {"mode": "given", "k": int(k)}
    labels = fit_partition(x, method, kk, seed, min_cluster_size=min_cluster_size)
    found = int(len([c for c in np.unique(labels) if c != -1]))

    def refit(xb: np.ndarray, s: int) -> np.ndarray:
        return fit_partition(xb, method, kk, s, min_cluster_size=min_cluster_size)

    stab = clusterboot(x, labels, refit, n_boot=n_boot, seed=seed, progress=progress)
    internal = internal_indices(x, labels, n_resamples=n_resamples, seed=seed)
    return Partition(labels, found, selection, stab, internal, method, seed, min_cluster_size)


def composition(labels: np.ndarray, truth: list[str] | None) -> dict[int, dict[str, int]]:
    """``{cluster: {label: count}}`` (empty dicts without truth)."""
    out: dict[int, dict[str, int]] = {}
    for c in sorted(set(int(v) for v in labels)):
        sel = np.flatnonzero(labels == c)
        if truth is None:
            out[c] = {}
            continue
        names, counts = np.unique([truth[i] for i in sel], return_counts=True)
        out[c] = {str(a): int(b) for a, b in zip(names, counts)}
    return out


def cluster_rows(part: Partition, truth: list[str] | None) -> list[dict[str, Any]]:
    """One dict per cluster (noise last): size, fraction, stability, label composition."""
    n = len(part.labels)
    comp = composition(part.labels, truth)
    rows = []
    for c in sorted(comp, key=lambda v: (v == -1, v)):
        size = int(np.sum(part.labels == c))
        st = part.stability["clusters"].get(c, {})
        rows.append({"cluster": c, "size": size, "fraction": size / n, "noise": c == -1,
                     "mean_jaccard": st.get("mean_jaccard"), "dissolved": st.get("dissolved"),
                     "recovered": st.get("recovered"), "unstable": st.get("unstable"),
                     "label_composition": comp[c]})
    return rows


# ----------------------------------------------------------------------------- the command


def cluster_embeddings(embeddings: str | Path, out_dir: str | Path, *, method: str = "kmeans", k: int | str = "auto",
                       seed: int = 0, n_boot: int = 100, min_cluster_size: int = 5, n_resamples: int = 500,
                       scale: str = "none", maps: tuple[str, ...] = ("pca", "tsne", "umap"), montage: bool = True,
                       root: str | Path | None = None, overwrite: bool = False,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``openmia cluster``: cluster an embeddings folder and write the results into ``out_dir``.

    Writes ``clusters.csv`` (``case_id,cluster``), ``summary.json``, ``report.md`` + ``report.html``
    and the figures; with truth labels in ``cases.csv`` also ``truth.csv`` and ``eval/`` (the
    clustering evaluator: ARI, AMI, NMI, homogeneity, completeness, V-measure, purity with BCa
    bootstrap CIs over cases, ``n_resamples``). ``scale``: ``none`` or ``standard`` (z-score each
    feature first). ``root``: where the embedded data set's images are, for the montage (default:
    the ``root`` recorded in ``embed.json``).

    Returns:
        The summary dict (also written as ``summary.json``) with ``out`` added.
    """
    from openmia import fileio
    from openmia.unsupervised.report import write_cluster_report

    check_method(method, k)
    if scale not in ("none", "standard"):
        raise ConfigError(f"--scale: expected none or standard, found {scale!r}")
    emb = read_embeddings(embeddings)
    out = fileio.prepare_output_dir(out_dir, inputs=(embeddings,), overwrite=overwrite)
    x = emb.x
    if scale == "standard":
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    part = cluster_features(x, method, k, seed=seed, n_boot=n_boot, min_cluster_size=min_cluster_size,
                            n_resamples=n_resamples, progress=progress)
    rows = cluster_rows(part, emb.labels)
    summary: dict[str, Any] = {
        "schema": SCHEMA, "method": method, "k": part.k, "k_selection": part.selection, "seed": seed,
        "scale": scale, "n_cases": len(emb.case_ids), "n_features": int(x.shape[1]),
        "noise_cases": int(np.sum(part.labels == -1)),
        "embeddings": {"folder": str(emb.folder), **{key: emb.meta.get(key) for key in
                       ("method", "dataset", "split", "layer", "run", "embeddings_sha256")}},
        "clusters": rows, "internal": part.internal,
        "stability": {key: v for key, v in part.stability.items() if key != "clusters"},
        "unstable_clusters": [r["cluster"] for r in rows if r["unstable"]],
        "conventions": {"cluster ids": "renumbered by size, 0 = largest; -1 = noise (hdbscan)",
                        "gmm": "diagonal covariances", "agglomerative": "Ward linkage",
                        "unstable": "mean bootstrap Jaccard < 0.6 (Hennig 2007)"},
    }
    with fileio.atomic_dir(out) as tmp:
        fileio.write_csv(tmp / "clusters.csv", [["case_id", "cluster"], *([c, int(v)] for c, v in zip(emb.case_ids, part.labels))])
        if emb.labels is not None:
            from openmia.evaluation.other_tasks import evaluate_clustering_files

            fileio.write_csv(tmp / "truth.csv", [["case_id", "label"], *zip(emb.case_ids, emb.labels)])
            res = evaluate_clustering_files(tmp / "clusters.csv", tmp / "truth.csv", tmp / "eval",
                                            n_resamples=n_resamples, seed=seed)
            summary["evaluation"] = {"metrics": [m for m in res.summary["metrics"]], "n_classes": res.summary["n_classes"],
                                     "bootstrap": res.summary["bootstrap"], "folder": "eval/"}
        summary["report"] = write_cluster_report(tmp, x, emb, part, rows, summary, maps=maps, montage=montage, root=root)
        fileio.write_json(tmp / "summary.json", summary)
    return {**summary, "out": str(out)}


def _read_case_column(path: str | Path, default_name: str, column: str) -> dict[str, str]:
    """``{case_id: column}`` of a CSV (``default_name`` inside a folder); DataError naming the file
    and line for a missing file or column or a duplicate case."""
    p = Path(path)
    if p.is_dir():
        p = p / default_name
    if not p.is_file():
        raise DataError(f"{p}: not found (expected a {default_name} with case_id,{column})")
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "case_id" not in rows[0] or column not in rows[0]:
        raise DataError(f"{p}: expected a header with case_id and {column} columns")
    ci, vi = rows[0].index("case_id"), rows[0].index(column)
    out: dict[str, str] = {}
    for line, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if r[ci] in out:
            raise DataError(f"{p}, line {line}: duplicate case {r[ci]!r}")
        out[r[ci]] = r[vi]
    return out


def read_clusters(path: str | Path) -> dict[str, str]:
    """``{case_id: cluster}`` of a ``clusters.csv``; DataError for a missing column or duplicate case."""
    return _read_case_column(path, "clusters.csv", "cluster")


def compare_partitions(truth: dict[str, str], a: dict[str, str], b: dict[str, str], *, metrics: tuple[str, ...] = ("ari", "nmi"),
                       n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Paired bootstrap difference ``score(a) - score(b)`` against ``truth`` for each metric: the
    same case resamples for both partitions and every metric (percentile CI), and
    ``p_not_better``, the share of resamples where the difference is <= 0 (a one-sided bootstrap
    p-value for "a is better")."""
    from sklearn import metrics as skm

    from openmia.metrics.clustering import clustering_metrics
    from openmia.stats.bootstrap import resample_weights

    # only the asked-for scores per resample (AMI's expected mutual information is the slow one)
    direct = {"ari": skm.adjusted_rand_score, "nmi": skm.normalized_mutual_info_score,
              "ami": skm.adjusted_mutual_info_score}

    def scores(tt, pp) -> dict[str, float]:
        if all(m in direct for m in metrics):
            return {m: float(direct[m](tt, pp)) for m in metrics}
        return clustering_metrics(tt, pp)

    for name, part in (("first", a), ("second", b)):
        missing = [c for c in truth if c not in part]
        if missing:
            raise DataError(f"{name} clustering has no cluster for case(s) {', '.join(missing[:5])}")
    ids = list(truth)
    t = np.array([truth[c] for c in ids])
    pa = np.array([a[c] for c in ids])
    pb = np.array([b[c] for c in ids])
    n = len(ids)
    boot = {m: [] for m in metrics}
    for row in resample_weights(n, n_resamples, seed):
        idx = np.repeat(np.arange(n), row.astype(int))
        ma, mb = scores(t[idx], pa[idx]), scores(t[idx], pb[idx])
        for m in metrics:
            boot[m].append(ma[m] - mb[m])
    full_a, full_b = scores(t, pa), scores(t, pb)
    out: dict[str, Any] = {"n_cases": n, "n_resamples": n_resamples, "seed": seed,
                           "method": "paired percentile bootstrap over cases (same resamples for both)"}
    for m in metrics:
        v = np.asarray(boot[m], float)
        v = v[np.isfinite(v)]
        lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
        out[m] = {"a": full_a[m], "b": full_b[m], "diff": full_a[m] - full_b[m], "ci_low": float(lo),
                  "ci_high": float(hi), "p_not_better": float(np.mean(v <= 0))}
    return out


def read_truth(path: str | Path) -> dict[str, str]:
    """``{case_id: label}`` of a ``case_id,label`` CSV (or the ``truth.csv`` of a cluster output folder)."""
    return _read_case_column(path, "truth.csv", "label")
