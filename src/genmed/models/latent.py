"""Latent diffusion (Rombach et al. 2022; Pinaya et al. 2022, brain LDM): DDPM in the latent
space of a frozen, trained KL autoencoder.

Stage one trains `AutoencoderModel` (models/autoencoder.py). Stage two freezes it and trains a
`DiffusionModel` on its scaled latents z = scale_factor * (mu + sigma * eps), eps ~ N(0, I),
with scale_factor = 1 / std(z) over the first training images, so the latents the diffusion
model sees have about unit variance, like the images its noise schedule was designed for
(the scale factor of Rombach et al. 2022, for KL-regularised latents; MONAI's 2d_ldm tutorial
takes it from the first batch). The diffusion part is the pixel family's own `DiffusionModel` (noising, loss,
every sampler, classifier-free guidance), built with `bounded=False` because latents are not
in [-1, 1]; only its parameters are optimised. Sampling draws latents with any sampler and
decodes them: x = D(z / scale_factor).

With `cond_channels` > 0 the model also takes an image condition at pixel resolution, e.g. the
one-hot label map of generation from a mask (batch["cond"], (B, cond_channels, *[size]*dims)).
It is area-averaged onto the latent grid (each latent pixel gets the share of each class in its
downsampling x downsampling footprint, so a lesion smaller than the footprint still shows as a
fraction) and enters the latent UNet by concatenation (Rombach et al. 2022, semantic synthesis)
or SPADE normalisation (Park et al. 2019), as `cond_kind` says.

The autoencoder's weights are part of this model's state_dict and its architecture part of
`LDMConfig`, so a checkpoint of stage two rebuilds both stages on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from genmed.config import from_dict, to_dict
from genmed.errors import UserError, check_choice, check_positive
from genmed.models.autoencoder import AutoencoderConfig, AutoencoderModel
from genmed.models.base import Batch, GenerativeModel, ModelConfig, batch_labels, evaluating
from genmed.models.denoiser import Prediction
from genmed.models.diffusion import DiffusionConfig, DiffusionModel, checked_regions
from genmed.models.samplers import SamplerName
from genmed.models.schedules import ScheduleKind, Spacing

CACHE_BYTES = 2 * 2**30  # `training_data` caches posterior moments up to this size
SHARED = ("spatial_dims", "in_channels", "size", "num_classes", "data_kind")  # set on the LDM
_UNET = ("channels", "attention_levels", "num_res_blocks", "norm_num_groups", "schedule",
         "num_train_timesteps", "cond_drop_prob", "sampler", "sample_steps", "spacing", "recon_t",
         "cond_channels", "cond_kind", "prediction", "cond_loss_weights", "region_loss_weights")


@dataclass(frozen=True, kw_only=True)
class LDMConfig(ModelConfig):
    """A frozen AutoencoderKL (`autoencoder`: its options) + a DiffusionModelUNet on its latents
    (the other fields, as `DiffusionConfig`'s). `size` is the image side in pixels/voxels."""

    autoencoder: dict[str, Any] = field(default_factory=dict)  # AutoencoderConfig options
    scale_factor: float = 1.0  # latent multiplier, 1 / std of the training latents (stage two sets it)
    autoencoder_run: str = ""  # provenance: the stage-one run the autoencoder weights came from
    channels: tuple[int, ...] = (32, 64, 64)  # latent UNet channels per level
    attention_levels: tuple[bool, ...] = (False, False, True)  # self-attention per UNet level
    num_res_blocks: int = 1  # res blocks per UNet level
    norm_num_groups: int = 16  # GroupNorm groups of the UNet
    schedule: ScheduleKind = "linear"  # beta schedule: "linear" (Ho 2020) or "cosine" (Nichol 2021)
    num_train_timesteps: int = 1000  # T
    cond_drop_prob: float = 0.1  # label dropout for classifier-free guidance
    # the latent UNet's target: "v" (Salimans & Ho 2022). With "eps", x0 = (z_t - sqrt(1 - ab)
    # eps) / sqrt(ab) multiplies the network's error by up to 1 / sqrt(ab_T) ~ 160, and unlike
    # pixels latents cannot be clipped: the 32^3 mask ldm's eps samples had latent SD 4.4 (data
    # 1.0), its v samples 1.01 (docs/applications.md). Runs saved before the field were "eps".
    prediction: Prediction = "v"
    saved_defaults: ClassVar[Mapping[str, Any]] = {"prediction": "eps"}
    sampler: SamplerName = "dpmpp_2m_sde"  # default sampler (as DiffusionConfig: the sampler study)
    sample_steps: int = 20  # default number of sampling steps
    spacing: Spacing = "logsnr"  # sampling time grid
    recon_t: int | None = None  # default t_start of reconstruct / anomaly_score (None: T // 4)
    cond_channels: int = 0  # channels of a pixel-resolution image condition batch["cond"] (0: none)
    cond_kind: Literal["concat", "spade"] = "concat"  # how it enters the latent UNet
    # region-weighted latent loss (DiffusionConfig.cond_loss_weights), on the map area-averaged
    # onto the latent grid
    cond_loss_weights: tuple[float, ...] = ()
    # the same from a training-only region map batch["regions"] at pixel resolution
    # (DiffusionConfig.region_loss_weights), area-averaged onto the latent grid
    region_loss_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data_kind", self.data_kind, ("image",))
        if not isinstance(self.autoencoder, dict):
            raise UserError(f"autoencoder={self.autoencoder!r} must be a mapping of options")
        clash = sorted(set(self.autoencoder) & set(SHARED))
        if clash:
            raise UserError(f"set {', '.join(clash)} on the ldm model, not in its autoencoder options")
        if not self.scale_factor > 0:
            raise UserError(f"scale_factor={self.scale_factor!r} must be > 0")
        ae = self.autoencoder_config  # validates the autoencoder options
        # canonical record: every autoencoder option, JSON form (a saved config compares equal)
        object.__setattr__(self, "autoencoder",
                           {k: v for k, v in to_dict(ae).items() if k not in SHARED})
        levels = len(self.channels) - 1
        self.check_divisible(ae.downsampling * 2 ** levels,
                             f"the autoencoder downsamples by {ae.downsampling} and the latent "
                             f"UNet halves it {levels} times")
        _ = self.latent_config  # validates the UNet options

    @property
    def autoencoder_config(self) -> AutoencoderConfig:
        """The frozen autoencoder (encoder and decoder only: no discriminator)."""
        shared = dict(spatial_dims=self.spatial_dims, in_channels=self.in_channels, size=self.size)
        options = {**self.autoencoder, **shared, "adv_weight": 0.0}
        return from_dict(AutoencoderConfig, options, where="ldm autoencoder")

    @property
    def latent_config(self) -> DiffusionConfig:
        """The diffusion model on latents: (latent_channels, size / downsampling, ...)."""
        ae = self.autoencoder_config
        unet = {name: getattr(self, name) for name in _UNET}
        try:
            return DiffusionConfig(spatial_dims=self.spatial_dims, in_channels=ae.latent_channels,
                                   size=self.size // ae.downsampling, num_classes=self.num_classes,
                                   bounded=False, clip_x0=False, **unet)
        except (TypeError, ValueError) as exc:
            raise UserError(f"ldm model config: {exc}") from None


class LatentDiffusionModel(GenerativeModel):
    """Frozen autoencoder + latent DDPM; one phase ("main") that trains the diffusion part."""

    family = "ldm"

    def __init__(self, config: LDMConfig) -> None:
        super().__init__()
        self.config = config
        self.autoencoder = AutoencoderModel(config.autoencoder_config)
        self.autoencoder.requires_grad_(False)
        self.diffusion = DiffusionModel(config.latent_config)
        self.autoencoder.eval()

    def train(self, mode: bool = True) -> LatentDiffusionModel:
        """Train/eval mode for the diffusion part; the frozen autoencoder stays in eval."""
        super().train(mode)
        self.autoencoder.eval()
        return self

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return self.diffusion.parameters()

    @torch.no_grad()
    def encode(self, x: Tensor, generator: torch.Generator | None = None, *,
               sample: bool = True) -> Tensor:
        """Scaled latents scale_factor * z of images `x` (a posterior sample, or its mean)."""
        return self.autoencoder.latent(x, generator, sample=sample) * self.config.scale_factor

    def decode(self, z: Tensor) -> Tensor:
        """Images in [-1, 1] from scaled latents."""
        with evaluating(self.autoencoder):
            return self.autoencoder.decode(z / self.config.scale_factor)

    def training_data(self, dataset: Dataset) -> Dataset:
        """`dataset` with each item's posterior moments (`LatentCache`) when they fit in
        CACHE_BYTES, so training does not run the encoder at every step; else `dataset`."""
        if isinstance(dataset, LatentCache):
            return dataset
        item_bytes = 2 * 4 * math.prod(self.autoencoder.config.latent_shape)
        return LatentCache(dataset, self.autoencoder) if item_bytes * len(dataset) <= CACHE_BYTES else dataset

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """The latent diffusion model's per-sample eps-MSE on the encoded batch (no gradient
        reaches the frozen encoder). A batch from `LatentCache` carries the posterior moments
        ("latent_mu", "latent_sigma") instead: z is drawn from them, with the same global-RNG
        draw `encode` would make, and the encoder does not run."""
        check_choice("phase", phase, self.phases())
        if self.config.cond_channels:
            batch = {**batch, "cond": self.latent_cond(batch.get("cond"), len(batch["image"]))}
        if self.config.region_loss_weights:  # checked at pixel resolution, pooled to latents
            regions = checked_regions(batch, self.config.region_loss_weights)
            batch = {**batch, "regions": self.to_latent_grid(regions)}
        if "latent_mu" in batch:
            mu, sigma = batch["latent_mu"], batch["latent_sigma"]
            z = (mu + sigma * torch.randn(tuple(mu.shape), device=mu.device, dtype=mu.dtype))
            z = z * self.config.scale_factor
        else:
            z = self.encode(batch["image"])
        return self.diffusion.loss({**batch, "image": z})

    def latent_cond(self, image_cond: Tensor | None, n: int) -> Tensor | None:
        """An image condition (n, cond_channels, *[size]*dims) at pixel resolution, area-averaged
        onto the latent grid; None for a model without one. UserError for a missing, unexpected
        or misshapen condition."""
        cfg = self.config
        if not cfg.cond_channels:
            if image_cond is not None:
                raise UserError("an image condition was given but the model takes none (cond_channels=0)")
            return None
        want = (n, cfg.cond_channels, *([cfg.size] * cfg.spatial_dims))
        if image_cond is None or tuple(image_cond.shape) != want:
            got = "none" if image_cond is None else f"shape {tuple(image_cond.shape)}"
            raise UserError(f"the model needs an image condition of shape {want}; got {got}")
        return self.to_latent_grid(image_cond)

    def to_latent_grid(self, maps: Tensor) -> Tensor:
        """A map (n, C, *[size]*dims) at pixel resolution area-averaged onto the latent grid:
        each latent pixel holds the share of each channel in its footprint (float32)."""
        pool = F.avg_pool2d if self.config.spatial_dims == 2 else F.avg_pool3d
        k = self.autoencoder.config.downsampling
        return pool(maps.float(), kernel_size=k, stride=k)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               guidance: float = 1.0, eta: float = 0.0, progress: bool = False,
               image_cond: Tensor | None = None, map_guidance: float | Tensor = 0.0,
               map_negative: str = "organs") -> Tensor:
        """`n` images (n, *sample_shape) in [-1, 1]: latents from the diffusion model's sampler
        `sampler` (any of SAMPLERS) in `steps` steps with guidance scale `guidance`, decoded;
        `image_cond` (n, cond_channels, *[size]*dims) for a model that takes one, and
        `map_guidance` w > 0 (a number or one per sample) to steer away from its negative map
        `map_negative` (`models/map_guidance.py`)."""
        z = self.diffusion.sample(n, cond, steps, generator, sampler=sampler, guidance=guidance,
                                  eta=eta, progress=progress, image_cond=self.latent_cond(image_cond, n),
                                  map_guidance=map_guidance, map_negative=map_negative)
        return self.decode(z)

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Samples for the engine's end-of-run grid; an image-conditioned model draws them for
        the batch's own conditions (and labels)."""
        if not self.config.cond_channels:
            return super().preview(batch, steps, generator)
        image_cond = batch["cond"]
        return self.sample(len(image_cond), cond=batch_labels(batch, self.config.num_classes, image_cond.device),
                           steps=steps, generator=generator, image_cond=image_cond)

    def reconstruct(self, x: Tensor, t_start: int | None = None, *, steps: int | None = None,
                    sampler: str | None = None, cond: Tensor | None = None,
                    guidance: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Encode (posterior mean), SDEdit in latent space from `t_start` (Meng et al. 2022),
        decode: the latent counterpart of `DiffusionModel.reconstruct`."""
        z = self.encode(x, sample=False)
        z = self.diffusion.reconstruct(z, t_start, steps=steps, sampler=sampler, cond=cond,
                                       guidance=guidance, generator=generator)
        return self.decode(z)

    def anomaly_score(self, x: Tensor, t_start: int | None = None, *, n_draws: int = 3,
                      steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """(B,) mean squared image-space error of `reconstruct`, averaged over `n_draws` noise
        draws (the latent AnoDDPM of Pinaya et al. 2022, "Fast unsupervised brain anomaly
        detection"); higher = more anomalous."""
        check_positive("n_draws", n_draws)
        errs = [(self.reconstruct(x, t_start, steps=steps, generator=generator) - x)
                .pow(2).flatten(1).mean(1) for _ in range(n_draws)]
        return torch.stack(errs).mean(0)


class LatentCache(Dataset):
    """`dataset` with each item's posterior moments under a frozen autoencoder, computed once:
    items gain "latent_mu" and "latent_sigma" (`latent_shape`, float32, CPU), so stage-two
    training draws z = mu + sigma * eps per step without running the encoder (at 128^3 the
    encoder costs about 1 s per volume on one CPU thread, twice the latent UNet's step).
    Valid because the autoencoder is frozen and the generative families train without
    augmentation; memory: 2 x latent size x 4 bytes per item."""

    def __init__(self, dataset: Dataset, autoencoder: AutoencoderModel, *, batch_size: int = 8) -> None:
        from torch.utils.data import default_collate

        self.dataset = dataset
        device = next(autoencoder.parameters()).device
        mus, sigmas = [], []
        with torch.no_grad(), evaluating(autoencoder):
            for start in range(0, len(dataset), batch_size):  # type: ignore[arg-type]
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]  # type: ignore[arg-type]
                mu, sigma = autoencoder.encode(default_collate(items)["image"].to(device))
                mus.append(mu.float().cpu())
                sigmas.append(sigma.float().cpu())
        self.mu, self.sigma = torch.cat(mus), torch.cat(sigmas)

    def __len__(self) -> int:
        return len(self.mu)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.dataset[i], "latent_mu": self.mu[i], "latent_sigma": self.sigma[i]}


