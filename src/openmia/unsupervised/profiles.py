"""Patient profiles (``openmia profile``): patients clustered on their image embeddings and tabular
covariates, each profile described by its size, covariate means and medians with bootstrap CIs
and its label composition.

Steps:

1. **Patients.** Cases are grouped by ``patient_id`` (a column of ``cases.csv``); without it, one case
   is one patient (``patient_id`` = ``case_id``, as in MSD: one volume per patient). A patient's
   embedding is the mean of its cases' embeddings.
2. **Covariates.** A CSV ``patient_id,<numeric columns>`` (every patient needs a row; duplicate ids,
   empty or non-numeric cells are errors), and measurements openmia derives itself: structure
   volumes in mm³ per label from label maps (``volumes_from``: a folder of ``<case_id>.nii.gz``
   (spacing from the header) or ``.png``/``.npy`` with ``spacing``; e.g. the truth, or the output
   of ``openmia predict`` with a segmentation run) — ``volume_<label name>_mm3``, a patient's volume
   being the mean over its cases — and ratios of two covariates (``"A/B"``).
3. **Features.** ``features="auto"``: covariates and embeddings when covariates exist, else the
   embeddings. Each covariate is z-scored; the embeddings are reduced to ``embedding_dims``
   principal components, each z-scored — every feature column has unit variance, so a
   50-dimensional embedding does not outweigh three covariates by its width.
4. **Clustering** with :func:`openmia.unsupervised.cluster.cluster_features` (k by silhouette/BIC
   with ``auto``) and Hennig's bootstrap stability per profile.
5. **Profile table**: per profile the number of patients, each covariate's mean (BCa bootstrap CI)
   and median (percentile bootstrap CI) over its patients, the label composition of its cases,
   and its stability (mean Jaccard; < 0.6 = unstable).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from openmia.errors import ConfigError, DataError

FEATURES = ("auto", "both", "embeddings", "covariates")
SCHEMA = "openmia.profiles/1"


def read_covariates(path: str | Path, patients: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Numeric covariates per patient from a CSV ``patient_id,<columns>``, aligned to ``patients``.

    Returns ``({column: values (n_patients,)}, unused_ids)`` (ids in the CSV without embeddings).
    Raises DataError naming the file, line, column and value for: no ``patient_id`` column, no
    covariate column, a duplicate id, an empty, non-numeric or non-finite cell, and patients
    without a row.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"covariates file {p} not found")
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "patient_id" not in rows[0]:
        raise DataError(f"{p}: expected a header with a patient_id column, found {rows[0] if rows else 'an empty file'}")
    head = [h.strip() for h in rows[0]]
    pi = head.index("patient_id")
    cols = [h for i, h in enumerate(head) if i != pi]
    if not cols:
        raise DataError(f"{p}: no covariate columns besides patient_id")
    dupcols = sorted({h for h in head if head.count(h) > 1})
    if dupcols:
        raise DataError(f"{p}: column(s) {', '.join(dupcols)} appear more than once in the header")
    values: dict[str, list[float]] = {}
    lines: dict[str, int] = {}
    for line, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != len(head):
            raise DataError(f"{p}, line {line}: {len(r)} cells for {len(head)} columns")
        pid = r[pi].strip()
        if not pid:
            raise DataError(f"{p}, line {line}: empty patient_id")
        if pid in values:
            raise DataError(f"{p}, line {line}: duplicate patient_id {pid!r} (first on line {lines[pid]}); one row per patient")
        vals = []
        for i, h in enumerate(head):
            if i == pi:
                continue
            cell = r[i].strip()
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{p}, line {line}, column {h!r} (patient {pid!r}): {cell!r} is not a number"
                                + ("; fill in the missing value or drop the column" if not cell else "")) from None
            if not np.isfinite(v):
                raise DataError(f"{p}, line {line}, column {h!r} (patient {pid!r}): {cell!r} is not finite")
            vals.append(v)
        values[pid], lines[pid] = vals, line
    missing = [q for q in patients if q not in values]
    if missing:
        raise DataError(f"{p}: no row for patient(s) {', '.join(missing[:5])}"
                        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}; every patient with an embedding needs covariates")
    arr = np.array([values[q] for q in patients], float).reshape(len(patients), len(cols))
    return {c: arr[:, j] for j, c in enumerate(cols)}, [q for q in values if q not in set(patients)]


def structure_volumes(labels_dir: str | Path, case_ids: Sequence[str], *, label_names: Sequence[str] | None = None,
                      spacing: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """``{"volume_<name>_mm3": (n_cases,)}``: voxels of each foreground label times the voxel volume.

    ``label_names``: names of labels 0..K (0 = background), else ``label_1 .. label_K`` with K the
    largest label found. Spacing comes from each NIfTI header; files without one (PNG, NPY) need
    ``spacing`` (mm per axis). Raises DataError for a case without a label map, a map without
    spacing, or a label beyond ``label_names``.
    """
    from openmia.evaluation.label_maps import LABEL_SUFFIXES, index_folder, read_label_map
    from openmia.errors import PredictionError

    try:
        files = index_folder(labels_dir, "labels", LABEL_SUFFIXES)
    except PredictionError as exc:
        raise DataError(str(exc)) from exc
    missing = [c for c in case_ids if c not in files]
    if missing:
        raise DataError(f"labels folder {labels_dir}: no label map for case(s) {', '.join(missing[:5])}"
                        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''} (expected <case_id>.nii.gz or similar)")
    counts: list[np.ndarray] = []
    voxel: list[float] = []
    for cid in case_ids:
        try:
            lm = read_label_map(files[cid], cid)
        except PredictionError as exc:
            raise DataError(str(exc)) from exc
        sp = tuple(spacing) if spacing is not None else lm.spacing
        if sp is None or len(sp) != lm.array.ndim or not all(np.isfinite(sp)) or min(sp) <= 0:
            raise DataError(f"case {cid!r}: {files[cid]} has no valid voxel spacing (found {sp}); pass --spacing "
                            f"with {lm.array.ndim} values in mm")
        counts.append(np.bincount(lm.array.ravel().astype(np.int64)))
        voxel.append(float(np.prod(sp)))
    top = max(len(c) for c in counts) - 1
    if label_names is not None:
        if top > len(label_names) - 1:
            worst = case_ids[int(np.argmax([len(c) for c in counts]))]
            raise DataError(f"case {worst!r}: label {top} in its label map, but the data set names labels 0..{len(label_names) - 1} "
                            f"({', '.join(label_names)})")
        top = len(label_names) - 1
    names = list(label_names[1:]) if label_names is not None else [f"label_{k}" for k in range(1, top + 1)]
    out = {}
    for k, name in enumerate(names, start=1):
        out[f"volume_{name}_mm3"] = np.array([(c[k] if k < len(c) else 0) * v for c, v in zip(counts, voxel)], float)
    return out


def add_ratios(cov: dict[str, np.ndarray], ratios: Sequence[str], patients: Sequence[str]) -> None:
    """Add ``"A/B"`` = ``cov[A] / cov[B]`` per patient (in place); ConfigError for unknown names,
    DataError naming the patients where B is 0."""
    for r in ratios:
        if r.count("/") != 1:
            raise ConfigError(f"--ratio {r!r}: expected NUMERATOR/DENOMINATOR, two covariate names")
        a, b = r.split("/")
        for name in (a, b):
            if name not in cov:
                raise ConfigError(f"--ratio {r!r}: no covariate {name!r}; available: {', '.join(cov) or 'none'}")
        zero = [patients[i] for i in np.flatnonzero(cov[b] == 0)]
        if zero:
            raise DataError(f"--ratio {r!r}: {b} is 0 for patient(s) {', '.join(zero[:5])}; the ratio is undefined")
        cov[r] = cov[a] / cov[b]


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _mean_median_ci(v: np.ndarray, n_resamples: int, seed: int) -> dict[str, dict[str, float | None]]:
    """Mean (BCa bootstrap CI) and median (percentile bootstrap CI) of ``v`` over patients."""
    from openmia.stats.bootstrap import bootstrap_ci

    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    n = len(v)
    if n < 2:
        val = float(v[0]) if n else None
        return {"mean": {"value": val, "ci_low": None, "ci_high": None}, "median": {"value": val, "ci_low": None, "ci_high": None}}

    def mean(w):
        w = np.atleast_2d(w)
        return (w @ v) / w.sum(axis=1)

    def median(w):
        return np.array([np.median(np.repeat(v, row.astype(int))) for row in np.atleast_2d(w)])

    m = bootstrap_ci(mean, n, n_resamples=n_resamples, seed=seed, method="bca")
    md = bootstrap_ci(median, n, n_resamples=n_resamples, seed=seed, method="percentile")
    return {"mean": {"value": num(m.value), "ci_low": num(m.ci_low), "ci_high": num(m.ci_high)},
            "median": {"value": num(md.value), "ci_low": num(md.ci_low), "ci_high": num(md.ci_high)}}


def profile_patients(embeddings: str | Path, out_dir: str | Path, *, covariates: str | Path | None = None,
                     volumes_from: str | Path | None = None, spacing: Sequence[float] | None = None,
                     label_names: Sequence[str] | None = None, ratios: Sequence[str] = (), features: str = "auto",
                     embedding_dims: int = 5, method: str = "kmeans", k: int | str = "auto", seed: int = 0,
                     n_boot: int = 100, n_resamples: int = 1000, min_cluster_size: int = 5, overwrite: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``openmia profile``: patient profiles from an embeddings folder (see the module docstring).

    ``label_names`` for the volumes default to the embedded data set's (``embed.json``) when it
    has a segmentation spec. Writes ``profiles.csv`` (``patient_id,profile``), ``patients.csv``
    (the per-patient table), ``summary.json``, ``report.md``/``report.html`` and figures.
    """
    from openmia import fileio
    from openmia.unsupervised.cluster import check_method, cluster_features, read_embeddings
    from openmia.unsupervised.report import write_profile_report

    check_method(method, k)
    if features not in FEATURES:
        raise ConfigError(f"--features: expected one of {', '.join(FEATURES)}, found {features!r}")
    emb = read_embeddings(embeddings)
    out = fileio.prepare_output_dir(out_dir, inputs=(embeddings, volumes_from), overwrite=overwrite)
    pids = emb.patient_ids if emb.patient_ids is not None else list(emb.case_ids)
    patients = list(dict.fromkeys(pids))  # first-seen order
    member = {q: [] for q in patients}
    for i, q in enumerate(pids):
        member[q].append(i)
    x = np.stack([emb.x[member[q]].mean(axis=0) for q in patients])
    cov: dict[str, np.ndarray] = {}
    unused: list[str] = []
    if covariates is not None:
        cov, unused = read_covariates(covariates, patients)
    if volumes_from is not None:
        names = label_names
        if names is None and emb.meta.get("dataset"):
            try:
                from openmia.data.catalog import get_spec

                spec = get_spec(emb.meta.get("dataset_arg") or emb.meta["dataset"], emb.meta.get("size"))
                names = list(spec.label_names) if spec.task == "segmentation" else None
            except Exception:  # noqa: BLE001 - an unknown data set only means generic label names, said in the summary
                names = None
        vols = structure_volumes(volumes_from, emb.case_ids, label_names=names, spacing=spacing)
        for name, v in vols.items():
            if name in cov:
                raise DataError(f"covariate {name!r} is both in {covariates} and derived from {volumes_from}; rename one")
            cov[name] = np.array([v[member[q]].mean() for q in patients])
    add_ratios(cov, ratios, patients)
    mode = features if features != "auto" else ("both" if cov else "embeddings")
    if mode in ("both", "covariates") and not cov:
        raise ConfigError(f"--features {mode}: no covariates (pass --covariates CSV and/or --volumes-from LABELS)")
    blocks, desc = [], []
    if mode in ("both", "covariates"):
        blocks.append(_zscore(np.stack([cov[c] for c in cov], axis=1)))
        desc.append(f"{len(cov)} covariate(s) z-scored ({', '.join(cov)})")
    if mode in ("both", "embeddings"):
        from sklearn.decomposition import PCA

        limit = min(x.shape[1], len(patients))
        if isinstance(embedding_dims, bool) or not isinstance(embedding_dims, int) or not 1 <= embedding_dims <= limit:
            raise ConfigError(f"--embedding-dims: expected 1..{limit} (features {x.shape[1]}, patients {len(patients)}), "
                              f"found {embedding_dims!r}")
        blocks.append(_zscore(PCA(n_components=embedding_dims, random_state=seed).fit_transform(x)))
        desc.append(f"{embedding_dims} principal component(s) of the mean image embedding, z-scored")
    feats = np.concatenate(blocks, axis=1)
    part = cluster_features(feats, method, k, seed=seed, n_boot=n_boot, min_cluster_size=min_cluster_size,
                            progress=progress)
    prof = part.labels
    case_prof = np.empty(len(emb.case_ids), np.int64)
    for j, q in enumerate(patients):
        case_prof[member[q]] = prof[j]
    table = []
    for c in sorted(set(prof.tolist()), key=lambda v: (v == -1, v)):
        sel = prof == c
        comp: dict[str, int] = {}
        if emb.labels is not None:
            names_, counts = np.unique([emb.labels[i] for i in np.flatnonzero(case_prof == c)], return_counts=True)
            comp = {str(a): int(b) for a, b in zip(names_, counts)}
        st = part.stability["clusters"].get(c, {})
        table.append({"profile": c, "size": int(sel.sum()), "n_cases": int(np.sum(case_prof == c)),
                      "mean_jaccard": st.get("mean_jaccard"), "dissolved": st.get("dissolved"),
                      "recovered": st.get("recovered"), "unstable": st.get("unstable"), "label_composition": comp,
                      "covariates": {name: _mean_median_ci(v[sel], n_resamples, seed) for name, v in cov.items()}})
    summary: dict[str, Any] = {
        "schema": SCHEMA, "method": method, "k": part.k, "k_selection": part.selection, "seed": seed,
        "n_cases": len(emb.case_ids), "n_patients": len(patients),
        "patients_from": "patient_id column" if emb.patient_ids is not None else "one case = one patient (no patient_id column)",
        "features": {"mode": mode, "description": "; ".join(desc), "n_features": int(feats.shape[1])},
        "covariates": list(cov), "covariates_file": None if covariates is None else str(covariates),
        "covariate_rows_without_embedding": unused, "volumes_from": None if volumes_from is None else str(volumes_from),
        "embeddings": {"folder": str(emb.folder), **{key: emb.meta.get(key) for key in ("method", "dataset", "split", "layer")}},
        "profiles": table, "internal": part.internal,
        "stability": {key: v for key, v in part.stability.items() if key != "clusters"},
        "unstable_profiles": [r["profile"] for r in table if r["unstable"]],
        "ci_method": f"mean: BCa bootstrap over the profile's patients; median: percentile bootstrap; {n_resamples} resamples, seed {seed}",
    }
    with fileio.atomic_dir(out) as tmp:
        fileio.write_csv(tmp / "profiles.csv", [["patient_id", "profile"], *([q, int(v)] for q, v in zip(patients, prof))])
        fileio.write_csv(tmp / "patients.csv", [["patient_id", "n_cases", "profile", *cov],
                                                *([q, len(member[q]), int(prof[j]), *(repr(float(cov[c][j])) for c in cov)]
                                                  for j, q in enumerate(patients))])
        summary["report"] = write_profile_report(tmp, feats, part, table, summary, cov, prof)
        fileio.write_json(tmp / "summary.json", summary)
    return {**summary, "out": str(out)}
