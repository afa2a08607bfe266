"""Landmark models: the atlas prior exact on a constructed case, heat-map targets and decoding
exact, the DQN loss equal to stable-baselines3's own ``DQN.train`` loss, the features extractor
in 2D and 3D, and the synthetic / label-derived landmark data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from openmia.models.landmarks import AtlasPrior, decode_heatmaps, gaussian_heatmaps  # noqa: E402
from openmia.tasks.landmarks import case_bounds, from_normalised, to_normalised  # noqa: E402


def test_atlas_prior_exact_on_a_constructed_case():
    # two cases of different own-image sizes inside a padded 20 x 20 array
    from types import SimpleNamespace

    split = SimpleNamespace(images=np.zeros((2, 1, 20, 20)), case_ids=["a", "b"],
                            regions=[(slice(0, 11), slice(0, 21)), (slice(5, 10), slice(2, 12))])
    b = case_bounds(split)
    assert b.tolist() == [[[0, 10], [0, 19]], [[5, 9], [2, 11]]]
    pts = np.array([[[5.0, 19.0]], [[9.0, 2.0]]])  # one landmark: normalised (0.5, 1.0) and (1.0, 0.0)
    norm = to_normalised(pts, b)
    np.testing.assert_allclose(norm[:, 0], [[0.5, 1.0], [1.0, 0.0]])
    prior = AtlasPrior(1, 2)
    prior.fit(norm)
    np.testing.assert_allclose(prior.position.numpy(), [[0.75, 0.5]])
    # mapped back into each case's own image: a -> (7.5, 9.5), b -> (5 + 0.75 * 4, 2 + 0.5 * 9)
    np.testing.assert_allclose(from_normalised(np.broadcast_to(prior.position.numpy(), (2, 1, 2)), b)[:, 0],
                               [[7.5, 9.5], [8.0, 6.5]])


def test_heatmap_targets_and_decoding_exact():
    h = gaussian_heatmaps(np.array([[[12.0, 14.0], [18.0, 16.0]]]), (32, 32), sigma=2.0)
    assert h.shape == (1, 2, 32, 32)
    np.testing.assert_allclose(h.reshape(1, 2, -1).sum(-1), 1.0, rtol=1e-6)
    logits = torch.as_tensor(np.log(h + 1e-30))
    assert decode_heatmaps(logits, "argmax").tolist() == [[[12.0, 14.0], [18.0, 16.0]]]
    # soft-argmax of the log of a normalised Gaussian far from the border = its centre
    np.testing.assert_allclose(decode_heatmaps(logits, "soft_argmax").numpy(), [[[12.0, 14.0], [18.0, 16.0]]], atol=1e-4)
    # a 3D one-hot heat map: argmax and soft-argmax (very peaked) agree exactly on the voxel
    z = torch.full((1, 1, 5, 6, 7), -1e4)
    z[0, 0, 1, 4, 2] = 0.0
    assert decode_heatmaps(z, "argmax").tolist() == [[[1.0, 4.0, 2.0]]]
    np.testing.assert_allclose(decode_heatmaps(z, "soft_argmax").numpy(), [[[1.0, 4.0, 2.0]]], atol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
def test_dqn_agent_networks(dims):
    from openmia.models import build_model

    m = build_model("dqn_agent", in_channels=1, num_classes=2, dims=dims, input_size=16, patch=5, scales=(1, 2))
    q = m(torch.zeros(3, 2, *[5] * dims), landmark=1)
    assert q.shape == (3, 2 * dims) and set(m.policies) == {"0", "1"}


def test_td_loss_equals_sb3_dqn_train_loss(tmp_path, monkeypatch):
    import tempfile

    from openmia.models import build_model
    from openmia.rl.agent import collect, linear_epsilon, make_learner, td_loss
    from openmia.rl.env import LandmarkEnv

    rng = np.random.default_rng(0)
    env = LandmarkEnv(rng.normal(size=(3, 1, 12, 12)).astype(np.float32), rng.uniform(2, 9, (3, 2)), patch=5,
                      scales=(1, 2), max_steps=8)
    torch.manual_seed(0)
    model = build_model("dqn_agent", in_channels=1, num_classes=1, dims=2, patch=5, scales=(1, 2))
    learner = make_learner(env, model.policies["0"], buffer=500, warmup=20, batch_size=8, gamma=0.9, env_steps=4,
                           target_update=10, seed=0, epsilon=linear_epsilon(1.0, 0.1, 100))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SB3's default logger would make its folder
    collect(learner, 60)
    assert not list(tmp_path.glob("SB3-*"))  # no empty log folder per collection call
    assert learner.num_timesteps == 60 and learner.replay_buffer.size() == 60
    assert learner.exploration_rate == pytest.approx(1.0 - 0.9 * 60 / 100)
    np.random.seed(123)  # SB3's replay sampling draws from numpy's global generator
    ours = float(td_loss(learner, 8).detach())
    learner.lr_schedule = lambda _: 0.0  # SB3's own gradient step, with a zero learning rate
    np.random.seed(123)
    learner.train(gradient_steps=1, batch_size=8)
    assert ours == pytest.approx(learner.logger.name_to_value["train/loss"], rel=1e-6)


def test_synthetic_landmark_sets():
    from openmia.data.catalog import load_split

    from openmia.data.catalog import get_spec
    from openmia.data.synthetic_landmarks import landmark_images

    assert get_spec("synthetic/landmarks3d").dims == 3
    img3, pts3 = landmark_images(2, dims=3, size=16, seed=0)
    assert img3.shape == (2, 1, 16, 16, 16) and pts3.shape == (2, 2, 3)
    for name, dims, size in (("synthetic/landmarks2d", 2, 64),):
        s = load_split(name, "val")
        assert s.spec.task == "landmarks" and s.spec.label_names == ("blob", "ring")
        assert s.images.shape[2:] == (size,) * dims and s.labels.shape == (len(s.case_ids), 2, dims)
        assert np.all(s.labels >= 0.15 * (size - 1) - 1e-4) and np.all(s.labels <= 0.85 * (size - 1) + 1e-4)
        # the blob's centre is its brightest region: the image is brighter there than on average
        img = s.images[0, 0].astype(float)
        c = tuple(np.rint(s.labels[0, 0]).astype(int))
        assert img[c] > img.mean() + 2 * img.std()
        again = load_split(name, "val")
        assert np.array_equal(again.labels, s.labels) and np.array_equal(again.images, s.images)


def test_centroid_landmarks_from_a_label_map():
    from scipy import ndimage

    from openmia.data.landmark_sets import centroids
    from openmia.errors import DataError

    lab = np.zeros((6, 8, 5), np.uint8)
    lab[1:3, 2:4, 1] = 1  # centroid (1.5, 2.5, 1)
    lab[4, 6, 3] = 2
    lab[5, 7, 4] = 2  # centroid (4.5, 6.5, 3.5)
    np.testing.assert_allclose(centroids(lab, (1, 2), "x"), [[1.5, 2.5, 1.0], [4.5, 6.5, 3.5]])
    np.testing.assert_allclose(centroids(lab, (1,), "x")[0], ndimage.center_of_mass(lab == 1))
    with pytest.raises(DataError, match="case 'x': label 3 is empty"):
        centroids(lab, (3,), "x")
