"""Real-GPU checks of the device code (docs/training.md, "Devices"): ``auto`` on a GPU machine,
training in fp32, bf16 and fp16 on CUDA, runs trained on the GPU predicted, re-scored and embedded
on the CPU and on the GPU with the same results (also in a process that sees no GPU), 3D
segmentation, self-supervised pre-training, landmarks (heat maps and DQN agents), detection,
counting, denoising and inpainting, semi-supervised training, resume, and a one-rank NCCL group.

Every test needs a real CUDA device: the module is marked ``cuda`` and skipped where
``torch.cuda.is_available()`` is false. On a GPU machine::

    PYTHONPATH=src python3 -m pytest -q -m cuda tests/engine/test_cuda.py -rs

The bodies are device-generic (``DEVICE``, ``RESOLVED``) so that a copy with ``DEVICE = "cpu"``
runs them on a CPU-only machine as a check of the test code itself; the tests that are about CUDA
by nature (autocast dtypes, fp16 and its gradient scaler, a process without a GPU) say so.

Tolerances between the CPU and the GPU: the GPU's convolutions run in TF32 by default (torch's
``cudnn.allow_tf32``), so logits differ from the CPU's by ~1e-3 relative; scores are compared with
tolerances of that order and label maps by the fraction of equal voxels (the default settings, as
a user gets them). Tests that compare outputs value by value (embeddings, heat-map points, DQN
rollouts, counts, denoised/inpainted images) take the ``no_tf32`` fixture: full fp32 convolutions.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from openmia import api
from openmia.engine import device as D
from openmia.errors import ConfigError

DEVICE = "cuda"
RESOLVED = "cuda:0" if DEVICE == "cuda" else DEVICE  # what provenance.json and result.json record
THREADS = 4  # torch host threads per run (the GPU machine has 16 cores)
BASE = ["eval.n_resamples=50", f"train.threads={THREADS}"]

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a real CUDA device: torch.cuda.is_available() is False here "
                              "(run with -m cuda on a GPU machine)"),
]


# ----------------------------------------------------------------------------- helpers

def _train(run_dir: Path, *overrides: str, device: str = DEVICE):
    """``api.train`` of a tiny run on ``device`` into ``run_dir`` (not indexed, no progress bar)."""
    return api.train(None, [*BASE, f"train.device={device}", *overrides], run_dir=run_dir, progress=False, index=False)


def _json(path: Path):
    return json.loads(Path(path).read_text())


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if x.strip()]


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _assert_ran_on(run_dir: Path, device: str = RESOLVED) -> None:
    """The run finished on ``device`` (result.json and provenance.json say so) with finite losses."""
    result = _json(run_dir / "result.json")
    assert result["status"] == "complete"
    assert result["device"] == device
    prov = _json(run_dir / "provenance.json")
    assert prov["device"] == device
    if device.startswith("cuda"):  # the GPU model and the CUDA build are part of the provenance
        assert prov["gpu"]["name"] == torch.cuda.get_device_name(0) and prov["gpu"]["cuda"] == torch.version.cuda
    losses = [x["train_loss"] for x in _lines(run_dir) if "train_loss" in x]
    assert losses and all(math.isfinite(v) for v in losses), losses


def _saved_on_device(checkpoint: Path) -> str:
    """The device type of a checkpoint's tensors when loaded without ``map_location``."""
    ck = torch.load(checkpoint, weights_only=True)
    return next(v for v in ck["model"].values() if isinstance(v, torch.Tensor)).device.type


def _write_pngs(folder: Path, images: np.ndarray, names: list[str]) -> Path:
    """``images`` ``(N, 1, H, W)`` uint8 as ``<name>.png`` files."""
    from PIL import Image

    folder.mkdir(parents=True)
    for img, name in zip(images, names):
        Image.fromarray(np.ascontiguousarray(img[0])).save(folder / f"{name}.png")
    return folder


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def _same_fraction(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.mean(a == b))


def _test_value(run_dir: Path, metric: str) -> float:
    return float(_json(run_dir / "result.json")["test"][metric]["value"])


@pytest.fixture
def no_tf32(monkeypatch):
    """cuDNN convolutions in full fp32 (no TF32) for the whole test, where a CPU/GPU comparison
    must be tight. (torch's legacy flag only: mixing it with the newer ``fp32_precision`` settings
    makes reading the flag raise.)"""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


