from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from openmia import fileio
from openmia.config import ScheduleConfig
from openmia.engine.schedule import lr_factor
from openmia.transforms.augment import augment_batch
from openmia.transforms.intensity import to_float_tensor


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.json"
    fileio.write_json(p, {"a": 1})
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert p.read_text().strip().startswith("{") and list(tmp_path.iterdir()) == [p]


def test_multistep_matches_paper_recipe():
    cfg = ScheduleConfig(name="multistep", milestones=(0.5, 0.75), gamma=0.1)
    assert lr_factor(cfg, progress=0.49, epoch_float=49) == 1.0
    assert lr_factor(cfg, progress=0.5, epoch_float=50) == pytest.approx(0.1)
    assert lr_factor(cfg, progress=0.8, epoch_float=80) == pytest.approx(0.01)


def test_cosine_step_and_warmup():
    assert lr_factor(ScheduleConfig(name="cosine"), progress=0.5, epoch_float=5) == pytest.approx(0.5)
    assert lr_factor(ScheduleConfig(name="cosine"), progress=1.0, epoch_float=10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(ScheduleConfig(name="step", step_epochs=3, gamma=0.5), progress=0.0, epoch_float=7.5) == 0.25
    w = lr_factor(ScheduleConfig(name="none", warmup_epochs=2), progress=0.0, epoch_float=1.0)
    assert 0.49 < w < 0.51


def test_uint8_normalisation_maps_to_minus_one_one():
    x = np.array([[[[0, 255], [51, 102]]]], dtype=np.uint8)
    t = to_float_tensor(x, "uint8_unit")
    assert t.dtype == torch.float32
    assert torch.allclose(t, torch.tensor([[[[-1.0, 1.0], [51 / 127.5 - 1, 102 / 127.5 - 1]]]]))


@pytest.mark.parametrize("shape", [(4, 1, 8, 8), (3, 2, 6, 6, 6)])
@pytest.mark.parametrize("preset", ["flip", "standard", "dihedral", "strong"])
def test_augment_is_seeded_and_keeps_shape(shape, preset):
    x = torch.randn(shape)
    a = augment_batch(x, preset, torch.Generator().manual_seed(1))
    b = augment_batch(x, preset, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(augment_batch(x, preset, torch.Generator().manual_seed(2)), a) or preset == "flip"


def test_flip_only_permutes_values():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = augment_batch(x, "flip", torch.Generator().manual_seed(0))
    assert sorted(out.flatten().tolist()) == sorted(x.flatten().tolist())
    assert augment_batch(x, "none", torch.Generator()) is x
