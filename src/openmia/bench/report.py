"""The HTML report of a suite's leaderboard (``openmia benchmark report``): ``report.html`` with
its figures in ``figures/``, plus ``leaderboard.csv`` and ``leaderboard.json`` for scripts.

Figures (matplotlib, Agg): per data set and metric a forest plot of the paired differences
against the best model (one CI per model and seed) and a rank-stability heat map (P(rank 1) per
model and ranking scheme, mean bootstrap rank written in each cell; both averaged over the seeds
that have every model, as the leaderboard's rankings are); per metric across data sets
the Nemenyi critical-difference diagram; per data set the learning curves of every cell from its
``metrics.jsonl``. A model card per cell gives its provenance, config, data checksums, hardware
and time. The page is static (no network, no scripts beyond a check that every image loaded,
which the browser test reads back from ``body[data-images]``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from openmia.bench.suite import Suite

CSV_COLUMNS = ("dataset", "task", "metric", "higher_is_better", "position", "model", "value", "ci_low", "ci_high", "n_seeds",
               "seed_sd", "seed_mean_ci_low", "seed_mean_ci_high", "best", "seeds_tested", "seeds_worse_than_best",
               "min_p_holm_vs_best", "rank_aggregate_then_rank", "rank_rank_then_aggregate", "rank_test_then_rank",
               "p_rank1_aggregate_then_rank", "rank_seeds", "ranks_per_seed_aggregate_then_rank")


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.2g}" if x >= 0.001 else "<0.001"


def _slug(*parts: Any) -> str:
    return "-".join("".join(c if c.isalnum() else "_" for c in str(p)) for p in parts)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forest_plot(block: dict[str, Any], path: Path) -> Path | None:
    """Paired difference (model - best) with its CI, per model and seed; None without tests."""
    from openmia.fileio import save_figure

    items = [(r["model"], t) for r in block["rows"] for t in r["tests_vs_best"]]
    if not items:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 0.9 + 0.32 * len(items)))
    for y, (model, t) in enumerate(items):
        sig = np.isfinite(t["p_holm"]) and t["p_holm"] <= 0.05
        color = "tab:red" if sig else "tab:gray"
        ax.plot([t["ci_low"], t["ci_high"]], [y, y], color=color, linewidth=2)
        ax.plot([t["diff"]], [y], "o", color=color, markersize=5)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(items)), [f"{m} (seed {t['seed']})" for m, t in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{block['metric']}: model − {block['best']} (95% CI; red: Holm p ≤ 0.05)", fontsize=8)
    ax.set_title(f"{block['dataset']}: paired differences against the best", fontsize=9)
    fig.tight_layout()
    out = save_figure(fig, path, dpi=90)
    plt.close(fig)
    return out


def rank_heatmap(block: dict[str, Any], path: Path) -> Path | None:
    """Heat map: rows = ranking schemes, columns = models, colour = P(rank 1) over bootstrap
    resamples, text = mean bootstrap rank, both averaged over the block's ranked seeds
    (``block["rankings"]``, see :mod:`openmia.bench.leaderboard`); None without rankings."""
    from openmia.fileio import save_figure

    schemes = list(block["rankings"])
    if not schemes:
        return None
    models = [r["model"] for r in block["rows"]]
    P = np.array([[block["rankings"][s].get(m, {}).get("p_rank1", np.nan) for m in models] for s in schemes], dtype=float)
    R = np.array([[block["rankings"][s].get(m, {}).get("mean_bootstrap_rank", np.nan) for m in models] for s in schemes],
                 dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(models), 0.9 + 0.45 * len(schemes)))
    im = ax.imshow(P, vmin=0, vmax=1, cmap="Blues", aspect="auto")
    for i in range(len(schemes)):
        for j in range(len(models)):
            ax.text(j, i, f"{P[i, j]:.2f}\n(r̄ {R[i, j]:.1f})", ha="center", va="center", fontsize=7,
                    color="white" if P[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(schemes)), schemes, fontsize=8)
    fig.colorbar(im, ax=ax, label="P(rank 1)", fraction=0.05)
    n = len(block.get("rank_seeds") or [])
    ax.set_title(f"{block['dataset']} · {block['metric']}: bootstrap rank stability\n(mean over {n} seed{'s' if n != 1 else ''})",
                 fontsize=9)
    fig.tight_layout()
    out = save_figure(fig, path, dpi=90)
    plt.close(fig)
    return out


def learning_curves(suite: Suite, cells: list[dict[str, Any]], dataset: str, path: Path) -> Path | None:
    """Per-epoch training loss and validation score of every cell of a data set (``metrics.jsonl``)."""
    from openmia.fileio import save_figure

    series = []
    for c in cells:
        f = Path(c["run_dir"]) / "metrics.jsonl"
        if c["dataset"] != dataset or not f.is_file():
            continue
        recs = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        val_key = next((k for k in (recs[0] if recs else {}) if k.startswith("val_") and k != "val_loss"), None)
        series.append((f"{c['model']} s{c['seed']}", recs, val_key))
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0))
    colors = {}
    for name, recs, val_key in series:
        model = name.rsplit(" ", 1)[0]
        col = colors.setdefault(model, f"C{len(colors) % 10}")
        ep = [r["epoch"] for r in recs]
        ls = "-" if name.endswith("s0") else "--"
        axes[0].plot(ep, [r.get("train_loss", np.nan) for r in recs], ls, color=col, label=name, linewidth=1.2)
        if val_key:
            axes[1].plot(ep, [r.get(val_key, np.nan) for r in recs], ls, color=col, label=name, linewidth=1.2)
            axes[1].set_ylabel(val_key, fontsize=8)
    axes[0].set_ylabel("train loss", fontsize=8)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{dataset}: learning curves", fontsize=9)
    fig.tight_layout()
    out = save_figure(fig, path, dpi=90)
    plt.close(fig)
    return out


def cd_figure(metric: str, res: dict[str, Any], path: Path) -> Path:
    from openmia.evaluation.cd_diagram import plot_cd_diagram

    models = res["models"]
    avg = [res["average_ranks"][m] for m in models]
    sig = np.zeros((len(models), len(models)), dtype=bool)
    for pr in res["nemenyi"]["pairs"]:
        i, j = models.index(pr["model_a"]), models.index(pr["model_b"])
        sig[i, j] = sig[j, i] = pr["significant"]
    return plot_cd_diagram(avg, models, path, critical_difference=res["nemenyi"]["critical_difference"], significant=sig,
                           title=f"{metric}: Friedman p = {res['friedman']['p_value']:.3g}, N = {res['n_datasets']} data sets")


def leaderboard_rows(board: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for b in board["blocks"]:
        for r in b["rows"]:
            ps = [t["p_holm"] for t in r["tests_vs_best"] if np.isfinite(t["p_holm"])]
            rk = b["rankings"]
            rows.append({
                "dataset": b["dataset"], "task": b["task"], "metric": b["metric"], "higher_is_better": b["higher_is_better"],
                "position": r["position"], "model": r["model"], "value": r["value"], "ci_low": r["ci_low"],
                "ci_high": r["ci_high"], "n_seeds": r["n_seeds"], "seed_sd": r["seed_sd"],
                "seed_mean_ci_low": r["seed_mean_ci_low"], "seed_mean_ci_high": r["seed_mean_ci_high"], "best": b["best"],
                "seeds_tested": r["seeds_tested"], "seeds_worse_than_best": r["seeds_worse_than_best"],
                "min_p_holm_vs_best": min(ps) if ps else None,
                **{f"rank_{s.replace('-', '_')}": rk.get(s, {}).get(r["model"], {}).get("rank") for s in
                   ("aggregate-then-rank", "rank-then-aggregate", "test-then-rank")},
                "p_rank1_aggregate_then_rank": rk.get("aggregate-then-rank", {}).get(r["model"], {}).get("p_rank1"),
                "rank_seeds": " ".join(str(s) for s in b.get("rank_seeds", [])),
                "ranks_per_seed_aggregate_then_rank": " ".join(
                    f"{s}:{v:g}" for s, v in rk.get("aggregate-then-rank", {}).get(r["model"], {}).get("ranks_per_seed", {}).items())})
    return rows


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:2px solid #e5e7eb;padding-bottom:.3rem}
h3{margin-top:1.4rem;font-size:1.05rem} .muted{color:#6b7280;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem} th,td{padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;text-align:right}
th{background:#f3f4f6} td:nth-child(2),th:nth-child(2){text-align:left} tr.best td{background:#ecfdf5;font-weight:600}
.sig{color:#b91c1c;font-weight:600} .figs{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start} img{max-width:100%;border:1px solid #eee}
details{margin:.3rem 0;padding:.3rem .6rem;background:#f9fafb;border-radius:6px} pre{font-size:.75rem;overflow-x:auto}
.pill{display:inline-block;padding:.1rem .5rem;border-radius:999px;background:#eef2ff;margin-right:.3rem;font-size:.8rem}
"""
SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


