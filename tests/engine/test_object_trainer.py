"""Detection and counting runs end to end: training loop, CSV outputs, evaluation, resume,
`openmia count`, and the configuration errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from openmia.config import load_config
from openmia.engine.run_dir import resume, train
from openmia.tasks.objects import choose_count_thresholds, counts_at
from openmia.transforms.objects import augment_objects, crop_objects
from openmia.errors import ConfigError, DataError

FAST = ["train.threads=1", "eval.n_resamples=50", "data.batch_size=16", "optim.lr=0.003"]


def _cfg(tmp_path, *over):
    return load_config(None, [*FAST, f"out_dir={tmp_path}", *over])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_detection_run_writes_scored_detection_and_count_files(tmp_path):
    from openmia.evaluation.other_tasks import evaluate_detection_files

    cfg = _cfg(tmp_path, "task=detection", "data.dataset=synthetic/lesions", "model.name=centernet",
               "model.kwargs={width: 4, depth: 2}", "train.epochs=1", "data.augment=flip")
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    rd = res.run_dir
    result = json.loads((rd / "result.json").read_text())
    assert result["select_metric"] == "map50" and set(result["count_thresholds"]) == {"benign", "malignant"}
    assert {"ap50", "map", "froc", "count_mae"} <= set(result["test"])
    pred, truth = _rows(rd / "predictions" / "test.csv"), _rows(rd / "truth" / "test.csv")
    assert list(pred[0]) == ["case_id", "label", "score", "x1", "y1", "x2", "y2"]
    assert {r["case_id"] for r in truth} == {f"synthetic/lesions/test/{i:05d}" for i in range(100)}
    # the run's summary is the standard evaluator's verdict on its own files
    again = evaluate_detection_files(rd / "predictions" / "test.csv", rd / "truth" / "test.csv", n_resamples=50)
    assert again.metric("ap50")["value"] == pytest.approx(result["test"]["ap50"]["value"])
    # counts: one row per image and class; predicted counts = detections at the class's threshold
    counts = _rows(rd / "predictions" / "test_counts.csv")
    assert len(counts) == 200
    thr = result["count_thresholds"]
    for cid, lab in (("synthetic/lesions/test/00000", "benign"), ("synthetic/lesions/test/00003", "malignant")):
        n = sum(1 for r in pred if r["case_id"] == cid and r["label"] == lab and float(r["score"]) >= thr[lab])
        assert float(next(r["count"] for r in counts if r["case_id"] == cid and r["label"] == lab)) == n
    assert (rd / "eval" / "test" / "counting" / "summary.json").is_file()
    assert "ap50" in (rd / "eval" / "test" / "report.txt").read_text()


def test_counting_run_with_density_model_resumes_and_counts_images(tmp_path):
    from openmia.cli.main import main
    from openmia.data.catalog import load_split

    cfg = _cfg(tmp_path, "task=counting", "data.dataset=synthetic/cells", "model.name=density_counter",
               "model.kwargs={width: 4, depth: 2}", "train.epochs=2", "data.augment=dihedral", "counting.crop=48")
    assert train(cfg, run_dir=tmp_path / "run", progress=False, stop_after_epoch=1) is None
    res = resume(tmp_path / "run", progress=False)
    assert res.epochs_done == 2 and len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "run" / "predictions" / "test.csv").exists()  # a density model has no detections
    run_counts = {r["case_id"]: float(r["count"]) for r in _rows(tmp_path / "run" / "predictions" / "test_counts.csv")}
    # `openmia count` on the same test images (saved as PNG, same size: no resizing) gives the run's counts
    from PIL import Image

    test = load_split("synthetic/cells", "test")
    files = []
    for i in range(3):
        f = tmp_path / f"img{i}.png"
        Image.fromarray(test.images[i, 0]).save(f)
        files.append(str(f))
    assert main(["-q", "count", "--model", str(tmp_path / "run"), *files, "--out", str(tmp_path / "counted")]) == 0
    got = _rows(tmp_path / "counted" / "counts.csv")
    assert [r["case_id"] for r in got] == ["img0", "img1", "img2"]
    for i, r in enumerate(got):
        assert float(r["count"]) == pytest.approx(run_counts[test.case_ids[i]], rel=1e-4, abs=1e-3)
    assert all((tmp_path / "counted" / "overlays" / f"img{i}.png").is_file() for i in range(3))


def test_recompute_bn_sets_running_means_to_the_training_images_mean(tmp_path):
    from openmia.data.catalog import get_spec, load_split
    from openmia.engine.predict import load_run
    from openmia.transforms.intensity import to_float_tensor

    cfg = _cfg(tmp_path, "task=counting", "data.dataset=synthetic/cells", "model.name=density_counter",
               "model.kwargs={width: 4, depth: 2}", "train.epochs=1", "data.batch_size=40", "counting.recompute_bn=true")
    train(cfg, run_dir=tmp_path / "run", progress=False)
    model = load_run(tmp_path / "run").model  # the best (= only) epoch's checkpoint, as validated
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean(dim=(0, 2, 3))))
    tr = load_split("synthetic/cells", "train")
    norm = get_spec("synthetic/cells").normalization
    with torch.no_grad():
        for i in range(0, len(tr.images), 40):  # 200 images, 5 equal batches: mean of means = mean
            model(to_float_tensor(tr.images[i:i + 40], norm))
    # the first norm layer's input depends on the weights only, not on the layer's mode
    torch.testing.assert_close(bn.running_mean, torch.stack(seen).mean(0), rtol=1e-4, atol=1e-5)
    # a classification run has no such option: the detection section is refused, the earlier flat key
    # names the section it moved to
    with pytest.raises(ConfigError, match="section 'detection' applies to detection runs, but this run's task is "
                                          "'classification'"):
        train(_cfg(tmp_path, "model.name=cnn_small", "detection.recompute_bn=true"), run_dir=tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="train.recompute_bn is a detection/counting option now: write it as "
                                          "detection.recompute_bn"):
        train(_cfg(tmp_path, "model.name=cnn_small", "train.recompute_bn=true"), run_dir=tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


def test_counting_with_a_point_detector(tmp_path):
    cfg = _cfg(tmp_path, "task=counting", "data.dataset=synthetic/cells", "model.name=centernet",
               "model.kwargs={width: 4, depth: 2, stride: 2}", "train.epochs=1")
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    pred = _rows(res.run_dir / "predictions" / "test.csv")
    assert list(pred[0]) == ["case_id", "label", "score", "x", "y"]  # points
    result = json.loads((res.run_dir / "result.json").read_text())
    assert result["select_metric"] == "count_mae" and "cell" in result["count_thresholds"]
    bad = _cfg(tmp_path, "task=counting", "data.dataset=synthetic/cells", "model.name=centernet",
               "model.kwargs={points: false}")
    with pytest.raises(ConfigError, match="must predict points"):
        train(bad, run_dir=tmp_path / "bad", progress=False)


@pytest.mark.parametrize("over, msg", [
    (["task=detection", "data.dataset=synthetic/lesions", "model.name=cnn_small"],
     "model.name='cnn_small' is a classification model but the run's task is 'detection'"),
    # only the presets that keep boxes axis-aligned (boxes/points move with the image)
    (["task=detection", "data.dataset=synthetic/lesions", "model.name=centernet", "data.augment=affine"],
     "data.augment: expected one of 'none', 'flip', 'dihedral', found 'affine'"),
    (["task=detection", "data.dataset=synthetic/cells", "model.name=centernet"],
     "data.dataset='synthetic/cells' is a counting data set but the run's task is 'detection'"),
    (["task=counting", "data.dataset=synthetic/cells", "model.name=density_counter", "train.select_metric=auc"],
     "train.select_metric: expected one of 'auto', 'count_mae', found 'auc'"),
    (["task=detection", "data.dataset=synthetic/lesions", "model.name=centernet", "eval.tta=true"],
     "eval.tta is a segmentation option now: write it as segmentation.tta"),
    (["task=detection", "data.dataset=synthetic/lesions", "model.name=centernet", "segmentation.tta=true"],
     "section 'segmentation' applies to segmentation runs, but this run's task is 'detection'"),
    (["data.dataset=synthetic/binary", "model.name=cnn_small", "data.crop=16"],
     "data.crop is a detection/counting option now: write it as detection.crop"),
    (["data.dataset=synthetic/binary", "model.name=cnn_small", "detection.crop=16"],
     "section 'detection' applies to detection runs, but this run's task is 'classification'"),
    (["task=counting", "data.dataset=synthetic/cells", "model.name=density_counter", "counting.crop=4"],
     r"crop: expected an integer >= 8 \(pixels per side\), found 4"),
])
def test_object_run_config_errors(tmp_path, over, msg):
    with pytest.raises(ConfigError, match=msg):
        train(_cfg(tmp_path, *over), run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()  # refused before the run directory exists


def test_flips_move_boxes_and_points_with_the_image():
    x = torch.zeros(1, 1, 8, 10)
    x[0, 0, 1:3, 2:5] = 1  # box x1=2 y1=1 x2=5 y2=3 (exclusive ends)
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        y, (b,) = augment_objects(x, [np.array([[2.0, 1, 5, 3]])], "box", "flip", g)
        ys, xs = np.nonzero(y[0, 0].numpy())
        assert b.tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
        g = torch.Generator().manual_seed(seed)
        y, (p,) = augment_objects(x, [np.array([[2.0, 1]])], "point", "flip", g)
        assert y[0, 0, int(p[0, 1]), int(p[0, 0])] == 1  # the pixel under the point moved with it
    sq = torch.zeros(1, 1, 6, 6)
    sq[0, 0, 2, 4] = 1  # (x 4, y 2): its orbit under the 8 symmetries has 8 distinct points
    seen = set()
    for seed in range(20):
        y, (p,) = augment_objects(sq, [np.array([[4.0, 2]])], "point", "dihedral", torch.Generator().manual_seed(seed))
        assert y[0, 0, int(p[0, 1]), int(p[0, 0])] == 1
        seen.add(tuple(p[0]))
    assert len(seen) == 8  # all eight symmetries of the square occur


def test_random_crops_keep_the_objects_inside_and_shift_them():
    x = torch.zeros(1, 1, 10, 12)
    x[0, 0, 4, 6], x[0, 0, 9, 0] = 1, 3  # points (x 6, y 4) of class 1 and (x 0, y 9) of class 2
    x[0, 0, 1:3, 9:12] = 2  # a box x 9-12, y 1-3 (centre 10.5, 2); the other box is off-marker
    pts, boxes = np.array([[6.0, 4], [0.0, 9]]), np.array([[9.0, 1, 12, 3], [0.0, 8, 2, 10]])
    kept_point = kept_box = 0
    for seed in range(30):
        y, (p,), (c,) = crop_objects(x, [pts], [np.array([1, 2])], 6, "point", torch.Generator().manual_seed(seed))
        assert y.shape == (1, 1, 6, 6) and len(p) == len(c) == int(y.eq(1).sum() + y.eq(3).sum())
        for (px, py), k in zip(p, c):  # the pixel under each kept point is its own marker
            assert 0 <= px < 6 and 0 <= py < 6 and y[0, 0, int(py), int(px)] == {1: 1, 2: 3}[int(k)]
        kept_point += len(p)
        y, (b,), (c,) = crop_objects(x, [boxes], [np.array([0, 1])], 6, "box", torch.Generator().manual_seed(seed))
        assert np.all((b >= 0) & (b <= 6)) and len(b) == len(c)
        for (x1, y1, x2, y2), k in zip(b, c):
            if k == 0:  # the marked box: clipped to the crop, it frames exactly its visible pixels
                ys, xs = np.nonzero(y[0, 0].numpy() == 2)
                assert [x1, y1, x2, y2] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        kept_box += len(b)
    assert 0 < kept_point < 60 and 0 < kept_box < 60  # sometimes in, sometimes out
    y, (p,), _ = crop_objects(x, [pts], [np.array([1, 2])], 32, "point", torch.Generator())
    assert y.shape == x.shape and np.array_equal(p, pts)  # a crop larger than the image keeps it whole


def test_count_thresholds_chosen_by_hand_example():
    # image 0 truth 2 objects of class 0, image 1 truth 1: scores (0.9, 0.6, 0.2) and (0.7, 0.3)
    preds = [{"scores": np.array([0.9, 0.6, 0.2]), "labels": np.array([0, 0, 0])},
             {"scores": np.array([0.7, 0.3]), "labels": np.array([0, 0])}]
    classes = [np.array([0, 0]), np.array([0])]
    # threshold in (0.3, 0.6]: counts (2, 1) -> MAE 0; the grid's first such value is 0.35
    assert choose_count_thresholds(preds, classes, 1).tolist() == [0.35]
    assert counts_at(preds, np.array([0.5]), 1)[:, 0].tolist() == [2, 1]
    assert counts_at([{"count": 3.5}], np.zeros(1), 1).tolist() == [[3.5]]


def test_count_with_the_classical_baseline_and_bad_input(tmp_path):
    from PIL import Image

    from openmia.engine.count import count_images

    img = np.zeros((64, 64), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    for cx, cy in ((12, 12), (40, 20), (30, 50)):
        img = np.maximum(img, (255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 3.0**2))).astype(np.uint8))
    Image.fromarray(img).save(tmp_path / "three.png")
    res = count_images([tmp_path / "three.png"], tmp_path / "out", method="log")
    assert res["counts"] == {"three": {"object": 3.0}}
    assert len(_rows(tmp_path / "out" / "detections.csv")) == 3 and (tmp_path / "out" / "overlays" / "three.png").is_file()
    with pytest.raises(DataError, match="missing.png"):
        count_images([tmp_path / "missing.png"], tmp_path / "o2", method="log")
    (tmp_path / "a").mkdir()
    Image.fromarray(img).save(tmp_path / "a" / "three.png")
    with pytest.raises(DataError, match="same case id"):
        count_images([tmp_path / "three.png", tmp_path / "a" / "three.png"], tmp_path / "o3", method="log")
    with pytest.raises(ConfigError, match="--model"):
        count_images([tmp_path / "three.png"], tmp_path / "o4")


def test_cli_train_task_defaults_to_its_synthetic_set(tmp_path, capsys):
    from openmia.cli.main import main

    assert main(["-q", "train", "--task", "counting", "--model", "density_counter", "--epochs", "1", "--out-dir", str(tmp_path),
                 "--set", "model.kwargs={width: 4, depth: 2}", "--set", "eval.n_resamples=50", "--set", "train.threads=1"]) == 0
    out = capsys.readouterr().out
    assert "mae" in out and "run directory" in out
    (rd,) = tmp_path.iterdir()
    assert "dataset: synthetic/cells" in (rd / "config.yaml").read_text()


def test_flips_move_3d_points_with_the_volume():
    v = torch.zeros(1, 1, 5, 6, 7)  # (D, H, W)
    v[0, 0, 1, 2, 1] = 1  # x 1, y 2, z 1
    seen = set()
    for seed in range(24):
        y, (p,) = augment_objects(v, [np.array([[1.0, 2, 1]])], "point", "flip", torch.Generator().manual_seed(seed))
        assert y.shape == v.shape and y[0, 0, int(p[0, 2]), int(p[0, 1]), int(p[0, 0])] == 1
        seen.add(tuple(p[0]))
    assert len(seen) == 8  # every combination of the three flips occurs


def test_3d_point_detection_run_on_synthetic_nuclei(tmp_path):
    cfg = _cfg(tmp_path, "task=detection", "data.dataset=synthetic/nuclei3d", "model.name=centernet",
               "model.kwargs={width: 4, depth: 2, stride: 2}", "train.epochs=1", "data.batch_size=8")
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    pred, truth = _rows(res.run_dir / "predictions" / "test.csv"), _rows(res.run_dir / "truth" / "test.csv")
    assert list(pred[0]) == ["case_id", "label", "score", "x", "y", "z"] and list(truth[0]) == ["case_id", "label", "x", "y", "z"]
    assert all(0 <= float(r[c]) <= 32 for r in pred for c in "xyz")
    summary = json.loads((res.run_dir / "eval" / "test" / "summary_all.json").read_text())
    assert summary["detection"]["kind"] == "point" and {m["metric"] for m in summary["metrics"]} >= {"ap", "count_mae"}
    # openmia count on NIfTI volumes (x = the file's first axis) gives the run's own test counts
    import nibabel as nib

    from openmia.data.object_sets import load as load_objects
    from openmia.engine.count import count_images

    test = load_objects("synthetic/nuclei3d", "test")
    files = []
    for i in range(2):
        vol = test.images[i, 0]  # (D, H, W) = (z, y, x)
        assert vol.min() == 0 and vol.max() == 255  # so the min-max scaling of `count` is the identity here
        files.append(tmp_path / f"vol{i}.nii.gz")
        nib.save(nib.Nifti1Image(vol.transpose(2, 1, 0).astype(np.float32), np.eye(4)), files[-1])
    got = count_images(files, tmp_path / "counted", run_dir=res.run_dir)
    run_counts = {r["case_id"]: float(r["count"]) for r in _rows(res.run_dir / "predictions" / "test_counts.csv")}
    assert [got["counts"][f"vol{i}"]["nucleus"] for i in range(2)] == [run_counts[test.case_ids[i]] for i in range(2)]
    dets = _rows(tmp_path / "counted" / "detections.csv")
    assert list(dets[0]) == ["case_id", "label", "score", "x", "y", "z"]
    mine = sorted((float(r["score"]), float(r["x"]), float(r["y"]), float(r["z"])) for r in dets if r["case_id"] == "vol0")
    runs = sorted((float(r["score"]), float(r["x"]), float(r["y"]), float(r["z"])) for r in pred if r["case_id"] == test.case_ids[0])
    assert len(mine) > 0 and np.allclose(mine, runs, atol=1e-4)  # same points: the x, y, z axes map as documented
    assert (tmp_path / "counted" / "overlays" / "vol0.png").is_file()
    nan = np.zeros((8, 8, 8), np.float32)
    nan[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(DataError, match="nan.nii.gz: 1 voxel"):
        count_images([tmp_path / "nan.nii.gz"], tmp_path / "c2", run_dir=res.run_dir)
    with pytest.raises(DataError, match="3D run; it counts NIfTI"):
        count_images([tmp_path / "counted" / "overlays" / "vol0.png"], tmp_path / "c3", run_dir=res.run_dir)
    with pytest.raises(ConfigError, match="must predict points"):
        train(_cfg(tmp_path, "task=detection", "data.dataset=synthetic/nuclei3d", "model.name=centernet",
                   "model.kwargs={points: false}"), run_dir=tmp_path / "bad", progress=False)
    with pytest.raises(ConfigError, match="supports dims"):
        train(_cfg(tmp_path, "task=detection", "data.dataset=synthetic/nuclei3d", "model.name=fcos"),
              run_dir=tmp_path / "bad2", progress=False)


def test_synthetic_nuclei3d_is_deterministic_with_points_on_nuclei():
    from openmia.data.synthetic_cells import nuclei3d

    a, pa = nuclei3d(3, seed=4)
    b, pb = nuclei3d(3, seed=4)
    assert a.shape == (3, 1, 32, 32, 32) and np.array_equal(a, b) and all(np.array_equal(p, q) for p, q in zip(pa, pb))
    for vol, pts in zip(a[:, 0], pa):
        assert 3 <= len(pts) <= 15 and pts.shape[1] == 3
        at = vol[tuple(np.round(pts[:, ::-1]).astype(int).T)]  # (x, y, z) -> array (z, y, x)
        assert np.median(at) > np.percentile(vol, 90)  # annotated centres sit on bright nuclei
