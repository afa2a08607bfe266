"""Reports of ``openmia cluster`` and ``openmia profile``: ``report.md`` (tables + linked PNGs) and a
self-contained ``report.html`` (the same tables, the PNGs embedded), like the evaluator's report.

Figures: 2D maps of the embeddings (PCA; t-SNE; UMAP when ``umap-learn`` is installed) coloured by
cluster (and by truth label when known), and a montage of example images per cluster — the cases
nearest their cluster's centroid — when ``embed.json`` names the data set and split and its images
load. A figure that cannot be drawn is listed with the reason in the report and ``summary.json``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MONTAGE_PER_CLUSTER = 6


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {c}" for k, c in v.items())
    return str(v)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v).replace("|", "/") for v in r) + " |" for r in rows]
    return "\n".join(out)


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _scatter(ax, xy: np.ndarray, groups: Sequence[Any], title: str) -> None:
    g = np.asarray([str(v) for v in groups])
    names = sorted(set(g), key=lambda s: (s == "-1", len(s), s))
    cmap = _plt().get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        sel = g == name
        colour = "lightgray" if name == "-1" else cmap(i % cmap.N)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=9, alpha=0.75, color=colour, label="noise" if name == "-1" else name)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= 12:
        ax.legend(fontsize=6, markerscale=1.5, loc="best")


def embedding_maps(x: np.ndarray, labels: np.ndarray, truth: Sequence[str] | None, seed: int,
                   kinds: Sequence[str] = ("pca", "tsne", "umap")) -> tuple[list[tuple[str, Any]], list[str]]:
    """``([(name, figure)], notes)``: one figure per 2D projection of ``x`` ``(n, d)``."""
    from sklearn.decomposition import PCA

    plt = _plt()
    figs, notes = [], []
    n = len(x)
    for kind in kinds:
        if kind == "pca":
            xy = PCA(n_components=2, random_state=seed).fit_transform(x) if x.shape[1] > 1 else np.c_[x, np.zeros(n)]
            title = "PCA"
        elif kind == "tsne":
            if n < 5:
                notes.append("t-SNE map: skipped, fewer than 5 cases")
                continue
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, perplexity=float(min(30, (n - 1) / 3)), init="pca", max_iter=500,
                      random_state=seed).fit_transform(x)
            title = "t-SNE"
        elif kind == "umap":
            try:
                import umap  # type: ignore[import-not-found]
            except ImportError:
                notes.append("UMAP map: skipped, umap-learn is not installed (pip install umap-learn)")
                continue
            xy = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, n - 1)).fit_transform(x)
            title = "UMAP"
        else:
            notes.append(f"map {kind!r}: unknown projection (pca, tsne, umap)")
            continue
        cols = 2 if truth is not None else 1
        fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 4))
        axes = np.atleast_1d(axes)
        _scatter(axes[0], xy, labels, f"{title}, coloured by cluster")
        if truth is not None:
            _scatter(axes[1], xy, truth, f"{title}, coloured by truth label")
        figs.append((f"map_{kind}", fig))
    return figs, notes


def _display(img: np.ndarray) -> np.ndarray:
    """One image ``(C, *spatial)`` as a 2D grey or RGB array in [0, 1] (3D: the middle slice of the
    first spatial axis; float intensities: 1st-99th percentile window)."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, a.shape[1] // 2]
    a = np.moveaxis(a, 0, -1) if a.shape[0] == 3 else a[0]
    if img.dtype == np.uint8:
        return a / 255.0
    lo, hi = np.percentile(a, [1, 99])
    return np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def montage_figure(x: np.ndarray, labels: np.ndarray, case_ids: list[str], meta: dict[str, Any],
            root: str | Path | None) -> tuple[Any | None, str]:
    """``(figure, note)``: up to 6 example images per cluster (nearest the cluster's centroid in
    the embedding), read from the data set named in ``meta`` (``embed.json``)."""
    from openmia.engine.embed import load_cases

    dataset, split = meta.get("dataset_arg") or meta.get("dataset"), meta.get("split")
    if not dataset or not split:
        return None, "montage: skipped, embed.json does not name the data set and split of the embeddings"
    try:
        s = load_cases(dataset, split, size=meta.get("size"), root=root if root is not None else meta.get("root"),
                       fold=meta.get("fold") or 0, spacing=meta.get("spacing"))
    except Exception as exc:  # noqa: BLE001 - any reason the images cannot be loaded is reported, not raised
        return None, f"montage: skipped, the images of {dataset} {split} could not be loaded ({type(exc).__name__}: {exc})"
    where = {c: i for i, c in enumerate(s.case_ids)}
    lacking = [c for c in case_ids if c not in where]
    if lacking:
        return None, f"montage: skipped, {len(lacking)} case(s) (e.g. {lacking[0]!r}) are not in {dataset} {split}"
    plt = _plt()
    clusters = [c for c in sorted(set(labels.tolist()), key=lambda v: (v == -1, v))]
    per = MONTAGE_PER_CLUSTER
    fig, axes = plt.subplots(len(clusters), per, figsize=(1.3 * per, 1.4 * len(clusters)), squeeze=False)
    for r, c in enumerate(clusters):
        sel = np.flatnonzero(labels == c)
        centre = x[sel].mean(axis=0)
        pick = sel[np.argsort(((x[sel] - centre) ** 2).sum(axis=1), kind="stable")[:per]]
        for j in range(per):
            ax = axes[r, j]
            ax.axis("off")
            if j < len(pick):
                im = _display(s.images[where[case_ids[pick[j]]]])
                ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1)
        axes[r, 0].set_title(f"{'noise' if c == -1 else f'cluster {c}'} (n={len(sel)})", fontsize=7, loc="left")
    fig.suptitle("cases nearest each cluster's centroid", fontsize=8)
    return fig, "montage: drawn"