# ----------------------------------------------------------------------------- the device helpers

def test_auto_is_the_first_gpu_and_the_device_helpers_work_on_it():
    """CUDA by nature: ``auto``/``cuda`` resolution, the missing-device error, autocast dtypes,
    the fp16 gradient scaler and host-to-device copies on the real GPU."""
    dev = D.resolve_device("auto")
    assert dev == torch.device("cuda:0") and D.resolve_device("cuda") == dev
    avail = D.available_devices()
    assert avail[:2] == ["cpu", "cuda:0"]
    assert sum(d.startswith("cuda") for d in avail) == torch.cuda.device_count()
    assert api.environment()["devices"] == avail
    n = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=rf"train.device='cuda:{n}': no such device here; available: cpu, cuda:0"):
        D.resolve_device(f"cuda:{n}")
    D.check_precision("fp16", dev)  # allowed on CUDA
    # autocast computes in the low precision on the GPU; to_fp32 brings outputs back to fp32
    a = torch.randn(64, 64, device=dev)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with D.autocast(precision, dev):
            out = a @ a
            assert torch.is_autocast_enabled("cuda")
        assert out.dtype == dtype and out.device == dev
        back = D.to_fp32({"x": [out]})["x"][0]
        assert back.dtype == torch.float32
        torch.testing.assert_close(back, a @ a, rtol=0.05, atol=0.5)
    with D.autocast("fp32", dev):
        assert (a @ a).dtype == torch.float32 and not torch.is_autocast_enabled("cuda")
    scaler = D.grad_scaler("fp16", dev)
    assert scaler is not None and scaler.is_enabled()
    assert D.grad_scaler("bf16", dev) is None
    # copies: nested containers, pageable and pinned host memory, non-blocking on CUDA
    host = torch.arange(10_000, dtype=torch.float32)
    pinned = host.clone().pin_memory()
    out = D.to_device({"a": [host, (pinned,)], "n": 3}, dev)
    torch.cuda.synchronize(dev)
    assert out["n"] == 3 and out["a"][0].device == dev and out["a"][1][0].device == dev
    assert torch.equal(out["a"][0].cpu(), host) and torch.equal(out["a"][1][0].cpu(), host)
    assert D.to_device(out["a"][0], dev) is out["a"][0]  # already there: the same tensor


# ----------------------------------------------------------------------------- classification, per precision

CLS = ["data.dataset=synthetic/binary", "model.name=cnn_small", "model.kwargs.width=8", "train.epochs=2",
       "data.batch_size=128", "optim.lr=0.003"]


@pytest.fixture(scope="module")
def cls_runs(tmp_path_factory):
    """``cls_runs(precision)``: a 2-epoch cnn_small run on synthetic/binary on DEVICE (trained once)."""
    root = tmp_path_factory.mktemp("cls")
    done: dict[str, Path] = {}

    def get(precision: str) -> Path:
        if precision not in done:
            done[precision] = _train(root / precision, *CLS, f"train.precision={precision}").run_dir
        return done[precision]

    return get


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_classification_trains_on_the_gpu_in_each_precision(cls_runs, precision):
    """fp16 is CUDA by nature (a gradient scaler); fp32 and bf16 also run on the CPU."""
    rd = cls_runs(precision)
    _assert_ran_on(rd)
    result = _json(rd / "result.json")
    assert result["epochs_done"] == 2 and result["select_metric"] == "auc"
    for metric in ("auc", "acc", "brier", "nll"):
        m = result["test"][metric]
        assert math.isfinite(m["value"]) and m["ci_low"] <= m["value"] <= m["ci_high"], (metric, m)
    assert 0 <= result["test"]["auc"]["value"] <= 1
    assert _json(rd / "provenance.json")["config"]["train"]["precision"] == precision
    assert all(np.isfinite(x[k]) for x in _lines(rd) for k in ("val_auc", "val_loss"))
    assert len(_rows(rd / "predictions" / "test.csv")) == 800
    # weights and optimiser state stay fp32; only fp16 keeps a gradient scaler
    last = torch.load(rd / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float32 for v in last["model"].values() if v.is_floating_point())
    if precision == "fp16":
        assert last["scaler"] is not None and last["scaler"]["scale"] > 0
    else:
        assert last["scaler"] is None
    # the checkpoints were written from the device (their tensors come back there without map_location)
    assert _saved_on_device(rd / "checkpoints" / "best.pt") == torch.device(DEVICE).type
    if precision != "fp32":  # autocast really changed the arithmetic, and not by much
        ref, low = _lines(cls_runs("fp32"))[0]["train_loss"], _lines(rd)[0]["train_loss"]
        assert low != ref and abs(low - ref) < 0.1 * abs(ref), (low, ref)


