"""Reconstruction task (2D and 3D): autoencoders (``conv_ae``), VAEs (``conv_vae``) and denoising
autoencoders (``reconstruction.noise: gaussian|rician``: the input is noised, the target clean).

Loss: MSE for autoencoders; for VAEs (models that keep ``last_mu``/``last_logvar``) the negative
ELBO per voxel with ``reconstruction.beta`` (:func:`openmia.losses.generative.vae_elbo`).
Validation selects by mean PSNR over the whole image; the final evaluation scores the
reconstructions with the denoising evaluator (PSNR/SSIM/MAE over the whole image, BCa CIs) and
shows a few in ``eval/<split>/examples.png``. ``openmia embed`` takes the spatial mean of the
bottleneck (``model.encode``) as the image's vector.
"""

from __future__ import annotations

from dataclasses import dataclass

from openmia.config import one_of
from openmia.errors import ConfigError
from openmia.tasks.generative import GenerativeTask
from openmia.tasks.registry import register_task
from openmia.transforms.corruption import NOISE_KINDS


@dataclass(frozen=True)
class ReconstructionOptions:
    """The ``reconstruction`` config section."""

    beta: float = 1.0  # weight of the KL term of a VAE's ELBO (beta-VAE; 1 = the ELBO)
    noise: str = "none"  # none | gaussian | rician: a denoising autoencoder when not none
    sigma: float = 0.1  # noise standard deviation on the [0, 1] scale (noise != none)
    corruption_seed: int = 0  # seeds the fixed validation/test noise

    def __post_init__(self) -> None:
        one_of("reconstruction.noise", self.noise, ("none", *NOISE_KINDS))
        if not isinstance(self.beta, (int, float)) or self.beta < 0:
            raise ConfigError(f"reconstruction.beta: expected a non-negative number, found {self.beta!r}")
        if not isinstance(self.sigma, (int, float)) or not 0 < self.sigma <= 1:
            raise ConfigError(f"reconstruction.sigma: expected a noise level in (0, 1], found {self.sigma!r}")


@register_task("reconstruction")
class ReconstructionTask(GenerativeTask):
    """Autoencoding of 2D images and 3D volumes (AE, VAE, denoising AE)."""

    section = ReconstructionOptions
    default_dataset = "synthetic/seg2d"
    default_model = "conv_ae"
    select_metrics = ("psnr", "loss")
    evaluator = "denoising"

    def corrupt(self, clean, region, rng):
        from openmia.tasks.denoising import noisy_input

        o = self.options
        return (clean.copy() if o.noise == "none" else noisy_input(clean, region, o.noise, o.sigma, rng)), None

    def loss(self, out, target, mask, model):
        from openmia.losses.generative import vae_elbo

        mu = getattr(model, "last_mu", None)
        if mu is not None:
            return vae_elbo(out, target, mu, model.last_logvar, beta=self.options.beta)["loss"]
        return (out - target).pow(2).mean()

    def embed(self, model, batch):
        """The autoencoder's code: the bottleneck (VAE: posterior mean) averaged over space, ``(B, latent)``."""
        return model.encode(batch)

    def embedding_source(self, model) -> str:
        return "spatial mean of the autoencoder's bottleneck (VAE: of the posterior mean)"