def _save(folder: Path, name: str, fig) -> str:
    from openmia import fileio

    fileio.save_figure(fig, folder / f"{name}.png", dpi=100)
    _plt().close(fig)
    return f"{name}.png"


def _html_page(title: str, sections: list[tuple[str, str]], folder: Path, images: list[str]) -> str:
    style = ("<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 8px}"
             "th{background:#f3f3f3}figure{display:inline-block;margin:8px}.warn{color:#a00}</style>")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{style}</head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for head, body in sections:
        parts.append(f"<h2>{html.escape(head)}</h2>{body}")
    if images:
        parts.append("<h2>Figures</h2>")
        for name in images:
            b = base64.b64encode((folder / name).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{b}'><figcaption>"
                         f"{html.escape(name)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _cluster_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ["cluster", "size", "fraction", "stability (mean Jaccard)", "dissolved", "recovered", "unstable",
              "label composition"]
    body = [["noise" if r["noise"] else r["cluster"], r["size"], r["fraction"], r["mean_jaccard"], r["dissolved"],
             r["recovered"], r["unstable"], r["label_composition"]] for r in rows]
    return header, body


def _metric_rows(metrics: list[dict[str, Any]]) -> list[list[Any]]:
    return [[m["metric"], m.get("value"), None if m.get("ci_low") is None else f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]",
             m.get("ci_method")] for m in metrics]


