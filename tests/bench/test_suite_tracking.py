"""MLflow tracking of suite cells (openmia.bench.tracking): params, per-epoch metrics from
metrics.jsonl, test metrics with CIs and artefacts, against a local store and a local
``mlflow server``; an unreachable server never stops the suite and is reported once."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openmia.bench import tracking
from openmia.errors import ConfigError

RUN = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs" / "seg_complete"  # a finished run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _fresh_reports():
    tracking._REPORTED.clear()
    yield
    tracking._REPORTED.clear()


def _check_logged(uri: str, rid: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(uri)
    run = client.get_run(rid)
    import yaml

    cfg = yaml.safe_load((RUN / "config.yaml").read_text())
    assert run.data.params["task"] == "segmentation" and run.data.params["train.epochs"] == str(cfg["train"]["epochs"])
    assert json.loads(run.data.params["model.kwargs"]) == cfg["model"]["kwargs"]
    assert run.data.tags["openmia.cell_id"] == "c1"
    epochs = [json.loads(x) for x in (RUN / "metrics.jsonl").read_text().splitlines()]
    hist = client.get_metric_history(rid, "train_loss")
    assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == [(e["epoch"], e["train_loss"]) for e in epochs]
    test = json.loads((RUN / "result.json").read_text())["test"]
    assert run.data.metrics["test_dice"] == pytest.approx(test["dice"]["value"])
    assert run.data.metrics["test_dice_ci_low"] == pytest.approx(test["dice"]["ci_low"])
    arts = {a.path for a in client.list_artifacts(rid)}
    assert {"config.yaml", "result.json", "provenance.json", "metrics.jsonl"} <= arts
    assert run.info.status == "FINISHED"


def test_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'openmia[mlflow]')")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow >= 3 keeps file stores behind this switch
    uri = (tmp_path / "mlruns").as_uri()
    settings = tracking.tracking_config("mlflow", uri, "demo")
    assert settings == {"kind": "mlflow", "uri": uri, "experiment": "openmia-demo"}
    rid = tracking.track_run(settings, RUN, {"cell_id": "c1", "label": "seg x unet x seed 0"})
    assert rid is not None
    _check_logged(uri, rid)


def test_unreachable_server_is_reported_once_and_the_suite_goes_on(caplog):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'openmia[mlflow]')")
    uri = f"http://127.0.0.1:{_free_port()}"
    with caplog.at_level(logging.ERROR, logger="openmia.bench.tracking"):
        assert tracking.tracking_config("mlflow", uri, "demo") is None  # checked once, before any cell runs
    assert [r.getMessage() for r in caplog.records] == [
        f"MLflow tracking server {uri} does not answer (within 5 s); the suite runs without tracking"]
    # a server that goes away while the suite runs: each cell stays done, the error is logged once
    caplog.clear()
    settings = {"kind": "mlflow", "uri": uri, "experiment": "openmia-demo"}
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="openmia.bench.tracking"):
        assert tracking.track_run(settings, RUN, {"cell_id": "c1"}) is None
        assert tracking.track_run(settings, RUN, {"cell_id": "c2"}) is None
    assert len(caplog.records) == 1 and "failed" in caplog.records[0].getMessage()
    assert time.monotonic() - t0 < 120


def test_bad_tracking_options():
    with pytest.raises(ConfigError, match="--tracking-uri needs --tracking mlflow"):
        tracking.tracking_config(None, "http://x", "s")
    with pytest.raises(ConfigError, match="--tracking 'wandb': choose one of mlflow"):
        tracking.tracking_config("wandb", None, "s")


def test_mlflow_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"pip install 'openmia\[mlflow\]'"):
        tracking.tracking_config("mlflow", None, "s")


@pytest.mark.slow  # starting `mlflow server` takes 10-30 s
def test_local_mlflow_server(tmp_path):
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'openmia[mlflow]')")
    exe = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    if not Path(exe).is_file():
        pytest.skip("the mlflow command is not installed (pip install 'openmia[mlflow]' installs the server)")
    port = _free_port()
    proc = subprocess.Popen([exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                             "--default-artifact-root", str(tmp_path / "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
                            start_new_session=True)  # its own process group: the server's workers stop with it
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # bounded wait for the server to answer
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer within 90 s")
        settings = tracking.tracking_config("mlflow", uri, "demo")
        assert settings is not None
        rid = None
        for _ in range(20):  # the port opens before the app is ready to serve
            rid = tracking.track_run(settings, RUN, {"cell_id": "c1"})
            if rid is not None:
                break
            tracking._REPORTED.clear()
            time.sleep(1)
        assert rid is not None
        _check_logged(uri, rid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
