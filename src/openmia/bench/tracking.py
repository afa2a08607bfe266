"""Optional experiment tracking of a suite's cells (``--tracking mlflow --tracking-uri URI``).

Each finished cell becomes one MLflow run in the experiment named after the suite: its resolved
config as params (dotted keys), its per-epoch metrics from ``metrics.jsonl`` (``step`` = epoch),
its test metrics with CIs (``test_<metric>``, ``test_<metric>_ci_low`` ...), and the run
directory's small files (config, result, provenance, evaluation summaries) as artefacts.

Tracking never decides whether a cell succeeds: an http(s) server that does not answer is found
before the suite starts (the suite runs without tracking, and says so once); a failure while
logging a cell is logged once per process, which then stops trying that URI; the cell stays
``done`` either way. MLflow >= 3 refuses plain ``file:`` stores unless ``MLFLOW_ALLOW_FILE_STORE=true``;
``sqlite:///path.db`` (full ``mlflow``) or a server (``http://host:5000``) are its supported stores.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from openmia.errors import ConfigError

log = logging.getLogger(__name__)
TRACKERS = ("mlflow",)
_REPORTED: set[str] = set()  # tracking URIs whose failure this process has already logged (then skipped)
PROBE_TIMEOUT_S = 5.0
ARTEFACTS = ("config.yaml", "result.json", "provenance.json", "metrics.jsonl", "eval/test/summary.json",
             "eval/test/report.txt")


def tracking_config(tracking: str | None, uri: str | None, suite: str) -> dict[str, Any] | None:
    """The tracking settings handed to every cell (None = no tracking); checks them up front."""
    if tracking is None:
        if uri is not None:
            raise ConfigError("--tracking-uri needs --tracking mlflow")
        return None
    if tracking not in TRACKERS:
        raise ConfigError(f"--tracking {tracking!r}: choose one of {', '.join(TRACKERS)}")
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--tracking mlflow needs MLflow, which is not installed; install it with "
                          "pip install 'openmia[mlflow]' (or pip install mlflow-skinny)") from exc
    if uri and uri.split(":", 1)[0] in ("http", "https") and not _answers(uri):
        # unreachable: the suite still runs; say so once here rather than once per cell after retries
        log.error("MLflow tracking server %s does not answer (within %g s); the suite runs without tracking", uri,
                  PROBE_TIMEOUT_S)
        return None
    return {"kind": tracking, "uri": uri, "experiment": f"openmia-{suite}"}


def _answers(uri: str) -> bool:
    """Whether something accepts TCP connections at an http(s) URI's host and port."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(uri)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _finite(v: Any) -> bool:
    """A number MLflow can store (NaN epochs, e.g. an undefined validation AUC, are left out)."""
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict) and not prefix.endswith("kwargs."):  # factory kwargs stay one param, as in --set
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def track_run(settings: dict[str, Any], run_dir: str | Path, payload: dict[str, Any]) -> str | None:
    """Log one finished cell to MLflow; returns the MLflow run id, or None when tracking failed
    (the failure is logged once per tracking URI and process)."""
    import os

    rd = Path(run_dir)
    uri = settings.get("uri") or ""
    if uri in _REPORTED:  # failed before in this process: do not wait for it again
        return None
    # MLflow's HTTP client retries with back-off for minutes by default; a cell must not wait that long
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        import mlflow
        import yaml

        client = mlflow.MlflowClient(tracking_uri=settings.get("uri"))
        exp = client.get_experiment_by_name(settings["experiment"])
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(settings["experiment"])
        run = client.create_run(exp_id, run_name=rd.name, tags={"openmia.cell_id": payload["cell_id"],
                                                               "openmia.label": payload.get("label", "")})
        rid = run.info.run_id
        from mlflow.entities import Metric, Param

        cfg = yaml.safe_load((rd / "config.yaml").read_text())
        params = [Param(k, (v if isinstance(v, str) else json.dumps(v))[:500]) for k, v in _flat(cfg).items()]
        now = int(time.time() * 1000)
        metrics = []
        if (rd / "metrics.jsonl").is_file():
            for line in (rd / "metrics.jsonl").read_text().splitlines():
                rec = json.loads(line)
                step = int(rec.get("epoch", 0))
                metrics += [Metric(k, float(v), now, step) for k, v in rec.items() if k != "epoch" and _finite(v)]
        res = json.loads((rd / "result.json").read_text())
        for metric, ci in (res.get("test") or {}).items():
            for part in ("value", "ci_low", "ci_high"):
                v = (ci or {}).get(part)
                if _finite(v):
                    metrics.append(Metric(f"test_{metric}" if part == "value" else f"test_{metric}_{part}", float(v), now, 0))
        for i in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits: 100 params, 1000 metrics
            client.log_batch(rid, metrics=metrics[i:i + 100], params=params[i:i + 100])
        for name in ARTEFACTS:
            if (rd / name).is_file():
                client.log_artifact(rid, str(rd / name), artifact_path=str(Path(name).parent) if "/" in name else None)
        client.set_terminated(rid)
        return rid
    except Exception as exc:  # tracking must never fail a finished cell
        if uri not in _REPORTED:
            _REPORTED.add(uri)
            log.error("MLflow tracking at %r failed (%s: %s); the cells go on without tracking (logged once)",
                      uri, type(exc).__name__, exc)
        return None
