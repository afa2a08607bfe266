"""Landmark localisation task (2D and 3D): one point per landmark and case, scored by the radial
error in mm (:mod:`openmia.evaluation.landmarks`).

Models (``model.name``; each has a ``kind`` this task dispatches on, :mod:`openmia.models.landmarks`):

- ``dqn_agent`` (kind ``agent``): one DQN agent per landmark that moves through the image
  (:mod:`openmia.rl.env`, :mod:`openmia.rl.agent`). A training step of the loop = ``env_steps``
  environment steps per agent (stable-baselines3 acting, replay buffer, target updates), then one
  gradient step on SB3's DQN loss over a replay batch of ``data.batch_size`` transitions; an epoch
  has as many steps as a supervised epoch over the training cases. Validation and the final
  predictions are greedy episodes from ``landmarks.eval_start``.
- ``heatmap_unet`` (kind ``heatmap``): supervised heat-map regression; loss = cross-entropy between
  the spatial softmax of each output channel and a normalised Gaussian (``heatmap_sigma`` voxels)
  at the landmark; decoded by ``landmarks.decode`` (soft_argmax or argmax).
- ``atlas_prior`` (kind ``prior``): the training split's mean position in normalised image
  coordinates, fitted in closed form when the run starts (its epochs change nothing; use
  ``train.epochs=1``).

The validation score for model selection is the mean radial error over validation cases and
landmarks (``radial_error``, lower is better). Run directory outputs: ``predictions/<split>.csv``
and ``truth/<split>.csv`` (points ``case_id,landmark,x,y[,z]`` in each case's own voxel grid),
``truth/<split>_spacing.csv`` and ``truth/<split>_shapes.csv``, ``eval/<split>/`` the landmark
report (radial error mean and median with BCa CIs, success within each radius with Wilson CIs).
Resuming a DQN run restores the networks, optimiser and progress but not the replay buffer (it is
refilled by a new warm-up) nor SB3's step counter (epsilon starts again at ``eps_start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.config import one_of
from openmia.errors import ConfigError
from openmia.tasks.base import CompareInputs, Evaluation, Task
from openmia.tasks.registry import register_task

EVAL_STARTS = ("centre", "prior", "random")
DECODES = ("soft_argmax", "argmax")


def _pos_int(name: str, v: Any, minimum: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"landmarks.{name}: expected an integer >= {minimum}, found {v!r}")


@dataclass(frozen=True)
class LandmarkOptions:
    """The ``landmarks`` config section."""

    radii: tuple[float, ...] = (2.0, 4.0)  # success radii in mm for the evaluation
    # environment (dqn_agent)
    patch: int = 9  # voxels per axis of each observed patch (odd)
    scales: tuple[int, ...] = (1, 2, 4)  # patch scales, coarse to fine (voxels averaged per cell)
    max_steps: int = 60  # step limit of an episode (0 is refused)
    max_visits: int = 3  # visits of one position that end an episode (oscillation)
    step: int = 1  # voxels per move
    eval_start: str = "centre"  # validation/test episodes start at the image centre, the atlas prior, or at random
    # DQN (dqn_agent)
    env_steps: int = 4  # environment steps per agent and training step
    warmup: int = 500  # random-action steps before the first gradient step
    buffer: int = 10000  # replay buffer size (transitions)
    gamma: float = 0.9
    target_update: int = 500  # environment steps between target-network copies
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_fraction: float = 0.5  # of the planned environment steps over which epsilon falls
    # environment steps per agent over which epsilon falls (0 = eps_fraction of train.epochs' steps;
    # set it for runs that train.max_minutes ends)
    eps_steps: int = 0
    val_episodes: int = 0  # validation cases used per epoch (0 = all)
    # heat-map U-Net
    heatmap_sigma: float = 2.0  # voxels
    decode: str = "soft_argmax"

    def __post_init__(self) -> None:
        from openmia.rl.env import check_env_options

        object.__setattr__(self, "radii", tuple(float(r) for r in self.radii))
        object.__setattr__(self, "scales", tuple(self.scales))
        if not self.radii or any(not r > 0 for r in self.radii):
            raise ConfigError(f"landmarks.radii: expected positive radii in mm, found {list(self.radii)}")
        check_env_options(patch=self.patch, scales=self.scales, max_steps=self.max_steps, max_visits=self.max_visits,
                          step=self.step)
        one_of("landmarks.eval_start", self.eval_start, EVAL_STARTS)
        one_of("landmarks.decode", self.decode, DECODES)
        for name in ("env_steps", "buffer", "target_update"):
            _pos_int(name, getattr(self, name))
        _pos_int("warmup", self.warmup, 0)
        _pos_int("val_episodes", self.val_episodes, 0)
        _pos_int("eps_steps", self.eps_steps, 0)
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"landmarks.gamma: expected a discount in [0, 1), found {self.gamma}")
        if not 0 <= self.eps_end <= self.eps_start <= 1 or not 0 < self.eps_fraction <= 1:
            raise ConfigError(f"landmarks.eps_start/eps_end/eps_fraction: expected 0 <= eps_end <= eps_start <= 1 and "
                              f"0 < eps_fraction <= 1, found {self.eps_start}, {self.eps_end}, {self.eps_fraction}")
        if not self.heatmap_sigma > 0:
            raise ConfigError(f"landmarks.heatmap_sigma: expected a positive width in voxels, found {self.heatmap_sigma}")


def case_bounds(split: Any) -> np.ndarray:
    """Inclusive voxel limits ``(N, D, 2)`` of each case's own image in the (padded) array."""
    spatial = split.images.shape[2:]
    regions = split.regions or [(...,)] * len(split.case_ids)
    out = []
    for r in regions:
        sl = [slice(None)] * len(spatial) if r == (...,) else list(r)
        out.append([(s.indices(n)[0], s.indices(n)[1] - 1) for s, n in zip(sl, spatial)])
    return np.array(out, dtype=int)