def test_a_gpu_trained_classifier_predicts_the_same_on_the_cpu_and_the_gpu(cls_runs, tmp_path):
    """An fp16 run (CUDA by nature) predicts on the CPU (``--device cpu``) and on its own device."""
    from openmia.data.catalog import load_split

    rd = cls_runs("fp16" if DEVICE == "cuda" else "bf16")
    test = load_split("synthetic/binary", "test")
    names = [c.rsplit("/", 1)[-1] for c in test.case_ids[:64]]
    images = _write_pngs(tmp_path / "images", test.images[:64], names)
    on_cpu = api.predict(rd, images, tmp_path / "cpu", device="cpu")
    on_gpu = api.predict(rd, images, tmp_path / "gpu")  # default: the run's own train.device
    assert on_cpu["cases"] == on_gpu["cases"] == 64
    cpu = {r["case_id"]: float(r["score"]) for r in _rows(tmp_path / "cpu" / "predictions.csv")}
    gpu = {r["case_id"]: float(r["score"]) for r in _rows(tmp_path / "gpu" / "predictions.csv")}
    own = {r["case_id"].rsplit("/", 1)[-1]: float(r["score"]) for r in _rows(rd / "predictions" / "test.csv")}
    assert cpu.keys() == gpu.keys() == set(names)
    np.testing.assert_allclose([cpu[k] for k in names], [gpu[k] for k in names], atol=5e-3)
    np.testing.assert_allclose([gpu[k] for k in names], [own[k] for k in names], atol=5e-3)
    assert np.std([gpu[k] for k in names]) > 1e-4  # the scores depend on the image


def test_an_fp16_gpu_run_reevaluates_on_the_cpu(cls_runs, tmp_path):
    """CUDA by nature (fp16). Docs: a run trained on a GPU re-evaluates on a CPU."""
    rd = cls_runs("fp16")
    cpu = api.reevaluate(rd, tmp_path / "cpu", ["train.device=cpu"], index=False).run_dir
    _assert_ran_on(cpu, "cpu")
    assert _test_value(cpu, "auc") == pytest.approx(_test_value(rd, "auc"), abs=5e-3)


@pytest.mark.parametrize("dataset", ["synthetic/multiclass", "synthetic/multilabel"])
def test_balanced_class_weights_train_on_the_gpu(tmp_path, dataset):
    """``classification.class_weights=balanced``: the loss weights must live on the logits' device."""
    rd = _train(tmp_path / "run", f"data.dataset={dataset}", "model.name=mlp", "train.epochs=1", "data.batch_size=256",
                "classification.class_weights=balanced").run_dir
    _assert_ran_on(rd)
    assert math.isfinite(_test_value(rd, "auc"))


@pytest.mark.parametrize("method,extra", [("fixmatch", ["semi.threshold=0.5"]),
                                          ("mean_teacher", ["train.ema=0.9"])])
def test_semi_supervised_training_on_the_gpu(tmp_path, method, extra):
    rd = _train(tmp_path / "run", "data.dataset=synthetic/binary", "model.name=cnn_small", "model.kwargs.width=4",
                "train.epochs=1", "data.batch_size=64", "data.labelled_fraction=0.25", f"semi.method={method}",
                *extra).run_dir
    _assert_ran_on(rd)
    assert math.isfinite(_test_value(rd, "auc"))


# ----------------------------------------------------------------------------- segmentation 2D