def write_cluster_report(folder: Path, x: np.ndarray, emb: Any, part: Any, rows: list[dict[str, Any]],
                         summary: dict[str, Any], *, maps: Sequence[str], montage: bool,
                         root: str | Path | None) -> dict[str, Any]:
    """Figures + ``report.md`` + ``report.html`` of a clustering into ``folder``; returns
    ``{"files": [...], "notes": [...]}`` for ``summary.json``."""
    from openmia import fileio

    images, notes = [], []
    figs, map_notes = embedding_maps(x, part.labels, emb.labels, part.seed, maps)
    notes += map_notes
    images += [_save(folder, name, fig) for name, fig in figs]
    if montage:
        fig, note = montage_figure(x, part.labels, emb.case_ids, emb.meta, root)
        notes.append(note)
        if fig is not None:
            images.append(_save(folder, "montage", fig))
    sel = summary["k_selection"]
    intro = (f"{summary['n_cases']} cases, {summary['n_features']} features ({summary['scale']} scaling); method "
             f"{summary['method']}, k = {summary['k']} ({sel['mode']}"
             + (f", criterion {sel['criterion']}" if sel["mode"] == "auto" else "") + f"); seed {summary['seed']}.")
    header, body = _cluster_table(rows)
    st = summary["stability"]
    stab_text = (f"Stability: {st['method']}; {st['n_boot']} resamples, seed {st['seed']}; a cluster with mean Jaccard "
                 f"< {st['threshold']} is flagged unstable. Unstable: {summary['unstable_clusters'] or 'none'}.")
    internal = [[k, v.get("value"), None if v.get("ci_low") is None else f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]",
                 v.get("better")] for k, v in summary["internal"].items()]
    md = [f"# openmia clustering — {summary['method']}", "", intro, "", "## Clusters", "", md_table(header, body), "",
          stab_text, "", "## Internal indices (partition fixed, cases resampled)", "",
          md_table(["index", "value", "95% CI", "better"], internal), ""]
    sections = [("Summary", f"<p>{html.escape(intro)}</p>"), ("Clusters", html_table(header, body) + f"<p>{html.escape(stab_text)}</p>"),
                ("Internal indices", html_table(["index", "value", "95% CI", "better"], internal))]
    if sel["mode"] == "auto" and "scores" in sel:
        ks = [[k, v] for k, v in sel["scores"].items()]
        note = f"\n\n{sel['note']}" if sel.get("note") else ""
        md += [f"## Choice of k ({sel['criterion']}, {sel['better']} is better)", "", md_table(["k", sel["criterion"]], ks) + note, ""]
        sections.append((f"Choice of k ({sel['criterion']})", html_table(["k", sel["criterion"]], ks)
                         + (f"<p class='warn'>{html.escape(sel['note'])}</p>" if sel.get("note") else "")))
    if "evaluation" in summary:
        ev = _metric_rows(summary["evaluation"]["metrics"])
        md += ["## Agreement with the truth labels (clustering evaluator, eval/)", "", md_table(["metric", "value", "95% CI", "CI method"], ev), ""]
        sections.append(("Agreement with the truth labels", html_table(["metric", "value", "95% CI", "CI method"], ev)))
    if images:
        md += ["## Figures", ""] + [f"![{n}]({n})" for n in images] + [""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
        sections.append(("Notes", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"))
    fileio.write_text(folder / "report.md", "\n".join(md))
    fileio.write_text(folder / "report.html", _html_page(f"openmia clustering — {summary['method']}", sections, folder, images))
    return {"files": ["report.md", "report.html", *images], "notes": notes}


def write_profile_report(folder: Path, feats: np.ndarray, part: Any, table: list[dict[str, Any]], summary: dict[str, Any],
                         covariates: dict[str, np.ndarray], profiles: np.ndarray) -> dict[str, Any]:
    """Figures (PCA map of the patient features; covariates per profile) + ``report.md``/``.html``."""
    from openmia import fileio

    plt = _plt()
    images = []
    figs, notes = embedding_maps(feats, profiles, None, part.seed, ("pca",))
    images += [_save(folder, "profiles_map", fig) for _, fig in figs]
    if covariates:
        names = list(covariates)
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 3.2), squeeze=False)
        groups = [c for c in sorted(set(profiles.tolist()), key=lambda v: (v == -1, v))]
        for ax, name in zip(axes[0], names):
            vals = covariates[name]
            ax.boxplot([vals[profiles == g] for g in groups], showfliers=False)
            for i, g in enumerate(groups, start=1):
                v = vals[profiles == g]
                ax.scatter(i + np.random.default_rng(0).uniform(-0.15, 0.15, len(v)), v, s=5, alpha=0.5)
            ax.set_xticks(range(1, len(groups) + 1), ["noise" if g == -1 else str(g) for g in groups], fontsize=7)
            ax.set_xlabel("profile", fontsize=8)
            ax.set_title(name, fontsize=8)
        images.append(_save(folder, "profiles_covariates", fig))
    header = ["profile", "patients", "stability (mean Jaccard)", "unstable", "label composition"]
    cov_names = list(covariates)
    for c in cov_names:
        header += [f"{c} mean [95% CI]", f"{c} median [95% CI]"]
    rows = []
    for r in table:
        row = ["noise" if r["profile"] == -1 else r["profile"], r["size"], r["mean_jaccard"], r["unstable"], r["label_composition"]]
        for c in cov_names:
            m, md_ = r["covariates"][c]["mean"], r["covariates"][c]["median"]
            row += [f"{_fmt(m['value'])} [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]",
                    f"{_fmt(md_['value'])} [{_fmt(md_['ci_low'])}, {_fmt(md_['ci_high'])}]"]
        rows.append(row)
    sel = summary["k_selection"]
    intro = (f"{summary['n_patients']} patients ({summary['n_cases']} cases); features: {summary['features']['description']}; "
             f"method {summary['method']}, k = {summary['k']} ({sel['mode']}"
             + (f", criterion {sel['criterion']}" if sel["mode"] == "auto" else "") + f"); seed {summary['seed']}. "
             f"CIs: {summary['ci_method']}. Stability: Hennig clusterboot, {summary['stability']['n_boot']} resamples; "
             f"unstable (mean Jaccard < 0.6): {summary['unstable_profiles'] or 'none'}.")
    md = [f"# openmia patient profiles — {summary['method']}", "", intro, "", "## Profiles", "", md_table(header, rows), ""]
    sections = [("Summary", f"<p>{html.escape(intro)}</p>"), ("Profiles", html_table(header, rows))]
    if sel["mode"] == "auto" and "scores" in sel:
        ks = [[k, v] for k, v in sel["scores"].items()]
        note = f"\n\n{sel['note']}" if sel.get("note") else ""
        md += [f"## Choice of k ({sel['criterion']}, {sel['better']} is better)", "", md_table(["k", sel["criterion"]], ks) + note, ""]
        sections.append((f"Choice of k ({sel['criterion']})", html_table(["k", sel["criterion"]], ks)
                         + (f"<p class='warn'>{html.escape(sel['note'])}</p>" if sel.get("note") else "")))
    md += ["## Figures", ""] + [f"![{n}]({n})" for n in images] + [""]
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes]
    fileio.write_text(folder / "report.md", "\n".join(md))
    fileio.write_text(folder / "report.html", _html_page("openmia patient profiles", sections, folder, images))
    return {"files": ["report.md", "report.html", *images], "notes": notes}