def to_normalised(points: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Points ``(N, K, D)`` in array voxels -> normalised coordinates of each case's own image."""
    lo, hi = bounds[:, None, :, 0], bounds[:, None, :, 1]
    return (points - lo) / np.maximum(hi - lo, 1)


def from_normalised(norm: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    lo, hi = bounds[:, None, :, 0], bounds[:, None, :, 1]
    return lo + norm * np.maximum(hi - lo, 1)


@register_task("landmarks")
class LandmarkTask(Task):
    """Anatomical landmark localisation: a DQN agent, a heat-map U-Net or an atlas prior."""

    section = LandmarkOptions
    default_dataset = "synthetic/landmarks2d"
    default_model = "dqn_agent"
    select_metrics = ("radial_error",)
    lower_is_better = frozenset({"radial_error", "loss"})
    headline_metrics = ("radial_error", "success_2mm", "success_4mm")
    leaderboard_metrics = ("radial_error",)
    eval_options = ("radii", "eval_start", "max_steps", "max_visits", "decode")

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """The points ``predictions/test.csv`` against ``truth/test.csv`` in each case's own voxel
        grid, with the per-case spacing and shape files :meth:`evaluate` writes beside the truth."""
        t = run_dir / "truth"
        files = (run_dir / "predictions" / "test.csv", t / "test.csv", t / "test_spacing.csv", t / "test_shapes.csv")
        if not all(f.is_file() for f in files):
            return None
        return CompareInputs("landmarks", files[0], files[1], {"spacing_csv": files[2], "shapes_csv": files[3],
                                                               "radii": tuple(cfg.options.radii)})
    min_labels = 1  # a landmark set may have one landmark (BUSI's lesion)

    # -- model
    def _kind(self) -> str:
        from openmia.models import load_all

        return load_all().get(self.cfg.model.name).meta.get("kind", "")

    def model_kwargs(self) -> dict[str, Any]:
        kw = super().model_kwargs()
        if self._kind() == "agent":  # the environment's observation = the network's input
            for k in ("patch", "scales"):
                if k in kw and tuple(np.atleast_1d(kw[k])) != tuple(np.atleast_1d(getattr(self.options, k))):
                    raise ConfigError(f"model.kwargs.{k}={kw[k]!r} differs from landmarks.{k}="
                                      f"{getattr(self.options, k)!r}; set landmarks.{k} only")
                kw[k] = getattr(self.options, k)
        return kw

    def _images(self, split: Any) -> np.ndarray:
        """The split's images as normalised float32 ``(N, C, *spatial)`` numpy."""
        from openmia.transforms.intensity import to_float_tensor

        return to_float_tensor(split.images, self.spec.normalization).numpy()

    def prepare(self, model: Any) -> None:
        self.model = model
        self.kind = model.kind
        tr = self.splits["train"] if self.splits else None
        if tr is None:
            return
        tb = self.bounds("train")
        if self.kind == "prior":
            model.fit(to_normalised(np.asarray(tr.labels, dtype=float), tb))
        elif self.kind == "heatmap":
            self._x = None
        elif self.kind == "agent":
            self._make_learners(model, tr)

    @property
    def _prior(self) -> np.ndarray:
        """The training split's mean landmark positions ``(K, D)`` in normalised coordinates."""
        tr = self.splits["train"]
        return to_normalised(np.asarray(tr.labels, dtype=float), self.bounds("train")).mean(axis=0)

    def bounds(self, split: str) -> np.ndarray:
        """Inclusive voxel limits ``(N, D, 2)`` of the cases of ``split`` (cached)."""
        self._bounds = getattr(self, "_bounds", {})
        if split not in self._bounds:
            self._bounds[split] = case_bounds(self.splits[split])
        return self._bounds[split]

    def _spacing(self) -> np.ndarray:
        return np.asarray(self.spec.spacing or (1.0,) * self.spec.dims, dtype=float)

    def _make_learners(self, model: Any, tr: Any) -> None:
        from openmia.rl.agent import linear_epsilon, make_learner
        from openmia.rl.env import LandmarkEnv

        if self.cfg.train.precision != "fp32":
            raise ConfigError(f"train.precision={self.cfg.train.precision}: the dqn_agent trains in fp32 only")
        o, cfg = self.options, self.cfg
        images = self._images(tr)
        n_train = len(tr.case_ids)
        steps = cfg.train.epochs * max(1, -(-n_train // cfg.data.batch_size)) * o.env_steps
        eps = linear_epsilon(o.eps_start, o.eps_end, o.eps_steps or int(o.eps_fraction * steps))
        regions = tr.regions
        self.learners = []
        for k in range(self.spec.num_classes):
            env = LandmarkEnv(images, np.asarray(tr.labels[:, k], dtype=float), patch=o.patch, scales=o.scales,
                              max_steps=o.max_steps, max_visits=o.max_visits, step=o.step, spacing=self._spacing(),
                              regions=regions, start="random")
            self.learners.append(make_learner(env, model.policies[str(k)], buffer=o.buffer, warmup=o.warmup,
                                              batch_size=cfg.data.batch_size, gamma=o.gamma, env_steps=o.env_steps,
                                              target_update=o.target_update, seed=cfg.train.seed * 1000 + k,
                                              epsilon=eps, device=self.device))

    # -- training
    def batch_loss(self, idx, gen, forward):
        import torch

        if self.kind == "agent":
            from openmia.rl.agent import collect, td_loss

            loss = 0.0
            for learner in self.learners:
                # the first call fills the buffer with `warmup` random steps (SB3's learning starts)
                need = max(self.options.env_steps, self.options.warmup + 1 - learner.num_timesteps)
                collect(learner, need)
                loss = loss + td_loss(learner, self.cfg.data.batch_size)
            return loss
        if self.kind == "prior":  # fitted in closed form: a zero loss leaves it unchanged
            return (self.model.unused * 0).sum()
        tr = self.splits["train"]
        from openmia.engine.device import to_device
        from openmia.models.landmarks import gaussian_heatmaps
        from openmia.transforms.intensity import to_float_tensor

        x = to_device(to_float_tensor(tr.images[idx], self.spec.normalization), self.device)
        target = torch.as_tensor(gaussian_heatmaps(np.asarray(tr.labels[idx]), x.shape[2:], self.options.heatmap_sigma),
                                 device=self.device)
        logits = forward(x)
        logp = torch.log_softmax(logits.reshape(*logits.shape[:2], -1), dim=-1)
        return -(target.reshape(*target.shape[:2], -1) * logp).sum(-1).mean()

    # -- prediction
    def predict_points(self, model: Any, split: str, limit: int = 0) -> np.ndarray:
        """Predicted points ``(N, K, D)`` in array voxels for ``split`` (first ``limit`` cases if > 0)."""
        s = self.splits[split]
        n = len(s.case_ids) if not limit else min(limit, len(s.case_ids))
        b = self.bounds(split)[:n]
        prior = self._prior if self.options.eval_start == "prior" else None
        return self._points(model, s.images[:n], b, prior,
                            [np.random.default_rng([self.cfg.eval.seed, k, {"train": 0, "val": 1, "test": 2}[split]])
                             for k in range(self.spec.num_classes)])

    def _points(self, model: Any, images: np.ndarray, b: np.ndarray, prior: np.ndarray | None, rngs: list[Any]) -> np.ndarray:
        """Points ``(N, K, D)`` in array voxels, clipped to each case's own voxels, for ``images``
        ``(N, C, *spatial)`` as the data set stores them (uint8, or float normalised by the loader);
        ``b``: inclusive case bounds ``(N, D, 2)``; ``prior``: the training mean ``(K, D)`` in
        normalised coordinates (``eval_start=prior``); ``rngs``: one generator per landmark
        (``eval_start=random``)."""
        import torch

        n, kind = len(images), model.kind
        if kind == "prior":
            pts = from_normalised(np.broadcast_to(model.position.detach().cpu().numpy(),
                                                  (n, self.spec.num_classes, self.spec.dims)), b)
        elif kind == "heatmap":
            from openmia.models.landmarks import decode_heatmaps

            out = []
            model.eval()
            bs = self.cfg.data.eval_batch_size
            with torch.no_grad():
                for i in range(0, n, bs):
                    out.append(decode_heatmaps(model(self.float_batch(images[i : min(i + bs, n)])),
                                               self.options.decode).cpu().numpy())
            pts = np.concatenate(out)
        else:
            from openmia.rl.agent import greedy_rollouts
            from openmia.rl.env import PatchObserver
            from openmia.transforms.intensity import to_float_tensor

            o = self.options
            observer = PatchObserver(to_float_tensor(images, self.spec.normalization).numpy(), o.patch, o.scales)
            pts = np.zeros((n, self.spec.num_classes, self.spec.dims))
            for k in range(self.spec.num_classes):
                starts = self._starts(b, k, prior, rngs[k])
                pts[:, k] = greedy_rollouts(model.policies[str(k)].q_net, observer, starts, b, max_steps=o.max_steps,
                                            max_visits=o.max_visits, step=o.step, device=self.device)
        # a prediction is a point of the case's own image
        return np.clip(pts, b[:, None, :, 0], b[:, None, :, 1])

    def _starts(self, b: np.ndarray, k: int, prior: np.ndarray | None, rng: Any) -> np.ndarray:
        """Integer episode starts ``(N, D)`` of landmark ``k`` from ``landmarks.eval_start``."""
        o = self.options
        if o.eval_start == "centre":
            return np.rint((b[:, :, 0] + b[:, :, 1]) / 2).astype(int)
        if o.eval_start == "prior":
            return np.rint(from_normalised(np.broadcast_to(prior, (len(b), *prior.shape)), b)[:, k]).astype(int)
        return np.rint(rng.uniform(b[:, :, 0], b[:, :, 1])).astype(int)

    def predict(self, run: Any, inputs: Path, out: Path, *, spacing: Any = None, failures: list[str] | None = None,
                **opts: Any) -> dict[str, Any]:
        """``openmia predict``: ``points.csv`` (``case_id,landmark,x,y[,z]``, the evaluator's format) for
        every image in ``inputs``, in each file's own voxel grid (3D NIfTI: the file's axis order,
        although the model sees it reoriented to RAS+ as in training), plus ``shapes.csv`` and,
        where every spacing is known, ``spacing.csv`` (mm per axis: the NIfTI header's voxel size,
        else ``spacing`` — the ``--spacing`` option, one value per axis — which also overrides the
        header). Episodes start as the run's own evaluation did (``landmarks.eval_start``;
        ``random`` starts are seeded by ``eval.seed``, the landmark and the case id, so a case gets
        the same start wherever it lies in the folder). An image smaller than the run's (padded)
        training shape is zero-padded, centred, as the padded data sets are, so a test image gives
        the run's own test prediction; a larger one is padded up to a multiple of 16 voxels.
        """
        import zlib

        from openmia.engine.predict import iter_input_arrays
        from openmia.evaluation.landmarks import write_case_vectors, write_points

        if opts.get("tta") or tuple(opts.get("scales") or (1.0,)) != (1.0,):
            raise ConfigError("flip and multi-scale test-time augmentation (--tta, --tta-scales) apply to segmentation runs")
        spec, model, d = self.spec, run.model, self.spec.dims
        if spacing is not None:
            spacing = tuple(float(v) for v in np.atleast_1d(spacing))
            if len(spacing) != d or not all(v > 0 for v in spacing):
                raise ConfigError(f"--spacing {','.join(map(str, spacing))}: expected {d} positive voxel sizes in mm "
                                  f"(one per axis of the run's {d}D images)")
        prior = self._run_prior(run) if self.options.eval_start == "prior" and model.kind == "agent" else None
        names = list(spec.label_names)
        rows: list[tuple[str, str, np.ndarray]] = []
        spacings: dict[str, tuple[float, ...] | None] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for cid, path, batch, meta in iter_input_arrays(inputs, spec, failures):
            own = tuple(batch.shape[2:])
            padded, region = _pad_to(batch, self._input_shape(own, model.kind))
            b = np.array([[[r.start, r.stop - 1] for r in region]])
            rngs = [np.random.default_rng([self.cfg.eval.seed, k, 3, zlib.crc32(cid.encode())]) for k in range(len(names))]
            pts = self._points(model, padded, b, prior, rngs)[0] - b[0, :, 0]  # (K, D), the RAS+ array's grid
            pts, file_shape = _to_file_grid(pts, own, meta.get("ornt"))
            rows += [(cid, names[k], pts[k]) for k in range(len(names))]
            shapes[cid] = file_shape
            nifti = meta.get("nifti")
            spacings[cid] = spacing or (tuple(float(z) for z in nifti.header.get_zooms()[:d]) if nifti is not None else None)
        if not rows:  # every image failed: predict_folder reports them
            return {"cases": 0, "out": str(out), "task": self.name, "written": "nothing"}
        write_points(out / "points.csv", rows)
        write_case_vectors(out / "shapes.csv", "n", shapes)
        written = ["points.csv", "shapes.csv"]
        if all(v is not None for v in spacings.values()):
            write_case_vectors(out / "spacing.csv", "s", spacings)
            written.append("spacing.csv")
        return {"cases": len(shapes), "out": str(out), "task": self.name, "written": " and ".join(written),
                "spacing": "known" if "spacing.csv" in written else
                           "unknown: pass --spacing here or to `openmia evaluate` (the images' format has none)"}

    def _input_shape(self, own: tuple[int, ...], kind: str) -> tuple[int, ...]:
        """The array shape an input of spatial shape ``own`` is predicted in: the run's training
        shape when the image fits in it (as the padded sets were made), else ``own`` rounded up to
        a multiple of 16 (the heat-map U-Net's downsampling; the agent and the prior take any size)."""
        train = tuple(self.spec.spatial_shape)
        if all(o <= t for o, t in zip(own, train)):
            return train
        return tuple(o if kind != "heatmap" else -(-o // 16) * 16 for o in own)

    def _run_prior(self, run: Any) -> np.ndarray:
        """The training split's mean landmark positions ``(K, D)`` (normalised) of a finished run:
        from its ``result.json`` (``start_prior``), else recomputed from the training split."""
        res = run.run_dir / "result.json"
        if res.is_file():
            import json

            prior = json.loads(res.read_text()).get("start_prior")
            if prior is not None:
                return np.asarray(prior, dtype=float)
        from openmia.data.catalog import load_split

        d = self.cfg.data
        tr = load_split(d.dataset, "train", size=d.size, root=d.root, fold=d.fold, spacing=d.spacing)
        return to_normalised(np.asarray(tr.labels, dtype=float), case_bounds(tr)).mean(axis=0)

    def validate(self, model) -> dict[str, float]:
        from openmia.metrics.landmarks import radial_errors

        va = self.splits["val"]
        pts = self.predict_points(model, "val", self.options.val_episodes)
        truth = np.asarray(va.labels[: len(pts)], dtype=float)
        d = pts.shape[-1]
        err = radial_errors(pts.reshape(-1, d), truth.reshape(-1, d), self._spacing())
        return {"radial_error": float(err.mean())}

    # -- final evaluation
    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        from openmia.evaluation.landmarks import evaluate_landmark_files, write_case_vectors, write_points

        summaries, table, o = {}, "", self.options
        names = list(self.spec.label_names)
        for split in splits:
            s = self.splits[split]
            b = self.bounds(split)
            pts = self.predict_points(model, split) - b[:, None, :, 0]  # the case's own voxel grid
            truth = np.asarray(s.labels, dtype=float) - b[:, None, :, 0]
            pred_csv, truth_csv = run_dir / "predictions" / f"{split}.csv", run_dir / "truth" / f"{split}.csv"
            write_points(pred_csv, [(c, names[k], pts[i, k]) for i, c in enumerate(s.case_ids) for k in range(len(names))])
            write_points(truth_csv, [(c, names[k], truth[i, k]) for i, c in enumerate(s.case_ids) for k in range(len(names))])
            sp_csv = write_case_vectors(run_dir / "truth" / f"{split}_spacing.csv", "s",
                                        {c: tuple(s.spacings[i]) if s.spacings else tuple(self._spacing())
                                         for i, c in enumerate(s.case_ids)})
            sh_csv = write_case_vectors(run_dir / "truth" / f"{split}_shapes.csv", "n",
                                        {c: tuple(b[i, :, 1] - b[i, :, 0] + 1) for i, c in enumerate(s.case_ids)})
            res = evaluate_landmark_files(pred_csv, truth_csv, run_dir / "eval" / split, spacing_csv=sp_csv,
                                          shapes_csv=sh_csv, radii=o.radii, n_resamples=self.cfg.eval.n_resamples,
                                          seed=self.cfg.eval.seed, provenance={"run": provenance})
            summaries[split] = res.summary
            if split == "test":
                table = "\n\n".join(f"landmark {lab}\n" + res.table(label=lab) for lab in res.summary["labels"])
                fileio.write_text(run_dir / "eval" / split / "report.txt", table + "\n")
        if model.kind == "agent" and getattr(self, "learners", None):
            for k, learner in enumerate(self.learners):  # SB3's own format too (DQN.load), best weights
                (run_dir / "agents").mkdir(exist_ok=True)
                with fileio.atomic_path(run_dir / "agents" / f"{names[k]}.zip") as tmp:
                    learner.save(tmp, exclude=["replay_buffer", "env"])
        extra = {"eval_start": o.eval_start if model.kind == "agent" else None,
                 "spacing_unit": "mm" if self.spec.spacing else "pixel"}
        if model.kind == "agent":  # `openmia predict` starts episodes from it without the training data
            extra["start_prior"] = self._prior.tolist()
        return Evaluation(summaries, table, extra)


def _pad_to(batch: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """``batch`` ``(1, C, *spatial)`` zero-padded, centred, to ``shape``, and the region of its own
    voxels (the padded sets' rule, :mod:`openmia.data.msd_sets`)."""
    own = batch.shape[2:]
    region = tuple(slice((t - o) // 2, (t - o) // 2 + o) for o, t in zip(own, shape))
    if tuple(own) == tuple(shape):
        return batch, region
    out = np.zeros((*batch.shape[:2], *shape), dtype=batch.dtype)
    out[(slice(None), slice(None), *region)] = batch
    return out, region


def _to_file_grid(pts: np.ndarray, ras_shape: tuple[int, ...], ornt: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """Points ``(K, D)`` in the RAS+-reoriented array of a 3D NIfTI back to the file's own voxel
    axes, and the file's shape; unchanged when the file was not reoriented (``ornt`` None).
    ``ornt[i] = (axis of the RAS array that file axis i became, +1 or -1 for a flip)`` (nibabel)."""
    if ornt is None:
        return pts, tuple(int(n) for n in ras_shape)
    out = np.empty_like(pts)
    shape = []
    for i, (ax, flip) in enumerate(np.asarray(ornt, dtype=int)):
        n = ras_shape[ax]
        out[:, i] = pts[:, ax] if flip == 1 else (n - 1) - pts[:, ax]
        shape.append(int(n))
    return out, tuple(shape)
