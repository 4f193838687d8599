"""GANs: DCGAN baseline and a stabilised hinge + spectral-norm variant, optionally class-conditional.

- "dcgan" (Radford et al. 2016; Goodfellow et al. 2014): discriminator trained with binary
  cross-entropy, real label 1 and generated label 0 (as in the source document); generator
  with the non-saturating loss -log D(G(z)) (Goodfellow et al. 2014, sec. 3).
- "hinge_sn" (Miyato et al. 2018): spectral norm on every discriminator layer, hinge loss
  D: relu(1 - D(x)) + relu(1 + D(G(z))), G: -D(G(z)) (Lim & Ye 2017).
Either can add the R1 gradient penalty gamma/2 |grad_x D(x)|^2 on real data (Mescheder et al.
2018, eq. 9), and packing (PacGAN, Lin et al. 2018): D judges `pack` samples at once,
concatenated along channels (images) or features (vectors), all real or all generated, which
penalises a generator whose samples look alike and so counters mode collapse; or a minibatch
standard-deviation feature in D (`mbstd_group`, Karras et al. 2018) with the same aim.
Class-conditional: label embedding concatenated to z in G, projection in D
(Miyato & Koyama 2018). Phases: "discriminator" then "generator", disjoint parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import (
    Batch,
    GenerativeModel,
    ModelConfig,
    batch_labels,
    check_labels,
    evaluating,
    randn,
)
from genmed.models.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    VectorDiscriminator,
    VectorGenerator,
    dcgan_levels,
)

GANVariant = Literal["dcgan", "hinge_sn"]


@dataclass(frozen=True, kw_only=True)
class GANConfig(ModelConfig):
    """Generator/discriminator pair; image size must be 4 * 2**k (k >= 1)."""

    variant: GANVariant = "dcgan"  # "dcgan" (BCE, BatchNorm) or "hinge_sn" (hinge, spectral norm)
    latent_dim: int = 64  # z dimension
    base_channels: int = 32  # channels at full resolution (doubling per level)
    hidden: int = 128  # vector MLP width
    depth: int = 3  # vector MLP hidden layers
    r1_gamma: float = 0.0  # R1 penalty weight on real data (0: off)
    pack: int = 1  # PacGAN degree: samples per discriminator decision (1: a plain GAN)
    mbstd_group: int = 0  # minibatch-std feature in D over groups of this size (0: off)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("variant", self.variant, ("dcgan", "hinge_sn"))
        for name in ("latent_dim", "base_channels", "hidden", "depth"):
            check_positive(name, getattr(self, name))
        check_positive("r1_gamma", self.r1_gamma, allow_zero=True)
        check_positive("pack", self.pack)
        check_positive("mbstd_group", self.mbstd_group, allow_zero=True)
        if self.pack > 1 and self.num_classes:
            raise UserError("pack > 1 (PacGAN) is for unconditional GANs; set num_classes=0 or pack=1")
        if self.data_kind == "image" and (self.size < 8 or self.size != 4 * 2 ** dcgan_levels(self.size)):
            raise UserError(f"size={self.size} is not 4 * 2**k (8, 16, 32, 64, ...) as the DCGAN nets need")


class GANModel(GenerativeModel):
    """Generator + discriminator; `loss(batch, phase)` for phase "discriminator" or "generator"."""

    family = "gan"

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = cfg = config
        spectral = cfg.variant == "hinge_sn"
        if cfg.data_kind == "vector":
            self.generator: nn.Module = VectorGenerator(cfg.size, cfg.latent_dim, cfg.hidden,
                                                        cfg.depth, cfg.num_classes)
            self.discriminator: nn.Module = VectorDiscriminator(cfg.size * cfg.pack, cfg.hidden,
                                                                cfg.depth, cfg.num_classes, spectral,
                                                                cfg.mbstd_group)
        else:
            self.generator = DCGANGenerator(cfg.spatial_dims, cfg.in_channels, cfg.size,
                                            cfg.latent_dim, cfg.base_channels, cfg.num_classes)
            self.discriminator = DCGANDiscriminator(cfg.spatial_dims, cfg.in_channels * cfg.pack,
                                                    cfg.size, cfg.base_channels, cfg.num_classes,
                                                    spectral, cfg.mbstd_group)

    def phases(self) -> tuple[str, ...]:
        return ("discriminator", "generator")

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return (self.discriminator if phase == "discriminator" else self.generator).parameters()

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z, y): (B, *sample_shape)."""
        return self.generator(z, labels)

    def packed(self, x: Tensor) -> Tensor:
        """(B, C, ...) or (B, D) -> (B // pack, pack * C, ...): consecutive samples side by side.

        A remainder of B % pack samples is dropped (PacGAN, Lin et al. 2018, Sec. 3).
        """
        k = self.config.pack
        if k == 1:
            return x
        g = x.shape[0] // k
        if g == 0:
            raise UserError(f"batch of {x.shape[0]} is smaller than pack={k}")
        return x[: g * k].reshape(g, k * x.shape[1], *x.shape[2:])

    def loss(self, batch: Batch, phase: str = "discriminator") -> dict[str, Tensor]:
        """Per-sample losses (B,) of `phase` ("discriminator" or "generator"); (B // pack,) packed.

        The generator phase back-propagates through D too: the engine zeroes all gradients
        before each phase and steps only `phase_parameters(phase)`.
        """
        check_choice("phase", phase, self.phases())
        real = batch["image"]
        b, device = real.shape[0], real.device
        labels = batch_labels(batch, self.config.num_classes, device)
        z = torch.randn(b, self.config.latent_dim, device=device, dtype=real.dtype)
        hinge = self.config.variant == "hinge_sn"
        if phase == "generator":
            d_fake = self.discriminator(self.packed(self.generate(z, labels)), labels).float()
            loss = -d_fake if hinge else F.softplus(-d_fake)  # non-saturating: -log D(G(z))
            return {"loss": loss, "d_fake": d_fake.mean().detach()}
        with torch.no_grad():
            fake = self.packed(self.generate(z, labels))
        real = self.packed(real)
        gamma = self.config.r1_gamma
        if gamma > 0:
            real = real.detach().requires_grad_(True)
        d_real = self.discriminator(real, labels).float()
        d_fake = self.discriminator(fake, labels).float()
        if hinge:
            loss = F.relu(1 - d_real) + F.relu(1 + d_fake)
        else:  # BCE with real label 1, fake label 0
            loss = F.softplus(-d_real) + F.softplus(d_fake)
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}
        if gamma > 0:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1)
            loss = loss + 0.5 * gamma * r1
            out["r1"] = r1.mean().detach()
        out["loss"] = loss
        return out

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """`n` samples G(z), z ~ N(0, I) from `generator`; `steps` is ignored (one pass)."""
        check_positive("n", n)
        cond = check_labels(cond, self.config.num_classes, n)
        if self.config.num_classes and cond is None:
            cond = torch.randint(0, self.config.num_classes, (n,), generator=generator,
                                 device=generator.device if generator is not None else "cpu")
        device = next(self.generator.parameters()).device
        z = randn((n, self.config.latent_dim), generator, device)
        with evaluating(self.generator):
            return self.generate(z, None if cond is None else cond.to(device))

    def reconstruct(self, x: Tensor, **kw) -> Tensor:
        raise UserError("reconstruction is not available for the gan family (it has no encoder)")

    def anomaly_score(self, x: Tensor, cond: Tensor | None = None, **kw) -> Tensor:
        """(B,) negative discriminator logit, -D(x) (higher = less like the training data).

        For a conditional model without `cond`, the best class is used: -max_y D(x, y). A packed
        discriminator (pack > 1) judges each image repeated `pack` times.
        """
        if self.config.pack > 1:
            x = self.packed(x.repeat_interleave(self.config.pack, dim=0))
        cond = check_labels(cond, self.config.num_classes, x.shape[0])
        with evaluating(self.discriminator):
            if not self.config.num_classes:
                return -self.discriminator(x, None).float()
            if cond is not None:
                return -self.discriminator(x, cond.to(x.device)).float()
            logits = [self.discriminator(x, torch.full((x.shape[0],), c, device=x.device))
                      for c in range(self.config.num_classes)]
            return -torch.stack(logits).float().amax(0)
