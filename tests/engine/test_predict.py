"""openmia predict: segmentation label maps (NIfTI geometry kept, sliding window) and classification CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from openmia.cli.main import main
from openmia.config import load_config
from openmia.engine.run_dir import train
from openmia.errors import ConfigError, PredictionError, RunDirError


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small",
                             "model.kwargs.width=4", "train.epochs=1", "eval.n_resamples=50", "train.threads=1",
                             f"out_dir={out}"])
    return train(cfg, progress=False).run_dir


def test_segmentation_predict_keeps_nifti_geometry(seg_run, tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    inp = tmp_path / "in"
    inp.mkdir()
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (100, 90), dtype=np.uint8)  # larger than the 64 px training size
    affine = np.array([[0.7, 0, 0, -10], [0, 0.7, 0, 5], [0, 0, 1.5, 2], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(big, affine), str(inp / "ct1.nii.gz"))
    np.save(inp / "img2.npy", rng.integers(0, 255, (64, 64), dtype=np.uint8))
    rc = main(["predict", "--model", str(seg_run), "--input", str(inp), "--out", str(tmp_path / "out"), "--tta"])
    assert rc == 0 and "predicted 2 case(s)" in capsys.readouterr().out
    pred = nib.load(str(tmp_path / "out" / "ct1.nii.gz"))
    assert pred.shape == (100, 90) and np.allclose(pred.affine, affine) and pred.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}
    assert np.load(tmp_path / "out" / "img2.npy").shape == (64, 64)


def test_predict_rejects_wrong_dtype_and_non_runs(seg_run, tmp_path):
    from openmia.engine.predict import predict_folder

    inp = tmp_path / "in"
    inp.mkdir()
    np.save(inp / "f.npy", np.zeros((64, 64), np.float32))
    np.save(inp / "g.npy", np.zeros((64, 64), np.uint8))
    # every image that does not fit is reported at once, after the others are written
    with pytest.raises(PredictionError, match=r"(?s)1 input image\(s\) could not be predicted \(the other 1 were "
                                              r"written to .*\):\n  case 'f': f.npy has dtype float32, but the model "
                                              r"was trained on uint8"):
        predict_folder(seg_run, inp, tmp_path / "o")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["g.npy"]
    with pytest.raises(RunDirError):
        predict_folder(tmp_path, inp, tmp_path / "o2")


def test_classification_predict_csv(tmp_path):
    cfg = load_config(None, ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=1", "eval.n_resamples=50",
                             "train.threads=1", f"out_dir={tmp_path / 'runs'}"])
    rd = train(cfg, progress=False).run_dir
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        np.save(inp / f"c{i}.npy", np.full((28, 28), 40 * i, np.uint8))
    from openmia.engine.predict import predict_folder

    predict_folder(rd, inp, tmp_path / "o")
    rows = list(csv.reader(open(tmp_path / "o" / "predictions.csv")))
    assert rows[0] == ["case_id", "score"] and [r[0] for r in rows[1:]] == ["c0", "c1", "c2"]
    assert all(0 <= float(r[1]) <= 1 for r in rows[1:])


def test_class_probability_slabs_equal_a_full_softmax():
    import torch

    from openmia.engine.predict import argmax_slabs, class_prob_slabs

    logits = torch.randn(1, 3, 37, 5, 4, generator=torch.Generator().manual_seed(0))
    full = logits[0].softmax(0).numpy()
    for k in range(3):
        np.testing.assert_allclose(class_prob_slabs(logits, k, slab=8), full[k], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(argmax_slabs(logits, slab=8), full.argmax(0))


def test_predict_multiscale_tta(seg_run, tmp_path, capsys):
    from openmia.engine.predict import predict_folder

    inp = tmp_path / "in"
    inp.mkdir()
    np.save(inp / "a.npy", np.random.default_rng(1).integers(0, 255, (80, 70), dtype=np.uint8))
    predict_folder(seg_run, inp, tmp_path / "plain")
    predict_folder(seg_run, inp, tmp_path / "one", scales=[1.0])  # the run's default (1.0,) is the plain path
    np.testing.assert_array_equal(np.load(tmp_path / "one" / "a.npy"), np.load(tmp_path / "plain" / "a.npy"))
    rc = main(["predict", "--model", str(seg_run), "--input", str(inp), "--out", str(tmp_path / "ms"),
               "--tta-scales", "0.75", "1", "1.25"])
    assert rc == 0 and np.load(tmp_path / "ms" / "a.npy").shape == (80, 70)
    with pytest.raises(ConfigError, match="--tta-scales: expected a non-empty list"):
        predict_folder(seg_run, inp, tmp_path / "bad", scales=[0.0])


def test_predict_resizes_inputs_of_sets_trained_on_resized_images(tmp_path):
    """Kvasir-SEG trains on whole images resized to data.size: predict resizes a new image the same
    way, predicts, and resizes the logits back to the image's size (not a sliding window over the
    full-resolution pixels, where a polyp would look several times larger than in training)."""
    import torch
    from PIL import Image

    from openmia.data.segmentation_sets import resize_image
    from openmia.engine.predict import load_run, predict_folder
    from openmia.transforms.intensity import to_float_tensor

    root = tmp_path / "kvasir"
    (root / "Kvasir-SEG" / "images").mkdir(parents=True)
    (root / "Kvasir-SEG" / "masks").mkdir()
    rng = np.random.default_rng(0)
    ids = [f"k{i:02d}" for i in range(14)]
    for cid in ids:
        img = rng.integers(0, 60, (40, 52, 3), dtype=np.uint8)
        m = np.zeros((40, 52), np.uint8)
        m[10:25, 15:35] = 255
        img[m > 0] += 150
        Image.fromarray(img).save(root / "Kvasir-SEG" / "images" / f"{cid}.jpg")
        Image.fromarray(m).save(root / "Kvasir-SEG" / "masks" / f"{cid}.jpg")
    (root / "split_880_120").mkdir()
    (root / "split_880_120" / "train.txt").write_text("\n".join(ids[:11]) + "\n")
    (root / "split_880_120" / "val.txt").write_text("\n".join(ids[11:]) + "\n")
    cfg = load_config(None, ["task=segmentation", "data.dataset=kvasir_seg", f"data.root={root}", "data.size=32",
                             "model.name=unet_small", "model.kwargs.width=4", "train.epochs=1", "eval.n_resamples=50",
                             "train.threads=1", f"out_dir={tmp_path / 'runs'}"])
    rd = train(cfg, progress=False).run_dir
    run = load_run(rd)
    assert run.spec.resized_input and run.spec.size == 32
    inp = tmp_path / "in"
    inp.mkdir()
    big = rng.integers(0, 255, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(big).save(inp / "new.png")
    Image.fromarray(big[:30]).save(inp / "photo.jpg")  # a JPEG photograph: its label map is a PNG
    assert predict_folder(rd, inp, tmp_path / "out")["cases"] == 2
    for name, img in (("new", big), ("photo", np.asarray(Image.open(inp / "photo.jpg")))):
        got = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        # by hand: channels first, resized to 32 x 32 as in training, the model, logits back to the image's size
        with torch.no_grad():
            x = to_float_tensor(resize_image(np.moveaxis(img, -1, 0), 32)[None], run.spec.normalization)
            logits = torch.nn.functional.interpolate(run.model(x), size=img.shape[:2], mode="bilinear", align_corners=False)
        assert got.shape == img.shape[:2]
        np.testing.assert_array_equal(got, logits[0].argmax(0).numpy().astype(np.uint8))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.png", "photo.png"]
    # with flip + multi-scale TTA, images already at the training size are labelled exactly as the
    # run's own evaluation labels them: whole images at every scale (a 48 x 48 scale is no sliding
    # window of 32 x 32 tiles, a 24 x 24 one no zero-padded window)
    from openmia.engine.inference import predict_proba
    from openmia.engine.loop import Loop
    from openmia.tasks.segmentation import SegmentationHead

    test = Loop(run.cfg, progress=False).setup().splits["test"]
    same = tmp_path / "same"
    same.mkdir()
    for cid, img in zip(test.case_ids, test.images):
        Image.fromarray(np.moveaxis(img, 0, -1)).save(same / f"{cid}.png")
    scales = (0.75, 1.0, 1.5)
    assert predict_folder(rd, same, tmp_path / "same_out", tta=True, scales=scales)["cases"] == len(test.case_ids) == 3
    head = SegmentationHead(run.spec.num_classes)
    want = predict_proba(run.model, head, test.images, run.spec.normalization, 8, tta=True, scales=scales,
                         device=run.device).argmax(1)
    for cid, lab in zip(test.case_ids, want):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same_out" / f"{cid}.png")), lab)
