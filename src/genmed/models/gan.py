"""GANs: DCGAN baseline, a hinge + spectral-norm variant and a residual R1 variant for small
data sets, optionally class-conditional.

- "dcgan" (Radford et al. 2016; Goodfellow et al. 2014): discriminator trained with binary
  cross-entropy, real label 1 and generated label 0 (as in the source document); generator
  with the non-saturating loss -log D(G(z)) (Goodfellow et al. 2014, sec. 3).
- "hinge_sn" (Miyato et al. 2018): spectral norm on every discriminator layer, hinge loss
  D: relu(1 - D(x)) + relu(1 + D(G(z))), G: -D(G(z)) (Lim & Ye 2017).
- "resnet_r1": the StyleGAN2 training objective (Karras et al. 2020, "Analyzing and improving
  the image quality of StyleGAN", sec. 3.1 and appendix B) on BigGAN-style residual networks
  (`genmed.models.gan_resnets`): non-saturating logistic loss (the "dcgan" losses), lazy R1
  (every `r1_every` = 16 steps, weighted by 16), a minibatch-std channel in D (group 4), and
  DiffAugment of real and generated images (Zhao et al. 2020; policy
  "color,translation,cutout") for small data sets. Vector data keep the MLP nets unless
  `residual_mlp` (any variant) makes both residual MLPs.
Any variant can add the R1 gradient penalty gamma/2 |grad_x D(x)|^2 on real data (Mescheder et
al. 2018, eq. 9), DiffAugment (`diffaug`), and packing (PacGAN, Lin et al. 2018): D judges
`pack` samples at once, concatenated along channels (images) or features (vectors), all real
or all generated, which penalises a generator whose samples look alike and so counters mode
collapse; or a minibatch standard-deviation feature in D (`mbstd_group`, Karras et al. 2018)
with the same aim. Class-conditional: label embedding concatenated to z (DCGAN nets) or
class-conditional BatchNorm (residual G: per-class rows, or with `class_embedding` a shared
class embedding also concatenated to z, Brock et al. 2019), projection in D (Miyato & Koyama 2018);
with `class_ramp` the label's weight in both ramps in from 0 (transitional conditioning,
Shahbazi et al. 2022, for class-conditional training on little data). Two more options aim at
diversity on short budgets: `d_lr_scale`, D's own learning rate (TTUR, Heusel et al. 2017), and
`mode_seeking`, MSGAN's regulariser (Mao et al. 2019). Phases:
"discriminator" then "generator", disjoint parameters. The engine's weight EMA covers the
whole model, so `sample` after `load_run(ema=True)` uses the averaged generator (Karras et al.
2018; Yazici et al. 2019).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmed.data.augment import check_diffaug_policy, diff_augment
from genmed.errors import UserError, check_choice, check_positive, check_range
from genmed.models.base import (
    Batch,
    GenerativeModel,
    ModelConfig,
    batch_labels,
    check_labels,
    evaluating,
    randn,
)
from genmed.models.gan_resnets import (
    ResidualDiscriminator,
    ResidualGenerator,
    residual_levels,
)
from genmed.models.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    VectorDiscriminator,
    VectorGenerator,
    dcgan_levels,
)

GANVariant = Literal["dcgan", "hinge_sn", "resnet_r1"]
GAN_VARIANTS = ("dcgan", "hinge_sn", "resnet_r1")
FULL_DIFFAUG = "color,translation,cutout"  # Zhao et al. 2020, sec. 4: the policy for small data


def variant_defaults(variant: str, data_kind: str, size: int) -> dict[str, Any]:
    """Values of the options left None: "dcgan" and "hinge_sn" keep their historical ones
    (no R1, no minibatch std, no DiffAugment); "resnet_r1" takes StyleGAN2-ADA's "auto" config
    (Karras et al. 2020b, train.py: R1 gamma = 0.0002 * size**2 / batch with the batch
    min(4096 // size, 32) of one GPU, minibatch-std group 4, lazy R1 every 16 steps) and
    DiffAugment's full policy for images; vector data (2-D mixtures): gamma 0.1, no DiffAugment."""
    if variant != "resnet_r1":
        return dict(r1_gamma=0.0, r1_every=1, mbstd_group=0, diffaug="")
    if data_kind == "vector":
        return dict(r1_gamma=0.1, r1_every=16, mbstd_group=4, diffaug="")
    return dict(r1_gamma=0.0002 * size ** 2 / min(4096 // size, 32), r1_every=16, mbstd_group=4,
                diffaug=FULL_DIFFAUG)


MAX_TEMPERATURE = 4.0  # beyond it z lies where G never saw a latent in training


def check_temperature(temperature: float, name: str = "temperature") -> float:
    """A latent temperature T in (0, MAX_TEMPERATURE], or a one-line UserError naming `name`. z ~ N(0, T^2 I):
    T < 1 is the truncation trick's direction (Brock et al. 2019, sec. 3.1: precision for
    recall), T > 1 the other (the "temperature" of Kingma & Dhariwal 2018, Glow, sec. 5)."""
    return check_range(name, temperature, 0.0, MAX_TEMPERATURE, low_open=True)


@dataclass(frozen=True, kw_only=True)
class GANConfig(ModelConfig):
    """Generator/discriminator pair. Image size: 4 * 2**k (DCGAN nets) or b * 2**k with
    4 <= b < 8 ("resnet_r1": 32, 64, 96, 128, 256, ...). Options left None take the variant's
    value (`variant_defaults`); the saved config holds the resolved numbers."""

    variant: GANVariant = "dcgan"  # "dcgan" (BCE, BatchNorm), "hinge_sn" (hinge, spectral norm), "resnet_r1"
    latent_dim: int = 64  # z dimension
    base_channels: int = 32  # channels at full resolution (doubling per level)
    max_channels: int = 64  # "resnet_r1" images: width cap, (32, 64, 64, ...) like the diffusion UNet
    hidden: int = 128  # vector MLP width
    depth: int = 3  # vector MLP hidden layers
    r1_gamma: float | None = None  # R1 penalty weight on real data (0: off; resnet_r1: ADA's heuristic)
    r1_every: int | None = None  # lazy R1: every this many optimiser steps, weighted by it (1: every step)
    pack: int = 1  # PacGAN degree: samples per discriminator decision (1: a plain GAN)
    mbstd_group: int | None = None  # minibatch-std feature in D over groups of this size (0: off)
    diffaug: str | None = None  # DiffAugment policy for D's inputs, e.g. "color,translation,cutout"
    # ADA (Karras et al. 2020b, sec. 3): > 0 applies each DiffAugment op with probability p,
    # raised or lowered every `ada_interval` D steps so that E[sign D(real)] stays at this
    # target (the paper's 0.6); 0: p = 1 throughout (plain DiffAugment)
    ada_target: float = 0.0
    ada_images: int = 20_000  # real images over which p can travel from 0 to 1 (the paper: 500k)
    ada_interval: int = 4  # D steps between updates of p
    # "resnet_r1" images with classes: size of the shared class embedding that is concatenated
    # with z and mapped to every BatchNorm's gain and bias (BigGAN); 0: one gain/bias table row
    # per class, whose rows barely part in short runs (the generator then ignores its label).
    # Off by default: on the crops, 64 made the label dominate and each class collapse to one
    # look (docs/pipeline.md, "The crop GAN's label")
    class_embedding: int = 0
    # transitional conditioning (Shahbazi et al. 2022, "Collapse by conditioning", sec. 4):
    # (start, end) optimiser steps over which the label's weight in G (its class embedding)
    # and in D (the projection term) ramps linearly from 0 to 1, so the GAN first learns the
    # shared look of all classes unconditionally; (0, 0): the label at full weight throughout
    class_ramp: tuple[int, int] = (0, 0)
    residual_mlp: bool = False  # vector data: residual MLPs (`nets.ResidualMLP`) for G and D
    # draws that re-estimate G's BatchNorm statistics before sampling (0: off, the running
    # statistics; on the 64-px phantom standing statistics lowered precision and recall:
    # benchmarks/results/gan_standing_stats.json)
    standing_stats: int = 0
    # two time-scale update rule (TTUR, Heusel et al. 2017, sec. 2; SAGAN, Zhang et al. 2019,
    # sec. 5: D 4e-4, G 1e-4): D's learning rate is this multiple of the recipe's, which G keeps.
    # 1 by default: 4 lowered recall on the 64-px phantom (docs/evaluation.md, "A faster
    # discriminator (TTUR) at 64 px")
    d_lr_scale: float = 1.0
    # mode-seeking regulariser (MSGAN, Mao et al. 2019, eq. 3): the generator step adds this
    # weight x 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2| + 1e-5) over pairs of its batch (same
    # label), so latents that differ must give images that differ; 0: off. Off by default: at
    # 64 px, weights 1 / 0.1 / 0.01 traded precision for recall (docs/evaluation.md, "The
    # mode-seeking regulariser (MSGAN) at 64 px")
    mode_seeking: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("variant", self.variant, GAN_VARIANTS)
        for name, value in variant_defaults(self.variant, self.data_kind, self.size).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("latent_dim", "base_channels", "max_channels", "hidden", "depth", "r1_every",
                     "pack"):
            check_positive(name, getattr(self, name))
        check_positive("r1_gamma", self.r1_gamma, allow_zero=True)
        check_positive("mbstd_group", self.mbstd_group, allow_zero=True)
        check_positive("standing_stats", self.standing_stats, allow_zero=True)
        check_positive("class_embedding", self.class_embedding, allow_zero=True)
        check_positive("ada_images", self.ada_images)
        check_range("d_lr_scale", self.d_lr_scale, 1e-3, 1e3)
        check_range("mode_seeking", self.mode_seeking, 0.0, 1e3)
        check_positive("ada_interval", self.ada_interval)
        if not 0.0 <= self.ada_target < 1.0:
            raise UserError(f"ada_target={self.ada_target} must be in [0, 1) (0: off; the paper's 0.6)")
        object.__setattr__(self, "diffaug", ",".join(check_diffaug_policy(self.diffaug)))
        if self.diffaug and self.data_kind == "vector":
            raise UserError(f"diffaug={self.diffaug!r} augments images; vector data take diffaug=''")
        if self.ada_target and not self.diffaug:
            raise UserError(f"ada_target={self.ada_target} adapts the DiffAugment policy; set diffaug too")
        if self.class_embedding and (self.variant != "resnet_r1" or self.data_kind != "image"):
            raise UserError(f"class_embedding={self.class_embedding} belongs to the residual image "
                            "generator (variant='resnet_r1'); other nets take 0")
        if tuple(self.class_ramp) != (0, 0):
            start, end = self.class_ramp
            if not 0 <= start < end:
                raise UserError(f"class_ramp={tuple(self.class_ramp)} must be (start, end) steps with 0 <= start < end")
            if not (self.class_embedding and self.num_classes):
                raise UserError(f"class_ramp={tuple(self.class_ramp)} weighs a shared class embedding; "
                                "set num_classes and class_embedding > 0")
        if self.residual_mlp and self.data_kind != "vector":
            raise UserError("residual_mlp=True is for vector data; images take variant='resnet_r1'")
        if self.pack > 1 and self.num_classes:
            raise UserError("pack > 1 (PacGAN) is for unconditional GANs; set num_classes=0 or pack=1")
        if self.data_kind != "image":
            return
        if self.variant == "resnet_r1":
            if not residual_levels(self.size)[0]:
                raise UserError(f"size={self.size} is not b * 2**k with 4 <= b < 8 and k >= 1 "
                                "(32, 48, 64, 96, 128, 256, ...) as the residual nets need")
        elif self.size < 8 or self.size != 4 * 2 ** dcgan_levels(self.size):
            raise UserError(f"size={self.size} is not 4 * 2**k (8, 16, 32, 64, ...) as the DCGAN nets need")


def mode_seeking_term(x1: Tensor, x2: Tensor, z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    """MSGAN's regulariser (Mao et al. 2019, eq. 3 as in the authors' code): 1 / (mean |x1 - x2|
    / mean |z1 - z2| + eps) for paired generated samples x1 = G(z1), x2 = G(z2). Small when the
    images differ as much as their latents, large for a generator that ignores z."""
    ratio = (x1.float() - x2.float()).abs().mean() / (z1.float() - z2.float()).abs().mean()
    return 1.0 / (ratio + eps)


class GANModel(GenerativeModel):
    """Generator + discriminator; `loss(batch, phase)` for phase "discriminator" or "generator"."""

    family = "gan"

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = cfg = config
        spectral = cfg.variant == "hinge_sn"
        if cfg.data_kind == "image" and cfg.variant == "resnet_r1":
            self.generator: nn.Module = ResidualGenerator(
                cfg.spatial_dims, cfg.in_channels, cfg.size, cfg.latent_dim, cfg.base_channels,
                cfg.max_channels, cfg.num_classes, cfg.class_embedding)
            self.discriminator: nn.Module = ResidualDiscriminator(
                cfg.spatial_dims, cfg.in_channels * cfg.pack, cfg.size, cfg.base_channels,
                cfg.max_channels, cfg.num_classes, cfg.mbstd_group)
        elif cfg.data_kind == "vector":
            self.generator = VectorGenerator(cfg.size, cfg.latent_dim, cfg.hidden, cfg.depth,
                                             cfg.num_classes, cfg.residual_mlp)
            self.discriminator = VectorDiscriminator(cfg.size * cfg.pack, cfg.hidden, cfg.depth,
                                                     cfg.num_classes, spectral, cfg.mbstd_group,
                                                     cfg.residual_mlp)
        else:
            self.generator = DCGANGenerator(cfg.spatial_dims, cfg.in_channels, cfg.size,
                                            cfg.latent_dim, cfg.base_channels, cfg.num_classes)
            self.discriminator = DCGANDiscriminator(cfg.spatial_dims, cfg.in_channels * cfg.pack,
                                                    cfg.size, cfg.base_channels, cfg.num_classes,
                                                    spectral, cfg.mbstd_group)
        self._standing_key: list[float] | None = None  # G's weights the statistics were taken at
        if cfg.ada_target:  # ADA state, saved with the weights (runs without ADA keep their keys)
            self.register_buffer("ada_p", torch.tensor(0.0))  # ADA starts without augmentation
            self.register_buffer("ada_signs", torch.zeros(3))  # since the last update: sum of sign D(real), decisions, calls
        self.ramped = tuple(cfg.class_ramp) != (0, 0)
        if self.ramped:  # the label's weight now (class_ramp), saved with the weights
            self.register_buffer("class_weight", torch.tensor(0.0))

    def phases(self) -> tuple[str, ...]:
        return ("discriminator", "generator")

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return (self.discriminator if phase == "discriminator" else self.generator).parameters()

    def phase_lr_scale(self, phase: str) -> float:
        check_choice("phase", phase, self.phases())
        return self.config.d_lr_scale if phase == "discriminator" else 1.0

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z, y): (B, *sample_shape)."""
        if self.ramped:
            return self.generator(z, labels, self.class_weight)
        return self.generator(z, labels)

    def judge(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D(x, y): logits (B // pack,)."""
        if self.ramped:
            return self.discriminator(x, labels, self.class_weight)
        return self.discriminator(x, labels)

    def ramp_to(self, step: int) -> None:
        """Set the label's weight for optimiser step `step`: clip((step - start) / (end -
        start), 0, 1) (`class_ramp`)."""
        start, end = self.config.class_ramp
        self.class_weight.fill_(min(max((step - start) / (end - start), 0.0), 1.0))

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

    def augment(self, x: Tensor) -> Tensor:
        """D's view of a batch: DiffAugment with policy `diffaug` (identity for ""), the same
        policy for real and generated batches, differentiable (Zhao et al. 2020, eq. 3-4); with
        ADA (`ada_target` > 0) each op reaches a sample with the adapted probability `ada_p`."""
        if not self.config.diffaug:
            return x
        if self.config.ada_target:
            return diff_augment(x, self.config.diffaug, p=float(self.ada_p))
        return diff_augment(x, self.config.diffaug)

    @torch.no_grad()
    def ada_update(self, d_real: Tensor) -> None:
        """ADA's overfitting heuristic (Karras et al. 2020b, eq. 1 and sec. 3): gather sign
        D(x) over real decisions; every `ada_interval` calls move p by (images seen since) /
        `ada_images`, up when r_t = E[sign D(real)] exceeds `ada_target` (D too sure of the
        reals: augment more), down otherwise; p stays in [0, 1]."""
        cfg = self.config
        one = torch.ones((), device=self.ada_signs.device)
        self.ada_signs += torch.stack([d_real.sign().sum().to(one), one * d_real.numel(), one])  # no host sync
        if int(self.ada_signs[2]) < cfg.ada_interval:
            return
        r_t = self.ada_signs[0] / self.ada_signs[1]
        step = torch.sign(r_t - cfg.ada_target) * self.ada_signs[1] * cfg.pack / cfg.ada_images
        self.ada_p.copy_((self.ada_p + step).clamp(0.0, 1.0))
        self.ada_signs.zero_()

    def r1_weight(self, batch: Batch) -> float:
        """Weight of |grad_x D(x)|^2 in this step's D loss: gamma/2 every step (r1_every=1, or
        no `batch["step"]`); with lazy regularisation (Karras et al. 2020, sec. 3.1) gamma/2 *
        r1_every on steps that are multiples of r1_every and 0 otherwise, the same penalty
        on average at 1/r1_every of the cost."""
        gamma, every = self.config.r1_gamma, self.config.r1_every
        if gamma <= 0:
            return 0.0
        if every == 1 or "step" not in batch:
            return 0.5 * gamma
        step = int(torch.as_tensor(batch["step"]).reshape(-1)[0])
        return 0.5 * gamma * every if step % every == 0 else 0.0

    def loss(self, batch: Batch, phase: str = "discriminator") -> dict[str, Tensor]:
        """Per-sample losses (B,) of `phase` ("discriminator" or "generator"); (B // pack,) packed.

        The generator phase back-propagates through D too: the engine zeroes all gradients
        before each phase and steps only `phase_parameters(phase)`. Logged: d_real, d_fake and,
        on steps where R1 is computed, r1 = mean |grad_x D(x)|^2.
        """
        check_choice("phase", phase, self.phases())
        real = batch["image"]
        b, device = real.shape[0], real.device
        labels = batch_labels(batch, self.config.num_classes, device)
        if self.ramped and self.training and "step" in batch:
            self.ramp_to(int(torch.as_tensor(batch["step"]).reshape(-1)[0]))
        z = torch.randn(b, self.config.latent_dim, device=device, dtype=real.dtype)
        hinge = self.config.variant == "hinge_sn"
        if phase == "generator":
            pairs = b // 2 if self.config.mode_seeking else 0
            if pairs and labels is not None:  # each pair shares its label (MSGAN: one condition)
                labels = torch.cat([labels[:pairs], labels[:pairs], labels[2 * pairs:]])
            images = self.generate(z, labels)
            d_fake = self.judge(self.packed(self.augment(images)), labels).float()
            loss = -d_fake if hinge else F.softplus(-d_fake)  # non-saturating: -log D(G(z))
            out = {"d_fake": d_fake.mean().detach()}
            if pairs:
                term = mode_seeking_term(images[:pairs], images[pairs:2 * pairs], z[:pairs],
                                         z[pairs:2 * pairs])
                loss = loss + self.config.mode_seeking * term  # a batch term: every sample carries it
                out["mode_seeking"] = term.detach()
            return {"loss": loss, **out}
        with torch.no_grad():
            fake = self.generate(z, labels)
        weight = self.r1_weight(batch)
        if weight > 0:  # R1 on the real images D is shown, through the augmentation (ADA, sec. 2)
            real = real.detach().requires_grad_(True)
        d_real = self.judge(self.packed(self.augment(real)), labels).float()
        d_fake = self.judge(self.packed(self.augment(fake)), labels).float()
        if hinge:
            loss = F.relu(1 - d_real) + F.relu(1 + d_fake)
        else:  # BCE with real label 1, fake label 0 (the logistic loss)
            loss = F.softplus(-d_real) + F.softplus(d_fake)
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}
        if self.config.ada_target and self.training:
            self.ada_update(d_real.detach())
            out["ada_p"] = self.ada_p.detach().clone()
        if weight > 0:  # autograd.grad, not backward: the engine still does the one backward
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            r1 = self.packed(grad).pow(2).flatten(1).sum(1)  # per decision: its images' sum
            loss = loss + weight * r1
            out["r1"] = r1.mean().detach()
        out["loss"] = loss
        return out

    def standing_statistics(self, n: int, batch: int = 64, seed: int = 0) -> None:
        """Re-estimate G's BatchNorm running statistics at its current weights ("standing
        statistics", Brock et al. 2019, BigGAN): reset them, then average (momentum None: the
        cumulative mean) over ceil(n / batch) training-mode passes of `batch` fresh latents (and
        uniform labels, conditional G) from a generator seeded with `seed`, so the statistics
        depend on the weights alone. The engine's EMA generator otherwise samples with an
        average of the raw generator's statistics, taken at other weights."""
        check_positive("n", n)
        norms = [m for m in self.generator.modules()
                 if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
        device = next(self.generator.parameters()).device
        gen = torch.Generator().manual_seed(seed)
        k, was_training = self.config.num_classes, self.generator.training
        momenta = [m.momentum for m in norms]
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None
            self.generator.train()
            with torch.no_grad():
                for _ in range(-(-n // batch)):
                    z = torch.randn(batch, self.config.latent_dim, generator=gen).to(device)
                    y = torch.randint(0, k, (batch,), generator=gen).to(device) if k else None
                    self.generator(z, y)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            self.generator.train(was_training)

    def _weights_key(self) -> list[float]:
        """A fingerprint of G's weights: one sum per parameter tensor."""
        return torch.stack([p.detach().float().sum() for p in self.generator.parameters()]).tolist()

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """`n` samples G(z), z ~ N(0, T^2 I) from `generator` at latent `temperature` T
        (`check_temperature`; 1: the training prior); `steps` is ignored (one pass). With
        `standing_stats` > 0, G's BatchNorm statistics are first re-estimated from that many
        draws (`standing_statistics`), once per set of weights."""
        check_positive("n", n)
        check_temperature(temperature)
        if self.config.standing_stats and self._standing_key != (key := self._weights_key()):
            self.standing_statistics(self.config.standing_stats)
            self._standing_key = key
        cond = check_labels(cond, self.config.num_classes, n)
        if self.config.num_classes and cond is None:
            cond = torch.randint(0, self.config.num_classes, (n,), generator=generator,
                                 device=generator.device if generator is not None else "cpu")
        device = next(self.generator.parameters()).device
        z = temperature * randn((n, self.config.latent_dim), generator, device)
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
                return -self.judge(x, None).float()
            if cond is not None:
                return -self.judge(x, cond.to(x.device)).float()
            logits = [self.judge(x, torch.full((x.shape[0],), c, device=x.device))
                      for c in range(self.config.num_classes)]
            return -torch.stack(logits).float().amax(0)
