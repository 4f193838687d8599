"""Pix2pix (Isola et al. 2017): a paired image-to-image UNet trained with an L1 term and a
conditional PatchGAN, for translation (e.g. non-contrast -> contrast-enhanced CT).

The generator is the `Regressor`'s MONAI UNet (patch training, sliding-window inference and the
residual shortcut carry over); the discriminator is MONAI's PatchGAN (`nets.patch_discriminator`)
on the source stacked with the real or generated target, one logit per ~70-px receptive field
with 3 layers (the paper's 70x70 PatchGAN). Losses (paper eq. 4, non-saturating form):
D: softplus(-D(x, y)) + softplus(D(x, G(x))); G: softplus(-D(x, G(x))) + l1_weight |y - G(x)|
(l1_weight 100 in the paper). Phases "discriminator" then "generator" each step, like `GANModel`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmed.errors import UserError, check_choice
from genmed.models.base import Batch, pixel_mean
from genmed.models.nets import patch_discriminator
from genmed.models.supervised import Regressor, RegressorConfig


@dataclass(frozen=True, kw_only=True)
class Pix2PixConfig(RegressorConfig):
    """A `RegressorConfig` (the generator) plus the PatchGAN and the L1 weight."""

    disc_channels: int = 64  # first PatchGAN layer's channels (doubled per layer)
    disc_layers: int = 3  # strided PatchGAN layers (3: 70x70 receptive field)
    l1_weight: float = 100.0  # weight of the L1 term against the adversarial term

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.disc_channels < 1 or self.disc_layers < 1 or not self.l1_weight >= 0:
            raise UserError(f"disc_channels={self.disc_channels} and disc_layers={self.disc_layers} "
                            f"must be >= 1 and l1_weight={self.l1_weight} >= 0")


class Pix2Pix(Regressor):
    """`predict(source)` is the generator's translation; training alternates D and G."""

    family = "pix2pix"

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__(config)
        self.discriminator = patch_discriminator(config.spatial_dims,
                                                 config.in_channels + config.out_channels,
                                                 config.disc_channels, config.disc_layers)

    def phases(self) -> tuple[str, ...]:
        return ("discriminator", "generator")

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return (self.discriminator if phase == "discriminator" else self.net).parameters()

    def _logits(self, source: Tensor, target: Tensor) -> Tensor:
        """Mean PatchGAN logit per sample (B,) of the pair (source, target)."""
        return self.discriminator(torch.cat([source, target], 1))[-1].float().flatten(1)

    def loss(self, batch: Batch, phase: str = "generator") -> dict[str, Tensor]:
        """Per-sample losses (B,) of `phase`; logged: the L1 term and D's mean logits."""
        check_choice("phase", phase, self.phases())
        x, target, weight = self.training_pair(batch)
        fake = self._forward(x)
        if phase == "discriminator":
            real_logits = self._logits(x, target)
            fake_logits = self._logits(x, fake.detach())
            loss = (F.softplus(-real_logits) + F.softplus(fake_logits)).mean(1)
            return {"loss": loss, "d_real": real_logits.mean(1).detach(),
                    "d_fake": fake_logits.mean(1).detach()}
        l1 = pixel_mean((fake.float() - target.float()).abs(), weight)
        adv = F.softplus(-self._logits(x, fake)).mean(1)
        return {"loss": adv + self.config.l1_weight * l1, "l1": l1.detach()}
