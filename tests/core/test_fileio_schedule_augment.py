from __future__ import annotations


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


def test_read_only_batches_convert_without_warning_or_aliasing():
    import warnings

    for arr, norm in ((np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2), "uint8_unit"),
                      (np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 1, 2, 2), "float")):
        arr.flags.writeable = False  # as a memory-mapped data set hands them out
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t = to_float_tensor(arr, norm)
        t.add_(1.0)  # the tensor is the caller's own: the data set is untouched
        assert arr[0, 0, 0, 0] == (0 if norm == "uint8_unit" else -1.0)


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


@pytest.mark.parametrize("preset", ["affine", "elastic", "heavy"])
@pytest.mark.parametrize("shape", [(4, 1, 24, 32), (2, 1, 12, 16, 10)])
def test_resampling_presets_move_labels_with_the_image(preset, shape):
    from openmia.transforms.augment import augment_pair

    # the image is its own label map (a block of 1s on 0): after the joint resampling the
    # labels must still sit where the image is bright (nearest vs bilinear differ only at edges)
    y = torch.zeros((shape[0], *shape[2:]), dtype=torch.long)
    y[(slice(None), *(slice(s // 4, 3 * s // 4) for s in shape[2:]))] = 2
    x = (y > 0).float().unsqueeze(1)
    xa, ya = augment_pair(x, y, preset, torch.Generator().manual_seed(3))
    xb, yb = augment_pair(x, y, preset, torch.Generator().manual_seed(3))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)  # seeded
    assert xa.shape == x.shape and ya.shape == y.shape and ya.dtype == y.dtype
    assert set(ya.unique().tolist()) <= {0, 2}  # nearest-neighbour: no invented label values
    inside = ya == 2
    # intensity jitter is at most x1.1 + 0.1 around the resampled 0/1 image
    assert xa[:, 0][inside].mean() > 0.7 and xa[:, 0][~inside].mean() < 0.3
    assert not torch.equal(ya, y)  # something moved


def test_resampling_identity_is_exact_and_rotation_keeps_lengths():
    from openmia.transforms.augment import _resample_pair, _rotation

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 1, 8, 12), torch.randint(0, 3, (2, 8, 12))
    x2, y2 = _resample_pair(x, y, g, elastic=False, p=0.0)  # p = 0: the identity grid
    torch.testing.assert_close(x2, x, atol=1e-5, rtol=0)
    assert torch.equal(y2, y)
    r = _rotation(torch.tensor([[0.3, -0.2, 0.5]]), 3)[0]
    torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)  # orthonormal
    assert abs(float(torch.det(r)) - 1.0) < 1e-6


def test_reflection_padding_leaves_no_empty_corners():
    from openmia.transforms.augment import _resample_pair

    # a 45-degree turn of a positive image: zero padding leaves black corners, reflection none
    x = 1.0 + torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 1.5).long()
    kw = dict(elastic=False, max_angle=45.0, scale_range=(1.0, 1.0), p=1.0)
    zeros, _ = _resample_pair(x, y, torch.Generator().manual_seed(1), **kw)
    refl, _ = _resample_pair(x, y, torch.Generator().manual_seed(1), padding="reflection", **kw)
    assert (zeros == 0).any() and bool((refl > 0.99).all())


def test_heavy_preset_changes_channels_independently():
    from openmia.transforms.augment import augment_pair

    x, y = torch.ones(8, 3, 16, 16), torch.zeros(8, 16, 16, dtype=torch.long)
    xa, _ = augment_pair(x, y, "heavy", torch.Generator().manual_seed(0))
    centre = xa[:, :, 8, 8]  # (N, 3): a flat image stays flat, but each channel gets its own gain
    assert bool((centre.std(dim=1) > 0).all())
    assert bool(((centre > 0.7) & (centre < 1.35)).all())  # 0.9-1.1 contrast, ±0.1, 0.9-1.1 gain


def test_segmentation_presets_are_refused_for_classification():
    from openmia.errors import ConfigError

    with pytest.raises(ConfigError, match="segmentation preset"):
        augment_batch(torch.randn(2, 1, 8, 8), "affine", torch.Generator())
