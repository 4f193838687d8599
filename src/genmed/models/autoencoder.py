"""KL-regularised compression autoencoder, stage one of latent diffusion (Rombach et al. 2022).

Per sample, on MONAI's `AutoencoderKL` with posterior q(z|x) = N(mu, sigma^2) (Rombach et al.
2022, sec. 3.1, "KL-reg."; Pinaya et al. 2022):
  loss_G = mean|x - x_hat| + kl_weight * KL(q(z|x) || N(0, I)) + adv_weight * gate * mean (D(x_hat) - 1)^2
  KL = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)   (summed over latent elements)
with x_hat decoded from a posterior sample. An L1 reconstruction and a very small KL weight
(1e-6) keep the latent space close to the image while bounding its variance, as in MONAI's
2d_ldm tutorial; no perceptual loss (it needs downloaded weights). With `adv_weight` > 0 a
PatchGAN discriminator D (Isola et al. 2017) adds a least-squares adversarial term
(Mao et al. 2017):
  loss_D = adv_weight * gate * 1/2 [mean D(x_hat)^2 + mean (D(x) - 1)^2]
and `gate` is 0 for the first `adv_warmup_steps` optimiser steps (taming-transformers'
`disc_start`; MONAI's tutorial warms up for 10 % of training), so D judges reconstructions
that already resemble the data. Phases then are "discriminator" then "generator" (the
autoencoder), each with its own optimiser, exactly like the GAN. `batch["step"]` (given by
the engine) drives the gate; without it the adversarial term is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import Batch, GenerativeModel, ModelConfig, evaluating, randn
from genmed.models.nets import autoencoder_kl, patch_discriminator


@dataclass(frozen=True, kw_only=True)
class AutoencoderConfig(ModelConfig):
    """AutoencoderKL (+ optional PatchDiscriminator) on 2D/3D images; defaults from MONAI's
    2d_ldm tutorial (kl_weight, adv_weight, L1) at a width a CPU can train."""

    channels: tuple[int, ...] = (32, 64, 64)  # encoder channels per level (downsampling 2**(levels-1))
    latent_channels: int = 3  # channels of the latent maps
    num_res_blocks: int = 1  # res blocks per level (tutorial: 2)
    norm_num_groups: int = 16  # GroupNorm groups (must divide every channel count)
    attention: bool = False  # self-attention at the deepest level and the mid-blocks
    kl_weight: float = 1e-6  # weight of the summed KL term against the mean L1 error
    adv_weight: float = 0.01  # weight of the patch-adversarial term (0: no discriminator)
    adv_warmup_steps: int = 500  # optimiser steps before the adversarial term starts
    disc_channels: int = 32  # discriminator channels at the first layer (doubling per layer)
    disc_layers: int = 3  # stride-2 discriminator layers (each patch logit sees ~2**(layers+2) px)
    # train on random train_crop-px crops (0: whole images), as Rombach et al. 2022 train their
    # first stage on crops; the network is convolutional, so it encodes whole images at test time
    # (a 3-D one encodes and decodes in tiles of this side: `AutoencoderModel.encode`, `decode`)
    train_crop: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data_kind", self.data_kind, ("image",))
        if self.num_classes:
            raise UserError(f"the autoencoder is unconditional (num_classes={self.num_classes})")
        if not self.channels:
            raise UserError("channels must name at least one level")
        for name in ("latent_channels", "num_res_blocks", "norm_num_groups", "disc_channels",
                     "disc_layers"):
            check_positive(name, getattr(self, name))
        for name in ("kl_weight", "adv_weight", "adv_warmup_steps", "train_crop"):
            check_positive(name, getattr(self, name), allow_zero=True)
        bad = [c for c in self.channels if c % self.norm_num_groups]
        if bad:
            raise UserError(f"norm_num_groups={self.norm_num_groups} does not divide channels {bad}")
        self.check_divisible(self.downsampling,
                             f"the autoencoder halves it {len(self.channels) - 1} times")
        if self.train_crop:
            if self.attention:
                raise UserError("train_crop needs attention=False (attention sees the whole image)")
            if self.train_crop > self.size or self.train_crop % self.downsampling:
                raise UserError(f"train_crop={self.train_crop} must be at most size={self.size} and "
                                f"divisible by {self.downsampling}")
        side = min(self.size, self.train_crop or self.size)
        if self.adv_weight > 0 and side < 2 ** (self.disc_layers + 2):
            raise UserError(f"size={side} is too small for a disc_layers={self.disc_layers} "
                            f"patch discriminator (needs >= {2 ** (self.disc_layers + 2)}); "
                            "lower disc_layers or set adv_weight=0")

    @property
    def downsampling(self) -> int:
        """Image side / latent side."""
        return 2 ** (len(self.channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent: (latent_channels, *[size / downsampling] * spatial_dims)."""
        return (self.latent_channels, *([self.size // self.downsampling] * self.spatial_dims))


def _in_windows(fn, x: Tensor, side: int):
    """`fn` over overlapping `side`-voxel windows of `x` (MONAI sliding-window inference, overlap
    0.5, Gaussian blending, four windows at a time); outputs of another size (the encoder's
    latents, the decoder's images) and tuples of them are stitched at their own scale."""
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(x, roi_size=(side,) * (x.ndim - 2), sw_batch_size=4,
                                    predictor=fn, overlap=0.5, mode="gaussian")


class AutoencoderModel(GenerativeModel):
    """Encoder q(z|x) and decoder of MONAI's AutoencoderKL; phases "main", or "discriminator"
    then "generator" with the patch-adversarial loss."""

    family = "autoencoder"

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.net = autoencoder_kl(cfg.spatial_dims, cfg.in_channels, cfg.channels,
                                  cfg.latent_channels, cfg.num_res_blocks, cfg.norm_num_groups,
                                  cfg.attention)
        self.discriminator = (patch_discriminator(cfg.spatial_dims, cfg.in_channels,
                                                  cfg.disc_channels, cfg.disc_layers)
                              if cfg.adv_weight > 0 else None)

    def phases(self) -> tuple[str, ...]:
        return ("discriminator", "generator") if self.discriminator is not None else ("main",)

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return (self.discriminator if phase == "discriminator" else self.net).parameters()

    def _tiles(self, tiled: bool | None) -> bool:
        """Whether to run the encoder/decoder in tiles of the training crop (default: for a 3-D
        autoencoder trained on `train_crop` crops)."""
        if tiled is None:
            return bool(self.config.train_crop) and self.config.spatial_dims == 3
        return tiled

    def encode(self, x: Tensor, *, tiled: bool | None = None) -> tuple[Tensor, Tensor]:
        """(mu, sigma) of q(z|x), each (B, C_latent, *spatial / downsampling).

        `tiled` (default as `decode`) encodes in overlapping `train_crop` windows (overlap 0.5,
        Gaussian blending), the field of view each GroupNorm saw in training. Encoding 128^3
        phantom volumes whole from 64^3-crop training lost the spine in the reconstruction
        (share of axial slices with a spine 0.00-0.08 on four held-out volumes; tiled: 0.95-1.00)."""
        side = self.config.train_crop or self.config.size
        if not self._tiles(tiled) or all(s <= side for s in x.shape[2:]):
            return self.net.encode(x)
        mu, sigma = _in_windows(self.net.encode, x, side)
        return mu, sigma

    def latent(self, x: Tensor, generator: torch.Generator | None = None, *,
               sample: bool = True) -> Tensor:
        """A posterior sample z = mu + sigma * eps (noise from `generator`), or mu."""
        mu, sigma = self.encode(x)
        if not sample:
            return mu
        return mu + sigma * randn(tuple(mu.shape), generator, mu.device, mu.dtype)

    def decode(self, z: Tensor, *, tiled: bool | None = None) -> Tensor:
        """Images (B, *sample_shape) from latents, clamped to [-1, 1].

        `tiled` (default: for a 3-D autoencoder trained on `train_crop` crops) decodes in
        overlapping tiles of the training crop's latent side (MONAI sliding-window inference,
        overlap 0.5, Gaussian blending), so each tile's GroupNorm sees the field of view it was
        trained on. Decoding a 128^3 volume whole from 64^3-crop training put the body 110 HU
        too bright (mean error 72 HU on held-out volumes; tiled: 34 HU). A 2-D one trained on
        128-px crops decodes 256-px slices better whole (36.0 vs 31.1 dB; docs/models.md)."""
        side = (self.config.train_crop or self.config.size) // self.config.downsampling
        if not self._tiles(tiled) or all(s <= side for s in z.shape[2:]):
            return self.net.decode(z).clamp(-1, 1)
        return _in_windows(self.net.decode, z, side).clamp(-1, 1)

    def _logits(self, x: Tensor) -> Tensor:
        return self.discriminator(x.contiguous())[-1].float().flatten(1)  # (B, patches)

    def _gate(self, batch: Batch) -> float:
        if "step" not in batch:
            return 1.0
        step = int(torch.as_tensor(batch["step"]).reshape(-1)[0])
        return float(step >= self.config.adv_warmup_steps)

    def _crop(self, x: Tensor) -> Tensor:
        """In training, one random `train_crop` crop per image (offsets from torch's RNG)."""
        c = self.config.train_crop
        if not c or not self.training or x.shape[-1] <= c:
            return x
        dims = self.config.spatial_dims
        offsets = torch.randint(0, x.shape[-1] - c + 1, (x.shape[0], dims)).tolist()
        return torch.stack([xi[(..., *(slice(o, o + c) for o in off))]
                            for xi, off in zip(x, offsets)])

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample losses (B,) of `phase`; the generator/main phase also logs rec, kl, adv."""
        check_choice("phase", phase, self.phases())
        x = self._crop(batch["image"])
        cfg = self.config
        gate = self._gate(batch) if self.discriminator is not None else 0.0
        if phase == "discriminator":
            if not gate:  # warm-up: a zero loss, so the discriminator stays as initialised
                zero = sum(p.sum() for p in self.discriminator.parameters()) * 0.0
                return {"loss": zero.expand(x.shape[0])}
            with torch.no_grad():
                x_hat, _, _ = self.net(x)
            fake, real = self._logits(x_hat), self._logits(x)
            loss = 0.5 * (fake.pow(2).mean(1) + (real - 1).pow(2).mean(1))
            return {"loss": cfg.adv_weight * loss, "d_real": real.mean().detach(),
                    "d_fake": fake.mean().detach()}
        mu, sigma = self.encode(x)
        x_hat = self.net.decode(mu + sigma * torch.randn_like(sigma))
        rec = (x_hat.float() - x.float()).abs().flatten(1).mean(1)
        mu, var = mu.float(), sigma.float().pow(2)
        kl = 0.5 * (mu.pow(2) + var - var.clamp_min(1e-12).log() - 1).flatten(1).sum(1)
        loss = rec + cfg.kl_weight * kl
        out = {"rec": rec.mean().detach(), "kl": kl.mean().detach()}
        if gate:
            adv = (self._logits(x_hat) - 1).pow(2).mean(1)
            loss = loss + cfg.adv_weight * adv
            out["adv"] = adv.mean().detach()
        out["loss"] = loss
        return out

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Decoded prior noise z ~ N(0, I). With kl_weight ~ 1e-6 the latents are far from
        N(0, I), so these are not realistic images: the autoencoder is a compression stage for
        the ldm family, not a generator. Unconditional; `steps` ignored."""
        check_positive("n", n)
        if cond is not None:
            raise UserError("the autoencoder is unconditional: do not pass class labels")
        device = next(self.net.parameters()).device
        z = randn((n, *self.config.latent_shape), generator, device)
        with evaluating(self):
            return self.decode(z)

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Reconstructions of the training items (the end-of-run grid of stage one)."""
        return self.reconstruct(batch["image"])

    def reconstruct(self, x: Tensor, **kw) -> Tensor:
        """decode(mu(x)): the deterministic reconstruction, clamped to [-1, 1]."""
        with evaluating(self):
            return self.decode(self.latent(x, sample=False))

    def anomaly_score(self, x: Tensor, **kw) -> Tensor:
        """(B,) mean squared reconstruction error (higher = less like the training data)."""
        return (self.reconstruct(x) - x).pow(2).flatten(1).mean(1)