SEG2D = ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "model.kwargs.width=8",
         "train.epochs=4", "data.batch_size=32", "optim.lr=0.003", "data.augment=flip"]


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    """A 4-epoch 2D segmentation run on DEVICE, and a folder of PNGs: six of its test images named
    as its prediction files, plus two test images side by side (64 x 128, sliding windows)."""
    from openmia.data.catalog import load_split
    from openmia.tasks.segmentation import safe_name

    root = tmp_path_factory.mktemp("seg2d")
    rd = _train(root / "run", *SEG2D).run_dir
    test = load_split("synthetic/seg2d", "test")
    names = [safe_name(c) for c in test.case_ids[:6]]
    images = _write_pngs(root / "images", test.images[:6], names)
    wide = np.concatenate([test.images[6], test.images[7]], axis=-1)  # (1, 64, 128)
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(wide[0])).save(images / "wide.png")
    return rd, images, names


def test_a_gpu_segmentation_run_scores_the_same_when_reevaluated_on_the_cpu_and_the_gpu(seg_run, tmp_path):
    rd, _, _ = seg_run
    _assert_ran_on(rd)
    own = _test_value(rd, "dice")
    assert own > 0.3, f"4 epochs should learn something on synthetic/seg2d (dice {own:.3f})"
    cpu = api.reevaluate(rd, tmp_path / "cpu", ["train.device=cpu"], index=False).run_dir
    gpu = api.reevaluate(rd, tmp_path / "gpu", [f"train.device={DEVICE}"], index=False).run_dir
    _assert_ran_on(cpu, "cpu")  # metrics.jsonl is the source run's; result and provenance are the new device's
    _assert_ran_on(gpu, RESOLVED)
    for metric in ("dice", "iou"):
        assert _test_value(cpu, metric) == pytest.approx(_test_value(rd, metric), abs=5e-3), metric
        assert _test_value(gpu, metric) == pytest.approx(_test_value(rd, metric), abs=1e-4), metric
    assert _test_value(cpu, "hd95") == pytest.approx(_test_value(rd, "hd95"), rel=0.05)
    files = sorted((rd / "predictions" / "test").glob("*.npy"))
    assert len(files) == 120
    same_cpu = np.mean([_same_fraction(np.load(f), np.load(cpu / "predictions" / "test" / f.name)) for f in files])
    same_gpu = np.mean([_same_fraction(np.load(f), np.load(gpu / "predictions" / "test" / f.name)) for f in files])
    assert same_cpu >= 0.999 and same_gpu >= 0.9999, (same_cpu, same_gpu)


def test_a_gpu_segmentation_run_predicts_the_same_on_the_cpu_and_the_gpu(seg_run, tmp_path):
    rd, images, names = seg_run
    on_cpu = api.predict(rd, images, tmp_path / "cpu", device="cpu")
    on_gpu = api.predict(rd, images, tmp_path / "gpu")  # default: the run's own train.device
    tta = api.predict(rd, images, tmp_path / "tta", device=DEVICE, tta=True, scales=[0.75, 1.0])
    assert on_cpu["cases"] == on_gpu["cases"] == tta["cases"] == 7
    for name in [*names, "wide"]:
        cpu, gpu = _png(tmp_path / "cpu" / f"{name}.png"), _png(tmp_path / "gpu" / f"{name}.png")
        assert gpu.shape == ((64, 128) if name == "wide" else (64, 64)) and set(np.unique(gpu)) <= {0, 1, 2}
        assert _same_fraction(cpu, gpu) >= 0.998, name
        assert _png(tmp_path / "tta" / f"{name}.png").shape == gpu.shape
    for name in names:  # a 64 x 64 image is one window: the run's own predictions on the same device
        own = np.load(rd / "predictions" / "test" / f"{name}.npy")
        assert _same_fraction(_png(tmp_path / "gpu" / f"{name}.png"), own) >= 0.999, name
    assert any(np.any(_png(tmp_path / "gpu" / f"{n}.png") > 0) for n in names)  # not all background


def test_a_gpu_checkpoint_loads_onto_the_cpu_and_embeds_alike(seg_run, tmp_path, no_tf32):
    from openmia.engine.predict import load_run

    rd, _, _ = seg_run
    assert _saved_on_device(rd / "checkpoints" / "best.pt") == torch.device(DEVICE).type
    cpu_run, gpu_run = load_run(rd, device="cpu"), load_run(rd)  # default: the run's train.device
    assert cpu_run.device == torch.device("cpu") and next(cpu_run.model.parameters()).device.type == "cpu"
    assert str(gpu_run.device) == RESOLVED and next(gpu_run.model.parameters()).device == gpu_run.device
    for (k, a), (_, b) in zip(cpu_run.model.state_dict().items(), gpu_run.model.state_dict().items()):
        assert torch.equal(a, b.cpu()), k
    ec = api.embed(tmp_path / "cpu", run_dir=rd, split="test", device="cpu")
    eg = api.embed(tmp_path / "gpu", run_dir=rd, split="test", device=DEVICE)
    assert ec["cases"] == eg["cases"] == 120
    a, b = np.load(tmp_path / "cpu" / "embeddings.npy"), np.load(tmp_path / "gpu" / "embeddings.npy")
    assert a.shape == b.shape and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


