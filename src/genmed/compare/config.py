"""`CompareConfig`: one family comparison, and the network options each family is built with.

The compute budget is the same for every family and is stated in the output: either the same
number of training images seen (`budget_images`; steps = budget / batch size, a GAN step shows
one real batch to D and one generated batch to G) or the same training wall-clock
(`budget_seconds`; steps estimated from a short measured probe of each family, and the seconds
actually spent are reported next to it). Optimiser, LR schedule and weight EMA are each
family's registry recipe "compare" (`genmed.models.recipe(family, "compare", variant)`: a
variant with its own recipe, like the stabilised GAN's, is trained by it).

What is compared are *arms*: a registry family with its network options. "gan" is the
stabilised GAN (issue 14: residual nets, R1, minibatch std, DiffAugment); "dcgan" (the source's
baseline, BCE with real 1 / fake 0) and "sngan" (hinge loss + spectral norm, the comparison's
GAN before issue 14) are its baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genmed.errors import UserError, check_choice, check_positive

FAMILY_NAMES = ("diffusion", "gan", "vae")  # the default arms, one per generative family
ARM_NAMES = ("diffusion", "gan", "vae", "dcgan", "sngan")
ARM_FAMILY = {"diffusion": "diffusion", "gan": "gan", "vae": "vae", "dcgan": "gan", "sngan": "gan"}
# (sampler, steps) settings of the sampler study; ("ddpm", 1000) is the full chain (Algorithm 2).
STUDY = (("ddpm", 1000), ("ddpm", 100), ("ddim", 10), ("ddim", 20), ("ddim", 50),
         ("dpmpp_2m", 10), ("dpmpp_2m", 20), ("dpmpp_2m_sde", 10), ("dpmpp_2m_sde", 20))
QUICK_STUDY = (("ddpm", 200), ("ddim", 10), ("dpmpp_2m", 10))


# Model options per arm: the reference networks of docs/models.md.
NETWORKS: dict[str, dict[str, Any]] = {
    "diffusion": dict(sampler="dpmpp_2m_sde", sample_steps=20),
    # D at 4x G's rate: with the registry's "resnet_r1:compare" G rate (5e-5), BigGAN's rates
    "gan": dict(variant="resnet_r1", d_lr_scale=4.0),
    # prior "fitted": samples from the Gaussian of the aggregate posterior (issue 14; its
    # standard-prior samples were blotches, docs/evaluation.md "VAE sampling prior")
    "vae": dict(kl_warmup_steps=300, likelihood_sigma=0.25, prior="fitted"),
    "dcgan": dict(variant="dcgan"),
    "sngan": dict(variant="hinge_sn"),
}
# Tiny networks for `--quick` (the test suite): seconds, not quality.
QUICK_NETWORKS: dict[str, dict[str, Any]] = {
    "diffusion": dict(channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                      num_train_timesteps=200, sampler="dpmpp_2m_sde", sample_steps=10),
    "gan": dict(variant="resnet_r1", d_lr_scale=4.0, base_channels=8, max_channels=16, latent_dim=16),
    "vae": dict(channels=(8, 16), latent_dim=8, kl_warmup_steps=20, prior="fitted"),
    "dcgan": dict(variant="dcgan", base_channels=8, latent_dim=16),
    "sngan": dict(variant="hinge_sn", base_channels=8, latent_dim=16),
}
RECIPE = "compare"  # the registry recipe preset of every family in a comparison


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """One comparison run; `out` receives report.html, metrics.json and the run folders."""

    families: tuple[str, ...] = FAMILY_NAMES  # arms (ARM_NAMES) to train or load, in report order
    data: str = "phantom"  # "phantom", a manifest CSV or an image folder (genmed.data)
    size: int = 32  # image side in pixels
    n_patients: int | None = 96  # phantom patients (train/val/test split by patient)
    budget_images: int | None = None  # training images seen per family (default 40,000)
    budget_seconds: float | None = None  # or: training wall-clock seconds per family
    batch_size: int = 32  # training batch
    n_samples: int = 256  # generated images per family for the metrics
    study_n: int = 64  # images per sampler setting in the diffusion sampler study
    study: tuple[tuple[str, int], ...] = STUDY  # (sampler, steps) settings; () to skip
    runs: tuple[str, ...] = ()  # existing run folders, one per family (no training)
    n_boot: int = 30  # bootstrap resamples for the CIs
    ema_decay: float | None = None  # weight EMA (None: the family's "compare" recipe, 0.995)
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    precision: str = "auto"  # engine precision (bf16 autocast on AMX/AVX-512-BF16 CPUs)
    quick: bool = False  # tiny networks and sizes (test suite)
    seed: int = 0
    out: str = "runs/compare"

    def __post_init__(self) -> None:
        if not self.families:
            raise UserError(f"--families: name at least one of {', '.join(ARM_NAMES)}")
        for f in self.families:
            check_choice("family", f, ARM_NAMES)
        if len(set(self.families)) != len(self.families):
            raise UserError(f"--families {','.join(self.families)}: a family is named twice")
        if self.budget_images is not None and self.budget_seconds is not None:
            raise UserError("give --budget-images or --budget-seconds, not both")
        if self.budget_images is not None:
            check_positive("budget_images", self.budget_images)
            if self.budget_images < self.batch_size:
                raise UserError(f"budget_images={self.budget_images} is less than one batch "
                                f"({self.batch_size} images)")
        if self.budget_seconds is not None:
            check_positive("budget_seconds", self.budget_seconds)
        for name in ("size", "batch_size", "n_samples", "study_n", "n_boot"):
            check_positive(name, getattr(self, name))
        if self.n_samples < 8 or self.study_n < 8:
            raise UserError("n_samples and study_n must be >= 8 (the k-NN metrics use k=5)")
        check_choice("precision", self.precision, ("auto", "bf16", "fp32"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if self.runs and len(self.runs) != len(self.families):
            raise UserError(f"--runs names {len(self.runs)} run folders for "
                            f"{len(self.families)} families; give one per family, in order")
        from genmed.models import SAMPLERS

        for sampler, steps in self.study:
            check_choice("sampler", sampler, SAMPLERS)
            check_positive("study steps", steps)

    @property
    def budget(self) -> tuple[str, float]:
        """("images", N) or ("seconds", S): the stated equal compute budget."""
        if self.budget_seconds is not None:
            return "seconds", float(self.budget_seconds)
        if self.budget_images is not None:
            return "images", float(self.budget_images)
        return "images", float(640 if self.quick else 40_000)

    def network(self, arm: str) -> dict[str, Any]:
        """The model options `arm` is built with."""
        return dict((QUICK_NETWORKS if self.quick else NETWORKS)[arm])
