"""Devices: ``train.device`` parsing and resolution, autocast per device type, checkpoints onto any
device, and the default thread count. The machines this suite runs on have no GPU: the CUDA paths
are exercised by replacing ``torch.cuda.is_available`` / ``device_count`` (the only facts
:mod:`openmia.engine.device` reads) and checking every decision made from them."""

from __future__ import annotations

import json

import pytest
import torch

from openmia.config import load_config
from openmia.engine import device as D
from openmia.errors import ConfigError


@pytest.fixture
def cuda(monkeypatch):
    """``cuda(n)``: pretend ``n`` CUDA devices exist (0 = none)."""
    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return set_count


def test_device_names_are_validated_in_the_config():
    for ok in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert load_config(None, [f"train.device={ok}"]).train.device == ok
    for bad in ("gpu", "cuda:x", "CUDA", "cuda:-1"):
        with pytest.raises(ConfigError, match="train.device: expected auto, cpu, cuda, cuda:N or mps"):
            load_config(None, [f"train.device={bad}"])


def test_auto_is_cuda_when_present_else_cpu(cuda):
    cuda(0)
    assert D.resolve_device("auto") == torch.device("cpu")
    assert D.available_devices()[0] == "cpu" and not any(d.startswith("cuda") for d in D.available_devices())
    cuda(2)
    assert D.resolve_device("auto") == torch.device("cuda:0")
    assert D.resolve_device("cuda") == torch.device("cuda:0")
    assert D.resolve_device("cuda:1") == torch.device("cuda:1")
    assert D.available_devices()[:3] == ["cpu", "cuda:0", "cuda:1"]


def test_a_missing_device_is_a_clear_error_naming_what_is_there(cuda):
    cuda(0)
    with pytest.raises(ConfigError, match=r"train.device='cuda': no such device here; available: cpu"):
        D.resolve_device("cuda")
    cuda(1)
    with pytest.raises(ConfigError, match=r"train.device='cuda:3': no such device here; available: cpu, cuda:0"):
        D.resolve_device("cuda:3")


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # a CUDA autocast object built on a CPU-only machine
def test_precision_follows_the_device_type():
    cpu, gpu = torch.device("cpu"), torch.device("cuda:0")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        D.check_precision("fp16", cpu)
    D.check_precision("fp16", gpu)  # allowed: with a gradient scaler
    D.check_precision("bf16", cpu)
    assert D.grad_scaler("bf16", gpu) is None and D.grad_scaler("fp32", gpu) is None
    with D.autocast("bf16", cpu):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with D.autocast("fp32", cpu):
        assert not torch.is_autocast_enabled("cpu")
    assert D.autocast("fp16", gpu).device == "cuda" and D.autocast("fp16", gpu).fast_dtype == torch.float16


def test_to_device_walks_containers_and_keeps_cpu_tensors_as_they_are():
    t = torch.ones(2)
    out = D.to_device({"a": [t, (t,)], "b": 3}, torch.device("cpu"))
    assert out["a"][0] is t and out["a"][1][0] is t and out["b"] == 3
    assert D.to_fp32([torch.ones(1, dtype=torch.bfloat16), torch.ones(1, dtype=torch.long)])[0].dtype == torch.float32


def test_default_threads_leave_busy_cpus_alone(monkeypatch):
    monkeypatch.setattr(D, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(D.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert D.available_cpus() == 4 and D.default_threads() == 4
    monkeypatch.setattr(D.os, "getloadavg", lambda: (1.3, 0.0, 0.0))  # one core busy elsewhere
    assert D.default_threads() == 3
    monkeypatch.setattr(D.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert D.default_threads() == 1
    monkeypatch.setattr(D, "_cgroup_quota", lambda: 2)  # a container quota of 2 CPUs on a 4-CPU host
    monkeypatch.setattr(D.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert D.available_cpus() == 2 and D.default_threads() == 2


def test_cgroup_quota_is_read_from_cpu_max(monkeypatch, tmp_path):
    real_open = open

    def fake_open(path, *a, **k):
        if path == "/sys/fs/cgroup/cpu.max":
            return real_open(tmp_path / "cpu.max", *a, **k)
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert D._cgroup_quota() == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert D._cgroup_quota() is None


def test_train_on_cpu_and_auto_and_refuse_missing_cuda(cuda, tmp_path):
    from openmia import api

    base = ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=1", "eval.n_resamples=50", "train.threads=1"]
    cuda(0)
    for dev in ("cpu", "auto"):
        res = api.train(None, [*base, f"train.device={dev}", f"out_dir={tmp_path / dev}"], progress=False, index=False)
        result = json.loads((res.run_dir / "result.json").read_text())
        assert result["device"] == "cpu"
        assert json.loads((res.run_dir / "provenance.json").read_text())["device"] == "cpu"
    with pytest.raises(ConfigError, match="no such device here; available: cpu"):
        api.train(None, [*base, "train.device=cuda", f"out_dir={tmp_path / 'cuda'}"], progress=False, index=False)
    assert not (tmp_path / "cuda").exists()  # nothing written for a run that cannot start


def test_checkpoints_load_onto_the_requested_device(tmp_path):
    from openmia import api
    from openmia.engine.predict import load_run

    res = api.train(None, ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=1", "eval.n_resamples=50",
                           "train.threads=1", f"out_dir={tmp_path}"], progress=False, index=False)
    run = load_run(res.run_dir, device="cpu")
    assert run.device == torch.device("cpu") and next(run.model.parameters()).device.type == "cpu"
    # map_location puts tensors saved anywhere onto the target: a checkpoint whose tensors say "meta"
    # (standing in for another device) loads onto the CPU
    ck = torch.load(res.run_dir / "checkpoints" / "last.pt", map_location=D.map_location(torch.device("cpu")),
                    weights_only=True)
    assert all(v.device.type == "cpu" for v in ck["model"].values())


def test_class_weights_follow_the_logits_device():
    """Balanced class weights are built as a host array; the loss puts them on the logits' device
    (a CPU tensor beside CUDA logits was an error). The meta device stands in for a GPU here."""
    import numpy as np

    from openmia.tasks.classification import ClassificationHead

    for task_type, target in (("multi-class", torch.tensor([0, 1, 2, 1], device="meta")),
                              ("multi-label", torch.zeros(4, 3, device="meta"))):
        head = ClassificationHead(task_type, 3, class_weights=np.array([1.0, 2.0, 3.0]))
        assert head.loss(torch.zeros(4, 3, device="meta"), target).device.type == "meta"


def test_an_fp16_run_reevaluates_on_the_cpu(tmp_path):
    """Re-scoring is fp32 on every device, so a run trained in fp16 (on a GPU) re-evaluates on a
    CPU; the training precision is checked only when training. The fp16 run is stood in for by a
    CPU run whose saved config says fp16 (training in fp16 needs CUDA)."""
    from openmia import api

    rd = api.train(None, ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=1", "eval.n_resamples=50",
                          "train.threads=1", "train.device=cpu"], run_dir=tmp_path / "run", progress=False, index=False).run_dir
    cfg = rd / "config.yaml"
    cfg.write_text(cfg.read_text().replace("precision: fp32", "precision: fp16"))
    again = api.reevaluate(rd, tmp_path / "cpu", ["train.device=cpu"], index=False)
    assert json.loads((again.run_dir / "result.json").read_text())["device"] == "cpu"
    before = json.loads((rd / "result.json").read_text())["test"]
    after = json.loads((again.run_dir / "result.json").read_text())["test"]
    assert after["auc"]["value"] == pytest.approx(before["auc"]["value"], abs=1e-12)
