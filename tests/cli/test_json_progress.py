"""``--json`` on evaluate / compare / predict / count prints only JSON on stdout (equal to the files
written), ``-q`` turns the progress bars off, and the progress callbacks are called (issue 22, §4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from openmia import api
from openmia.cli.main import main


def _seg_folders(root, n=4):
    """A truth folder and two prediction folders of tiny 2D label maps (.npy)."""
    rng = np.random.default_rng(0)
    dirs = {k: root / k for k in ("truth", "a", "b")}
    for d in dirs.values():
        d.mkdir()
    for i in range(n):
        t = np.zeros((16, 16), np.uint8)
        t[4:12, 4:12] = 1
        np.save(dirs["truth"] / f"c{i}.npy", t)
        for k, noise in (("a", 0.05), ("b", 0.2)):
            p = t.copy()
            p[rng.random(t.shape) < noise] ^= 1
            np.save(dirs[k] / f"c{i}.npy", p)
    return dirs


@pytest.fixture
def seg(tmp_path):
    return _seg_folders(tmp_path)


def _evaluate_args(seg, out, *extra):
    return ["evaluate", "--task", "segmentation", "--pred", str(seg["a"]), "--truth", str(seg["truth"]),
            "--out", str(out), "--spacing", "1,1", "--resamples", "50", "--workers", "1", *extra]


def test_evaluate_json_is_summary_json(seg, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["-q", *_evaluate_args(seg, out, "--json")]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out) == json.loads((out / "summary.json").read_text())
    assert "wrote" in cap.err and "wrote" not in cap.out  # the human text goes to stderr


def test_evaluate_human_output_unchanged_without_json(seg, tmp_path, capsys):
    assert main(["-q", *_evaluate_args(seg, tmp_path / "eval")]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("4 cases, labels 1") and "wrote" in cap.out


def test_compare_json_is_compare_json(seg, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["-q", "compare", "--task", "segmentation", "--truth", str(seg["truth"]), "--pred", f"a={seg['a']}",
                 "--pred", f"b={seg['b']}", "--out", str(out), "--spacing", "1,1", "--metrics", "dice",
                 "--resamples", "50", "--rank-resamples", "50", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out) == json.loads((out / "compare.json").read_text())
    assert "p (Holm)" in cap.err


def test_progress_callback_is_called(seg, tmp_path):
    calls = []
    api.evaluate("segmentation", seg["a"], seg["truth"], None, spacing=(1, 1), n_resamples=20, workers=1,
                 progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    calls.clear()
    api.compare("segmentation", seg["truth"], {"a": seg["a"], "b": seg["b"]}, tmp_path / "cmp", spacing=(1, 1),
                metrics=["dice"], n_resamples=20, rank_resamples=20, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def _spy_progress(monkeypatch):
    """Record the ``progress`` argument each command hands to openmia.progress.progress_callback."""
    import openmia.progress as prog

    seen, real = [], prog.progress_callback

    def spy(progress, description):
        seen.append((description, progress))
        return real(progress, description)

    monkeypatch.setattr(prog, "progress_callback", spy)
    return seen


def test_quiet_turns_progress_off(seg, tmp_path, monkeypatch, capsys):
    seen = _spy_progress(monkeypatch)
    assert main(["-q", *_evaluate_args(seg, tmp_path / "q")]) == 0
    assert main(_evaluate_args(seg, tmp_path / "loud")) == 0
    assert seen == [("evaluate", True)]  # -q: the evaluator is not even given a callback
    assert "\r" not in capsys.readouterr().err  # no bar drawn when stderr is not a terminal


def test_count_json_and_progress(tmp_path, monkeypatch, capsys):
    img = np.zeros((24, 24), np.uint8)
    img[5:8, 5:8] = 255
    img[15:18, 14:17] = 255
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"im{i}.png")
        Image.fromarray(img).save(paths[-1])
    seen = _spy_progress(monkeypatch)
    out = tmp_path / "counts"
    assert main(["count", *map(str, paths), "--method", "log", "--out", str(out), "--no-overlays", "--json"]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["cases"] == 2 and set(res["counts"]) == {"im0", "im1"} and "counted 2 image(s)" in cap.err
    assert seen == [("count", True)]
    calls = []
    api.count(paths, tmp_path / "c2", method="log", overlays=False, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
    assert main(["-q", "count", *map(str, paths), "--method", "log", "--out", str(tmp_path / "c3"), "--no-overlays"]) == 0
    assert seen[-1] == ("count", False)


@pytest.fixture(scope="module")
def seg_run(seg_images):
    return seg_images(2)


def test_predict_json_and_progress(seg_run, tmp_path, capsys):
    rd, images = seg_run
    out = tmp_path / "labels"
    assert main(["-q", "predict", "--model", str(rd), "--input", str(images), "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["cases"] == 2 and res["out"] == str(out) and "predicted 2 case(s)" in cap.err
    calls = []
    api.predict(rd, images, tmp_path / "l2", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