def _card(suite: Suite, c: dict[str, Any]) -> str:

    rd = Path(c["run_dir"])
    prov = json.loads((rd / "provenance.json").read_text()) if (rd / "provenance.json").is_file() else {}
    res = json.loads((rd / "result.json").read_text()) if (rd / "result.json").is_file() else {}
    cfg = (rd / "config.yaml").read_text() if (rd / "config.yaml").is_file() else ""
    data = prov.get("data", {})
    hw = prov.get("hardware", {})
    splits = "".join(f"<tr><td>{html.escape(k)}</td><td>{v.get('n')}</td><td><code>{html.escape(str(v.get('split_hash', ''))[:16])}</code></td>"
                     f"<td><code>{html.escape(str(v.get('images_sha256') or data.get('file_md5') or data.get('files_sha256') or '')[:16])}</code></td></tr>"
                     for k, v in (data.get("splits") or {}).items())
    head = (f"<span class=pill>{html.escape(c['dataset'])}</span><span class=pill>{html.escape(c['model'])}</span>"
            f"<span class=pill>seed {c['seed']}</span> cell <code>{c['cell_id']}</code>")
    return (f"<details><summary>{head}</summary>"
            f"<p>run directory <code>{html.escape(str(rd))}</code>; config hash <code>{html.escape(str(prov.get('config_hash')))}</code>; "
            f"git <code>{html.escape(str(prov.get('git_commit')))}</code>; created {html.escape(str(prov.get('created')))}</p>"
            f"<p>time: {_fmt(res.get('train_seconds'), 1)} s training ({res.get('epochs_done')} epochs, best epoch "
            f"{res.get('best_epoch')}), {_fmt(c.get('wall_seconds'), 1)} s wall for the cell; "
            f"{prov.get('torch_threads')} torch thread(s) × {(prov.get('distributed') or {}).get('world_size', 1)} process(es); "
            f"{prov.get('parameters')} parameters; deterministic: {prov.get('deterministic')}</p>"
            f"<p>hardware: {html.escape(str(hw.get('cpu')))}, {hw.get('usable_cpus')} usable CPUs, "
            f"{_fmt((hw.get('ram_bytes') or 0) / 2**30, 1)} GiB RAM, {html.escape(str(hw.get('os')))}; versions: "
            f"{html.escape(', '.join(f'{k} {v}' for k, v in (prov.get('versions') or {}).items()))}</p>"
            f"<table><tr><th>split</th><th>n</th><th>split hash</th><th>data checksum</th></tr>{splits}</table>"
            f"<pre>{html.escape(cfg)}</pre></details>")