_NO_GPU_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from openmia import api
    from openmia.errors import ConfigError
    rd, images, out = sys.argv[1:4]
    report = {"cuda_visible": torch.cuda.is_available()}
    try:
        api.predict(rd, images, out + "/default")
        report["default"] = "predicted"
    except ConfigError as exc:
        report["default"] = str(exc)
    report["cpu_cases"] = api.predict(rd, images, out + "/cpu", device="cpu")["cases"]
    res = api.reevaluate(rd, out + "/re", ["train.device=cpu"], index=False)
    report["dice"] = json.load(open(res.run_dir / "result.json"))["test"]["dice"]["value"]
    report["device"] = json.load(open(res.run_dir / "provenance.json"))["device"]
    print(json.dumps(report))
""")


def test_a_gpu_run_is_used_in_a_process_without_a_gpu(seg_run, tmp_path):
    """CUDA by nature: a process that sees no GPU (``CUDA_VISIBLE_DEVICES=``) refuses the run's own
    ``cuda`` with the documented error, and predicts and re-evaluates with ``--device cpu``."""
    import openmia

    rd, images, names = seg_run
    src = str(Path(openmia.__file__).resolve().parents[1])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", _NO_GPU_SCRIPT, str(rd), str(images), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["cuda_visible"] is False
    assert "train.device='cuda': no such device here; available: cpu" in report["default"], report["default"]
    assert report["cpu_cases"] == 7 and report["device"] == "cpu"
    assert report["dice"] == pytest.approx(_test_value(rd, "dice"), abs=5e-3)
    for name in [*names, "wide"]:
        assert (tmp_path / "cpu" / f"{name}.png").is_file()


# ----------------------------------------------------------------------------- 3D

def test_3d_segmentation_with_deep_supervision_in_bf16_on_the_gpu(tmp_path):
    """A 3D U-Net (batch norm: channels_last_3d; deep supervision: the auxiliary losses' weights)
    in bf16 on the device, re-scored on the CPU."""
    rd = _train(tmp_path / "run", "task=segmentation", "data.dataset=synthetic/seg3d", "model.name=unet",
                "model.kwargs={width: 4, depth: 3, norm: batch, deep_supervision: true}", "train.epochs=3",
                "data.batch_size=8", "optim.lr=0.003", "train.precision=bf16").run_dir
    _assert_ran_on(rd)
    files = sorted((rd / "predictions" / "test").glob("*.npy"))
    assert len(files) == 40 and np.load(files[0]).shape == (32, 32, 32)
    cpu = api.reevaluate(rd, tmp_path / "cpu", ["train.device=cpu"], index=False).run_dir
    _assert_ran_on(cpu, "cpu")
    assert _test_value(cpu, "dice") == pytest.approx(_test_value(rd, "dice"), abs=5e-3)
    same = np.mean([_same_fraction(np.load(f), np.load(cpu / "predictions" / "test" / f.name)) for f in files])
    assert same >= 0.999, same


# ----------------------------------------------------------------------------- self-supervised pre-training

@pytest.mark.parametrize("method,dataset,precision", [("simclr", "synthetic/binary", "fp32"),
                                                      ("mim", "synthetic/binary3d", "bf16")])
def test_self_supervised_pretraining_on_the_gpu(tmp_path, method, dataset, precision):
    res = api.pretrain(method, dataset, [*BASE, f"train.device={DEVICE}", f"train.precision={precision}",
                                         "model.kwargs.width=4", "train.epochs=1", "data.batch_size=64",
                                         "pretrain.knn_k=5"], run_dir=tmp_path / "pre", progress=False, index=False)
    rd = res.run_dir
    _assert_ran_on(rd)
    enc = torch.load(rd / "encoder.pt", map_location="cpu", weights_only=True)
    assert enc["pretrain"]["method"] == method and enc["model"]
    assert _saved_on_device(rd / "encoder.pt") == "cpu"  # written device-free: it loads anywhere without map_location
    result = _json(rd / "result.json")
    assert math.isfinite(result["test"]["auc"]["value"]) and math.isfinite(result["knn"]["test"]["auc"]["value"])
    if method == "simclr":  # the GPU encoder initialises a classifier trained on the GPU
        ft = _train(tmp_path / "ft", "data.dataset=synthetic/binary", "model.name=cnn_small", "model.kwargs.width=4",
                    "train.epochs=1", "data.batch_size=128", f"train.init_from={rd}", "train.freeze=probe").run_dir
        _assert_ran_on(ft)
        rec = _json(ft / "init_from.json")
        assert set(rec["loaded_from"]) == set(enc["model"])
        best = torch.load(ft / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)["model"]
        assert all(torch.equal(best[k], enc["model"][k]) for k in enc["model"] if not k.endswith("num_batches_tracked"))


# ----------------------------------------------------------------------------- landmarks

LANDMARKS = ["task=landmarks", "data.dataset=synthetic/landmarks2d", "data.batch_size=32"]


def _points(path: Path) -> dict[tuple[str, str], np.ndarray]:
    return {(r["case_id"].rsplit("/", 1)[-1], r["landmark"]): np.array([float(r[a]) for a in "xyz" if a in r])
            for r in _rows(path)}


def _landmark_pngs(folder: Path, n: int) -> Path:
    from openmia.data.catalog import load_split

    test = load_split("synthetic/landmarks2d", "test")
    return _write_pngs(folder, test.images[:n], [c.rsplit("/", 1)[-1] for c in test.case_ids[:n]])


def test_heatmap_landmarks_on_the_gpu_predict_alike_on_the_cpu(tmp_path, no_tf32):
    rd = _train(tmp_path / "heat", *LANDMARKS, "model.name=heatmap_unet", "train.epochs=2").run_dir
    _assert_ran_on(rd)
    assert math.isfinite(_test_value(rd, "radial_error"))
    images = _landmark_pngs(tmp_path / "images", 16)
    api.predict(rd, images, tmp_path / "cpu", device="cpu")
    api.predict(rd, images, tmp_path / "gpu")
    cpu, gpu = _points(tmp_path / "cpu" / "points.csv"), _points(tmp_path / "gpu" / "points.csv")
    own = _points(rd / "predictions" / "test.csv")
    assert cpu.keys() == gpu.keys() and len(gpu) == 16 * 2
    for key in gpu:
        np.testing.assert_allclose(cpu[key], gpu[key], atol=0.05, err_msg=str(key))
        np.testing.assert_allclose(gpu[key], own[key], atol=1e-3, err_msg=str(key))


def test_dqn_landmark_agents_on_the_gpu(tmp_path, no_tf32):
    pytest.importorskip("gymnasium")
    pytest.importorskip("stable_baselines3")
    rd = _train(tmp_path / "dqn", *LANDMARKS, "model.name=dqn_agent", "train.epochs=2", "landmarks.warmup=200",
                "landmarks.buffer=1000", "landmarks.val_episodes=8", "landmarks.max_steps=20", "landmarks.patch=7",
                "landmarks.scales=[1,3]").run_dir
    _assert_ran_on(rd)
    assert {p.name for p in (rd / "agents").iterdir()} == {"blob.zip", "ring.zip"}
    assert math.isfinite(_test_value(rd, "radial_error"))
    images = _landmark_pngs(tmp_path / "images", 80)
    api.predict(rd, images, tmp_path / "gpu")  # the whole test split, as the run's own evaluation
    api.predict(rd, images, tmp_path / "cpu", device="cpu")
    cpu, gpu = _points(tmp_path / "cpu" / "points.csv"), _points(tmp_path / "gpu" / "points.csv")
    own = _points(rd / "predictions" / "test.csv")
    assert cpu.keys() == gpu.keys() == own.keys() and len(gpu) == 80 * 2
    # greedy episodes: one flipped arg-max changes a path, so the CPU is compared by the share of equal points
    same = np.mean([np.allclose(cpu[k], gpu[k]) for k in gpu])
    assert same >= 0.95, same
    assert np.mean([np.allclose(gpu[k], own[k]) for k in gpu]) >= 0.95


# ----------------------------------------------------------------------------- detection, counting

@pytest.mark.parametrize("model", ["centernet", "fcos"])
def test_detection_trains_on_the_gpu(tmp_path, model):
    rd = _train(tmp_path / "run", "task=detection", "data.dataset=synthetic/lesions", f"model.name={model}",
                "model.kwargs={width: 4}", "train.epochs=1", "data.batch_size=16", "optim.lr=0.003",
                "data.augment=flip").run_dir
    _assert_ran_on(rd)
    result = _json(rd / "result.json")
    assert {"map", "count_mae"} <= set(result["test"])
    assert all(math.isfinite(result["test"][m]["value"]) for m in ("map", "count_mae"))


def test_a_gpu_counting_run_counts_the_same_on_the_cpu(tmp_path, no_tf32):
    from openmia.data.catalog import load_split

    rd = _train(tmp_path / "run", "task=counting", "data.dataset=synthetic/cells", "model.name=density_counter",
                "model.kwargs={width: 4, depth: 2}", "train.epochs=2", "data.batch_size=16", "optim.lr=0.003",
                "counting.crop=48").run_dir
    _assert_ran_on(rd)
    test = load_split("synthetic/cells", "test")
    names = [c.rsplit("/", 1)[-1] for c in test.case_ids[:8]]
    images = _write_pngs(tmp_path / "images", test.images[:8], names)
    files = sorted(images.glob("*.png"))
    cpu = api.count(files, tmp_path / "cpu", run_dir=rd, device="cpu", overlays=False)["counts"]
    gpu = api.count(files, tmp_path / "gpu", run_dir=rd, device=DEVICE, overlays=False)["counts"]
    own = {r["case_id"].rsplit("/", 1)[-1]: float(r["count"]) for r in _rows(rd / "predictions" / "test_counts.csv")}
    assert cpu.keys() == gpu.keys() == set(names)
    for n in names:
        (label, c), = cpu[n].items()
        g = gpu[n][label]
        assert math.isfinite(g) and g == pytest.approx(c, rel=1e-3, abs=1e-2), n
        assert g == pytest.approx(own[n], rel=1e-3, abs=1e-2), n


# ----------------------------------------------------------------------------- denoising, inpainting

GEN = ["train.epochs=1", "model.kwargs.width=4", "model.kwargs.depth=2", "data.batch_size=16"]


@pytest.mark.parametrize("task,extra", [("denoising", ["denoising.sigma=0.1"]), ("inpainting", ["inpainting.mask=boxes"])])
def test_generative_runs_on_the_gpu_restore_alike_on_the_cpu(tmp_path, task, extra, no_tf32):
    rd = _train(tmp_path / "run", f"task={task}", *extra, *GEN).run_dir
    _assert_ran_on(rd)
    inputs = rd / "inputs" / "test"
    if task == "denoising":
        cpu = api.denoise(inputs, tmp_path / "cpu", run_dir=rd, scale="unit", device="cpu")
        gpu = api.denoise(inputs, tmp_path / "gpu", run_dir=rd, scale="unit", device=DEVICE)
    else:
        masks = rd / "masks" / "test"
        cpu = api.inpaint(inputs, masks, tmp_path / "cpu", run_dir=rd, scale="unit", device="cpu")
        gpu = api.inpaint(inputs, masks, tmp_path / "gpu", run_dir=rd, scale="unit", device=DEVICE)
    assert cpu["cases"] == gpu["cases"] == len(list(inputs.glob("*.npy"))) > 0
    for f in sorted((rd / "predictions" / "test").glob("*.npy")):
        c, g = np.load(tmp_path / "cpu" / f.name), np.load(tmp_path / "gpu" / f.name)
        np.testing.assert_allclose(c, g, atol=5e-3, err_msg=f.name)
        np.testing.assert_allclose(g, np.load(f), atol=1e-4, err_msg=f.name)


# ----------------------------------------------------------------------------- resume

@pytest.fixture
def deterministic_restored(monkeypatch):
    """``train.deterministic`` switches torch's deterministic algorithms on for the process and
    sets CUBLAS_WORKSPACE_CONFIG; both are put back afterwards."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    was = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(was)


@pytest.mark.parametrize("dropout", [
    0.0,
    0.2,  # dropout on CUDA draws from the GPU's generator: the checkpoint keeps its state too
])
def test_a_deterministic_run_resumed_on_the_gpu_ends_as_the_unbroken_one(tmp_path, deterministic_restored, dropout):
    from openmia.config import load_config
    from openmia.engine.run_dir import resume, train

    cfg = load_config(None, [*BASE, f"train.device={DEVICE}", "data.dataset=synthetic/binary", "model.name=cnn_small",
                             f"model.kwargs={{width: 4, dropout: {dropout}}}", "train.epochs=2", "data.batch_size=128",
                             "train.deterministic=true"])
    assert train(cfg, run_dir=tmp_path / "killed", progress=False, stop_after_epoch=1) is None
    if DEVICE == "cuda":  # cuBLAS needs a fixed workspace to be deterministic (set by the loop)
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == ":4096:8"
    resumed = resume(tmp_path / "killed", progress=False)
    whole = train(cfg, run_dir=tmp_path / "whole", progress=False)
    _assert_ran_on(resumed.run_dir)
    assert [x["train_loss"] for x in _lines(resumed.run_dir)] == [x["train_loss"] for x in _lines(whole.run_dir)]
    assert resumed.test_summary == whole.test_summary


def test_an_fp16_run_resumes_on_the_gpu_with_its_gradient_scaler(tmp_path):
    """CUDA by nature (fp16): the scaler's state (scale, growth tracker) survives a resume, so the
    resumed run's scaler ends where the unbroken run's does."""
    from openmia.config import load_config
    from openmia.engine.run_dir import resume, train

    cfg = load_config(None, [*BASE, f"train.device={DEVICE}", "data.dataset=synthetic/binary", "model.name=mlp",
                             "model.kwargs.dropout=0.0", "train.epochs=2", "data.batch_size=256", "train.precision=fp16"])
    assert train(cfg, run_dir=tmp_path / "killed", progress=False, stop_after_epoch=1) is None
    first = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["scaler"]
    assert first and first["scale"] > 0
    resumed = resume(tmp_path / "killed", progress=False)
    whole = train(cfg, run_dir=tmp_path / "whole", progress=False)
    _assert_ran_on(resumed.run_dir)
    assert resumed.epochs_done == 2 and [x["epoch"] for x in _lines(resumed.run_dir)] == [1, 2]
    end_r, end_w = (torch.load(rd / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["scaler"]
                    for rd in (resumed.run_dir, whole.run_dir))
    assert (end_r["scale"], end_r["_growth_tracker"]) == (end_w["scale"], end_w["_growth_tracker"])
    assert end_r["_growth_tracker"] != first["_growth_tracker"] or end_r["scale"] != first["scale"]


# ----------------------------------------------------------------------------- NCCL

_ONE_RANK_SCRIPT = textwrap.dedent("""
    import json, os, socket, sys
    import torch
    from openmia.engine.distributed import DistContext
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    ctx = DistContext(rank=0, world=1, local_rank=0)
    dev = ctx.init(torch.device(sys.argv[1]))
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 2).to(dev)
    m(torch.randn(3, 4, device=dev)).sum().backward()
    before = [p.grad.clone() for p in m.parameters()]
    ctx.average_gradients(m)
    ctx.broadcast_module(m)
    report = {"device": str(dev), "backend": ctx.backend,
              "grads": all(torch.equal(a, p.grad) for a, p in zip(before, m.parameters())),
              "sum": ctx.sum_floats([1.5, 2.0]), "bcast": ctx.broadcast_floats([3.0]), "any": ctx.any_true(True)}
    torch.distributed.destroy_process_group()
    print(json.dumps(report))
""")


def test_a_one_rank_process_group_joins_with_nccl_on_the_gpu(tmp_path):
    """The DDP context's CUDA branch for real (``nccl``, ``cuda:LOCAL_RANK``, collectives on GPU
    tensors), in a one-rank group (one GPU); multi-rank runs are tested on the CPU (gloo)."""
    import openmia

    src = str(Path(openmia.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", _ONE_RANK_SCRIPT, DEVICE], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"device": RESOLVED, "backend": "nccl" if DEVICE == "cuda" else "gloo", "grads": True,
                      "sum": [1.5, 2.0], "bcast": [3.0], "any": True}
