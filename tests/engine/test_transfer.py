"""train.init_from: weights copied by name and shape from another run; clear errors; resume and
re-scoring do not need the source again."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from openmia.config import load_config
from openmia.engine.loop import Loop
from openmia.engine.run_dir import resume, train
from openmia.errors import ConfigError

FAST = ["data.dataset=synthetic/binary", "model.name=cnn_small", "model.kwargs.width=4", "train.epochs=1",
        "data.batch_size=128", "eval.n_resamples=100", "train.threads=1"]


def _cfg(tmp_path, *extra):
    return load_config(None, [*FAST, f"out_dir={tmp_path / 'runs'}", *extra])


def _best(run_dir):
    return torch.load(run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("source")
    return train(_cfg(tmp, "name=source"), progress=False).run_dir


def test_fresh_run_starts_from_the_source_weights(source_run, tmp_path):
    cfg = _cfg(tmp_path, f"train.init_from={source_run}", "train.seed=5")
    (tmp_path / "b").mkdir()
    loop = Loop(cfg, progress=False).setup()
    loop.start(tmp_path / "b")  # the starting weights are applied when the run directory is bound
    src = _best(source_run)
    own = loop.model.state_dict()
    assert set(own) == set(src) and all(torch.equal(own[k], src[k]) for k in own)
    rec = json.loads((tmp_path / "b" / "init_from.json").read_text())
    assert rec["loaded"] == rec["total"] == len(own) and rec["fresh"] == [] and rec["unused"] == []
    assert rec["source"] == str((source_run / "checkpoints" / "best.pt").resolve()) and len(rec["sha256"]) == 64
    # without init_from the same seed gives other weights: the copy above is not a coincidence
    plain = Loop(_cfg(tmp_path, "train.seed=5"), progress=False).setup()
    plain.start(tmp_path / "c")
    assert not all(torch.equal(plain.model.state_dict()[k], src[k]) for k in src)
    assert not (tmp_path / "c" / "init_from.json").exists()


def test_other_head_is_kept_fresh_and_listed(source_run, tmp_path):
    # multi-class from a binary run: every tensor but the classifier's is copied
    res = train(_cfg(tmp_path, "data.dataset=synthetic/multiclass", f"train.init_from={source_run}"), progress=False)
    rec = json.loads((res.run_dir / "provenance.json").read_text())["init_from"]
    assert rec["fresh"] and rec["loaded"] == rec["total"] - len(rec["fresh"]) > 0
    src, own = _best(source_run), _best(res.run_dir)
    assert all(k in src and src[k].shape != own[k].shape for k in rec["fresh"])


def test_resume_and_rescoring_do_not_need_the_source(source_run, tmp_path):
    from openmia.engine.run_dir import reevaluate

    copy = tmp_path / "copy"
    shutil.copytree(source_run, copy)
    cfg = _cfg(tmp_path, "train.epochs=2", f"train.init_from={copy}")
    assert train(cfg, run_dir=tmp_path / "b", progress=False, stop_after_epoch=1) is None
    shutil.rmtree(copy)  # gone: resuming must not reach for it
    res = resume(tmp_path / "b", progress=False)
    assert res.epochs_done == 2
    assert json.loads((tmp_path / "b" / "provenance.json").read_text())["init_from"]["source"].startswith(str(copy))
    res2 = reevaluate(tmp_path / "b", tmp_path / "b2", ["eval.n_resamples=50"])
    assert json.loads((res2.run_dir / "provenance.json").read_text())["init_from"]["source"].startswith(str(copy))


def test_bad_sources_are_clear_errors(source_run, tmp_path):
    def setup(src):
        Loop(_cfg(tmp_path, f"train.init_from={src}"), progress=False).setup().start(tmp_path / "x")

    with pytest.raises(ConfigError, match="no such run directory or checkpoint file"):
        setup(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no checkpoints/best.pt"):
        setup(tmp_path / "empty")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot load .*notes.pt"):
        setup(tmp_path / "notes.pt")
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(ConfigError, match="holds no model weights"):
        setup(tmp_path / "meta.pt")
    torch.save({"other.weight": torch.zeros(2, 2)}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="no tensor of .*foreign.pt fits this model"):
        setup(tmp_path / "foreign.pt")


def test_a_bad_source_leaves_no_run_directory(tmp_path):
    """A bad ``train.init_from`` is a configuration error like any other: the run is refused before
    its directory exists (so the same --out can be used again once the source is fixed)."""
    with pytest.raises(ConfigError, match="no such run directory or checkpoint file"):
        train(_cfg(tmp_path, f"train.init_from={tmp_path / 'missing'}"), run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="no such run directory or checkpoint file"):
        train(_cfg(tmp_path, f"train.init_from={tmp_path / 'missing'}"), progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