def write_report(suite: Suite, board: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write report.html (+ figures/), leaderboard.csv and leaderboard.json into ``out``
    atomically (the folder appears whole); returns the written files."""
    from openmia import fileio

    out = Path(out)
    files: dict[str, Path] = {}
    with fileio.atomic_dir(out) as tmp:
        figs = tmp / "figures"
        figs.mkdir()
        parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>openmia leaderboard: {html.escape(suite.name)}</title>"
                 f"<style>{CSS}</style></head><body>",
                 f"<h1>Leaderboard · {html.escape(suite.name)}</h1>",
                 f"<p class=muted>{html.escape(suite.description)}<br>{board['n_done']} of {board['n_cells']} cells finished; "
                 f"suite <code>{html.escape(board['suite_file'])}</code>; α = {board['alpha']}</p>"]
        if board["missing"]:
            parts.append("<p class=sig>Not finished (left out): " + ", ".join(html.escape(m["label"]) for m in board["missing"]) + "</p>")
        parts.append("<h2>Per data set</h2>")
        for b in board["blocks"]:
            sid = _slug(b["dataset"], b["metric"])
            arrow = "↑" if b["higher_is_better"] else "↓"
            rows = []
            for r in b["rows"]:
                tests = ", ".join(f"<span class={'sig' if np.isfinite(t['p_holm']) and t['p_holm'] <= board['alpha'] else ''}>"
                                  f"{t['diff']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] p<sub>Holm</sub> {_p(t['p_holm'])}</span>"
                                  for t in r["tests_vs_best"]) or ("best" if r["model"] == b["best"] else "–")
                recs = [b["rankings"].get(s, {}).get(r["model"], {}) for s in ("aggregate-then-rank", "rank-then-aggregate",
                                                                                "test-then-rank")]
                rk = " / ".join(_fmt(x.get("rank"), 2) for x in recs)
                per_seed = "; ".join(f"seed {s}: " + " / ".join(_fmt(x.get("ranks_per_seed", {}).get(s), 1) for x in recs)
                                     for s in b.get("rank_seeds", []))
                p1 = b["rankings"].get("aggregate-then-rank", {}).get(r["model"], {}).get("p_rank1")
                sd = "" if r["seed_sd"] is None else f" ± {r['seed_sd']:.3f}"
                smci = "–" if r["seed_mean_ci_low"] is None else f"[{r['seed_mean_ci_low']:.3f}, {r['seed_mean_ci_high']:.3f}]"
                rows.append(f"<tr class={'best' if r['model'] == b['best'] else ''}><td>{r['position']}</td><td>{html.escape(r['model'])}</td>"
                            f"<td>{_fmt(r['value'])}</td><td>[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]</td>"
                            f"<td>{_fmt(r['value'])}{sd} (n={r['n_seeds']})</td><td>{smci}</td><td style='text-align:left'>{tests}</td>"
                            f"<td title='{html.escape(per_seed)}'>{rk}</td><td>{_fmt(p1, 2)}</td></tr>")
            parts.append(f"<h3 id='{sid}'>{html.escape(b['dataset'])} · {html.escape(b['metric'])} {arrow}</h3>"
                         f"<table class=leaderboard data-dataset='{html.escape(b['dataset'])}' data-metric='{html.escape(b['metric'])}'>"
                         "<tr><th>#</th><th>model</th><th>value</th><th>95% CI (test cases)</th><th>seeds: mean ± SD</th>"
                         "<th>95% CI of seed mean</th><th>vs best: diff [95% CI], per seed</th><th>rank A / R / T</th><th>P(rank 1)</th></tr>"
                         + "".join(rows) + "</table>")
            imgs = []
            fp = forest_plot(b, figs / f"forest_{sid}.png")
            if fp is not None:
                imgs.append(f"<img src='figures/{fp.name}' alt='forest plot {html.escape(sid)}' width=520>")
            hm = rank_heatmap(b, figs / f"ranks_{sid}.png")
            if hm is not None:
                imgs.append(f"<img src='figures/{hm.name}' alt='rank stability {html.escape(sid)}' width=440>")
            if imgs:
                parts.append("<div class=figs>" + "".join(imgs) + "</div>")
        parts.append("<p class=muted>rank A / R / T: aggregate-then-rank / rank-then-aggregate / test-then-rank, the mean "
                     "over every seed with all the models of that seed's rank on its test cases (hover for the per-seed "
                     "ranks); P(rank 1): share of bootstrap resamples in which the model ranks first "
                     "(aggregate-then-rank), averaged over those seeds, as are the heat maps.</p>")
        parts.append("<h2>Across data sets</h2>")
        for metric, res in board["across"].items():
            if "skipped" in res:
                parts.append(f"<p class=muted>{html.escape(metric)}: {html.escape(res['skipped'])}</p>")
                continue
            f = cd_figure(metric, res, figs / f"cd_{_slug(metric)}.png")
            fr = res["friedman"]
            avg = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td><td>{r:.2f}</td></tr>" for i, (m, r) in
                          enumerate(sorted(res["average_ranks"].items(), key=lambda kv: kv[1]), 1))
            parts.append(f"<h3>{html.escape(metric)}</h3><div class=figs><div><table class=ranks><tr><th>#</th><th>model</th>"
                         f"<th>average rank</th></tr>{avg}</table><p class=muted>Friedman χ² = {fr['chi2']:.2f}, p = {_p(fr['p_value'])}"
                         f"; Nemenyi CD = {res['nemenyi']['critical_difference']:.2f}; N = {res['n_datasets']}</p>"
                         + "".join(f"<p class=muted>{html.escape(n)}</p>" for n in res.get("notes", []))
                         + f"</div><img src='figures/{f.name}' alt='CD diagram {html.escape(metric)}' width=520></div>")
        parts.append("<h2>Learning curves</h2><div class=figs>")
        for ds in dict.fromkeys(c["dataset"] for c in board["cells"]):
            lc = learning_curves(suite, board["cells"], ds, figs / f"curves_{_slug(ds)}.png")
            if lc is not None:
                parts.append(f"<img src='figures/{lc.name}' alt='learning curves {html.escape(ds)}' width=720>")
        parts.append("</div><h2>Model cards</h2>")
        parts += [_card(suite, c) for c in board["cells"]]
        parts.append("<h2>Conventions</h2><ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                                                        for k, v in board["conventions"].items()) + "</ul>")
        parts.append(SCRIPT + "</body></html>")
        files["html"] = fileio.write_text(tmp / "report.html", "\n".join(parts))
        rows = leaderboard_rows(board)
        files["csv"] = fileio.write_csv(tmp / "leaderboard.csv", [list(CSV_COLUMNS)] + [["" if r.get(k) is None else r.get(k) for k in CSV_COLUMNS] for r in rows])
        files["json"] = fileio.write_json(tmp / "leaderboard.json", board)
    return {k: out / v.relative_to(tmp) for k, v in files.items()}
