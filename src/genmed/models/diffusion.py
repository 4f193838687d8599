"""Denoising diffusion (DDPM, Ho et al. 2020) with classifier-free guidance (Ho & Salimans 2022).

Training (Ho et al. 2020, Algorithm 1): t ~ U{0..T-1}, eps ~ N(0, I),
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, loss = |eps - eps_theta(x_t, t, y)|^2
per sample (mean over pixels). With `num_classes` > 0, labels are replaced by a reserved null
class with probability `cond_drop_prob`, so one network learns conditional and unconditional
eps and sampling can mix them with a guidance scale. With `cond_channels` > 0 the model also
takes an image condition, batch["cond"] (a one-hot label map for generation from a mask, or a
source image for translation), stacked onto x_t ("concat") or through SPADE normalisation
("spade"); see `nets.diffusion_unet`. Sampling by name: "ddpm" (ancestral, Algorithm 2), "ddim"
(Song et al. 2021), "dpmpp_2m" (Lu et al. 2022) or "dpmpp_2m_sde", at any step count.
Reconstruction and anomaly scores use partial noising + denoising (SDEdit, Meng et al. 2022;
AnoDDPM, Wyatt et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import (
    Batch,
    GenerativeModel,
    ModelConfig,
    batch_labels,
    check_labels,
    evaluating,
    pixel_mean,
    randn,
)
from genmed.models.denoiser import EpsDenoiser, Prediction, v_target
from genmed.models.map_guidance import MapGuidedDenoiser, check_map_guidance, is_guided, negative_map
from genmed.models.nets import VectorDenoiserMLP, diffusion_unet
from genmed.models.samplers import SAMPLERS, SamplerName, get_sampler
from genmed.models.schedules import (
    SCHEDULE_KINDS,
    SPACINGS,
    ScheduleKind,
    Spacing,
    alpha_bar,
    broadcast,
    schedule_from_alpha_bar,
)


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig(ModelConfig):
    """DDPM on MONAI's DiffusionModelUNet (images) or a residual MLP (vectors)."""

    channels: tuple[int, ...] = (32, 64, 64)  # UNet channels per level (size / 2**(levels-1))
    attention_levels: tuple[bool, ...] = (False, False, True)  # self-attention per level
    num_res_blocks: int = 1  # res blocks per UNet level
    norm_num_groups: int = 16  # GroupNorm groups (must divide every channel count)
    hidden: int = 128  # vector MLP width
    depth: int = 3  # vector MLP residual blocks
    schedule: ScheduleKind = "linear"  # beta schedule: "linear" (Ho 2020) or "cosine" (Nichol 2021)
    num_train_timesteps: int = 1000  # T
    cond_drop_prob: float = 0.1  # label dropout for classifier-free guidance
    # what the network predicts: the noise "eps" (Ho et al. 2020) or "v" = sqrt(ab) eps -
    # sqrt(1 - ab) x0 (Salimans & Ho 2022). With eps, x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab)
    # multiplies the network's error by up to 1 / sqrt(ab_T) ~ 160 at high noise; pixel models
    # clip x0 to [-1, 1], unbounded latents cannot; with v, x0's error is the network's own
    prediction: Prediction = "eps"
    # default sampler and steps: the sampler study (benchmarks/results/sampler_study.json, FID
    # 0.71 vs DDIM-50's 1.10 at a third of its time) and real brain MR (3 % vs 42 % of samples
    # noise-dominated) both favour SDE-DPM-Solver++(2M) at 20 steps (Lu et al. 2022)
    sampler: SamplerName = "dpmpp_2m_sde"
    sample_steps: int = 20
    spacing: Spacing = "logsnr"  # sampling time grid: "uniform", "quadratic" or "logsnr"
    clip_x0: bool = True  # clamp the predicted x0 to [-1, 1] while sampling (images only)
    recon_t: int | None = None  # default t_start for reconstruct / anomaly_score (None: T // 4)
    cond_channels: int = 0  # channels of an image condition batch["cond"] (0: none)
    cond_kind: Literal["concat", "spade"] = "concat"  # how the image condition enters the UNet
    # region-weighted loss: per-pixel weight 1 + sum_c w_c cond_c for the image condition's
    # channels (one weight each; () = the plain mean). A one-hot label map with weights on its
    # small classes (kidney, lesion) makes them count for more than their area, which a plain
    # mean lets a few hundred lesion pixels in 65,536 all but drop (docs/applications.md)
    cond_loss_weights: tuple[float, ...] = ()
    # the same weighting from a training-only region map batch["regions"] (B, one channel per
    # weight, *spatial), which the network never sees: a class-conditional model can weight
    # the lesion it is asked to draw without being given where it is. Excludes the above
    region_loss_weights: tuple[float, ...] = ()
    bounded: bool = True  # data in [-1, 1]: samples clamped (and x0 clipped); False: latents
    # noise of the forward process: "gaussian" (Ho et al. 2020) or multi-octave 2-D "simplex"
    # (AnoDDPM, Wyatt et al. 2022: the model learns to remove structured noise; for anomaly
    # detection by partial reconstruction, `noise_like` gives the noise to start from)
    noise: Literal["gaussian", "simplex"] = "gaussian"
    simplex_cell_px: float = 16.0  # simplex: lattice spacing of the coarsest octave (px)
    simplex_octaves: int = 4  # simplex: octaves, each at twice the frequency of the last
    simplex_persistence: float = 0.8  # simplex: amplitude ratio of successive octaves

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("schedule", self.schedule, SCHEDULE_KINDS)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("spacing", self.spacing, SPACINGS)
        check_choice("noise", self.noise, ("gaussian", "simplex"))
        check_choice("prediction", self.prediction, get_args(Prediction))
        if self.noise == "simplex" and (self.data_kind != "image" or self.spatial_dims != 2):
            raise UserError("noise='simplex' is for 2-D images")
        if self.simplex_cell_px <= 0 or self.simplex_octaves < 1:
            raise UserError(f"simplex_cell_px={self.simplex_cell_px} must be > 0 and "
                            f"simplex_octaves={self.simplex_octaves} >= 1")
        if len(self.channels) != len(self.attention_levels):
            raise UserError(f"channels={self.channels} and attention_levels="
                            f"{self.attention_levels} must have the same length")
        bad = [c for c in self.channels if c % self.norm_num_groups]
        if bad:
            raise UserError(f"norm_num_groups={self.norm_num_groups} does not divide channels {bad}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise UserError(f"cond_drop_prob={self.cond_drop_prob} must be in [0, 1)")
        if self.num_train_timesteps < 2:
            raise UserError(f"num_train_timesteps={self.num_train_timesteps} must be >= 2")
        check_positive("sample_steps", self.sample_steps)
        check_positive("cond_channels", self.cond_channels, allow_zero=True)
        check_choice("cond_kind", self.cond_kind, ("concat", "spade"))
        if self.cond_loss_weights and len(self.cond_loss_weights) != self.cond_channels:
            raise UserError(f"cond_loss_weights={self.cond_loss_weights} needs one weight per image "
                            f"condition channel (cond_channels={self.cond_channels})")
        for name in ("cond_loss_weights", "region_loss_weights"):
            if not all(0.0 <= w < float("inf") for w in getattr(self, name)):
                raise UserError(f"{name}={getattr(self, name)} must be finite and >= 0")
        if self.cond_loss_weights and self.region_loss_weights:
            raise UserError("set cond_loss_weights (weights of the image condition) or "
                            "region_loss_weights (of a training-only map), not both")
        if self.cond_channels and self.data_kind != "image":
            raise UserError("an image condition (cond_channels > 0) needs data_kind='image'")
        if self.recon_t is not None and not 0 <= self.recon_t < self.num_train_timesteps:
            raise UserError(f"recon_t={self.recon_t} must be in 0..{self.num_train_timesteps - 1}")
        self.check_divisible(2 ** (len(self.channels) - 1),
                             f"the UNet halves it {len(self.channels) - 1} times")


class DiffusionModel(GenerativeModel):
    """DDPM eps- or v-prediction model; one phase ("main")."""

    family = "diffusion"

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        n_embeds = cfg.num_classes + 1 if cfg.num_classes else None  # last index = null class
        if cfg.data_kind == "vector":
            self.net = VectorDenoiserMLP(cfg.size, cfg.hidden, cfg.depth, n_embeds)
        else:
            self.net = diffusion_unet(cfg.spatial_dims, cfg.in_channels, cfg.channels,
                                      cfg.attention_levels, cfg.num_res_blocks,
                                      cfg.norm_num_groups, n_embeds, cfg.cond_channels,
                                      cfg.cond_kind)
        ab = alpha_bar(cfg.schedule, cfg.num_train_timesteps)
        self.alpha_bar64 = ab  # float64 on CPU, for sampler step coefficients
        self.register_buffer("alpha_bar", ab.float(), persistent=False)

    @property
    def bounded_images(self) -> bool:
        """Images in [-1, 1] (not vectors, not unbounded latents): samples are clamped."""
        return self.config.data_kind == "image" and self.config.bounded

    @property
    def null_class(self) -> int | None:
        return self.config.num_classes if self.config.num_classes else None

    def denoiser(self, clip_x0: bool | None = None, image_cond: Tensor | None = None) -> EpsDenoiser:
        """The network as a `Denoiser` (eps prediction, guidance, optional x0 clipping), bound
        to the image condition `image_cond` when the model takes one."""
        clip = self.config.clip_x0 and self.bounded_images if clip_x0 is None else clip_x0
        return EpsDenoiser(self.net, self.alpha_bar, null_class=self.null_class, clip_x0=clip,
                           image_cond=image_cond, prediction=self.config.prediction)

    @property
    def fully_convolutional(self) -> bool:
        """True for an image UNet without self-attention: it then denoises images of any size
        that its levels can halve, so a model trained on patches translates whole slices."""
        return self.config.data_kind == "image" and not any(self.config.attention_levels)

    def check_image_cond(self, image_cond: Tensor | None, n: int) -> Tensor | None:
        """Validate an image condition (n, cond_channels, *spatial) against the model: spatial
        `size` each, or any multiple of the UNet's stride for a `fully_convolutional` model."""
        cfg = self.config
        if not cfg.cond_channels:
            if image_cond is not None:
                raise UserError("an image condition was given but the model takes none "
                                "(cond_channels=0)")
            return None
        want = (n, cfg.cond_channels, *([cfg.size] * cfg.spatial_dims))
        if image_cond is None:
            raise UserError(f"the model needs an image condition of shape {want}")
        stride = 2 ** (len(cfg.channels) - 1)
        if (self.fully_convolutional and tuple(image_cond.shape[:2]) == want[:2]
                and image_cond.ndim == len(want) and all(s % stride == 0 for s in image_cond.shape[2:])):
            return image_cond.to(self.alpha_bar.device).float()
        if tuple(image_cond.shape) != want:
            raise UserError(f"image condition of shape {tuple(image_cond.shape)} does not fit "
                            f"the model: expected {want}")
        return image_cond.to(self.alpha_bar.device).float()

    def noise_like(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Forward-process noise shaped like `x`: N(0, I), or unit-variance simplex noise
        (`config.noise`); from `generator` when given, else the global RNG."""
        cfg = self.config
        if cfg.noise == "simplex":
            from genmed.models.simplex import simplex_noise

            return simplex_noise(tuple(x.shape), cell_px=cfg.simplex_cell_px, octaves=cfg.simplex_octaves,
                                 persistence=cfg.simplex_persistence, generator=generator,
                                 device=x.device).to(x.dtype)
        if generator is None:
            return torch.randn_like(x)
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise   (Ho et al. 2020, eq. 4)."""
        ab = broadcast(self.alpha_bar[t], x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample MSE (B,) of the eps (Algorithm 1) or v target (`config.prediction`) at
        uniformly drawn t, with label dropout; weighted by the image condition's regions when
        `config.cond_loss_weights` is set, or by batch["regions"] when
        `config.region_loss_weights` is (`region_weights`)."""
        x0 = batch["image"]
        b = x0.shape[0]
        t = torch.randint(0, self.config.num_train_timesteps, (b,), device=x0.device)
        noise = self.noise_like(x0)
        labels = batch_labels(batch, self.config.num_classes, x0.device)
        if labels is not None:
            drop = torch.rand(b, device=x0.device) < self.config.cond_drop_prob
            labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        seg = {"seg": batch["cond"].to(x0.dtype)} if self.config.cond_channels else {}
        out = self.net(self.q_sample(x0, t, noise), timesteps=t, class_labels=labels, **seg)
        target = noise if self.config.prediction == "eps" else v_target(x0, noise, self.alpha_bar[t])
        return {"loss": pixel_mean((out.float() - target.float()).pow(2), self.loss_weights(batch))}

    def loss_weights(self, batch: Batch) -> Tensor | None:
        """Per-pixel loss weights (B, 1, *spatial) from the image condition
        (`cond_loss_weights`) or the training-only batch["regions"] (`region_loss_weights`);
        None for the plain mean. UserError for a missing or misshapen region map."""
        cfg = self.config
        if cfg.cond_loss_weights:
            return region_weights(batch["cond"].float(), cfg.cond_loss_weights)
        if not cfg.region_loss_weights:
            return None
        regions = checked_regions(batch, cfg.region_loss_weights)
        return region_weights(regions.float(), cfg.region_loss_weights)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               guidance: float = 1.0, eta: float = 0.0, progress: bool = False,
               image_cond: Tensor | None = None, map_guidance: float | Tensor = 0.0,
               map_negative: str = "organs") -> Tensor:
        """`n` samples (n, *sample_shape), images clamped to [-1, 1].

        `sampler` "ddpm" | "ddim" | "dpmpp_2m" | "dpmpp_2m_sde" (default config.sampler),
        `steps` (default config.sample_steps; "ddpm" with steps=T is Algorithm 2 exactly),
        `guidance` the classifier-free guidance scale s (1: conditional, 0: unconditional,
        >1: stronger), `image_cond` (n, cond_channels, *spatial) for an image-conditioned model,
        `map_guidance` w > 0 for a label-map model: steer away from the map without its organs
        (`map_negative` "organs") or lesion ("lesion"; `models/map_guidance.py`, twice the
        network calls); a number, or one weight per sample ((n,) tensor).
        """
        check_positive("n", n)
        cond = check_labels(cond, self.config.num_classes, n)
        image_cond = self.check_image_cond(image_cond, n)
        device = self.alpha_bar.device
        shape = self.config.sample_shape
        if image_cond is not None:  # a fully convolutional model samples at the condition's size
            shape = (shape[0], *image_cond.shape[2:])
        x = randn((n, *shape), generator, device)
        return self.denoise_from(x, None, steps, sampler, cond, guidance, generator, eta, progress,
                                 image_cond, map_guidance=map_guidance,
                                 map_negative=map_negative)

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Samples for the engine's end-of-run grid: classes in turn for a class-conditional
        model, the batch's own conditions for an image-conditioned one."""
        if not self.config.cond_channels:
            return super().preview(batch, steps, generator)
        image_cond = batch["cond"].to(self.alpha_bar.device)
        labels = batch_labels(batch, self.config.num_classes, image_cond.device)
        return self.sample(len(image_cond), cond=labels, steps=steps, generator=generator,
                           image_cond=image_cond)

    def denoise_from(self, x: Tensor, t_start: int | None, steps: int | None = None,
                     sampler: str | None = None, cond: Tensor | None = None, guidance: float = 1.0,
                     generator: torch.Generator | None = None, eta: float = 0.0,
                     progress: bool = False, image_cond: Tensor | None = None, *,
                     map_guidance: float | Tensor = 0.0, map_negative: str = "organs") -> Tensor:
        """Run the reverse process from x_t at step `t_start` (None: T-1, pure noise) to t = 0
        in `steps` steps; labels `cond` and `image_cond` must already be validated.
        `map_guidance` w > 0 steers away from `image_cond`'s negative map `map_negative`
        (`models/map_guidance.py`; a label-map model only, twice the network calls; a number or
        one weight per sample)."""
        name = sampler or self.config.sampler
        fn = get_sampler(name)
        schedule = schedule_from_alpha_bar(self.alpha_bar64, steps or self.config.sample_steps, t_start,
                                           self.config.spacing)
        extra = {"eta": eta} if name == "ddim" else {}
        if cond is not None:
            cond = cond.to(x.device)
        denoiser = self.denoiser(image_cond=image_cond)
        map_guidance = check_map_guidance(map_guidance, n=len(x))
        if is_guided(map_guidance):
            if image_cond is None:
                raise UserError("map guidance needs a model conditioned on a label map")
            denoiser = MapGuidedDenoiser(denoiser, self.denoiser(image_cond=negative_map(image_cond, map_negative)),
                                         map_guidance)
        with evaluating(self):
            out = fn(denoiser, x, schedule, cond=cond, guidance=guidance,
                     generator=generator, progress=progress, **extra)
        return out.clamp(-1, 1) if self.bounded_images else out

    def reconstruct(self, x: Tensor, t_start: int | None = None, *, steps: int | None = None,
                    sampler: str | None = None, cond: Tensor | None = None, guidance: float = 1.0,
                    generator: torch.Generator | None = None,
                    image_cond: Tensor | None = None) -> Tensor:
        """Noise `x` to level `t_start` (default config.recon_t), then denoise back to t = 0
        (SDEdit, Meng et al. 2022): small t_start keeps the image, large t_start resamples it."""
        default = self.config.recon_t
        if default is None:
            default = self.config.num_train_timesteps // 4
        t0 = default if t_start is None else int(t_start)
        if not 0 <= t0 < self.config.num_train_timesteps:
            raise UserError(f"t_start={t0} must be in 0..{self.config.num_train_timesteps - 1}")
        cond = check_labels(cond, self.config.num_classes, x.shape[0])
        image_cond = self.check_image_cond(image_cond, x.shape[0])
        noise = randn(tuple(x.shape), generator, x.device, x.dtype)
        tt = torch.full((x.shape[0],), t0, dtype=torch.long, device=x.device)
        xt = self.q_sample(x, tt, noise)
        n_steps = min(steps or self.config.sample_steps, t0 + 1)
        return self.denoise_from(xt, t0, n_steps, sampler, cond, guidance, generator,
                             image_cond=image_cond)

    def anomaly_score(self, x: Tensor, t_start: int | None = None, *, n_draws: int = 3,
                      steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """(B,) mean squared reconstruction error at noise level `t_start`, averaged over
        `n_draws` noise draws (AnoDDPM-style, Wyatt et al. 2022); higher = more anomalous."""
        check_positive("n_draws", n_draws)
        errs = [
            (self.reconstruct(x, t_start, steps=steps, generator=generator) - x).pow(2).flatten(1).mean(1)
            for _ in range(n_draws)
        ]
        return torch.stack(errs).mean(0)


def checked_regions(batch: Batch, weights: tuple[float, ...]) -> Tensor:
    """batch["regions"], the training-only region map of `region_loss_weights`: (B, one
    channel per weight, *spatial of batch["image"]); UserError naming that shape if it is
    missing or misshapen."""
    x, regions = batch["image"], batch.get("regions")
    want = (x.shape[0], len(weights), *x.shape[2:])
    if regions is None or tuple(regions.shape) != want:
        got = "none" if regions is None else f"shape {tuple(regions.shape)}"
        raise UserError(f"region_loss_weights={weights} needs a region map batch['regions'] of "
                        f"shape {want}; got {got}")
    return regions


def region_weights(cond: Tensor, weights: tuple[float, ...]) -> Tensor:
    """(B, 1, *spatial) per-pixel loss weights 1 + sum_c weights[c] cond[:, c] of an image
    condition `cond` (B, C, *spatial; a one-hot or area-averaged label map): a pixel of class c
    counts 1 + weights[c] times as much as one the weights leave at 1."""
    w = torch.as_tensor(weights, dtype=cond.dtype, device=cond.device).view(1, -1, *[1] * (cond.ndim - 2))
    return 1.0 + (cond * w).sum(1, keepdim=True)
