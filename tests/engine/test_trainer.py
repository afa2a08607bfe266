"""End-to-end trainer tests on the synthetic default (tiny budgets, one thread)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from openmia.config import load_config
from openmia.engine.loop import Loop
from openmia.engine.run_dir import resume, train
from openmia.errors import RunDirError

FAST = ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=2", "data.batch_size=128",
        "eval.n_resamples=200", "train.threads=1", "train.deterministic=true"]


def _cfg(tmp_path, *extra):
    return load_config(None, [*FAST, f"out_dir={tmp_path / 'runs'}", *extra])


def _weights(run_dir, name="last.pt"):
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)["model"]


def test_run_directory_has_everything(tmp_path):
    from openmia import api

    res = api.train(_cfg(tmp_path), progress=False)  # the public door installs the run index
    rd = res.run_dir
    for rel in ("config.yaml", "provenance.json", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt",
                "predictions/val.csv", "predictions/test.csv", "truth/test.csv", "eval/test/per_case.csv",
                "eval/test/summary.json", "eval/test/report.txt", "eval/val/summary.json", "result.json"):
        assert (rd / rel).is_file(), rel
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and all(0 <= r["val_auc"] <= 1 for r in lines)
    # exactly the task's validation scores
    assert all({k for k in r if k.startswith("val_")} == {"val_auc", "val_acc", "val_loss"} for r in lines)
    result = json.loads((rd / "result.json").read_text())
    from openmia.engine.device import resolve_device

    assert result["task"] == "classification" and result["status"] == "complete"
    assert result["device"] == str(resolve_device("auto")) == json.loads((rd / "provenance.json").read_text())["device"]
    prov = json.loads((rd / "provenance.json").read_text())
    for key in ("data", "config_hash", "seeds", "versions", "hardware", "train_seconds", "peak_rss_bytes", "parameters"):
        assert key in prov
    assert prov["data"]["splits"]["test"]["split_hash"] and prov["parameters"] > 0
    with open(rd / "predictions" / "test.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "score"] and len(rows) - 1 == res.test_summary["n_cases"]
    # the run is indexed (by api.train; the engine itself writes no index)
    from openmia.bench.store import RunStore

    assert [r["run_dir"] for r in RunStore.default().list()] == [str(rd.resolve())]
    train(_cfg(tmp_path, "name=engine_only"), progress=False)
    assert [r["run_dir"] for r in RunStore.default().list()] == [str(rd.resolve())]


def test_deterministic_runs_are_bit_identical(tmp_path):
    a = train(_cfg(tmp_path, "name=a"), progress=False)
    b = train(_cfg(tmp_path, "name=b"), progress=False)
    wa, wb = _weights(a.run_dir), _weights(b.run_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(_cfg(tmp_path, "name=c", "train.seed=1"), progress=False)
    assert not all(torch.equal(wa[k], _weights(c.run_dir)[k]) for k in wa)


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=3", "data.augment=standard", "schedule.name=cosine")
    full = train(cfg.with_overrides(["name=full"]), progress=False)
    killed = cfg.with_overrides(["name=killed"])
    assert train(killed, progress=False, stop_after_epoch=1) is None
    rd = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith("killed"))
    assert not (rd / "result.json").exists()
    res = resume(rd, progress=False)
    assert res.epochs_done == 3
    wf, wr = _weights(full.run_dir), _weights(rd)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    epochs = [json.loads(x)["epoch"] for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    with pytest.raises(RunDirError, match="already complete"):
        resume(rd, progress=False)


def test_time_budget_stops_training(tmp_path):
    res = train(_cfg(tmp_path, "train.epochs=1000", "train.max_minutes=0.002"), progress=False)
    assert res.epochs_done < 1000 and res.train_seconds < 30


def test_multilabel_and_multiclass_heads(tmp_path):
    for ds in ("synthetic/multilabel", "synthetic/multiclass"):
        res = train(_cfg(tmp_path, f"data.dataset={ds}", "train.epochs=1", "classification.class_weights=balanced"),
                    progress=False)
        metrics = {m["metric"] for m in res.test_summary["metrics"]}
        assert {"auc", "acc"} <= metrics


def test_corrupt_checkpoint_is_clear_error(tmp_path):
    cfg = _cfg(tmp_path, "name=torn")
    train(cfg, progress=False, stop_after_epoch=1)
    rd = next((tmp_path / "runs").iterdir())
    (rd / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="cannot load checkpoint"):
        resume(rd, progress=False)


def test_selection_on_validation_loss(tmp_path):
    res = train(_cfg(tmp_path, "train.epochs=3", "train.select_metric=loss"), progress=False)
    lines = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    best = min(lines, key=lambda r: r["val_loss"])["epoch"]
    assert res.best_epoch == best and all(r["val_loss"] > 0 for r in lines)


def test_dbn_is_pretrained_before_fine_tuning(tmp_path):
    res = train(_cfg(tmp_path, "model.name=dbn", "model.kwargs.hidden=[64, 32]", "train.pretrain_epochs=1",
                     "train.epochs=1"), progress=False)
    first = json.loads((res.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["phase"] == "pretrain" and [h["layer"] for h in first["history"]] == [0, 1]
    assert res.epochs_done == 1


def test_ema_weights_are_the_selected_model_and_survive_resume(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=3", "train.ema=0.9", "train.select_metric=loss")
    full = train(cfg.with_overrides(["name=full"]), progress=False)
    ck = torch.load(full.run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    ema_sd = {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")}
    raw = ck["model"]
    # the EMA is a different model from the raw weights, and the best checkpoint is an EMA snapshot
    assert any(not torch.equal(raw[k], ema_sd[k]) for k in raw if raw[k].is_floating_point())
    if full.best_epoch == 3:
        best = _weights(full.run_dir, "best.pt")
        assert all(torch.equal(best[k], ema_sd[k]) for k in best)
    killed = cfg.with_overrides(["name=killed"])
    train(killed, progress=False, stop_after_epoch=2)
    rd = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith("killed"))
    resume(rd, progress=False)
    ck2 = torch.load(rd / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(ck["ema"][k], ck2["ema"][k]) for k in ck["ema"])


def test_ema_decay_is_validated(tmp_path):
    from openmia.errors import ConfigError

    with pytest.raises(ConfigError, match="train.ema"):
        _cfg(tmp_path, "train.ema=1.5")


def test_cpu_budget_clock_stops_training(tmp_path):
    res = train(_cfg(tmp_path, "train.epochs=1000", "train.max_minutes=0.002", "train.budget_clock=cpu"), progress=False)
    assert 1 <= res.epochs_done < 1000 and res.train_seconds >= 0.12


def test_model_of_another_task_is_rejected(tmp_path):
    from openmia.errors import ConfigError

    with pytest.raises(ConfigError, match="is a segmentation model"):
        train(_cfg(tmp_path, "model.name=unet_small"), progress=False)


def test_segmentation_training_end_to_end(tmp_path):
    cfg = load_config(None, ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small",
                             "model.kwargs.width=4", "train.epochs=2", "data.batch_size=32", "data.augment=flip",
                             "eval.n_resamples=100", "train.threads=1", f"out_dir={tmp_path / 'runs'}"])
    res = train(cfg, progress=False)
    rd = res.run_dir
    assert (rd / "predictions" / "test").is_dir() and len(list((rd / "predictions" / "test").glob("*.npy"))) == 120
    assert (rd / "eval" / "test" / "report.html").is_file()
    dice = next(m for m in res.test_summary["metrics"] if m["metric"] == "dice" and m["label"] == "all")
    assert 0 <= dice["value"] <= 1 and dice["ci_low"] <= dice["value"] <= dice["ci_high"]
    assert {"organ", "lesion", "all"} <= set(res.test_summary["labels"])
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert all("val_dice" in r for r in lines) and json.loads((rd / "result.json").read_text())["select_metric"] == "dice"
    # exactly segmentation's validation scores (no val_auc)
    assert all({k for k in r if k.startswith("val_")} == {"val_dice", "val_acc", "val_loss"} for r in lines)
    assert json.loads((rd / "result.json").read_text())["task"] == "segmentation"
    # largest-component post-processing: every saved prediction has at most one component per class
    from scipy import ndimage

    from openmia.errors import ConfigError, RunDirError

    # (re-scoring the finished run's model: same weights and history, new predictions and reports)
    from openmia.engine.run_dir import reevaluate

    res2 = reevaluate(rd, tmp_path / "largest", ["segmentation.postprocess=largest"])
    rd2 = res2.run_dir
    assert res2.train_seconds == res.train_seconds and res2.best_epoch == res.best_epoch
    assert (rd2 / "metrics.jsonl").read_text() == (rd / "metrics.jsonl").read_text()
    n_multi = 0
    for f in sorted((rd2 / "predictions" / "test").glob("*.npy")):
        lab, before = np.load(f), np.load(rd / "predictions" / "test" / f.name)
        assert all(ndimage.label(lab == k)[1] <= 1 for k in (1, 2)), f.name
        assert np.all((lab == before) | (lab == 0))  # only removes voxels
        n_multi += any(ndimage.label(before == k)[1] > 1 for k in (1, 2))
    assert n_multi > 0  # the raw predictions had something to remove
    assert json.loads((rd2 / "result.json").read_text())["status"] == "complete"
    # filling missing classes: every class present afterwards; only voxels of a missing class change
    rd3 = reevaluate(rd, tmp_path / "filled", ["segmentation.fill_empty=0.5"]).run_dir
    n_filled = 0
    for f in sorted((rd3 / "predictions" / "test").glob("*.npy")):
        lab, before = np.load(f), np.load(rd / "predictions" / "test" / f.name)
        missing = [k for k in (1, 2) if not (before == k).any()]
        assert all((lab == k).any() for k in (1, 2)), f.name
        assert np.all((lab == before) | np.isin(lab, missing)), f.name
        n_filled += bool(missing)
    assert n_filled > 0  # the 2-epoch model misses a class somewhere
    # multi-scale TTA: the kept model's test predictions at scales 0.75 and 1, logits averaged
    from openmia.engine.inference import multiscale_logits
    from openmia.engine.predict import load_run

    rd4 = reevaluate(rd, tmp_path / "scales", ["segmentation.tta_scales=[0.75, 1.0]"]).run_dir
    run = load_run(rd4)
    assert run.cfg.options.tta_scales == (0.75, 1.0)
    import torch

    from openmia.tasks.segmentation import safe_name
    from openmia.transforms.intensity import to_float_tensor

    test = Loop(run.cfg, progress=False).setup().splits["test"]
    with torch.no_grad():
        want = multiscale_logits(to_float_tensor(test.images[:3], run.spec.normalization), run.model, (0.75, 1.0))
    for cid, lab in zip(test.case_ids[:3], want.argmax(1).numpy()):
        np.testing.assert_array_equal(np.load(rd4 / "predictions" / "test" / f"{safe_name(cid)}.npy"), lab)
    # re-evaluation takes eval.*, train.device and segmentation's inference options only
    allowed = (r"reevaluate takes eval\.\*, train\.device, segmentation\.tta, segmentation\.tta_scales, "
               r"segmentation\.postprocess, segmentation\.fill_empty overrides only, found \[{}\]; other keys change the "
               r"training")
    with pytest.raises(ConfigError, match=allowed.format(r"'optim\.lr=0\.1'")):
        reevaluate(rd, tmp_path / "other", ["optim.lr=0.1"])
    with pytest.raises(ConfigError, match=allowed.format(r"'segmentation\.loss=ce'")):  # the task's training options
        reevaluate(rd, tmp_path / "other", ["segmentation.loss=ce"])
    assert not (tmp_path / "other").exists()
    with pytest.raises(RunDirError, match="already exists"):
        reevaluate(rd, rd2, ["segmentation.tta=true"])
    # a classification data set with task=segmentation is a clear error, and leaves no run directory
    runs_before = sorted((tmp_path / "runs").iterdir())
    with pytest.raises(ConfigError, match="is a classification data set"):
        train(cfg.with_overrides(["data.dataset=synthetic/binary"]), progress=False)
    with pytest.raises(ConfigError, match="is a classification data set"):
        train(cfg.with_overrides(["data.dataset=synthetic/binary"]), run_dir=tmp_path / "never", progress=False)
    assert sorted((tmp_path / "runs").iterdir()) == runs_before and not (tmp_path / "never").exists()
    with pytest.raises(ConfigError, match="train.select_metric: expected one of 'auto', 'dice', 'loss', found 'auc'"):
        train(cfg.with_overrides(["train.select_metric=auc"]), progress=False)
    # segmentation's options on a classification run: the segmentation section is refused, and the
    # earlier flat keys name the section they moved to
    to_cls = ["data.dataset=synthetic/binary", "task=classification", "model.name=cnn_small"]
    not_seg = "section 'segmentation' applies to segmentation runs, but this run's task is 'classification'"
    for option in ("postprocess=largest", "fill_empty=0.5", "tta_scales=[1.0, 1.5]", "tta=true", "batch_dice=false",
                   "loss=dice"):
        with pytest.raises(ConfigError, match=not_seg):
            train(cfg.with_overrides([*to_cls, f"segmentation.{option}"]), progress=False)
    with pytest.raises(ConfigError, match="eval.postprocess is a segmentation option now: write it as segmentation.postprocess"):
        train(cfg.with_overrides([*to_cls, "eval.postprocess=largest"]), progress=False)
    with pytest.raises(ConfigError, match="eval.fill_empty is a segmentation option now: write it as segmentation.fill_empty"):
        train(cfg.with_overrides([*to_cls, "eval.fill_empty=0.5"]), progress=False)
    with pytest.raises(ConfigError, match="eval.tta_scales is a segmentation option now: write it as segmentation.tta_scales"):
        train(cfg.with_overrides([*to_cls, "eval.tta_scales=[1.0, 1.5]"]), progress=False)
    with pytest.raises(ConfigError, match="train.batch_dice is a segmentation option now: write it as segmentation.batch_dice"):
        train(cfg.with_overrides([*to_cls, "train.batch_dice=false"]), progress=False)
    with pytest.raises(ConfigError, match="segmentation.fill_empty: expected a fraction"):
        cfg.with_overrides(["segmentation.fill_empty=1.5"])
    with pytest.raises(ConfigError, match="segmentation.tta_scales: expected a non-empty list"):
        cfg.with_overrides(["segmentation.tta_scales=[]"])
    assert sorted((tmp_path / "runs").iterdir()) == runs_before


def test_batch_dice_option_reaches_the_segmentation_loss(tmp_path):
    import torch

    from openmia.losses.segmentation import dice_loss

    base = ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "train.epochs=1",
            "train.threads=1", f"out_dir={tmp_path / 'runs'}"]
    lo = torch.randn(3, 3, 8, 8)
    t = torch.randint(0, 3, (3, 8, 8))
    ce = torch.nn.functional.cross_entropy(lo, t)
    for batch in (True, False):
        loop = Loop(load_config(None, [*base, f"segmentation.batch_dice={str(batch).lower()}"]), progress=False).setup()
        want = dice_loss(lo, t, batch=batch) + ce
        assert loop.task.head.loss(lo, t).item() == pytest.approx(want.item(), rel=1e-6)


def test_augment_pair_moves_labels_with_images():
    from openmia.transforms.augment import augment_pair

    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    y = (x[:, 0] % 3).long()
    for preset in ("flip", "standard", "dihedral", "strong"):
        gen = torch.Generator().manual_seed(1)
        x2, y2 = augment_pair(x, y, preset, gen)
        assert y2.dtype == y.dtype and set(y2.unique().tolist()) <= {0, 1, 2}
        if preset != "strong":  # geometry only: the label still equals the image value mod 3
            assert torch.equal((x2[:, 0] % 3).long(), y2)


def test_flip_tta_averages_logits_over_every_flip():
    import torch

    from openmia.engine.inference import predict_proba
    from openmia.tasks.segmentation import SegmentationHead

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 2, 3, padding=1).eval()
    imgs = np.random.default_rng(0).integers(0, 256, (3, 1, 6, 5), dtype=np.uint8)
    task = SegmentationHead(2)
    got = predict_proba(net, task, imgs, "uint8_unit", 2, tta=True)
    x = torch.from_numpy(imgs).float() * (2 / 255) - 1
    with torch.no_grad():  # the four flip combinations of a 2D image, by hand
        logits = (net(x) + net(x.flip(2)).flip(2) + net(x.flip(3)).flip(3) + net(x.flip(2, 3)).flip(2, 3)) / 4
    np.testing.assert_allclose(got, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, predict_proba(net, task, imgs, "uint8_unit", 2))  # flips do change an asymmetric net


def test_bf16_precision_autocasts_the_training_forward_only(tmp_path):
    from openmia.errors import ConfigError

    base = ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=resunet", "model.kwargs={channels: [4, 8, 16]}",
            "train.epochs=1", "data.batch_size=32", "eval.n_resamples=50", "train.threads=1", f"out_dir={tmp_path / 'runs'}"]
    seen = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(None, [*base, f"train.precision={precision}"])
        loop = Loop(cfg, progress=False).setup()
        loop.start(tmp_path / precision)
        conv = next(m for m in loop.model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda m, i, o: seen.__setitem__(precision, o.dtype))
        out = loop.forward(torch.rand(2, 1, 64, 64))
        assert out.dtype == torch.float32  # losses always see fp32
    assert seen == {"fp32": torch.float32, "bf16": torch.bfloat16}
    res = train(load_config(None, [*base, "train.precision=bf16"]), progress=False)
    assert all(v.dtype == torch.float32 for v in _weights(res.run_dir).values() if v.is_floating_point())
    dice = next(m for m in res.test_summary["metrics"] if m["metric"] == "dice" and m["label"] == "all")
    assert np.isfinite(dice["value"])
    # fp16 needs CUDA (a gradient scaler): on the CPU it is refused before a run directory exists
    with pytest.raises(ConfigError, match="train.precision=fp16 needs a CUDA device"):
        train(load_config(None, [*base, "train.precision=fp16", "train.device=cpu"]), run_dir=tmp_path / "fp16",
              progress=False)
    assert not (tmp_path / "fp16").exists()
    with pytest.raises(ConfigError, match="train.precision: expected one of 'fp32', 'bf16', 'fp16', found 'fp8'"):
        load_config(None, [*base, "train.precision=fp8"])


def test_refit_trains_on_train_and_val_and_keeps_the_last_ema_weights(tmp_path):
    from openmia.data.catalog import load_split

    cfg = _cfg(tmp_path, "train.epochs=3", "train.ema=0.9", "train.refit=true")
    res = train(cfg, run_dir=tmp_path / "refit", progress=False)
    n_train, n_val = (len(load_split("synthetic/binary", s).case_ids) for s in ("train", "val"))
    splits = json.loads((res.run_dir / "provenance.json").read_text())["data"]["splits"]
    assert splits["train"]["n"] == n_train + n_val and splits["val"]["n"] == n_val
    # no validation: the metrics hold no val scores, every epoch is kept, and the val split is not scored
    lines = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3] and all(r["best"] and "val_auc" not in r for r in lines)
    ck = torch.load(res.run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    ema_sd = {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")}
    best = _weights(res.run_dir, "best.pt")
    assert all(torch.equal(best[k], ema_sd[k]) for k in best)
    result = json.loads((res.run_dir / "result.json").read_text())
    assert result["refit"] is True and result["best_epoch"] == 3 and result["best_val"] is None and result["val"] == {}
    assert result["test"]["auc"]["value"] is not None
    assert not (res.run_dir / "eval" / "val").exists() and (res.run_dir / "eval" / "test" / "summary.json").is_file()
    # a killed refit resumes to the same weights
    assert train(cfg, run_dir=tmp_path / "killed", progress=False, stop_after_epoch=2) is None
    resume(tmp_path / "killed", progress=False)
    assert all(torch.equal(best[k], _weights(tmp_path / "killed", "best.pt")[k]) for k in best)


def test_refit_segmentation_run_scores_test_only(tmp_path):
    cfg = load_config(None, ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "train.epochs=1",
                             "train.threads=1", "eval.n_resamples=100", "train.refit=true", f"out_dir={tmp_path / 'runs'}"])
    res = train(cfg, progress=False)
    assert res.val_summary == {} and res.test_summary["n_cases"] > 0
    assert not (res.run_dir / "predictions" / "val").exists() and any((res.run_dir / "predictions" / "test").iterdir())


def test_refit_is_rejected_where_validation_chooses_thresholds(tmp_path):
    from openmia.errors import ConfigError

    for task, data, model in (("detection", "synthetic/lesions", "fcos"), ("counting", "synthetic/cells", "density_counter")):
        with pytest.raises(ConfigError, match=f"train.refit does not apply to {task} runs: they need the validation split"):
            train(load_config(None, [f"task={task}", f"data.dataset={data}", f"model.name={model}", "train.epochs=1",
                                     "train.refit=true", f"out_dir={tmp_path / 'runs'}"]), progress=False)
    assert not (tmp_path / "runs").exists()


def test_merge_splits_concatenates_cases_and_keeps_regions():
    from openmia.data.catalog import SplitArrays, merge_splits, load_split
    from openmia.errors import DataError

    tr, va = load_split("synthetic/seg2d", "train"), load_split("synthetic/seg2d", "val")
    m = merge_splits(tr, va)
    assert m.case_ids == tr.case_ids + va.case_ids and m.regions is None
    np.testing.assert_array_equal(m.images[len(tr.case_ids):], va.images)
    np.testing.assert_array_equal(m.labels[: len(tr.case_ids)], tr.labels)
    a = SplitArrays(tr.images[:2], tr.labels[:2], tr.case_ids[:2], tr.spec, [(slice(0, 3),), (slice(0, 4),)])
    assert merge_splits(a, SplitArrays(va.images[:1], va.labels[:1], va.case_ids[:1], va.spec)).regions == \
        [(slice(0, 3),), (slice(0, 4),), (...,)]
    with pytest.raises(DataError, match="cannot merge splits with image shapes"):
        merge_splits(a, SplitArrays(va.images[:1, :, :8], va.labels[:1, :8], va.case_ids[:1], va.spec))