@torch.no_grad()
def latent_scale(autoencoder: AutoencoderModel, images: Tensor, *, batch_size: int = 16,
                 generator: torch.Generator | None = None) -> float:
    """1 / std of the posterior-sampled latents of `images` (Rombach et al. 2022's scale
    factor; MONAI 2d_ldm tutorial: 1 / torch.std(z) of the first batch)."""
    device = next(autoencoder.parameters()).device
    with evaluating(autoencoder):
        zs = [autoencoder.latent(images[i:i + batch_size].to(device), generator).float().cpu()
              for i in range(0, len(images), batch_size)]
    std = float(torch.cat(zs).std())
    if not std > 0 or std != std:
        raise UserError(f"the autoencoder's latents have std={std}: it cannot be used for an ldm")
    return 1.0 / std


def latent_diffusion(autoencoder: AutoencoderModel, images: Tensor, /, *, num_classes: int = 0,
                     autoencoder_run: str = "", generator: torch.Generator | None = None,
                     **options: Any) -> LatentDiffusionModel:
    """A new latent diffusion model on a trained `autoencoder` (its weights copied, frozen),
    latents scaled by `latent_scale(autoencoder, images)`; `options` are `LDMConfig` UNet
    fields."""
    if "autoencoder" in options:
        raise UserError("the autoencoder options come from the trained autoencoder; drop "
                        "options.autoencoder")
    ae = autoencoder.config
    record = {k: v for k, v in to_dict(ae).items() if k not in SHARED}
    data = dict(spatial_dims=ae.spatial_dims, in_channels=ae.in_channels, size=ae.size,
                num_classes=num_classes, autoencoder=record, autoencoder_run=autoencoder_run,
                scale_factor=latent_scale(autoencoder, images, generator=generator), **options)
    model = LatentDiffusionModel(from_dict(LDMConfig, data, where="ldm model config"))
    model.autoencoder.net.load_state_dict(autoencoder.net.state_dict())
    return model


def ldm_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split family options of an ldm run into (autoencoder options, latent UNet options)."""
    rest = dict(options)
    return dict(rest.pop("autoencoder", None) or {}), rest

