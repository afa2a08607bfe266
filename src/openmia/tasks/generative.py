"""What the generative task families share (:mod:`~openmia.tasks.inpainting`,
:mod:`~openmia.tasks.denoising`, :mod:`~openmia.tasks.reconstruction`): image-only data, the
[0, 1] intensity scale, seeded corruptions saved with the run, batched restoration and the
whole-run evaluation through the synthesis evaluators. Not a registered task itself.

Data: any 2D or 3D image data set of the catalogue or a user set, grayscale or colour (its labels
are ignored): ``synthetic/seg2d`` by default, ``busi``, ``hippocampus``, ``kvasir_seg``, MedMNIST
sets, ... Images are put on a [0, 1] scale per case
(:func:`openmia.transforms.corruption.to_unit_range`: uint8 / 255; float images min-max over the
case's own voxels and channels together, a constant image -> zeros), so every metric uses
``data_range = 1``. Padded 3D sets are corrupted and scored on each case's own voxels only.

Colour (``C`` > 1 channels): the networks take ``C`` channels (+ the mask channel for
inpainting) and output ``C``; the losses average over the channels. Noise is drawn independently
per channel (Gaussian; Rician is for single-channel MRI magnitude images and is refused for
colour sets); a mask is shared by all channels of its image. Scores: PSNR / MAE over every
channel of the scored pixels, SSIM per channel then averaged
(:mod:`openmia.evaluation.generative`).

Run directory (per scored split ``S``), float32 ``.npy`` on the [0, 1] scale, exactly the data
scored (no 8-bit rounding); single-channel images as ``(*spatial)``, colour images with the
channel axis *last*, ``(*spatial, C)``::

    inputs/S/<case>.npy       what the model saw: the corrupted image (holes set to 0 / noisy)
    masks/S/<case>.npy        inpainting only: uint8 ``(*spatial)``, 1 = hole (every channel)
    truth/S/<case>.npy        the clean image on the [0, 1] scale
    predictions/S/<case>.npy  the model's output (inpainting: known voxels copied from the input)
    eval/S/                   the evaluator's per_case.csv, summary.json, report.txt,
                              examples.png (input / mask / prediction / truth of a few cases)

A classical method scored on ``inputs/test`` (+ ``masks/test``) against ``truth/test`` sees the
same holes and noise as the network (``openmia inpaint --method ...``, ``openmia compare``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from openmia import fileio
from openmia.errors import ConfigError
from openmia.tasks.base import CompareInputs, Evaluation, Task

RESTORE_SCALES = ("auto", "unit", "uint8", "minmax")  # how `openmia inpaint/denoise --model` scales images
PSNR_CAP = 100.0  # dB: an exact case (PSNR = inf) counts as this in the *validation mean* only


def to_file_layout(a: np.ndarray) -> np.ndarray:
    """A case ``(C, *spatial)`` as saved in the run directory: ``(*spatial)`` for one channel,
    else ``(*spatial, C)`` (channel axis last, the evaluators' colour convention)."""
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(np.moveaxis(a, 0, -1))


def case_name(case_id: str) -> str:
    """A file name for a case id (the same rule as the segmentation task's)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case_id)


class GenerativeTask(Task):
    """Base of the image-to-image families; subclasses set the corruption and the loss."""

    augments = ("none",)
    lower_is_better = frozenset({"loss", "mae", "mae_mask"})
    headline_metrics = ("psnr", "ssim")
    leaderboard_metrics = ("psnr", "ssim")
    evaluator: ClassVar[str] = "denoising"  # the registered evaluator of the final scores
    uses_mask: ClassVar[bool] = False

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        """``predictions/test`` against ``truth/test`` (``.npy`` on the [0, 1] scale, so
        ``data_range`` = 1), scored by the family's evaluator (inpainting: inside ``masks/test`` too)."""
        d = {k: run_dir / k / "test" for k in ("predictions", "truth", "masks")}
        if not (d["predictions"].is_dir() and d["truth"].is_dir()) or (cls.uses_mask and not d["masks"].is_dir()):
            return None
        kw: dict[str, Any] = {"data_range": 1.0, **({"mask_dir": d["masks"]} if cls.uses_mask else {})}
        return CompareInputs(cls.evaluator, d["predictions"], d["truth"], kw)

    # -- data: images only, any catalogue or user set
    @classmethod
    def load_splits(cls, cfg: Any) -> dict[str, Any]:
        from openmia.data.catalog import load_split

        d = cfg.data
        splits = {s: load_split(d.dataset, s, size=d.size, root=d.root, fold=d.fold, spacing=d.spacing)
                  for s in ("train", "val", "test")}
        cls._check_spec(splits["train"].spec, d.dataset, cfg.options)
        for s, arr in splits.items():
            if len(arr.images) == 0:
                raise ConfigError(f"data.dataset={d.dataset!r}: the {s} split has no images")
        return splits

    @classmethod
    def data_spec(cls, cfg: Any) -> Any:
        spec = super().data_spec(cfg)
        cls._check_spec(spec, cfg.data.dataset, cfg.options)
        return spec

    @classmethod
    def _check_spec(cls, spec: Any, name: str, options: Any = None) -> None:
        if spec.dims not in (2, 3):
            raise ConfigError(f"data.dataset={name!r}: {cls.name} needs 2D or 3D images, found dims={spec.dims}")
        noise = getattr(options, "noise", None)
        if noise == "rician" and spec.channels != 1:
            # Rician noise is the magnitude of a complex MRI signal: one value per voxel, no colour
            raise ConfigError(f"data.dataset={name!r} has {spec.channels} channels (colour); {cls.name}.noise=rician "
                              "models MRI magnitude images, which are single-channel; use noise=gaussian for "
                              "photographs")

    def model_kwargs(self) -> dict[str, Any]:
        return super().model_kwargs()

    def _norm(self) -> str:
        return getattr(self.spec.normalization, "value", self.spec.normalization)

    # -- the [0, 1] scale
    def unit_images(self, split: str) -> np.ndarray:
        """The split's images on the [0, 1] scale, ``(N, C, *spatial)`` float32 (cached); voxels
        outside a padded case's region are 0."""
        from openmia.transforms.corruption import to_unit_range

        cache = self.__dict__.setdefault("_unit_cache", {})
        if split not in cache:
            s = self.splits[split]
            out = np.zeros(s.images.shape, np.float32)
            for i in range(len(s.images)):
                r = self._region(split, i)
                out[i][(slice(None), *r)] = to_unit_range(s.images[i][(slice(None), *r)], self._norm(), s.case_ids[i])
            cache[split] = out
        return cache[split]

    def _region(self, split: str, i: int) -> tuple[slice, ...]:
        regions = self.splits[split].regions
        return tuple(regions[i]) if regions else tuple(slice(None) for _ in range(self.spec.dims))

    def float_batch(self, images: np.ndarray):
        """Images ``(B, C, *spatial)`` on the [0, 1] scale (per case) on the run's device (the
        generative models' input; used by ``openmia embed``)."""
        import torch

        from openmia.engine.device import to_device
        from openmia.transforms.corruption import to_unit_range

        x = np.stack([to_unit_range(im, self._norm()) for im in np.asarray(images)])
        return to_device(torch.as_tensor(x, dtype=torch.float32), self.device)

    # -- corruption (subclasses)
    def corrupt(self, clean: np.ndarray, region: tuple[slice, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """``(model input (C_in, *spatial), mask (*spatial) bool or None)`` for one clean case
        ``(C, *spatial)`` on the [0, 1] scale; only voxels inside ``region`` are corrupted."""
        raise NotImplementedError

    def loss(self, out, target, mask, model):
        """The training loss (scalar tensor) of outputs ``(B, C, *spatial)``."""
        raise NotImplementedError

    def compose(self, out: np.ndarray, inp: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The prediction from the model output (inpainting copies the known voxels back)."""
        return out

    # -- training
    def prepare(self, model: Any) -> None:
        self._model = model

    def _corrupt_cases(self, split: str, idx, rng_for) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Inputs, clean targets and masks (``(B, 1, *spatial)`` or None: one mask for all channels) of cases ``idx``."""
        clean = self.unit_images(split)[idx]
        inputs, masks = [], []
        for j, i in enumerate(idx):
            x, m = self.corrupt(clean[j], self._region(split, int(i)), rng_for(int(i)))
            inputs.append(x)
            masks.append(m)
        mk = None if masks[0] is None else np.stack(masks)[:, None]
        return np.stack(inputs), clean, mk

    def batch_loss(self, idx, gen, forward):
        import torch

        from openmia.engine.device import to_device

        seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        rng = np.random.default_rng(seed)  # fresh corruptions every step, reproducible from the loop's seed
        x, y, m = self._corrupt_cases("train", idx, lambda i: rng)
        x, y = to_device((torch.as_tensor(x), torch.as_tensor(y)), self.device)
        mt = None if m is None else to_device(torch.as_tensor(m.astype(np.float32)), self.device)
        return self.loss(forward(x), y, mt, self._model)

    def fixed_corruptions(self, split: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The split's inputs and masks, seeded by ``(<task>.corruption_seed, split, case index)``
        so every run with the same settings (and every method scored on the saved files) sees
        the same holes / noise."""
        from openmia.transforms.corruption import case_rng

        cache = self.__dict__.setdefault("_fixed_cache", {})
        if split not in cache:
            n = len(self.splits[split].images)
            x, _, m = self._corrupt_cases(split, np.arange(n),
                                          lambda i: case_rng(self.options.corruption_seed, split, i))
            cache[split] = (x, None if m is None else m[:, 0])
        return cache[split]

    def restore(self, model: Any, inputs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """Predictions ``(N, C, *spatial)`` for model inputs ``(N, C_in, *spatial)`` (eval mode, batched)."""
        import torch

        model.eval()
        bs = max(1, int(self.cfg.data.eval_batch_size))
        out = []
        with torch.no_grad():
            for s in range(0, len(inputs), bs):
                x = torch.as_tensor(np.ascontiguousarray(inputs[s : s + bs]), dtype=torch.float32).to(self.device)
                out.append(model(x).float().cpu().numpy())
        pred = np.concatenate(out)
        return self.compose(pred, inputs, masks)

    def validate(self, model) -> dict[str, float]:
        from openmia.metrics.synthesis import psnr

        x, m = self.fixed_corruptions("val")
        clean = self.unit_images("val")
        pred = self.restore(model, x, m)
        vals, errs = [], []
        for i in range(len(pred)):
            r = self._region("val", i)
            cr = (slice(None), *r)
            # channels last: the spatial mask then selects (K, C), every channel of the hole's pixels
            p, t = np.moveaxis(pred[i][cr], 0, -1), np.moveaxis(clean[i][cr], 0, -1)
            mk = None if m is None else m[i][r]
            vals.append(min(psnr(p, t, data_range=1.0, mask=mk, channel_axis=-1), PSNR_CAP))
            d = np.abs(p - t) if mk is None else np.abs(p - t)[mk]
            errs.append(float(d.mean()))
        key = "psnr_mask" if self.uses_mask else "psnr"
        return {key: float(np.mean(vals)), "loss": float(np.mean(errs))}

    # -- final evaluation
    def evaluate(self, model, run_dir: Path, splits: tuple[str, ...], provenance: dict[str, Any]) -> Evaluation:
        summaries, table = {}, ""
        for split in splits:
            res = self._evaluate_split(model, Path(run_dir), split, provenance)
            summaries[split] = res.summary
            if split == "test":
                names = ["psnr_mask", "ssim_mask", "mae_mask", "psnr", "ssim", "mae"] if self.uses_mask else ["psnr", "ssim", "mae"]
                table = res.table(metrics=names, label="all")
                fileio.write_text(run_dir / "eval" / split / "report.txt", table + "\n")
        return Evaluation(summaries, table, {"data_range": 1.0, "corruption": self.corruption_record()})

    def corruption_record(self) -> dict[str, Any]:
        """The corruption settings (in ``result.json``)."""
        import dataclasses

        return dataclasses.asdict(self.options)

    def _evaluate_split(self, model, run_dir: Path, split: str, provenance: dict[str, Any]):
        from openmia.evaluation.registry import get_evaluator
        from openmia.evaluation.result import write_outputs

        s = self.splits[split]
        x, m = self.fixed_corruptions(split)
        clean = self.unit_images(split)
        pred = self.restore(model, x, m)
        dirs = {k: run_dir / k / split for k in ("inputs", "masks", "truth", "predictions")}
        for k, d in dirs.items():
            if k != "masks" or m is not None:
                d.mkdir(parents=True, exist_ok=True)
        names = [case_name(c) for c in s.case_ids]
        c = self.spec.channels
        for i, name in enumerate(names):
            r = (slice(None), *self._region(split, i))
            # single-channel images without a channel axis, colour with the channel axis last
            fileio.save_npy(dirs["inputs"] / f"{name}.npy", to_file_layout(x[i][r][:c]))
            fileio.save_npy(dirs["truth"] / f"{name}.npy", to_file_layout(clean[i][r]))
            fileio.save_npy(dirs["predictions"] / f"{name}.npy", to_file_layout(pred[i][r].astype(np.float32)))
            if m is not None:
                fileio.save_npy(dirs["masks"] / f"{name}.npy", m[i][r[1:]].astype(np.uint8))
        cfg = self.cfg
        res = get_evaluator(self.evaluator)(dirs["predictions"], dirs["truth"], None, data_range=1.0,
                                            n_resamples=cfg.eval.n_resamples, seed=cfg.eval.seed, task=self.name,
                                            **({"mask_dir": dirs["masks"]} if m is not None else {}))
        res.summary["corruption"] = self.corruption_record()
        write_outputs(res, run_dir / "eval" / split, provenance=provenance)
        self._examples(run_dir / "eval" / split / "examples.png", x, m, pred, clean, split, names)
        return res

    def _examples(self, path: Path, x, m, pred, clean, split: str, names: list[str], n: int = 4) -> None:
        """A figure of the first ``n`` cases: input, (mask), prediction, truth (3D: middle slice of axis 1;
        colour: the first three channels as RGB, clipped to [0, 1])."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cols = ["input", *(["mask"] if m is not None else []), "prediction", "truth"]
        k = min(n, len(names))
        fig, axes = plt.subplots(k, len(cols), figsize=(2.2 * len(cols), 2.2 * k), squeeze=False)
        for i in range(k):
            r = self._region(split, i)

            def view(a):
                a = a[r]
                return a[:, a.shape[1] // 2] if a.ndim == 3 else a

            def image(a):  # (C, *spatial) -> a grey (*2D) or an RGB (*2D, 3) view
                if a.shape[0] < 3:
                    return view(a[0])
                return np.clip(np.stack([view(ch) for ch in a[:3]], -1), 0, 1)

            c = clean.shape[1]
            imgs = [image(x[i][:c]), *([view(m[i].astype(float))] if m is not None else []), image(pred[i]), image(clean[i])]
            for j, (ax, im) in enumerate(zip(axes[i], imgs)):
                ax.imshow(im, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(cols[j], fontsize=9)
            axes[i][0].set_ylabel(names[i][-18:], fontsize=7)
        fig.tight_layout()
        fileio.save_figure(fig, path)
        plt.close(fig)

    # -- applying a run to new images (``openmia inpaint/denoise --model RUN``)
    def restore_image(self, model: Any, image: np.ndarray, mask: np.ndarray | None, scale: str = "auto") -> np.ndarray:
        """One image ``(*spatial)`` or ``(C, *spatial)`` in its own intensity scale -> the restored
        image in the same scale (float32).

        ``scale`` says how the image maps to the network's [0, 1] scale and back: ``unit`` = it is
        on that scale already (e.g. the run's own ``inputs/<split>/`` files); ``uint8`` = 0-255
        (/255); ``minmax`` = the min-max of the known voxels; ``auto`` = ``uint8`` for runs trained
        on uint8 images, else ``minmax`` (the training images were min-max scaled per case)."""
        if scale not in RESTORE_SCALES:
            raise ConfigError(f"scale: expected one of {', '.join(RESTORE_SCALES)}, found {scale!r}")
        img = np.asarray(image)
        squeeze = img.ndim == self.spec.dims
        arr = img[None] if squeeze else img
        known = arr if mask is None else arr[:, ~mask]
        if scale == "auto":
            scale = "uint8" if self._norm() == "uint8_unit" else "minmax"
        if scale == "unit":
            lo, scale = 0.0, 1.0
        elif scale == "uint8":
            lo, scale = 0.0, 255.0
        else:
            lo, hi = float(known.min()), float(known.max())
            scale = hi - lo if hi > lo else 1.0
        unit = (arr.astype(np.float32) - lo) / scale
        inp = self.model_input(unit, mask)
        out = self.restore(model, inp[None], None if mask is None else mask[None])[0]
        out = out * scale + lo
        return (out[0] if squeeze else out).astype(np.float32)

    def model_input(self, unit: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The network input for a case already corrupted (``(C, *spatial)`` on [0, 1])."""
        return unit
