"""The registry of everything trainable: name -> config, model class, training recipes and
capabilities. Callers ask it; they never guess.

    build_model("diffusion", size=32, num_classes=3, sampler="dpmpp_2m")
    recipe("gan")                        # Recipe(lr=2e-4, betas=(0.5, 0.999), ...)
    recipe("diffusion", "short")         # a named preset used by the applications
    recipe("gan", variant="resnet_r1")   # a variant's own preset stands in for "default"
    check_request("vae", cond="label")   # UserError before any training: the VAE takes no labels

`build_model` validates options through the model's frozen config dataclass (unknown keys, bad
`Literal` values and sizes the network cannot downsample are `UserError`s). The engine stores
`to_dict(model.config)` next to a checkpoint and calls `build_model_from_config(model.family,
that_dict)` to rebuild it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from genmed.config import from_dict, to_dict
from genmed.errors import UserError, check_choice
from genmed.models.autoencoder import AutoencoderConfig, AutoencoderModel
from genmed.models.base import GenerativeModel, ModelConfig
from genmed.models.classifier import Classifier, ClassifierConfig
from genmed.models.consistency import ConsistencyConfig, ConsistencyModel
from genmed.models.diffusion import DiffusionConfig, DiffusionModel
from genmed.models.extractor import DomainExtractor, DomainExtractorConfig
from genmed.models.gan import GANConfig, GANModel
from genmed.models.latent import LatentDiffusionModel, LDMConfig
from genmed.models.pix2pix import Pix2Pix, Pix2PixConfig
from genmed.models.samplers import SAMPLERS
from genmed.models.segmenter import Segmenter, SegmenterConfig
from genmed.models.supervised import Regressor, RegressorConfig
from genmed.models.vae import VAEConfig, VAEModel


@dataclass(frozen=True)
class Recipe:
    """How a model is trained by default: AdamW settings, LR schedule, weight EMA."""

    lr: float  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    ema_decay: float = 0.999  # EMA of weights used for sampling/prediction (0: off)
    warmup: int = 100  # linear LR warm-up steps, at most `warmup_fraction` of the run
    warmup_fraction: float = 0.2  # cap on the warm-up as a fraction of the run's steps
    grad_clip: float = 1.0  # max global gradient norm per phase (0: off)
    schedule: str = "cosine"  # "cosine" decay to 0 after warm-up, or "constant"

    def warmup_steps(self, steps: int) -> int:
        """Warm-up steps of a run of `steps` optimiser steps."""
        return min(self.warmup, int(steps * self.warmup_fraction + 1e-9))

    def train_options(self, steps: int) -> dict[str, Any]:
        """The `TrainConfig` fields this recipe sets for a run of `steps` steps."""
        return dict(lr=self.lr, betas=self.betas, weight_decay=self.weight_decay,
                    ema_decay=self.ema_decay, warmup=self.warmup_steps(steps),
                    grad_clip=self.grad_clip, schedule=self.schedule)


@dataclass(frozen=True)
class Capabilities:
    """What a model can be asked to do."""

    conditioning: tuple[str, ...] = ("none",)  # "none", "label" (classes), "image" (mask/source)
    samplers: tuple[str, ...] = ()  # sampler names `sample(sampler=...)` takes (() : none)
    guidance: bool = False  # classifier-free guidance scale `sample(guidance=...)`
    generative: bool = True  # samples images (False: a supervised network that predicts)
    data_kinds: tuple[str, ...] = ("image", "vector")  # the `data_kind`s its config accepts
    builds_on: str | None = None  # a family trained first whose weights it embeds (stage one)
    few_step: bool = False  # samples well in 1-4 steps (a distilled student)
    temperature: bool = False  # latent temperature `sample(temperature=...)`: z ~ N(0, T^2 I)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry."""

    config: type[ModelConfig]
    model: type[GenerativeModel]
    capabilities: Capabilities
    recipes: Mapping[str, Recipe] = field(default_factory=dict)  # "default" plus named presets


_ADAM_GAN = (0.5, 0.999)  # DCGAN's Adam beta1 = 0.5 (Radford et al. 2016, sec. 4)
_SHORT = dict(warmup=20, warmup_fraction=0.1)  # brief in-memory runs of the applications
_RESNET_R1 = Recipe(lr=2e-4, betas=(0.0, 0.99), ema_decay=0.5 ** (32 / 10_000), warmup=0,
                    grad_clip=0.0, schedule="constant")  # the stabilised GAN's: see its entry below
REGISTRY: dict[str, ModelSpec] = {
    "diffusion": ModelSpec(
        DiffusionConfig, DiffusionModel,
        Capabilities(conditioning=("none", "label", "image"), samplers=SAMPLERS, guidance=True),
        {"default": Recipe(lr=2e-4),
         # family comparison and demo: short runs at 32 px (docs/evaluation.md). Best of the
         # recipe sweep at 12,000 images (families_sweep.json); at 48,000, 2e-3 beat it on one
         # seed (families_sweep_48k.json: FID 6.4 vs 7.8), not yet checked on the five seeds
         "compare": Recipe(lr=1e-3, ema_decay=0.995, warmup_fraction=0.1),
         # applications (anomaly, denoise, translate, mask-conditioned generation)
         "short": Recipe(lr=2e-3, **_SHORT),
         # 3-D volumes application (apps/volumes3d.py)
         "volume": Recipe(lr=2e-3, warmup=50, warmup_fraction=0.1),
         # class-conditional generators of the augmentation study
         "augment": Recipe(lr=2e-4, ema_decay=0.995, warmup_fraction=0.1),
         # 2-D mixtures of the mode-collapse benchmark (MLP backbones)
         "toy": Recipe(lr=1e-3)}),
    "gan": ModelSpec(
        GANConfig, GANModel, Capabilities(conditioning=("none", "label"), temperature=True),
        {"default": Recipe(lr=2e-4, betas=_ADAM_GAN),
         "compare": Recipe(lr=2e-4, betas=_ADAM_GAN, ema_decay=0.995, warmup_fraction=0.1),
         "short": Recipe(lr=2e-4, betas=_ADAM_GAN, ema_decay=0.0, **_SHORT),
         "augment": Recipe(lr=2e-4, betas=_ADAM_GAN, ema_decay=0.995, warmup_fraction=0.1),
         # raw generator sampled: averaging a G that still moves between modes blurs it
         "toy": Recipe(lr=1e-3, betas=_ADAM_GAN, ema_decay=0.0),
         # variant="resnet_r1" (the "default" of that variant): StyleGAN2's Adam betas (0, 0.99),
         # constant LR, no warm-up, no clipping (Karras et al. 2020, appendix B); G EMA with
         # StyleGAN2-ADA's half-life of 10k images at batch 32 (its "auto" config). lr 2e-4
         # (SNGAN/BigGAN, Miyato et al. 2018; Brock et al. 2019) instead of StyleGAN2's 2.5e-3,
         # which assumes equalised learning rates (per-layer weight scaling) these nets lack
         "resnet_r1": _RESNET_R1,
         # the same in a comparison, at BigGAN's rates (Brock et al. 2019): G 5e-5, D 4x that (the
         # comparison's `d_lr_scale`, genmed.compare.config.NETWORKS). From 24,000 training images on
         # it beats one rate of 2e-4 on FID, precision, recall and coverage (64 px, 5 seeds), and
         # at 48,000 it meets issue 14's targets at equal budget; at 12,000 one rate is better
         # (benchmarks/results/gan_budget_slow_g.json, families_48k.json). A comparison's default
         # budget is 40,000 images
         "resnet_r1:compare": replace(_RESNET_R1, lr=5e-5)}),
    "vae": ModelSpec(
        VAEConfig, VAEModel, Capabilities(conditioning=("none",)),
        {"default": Recipe(lr=2e-4),
         # lr from the comparison's recipe sweep (benchmarks/results/families_sweep.json: the
         # previous 1e-3 x 0.5 / 1 / 2 at 64 px and 12,000 images gave FID 31.6 / 26.6 / 15.7;
         # at 48,000 images 2e-3 x 0.5 / 1 / 2 / 4 gave 2.65 / 2.44 / 2.30 / 2.29, a tie)
         "compare": Recipe(lr=2e-3, ema_decay=0.995, warmup_fraction=0.1),
         "short": Recipe(lr=1e-3, ema_decay=0.0, **_SHORT),
         "augment": Recipe(lr=1e-3, ema_decay=0.995, warmup_fraction=0.1),
         "toy": Recipe(lr=1e-3)}),
    # stage one of latent diffusion: MONAI 2d_ldm tutorial, Adam lr 1e-4, constant, no EMA
    # (its discriminator's 5e-4 is not copied: the autoencoder's phases share one learning rate,
    # as every benchmark of it was measured; `GenerativeModel.phase_lr_scale` could part them)
    "autoencoder": ModelSpec(
        AutoencoderConfig, AutoencoderModel, Capabilities(data_kinds=("image",)),
        {"default": Recipe(lr=1e-4, ema_decay=0.0, warmup=0, grad_clip=0.0, schedule="constant"),
         # a first stage of ~1,000 steps for a small set (the 256-px autoencoder benchmark's lr)
         "augment": Recipe(lr=2e-4, ema_decay=0.0, warmup=0, grad_clip=0.0, schedule="constant"),
         "short": Recipe(lr=1e-3, ema_decay=0.0, **_SHORT)}),
    # stage two: the diffusion UNet on frozen latents (MONAI 2d_ldm tutorial: Adam lr 1e-4)
    "ldm": ModelSpec(
        LDMConfig, LatentDiffusionModel,
        Capabilities(conditioning=("none", "label"), samplers=SAMPLERS, guidance=True,
                     data_kinds=("image",), builds_on="autoencoder"),
        {"default": Recipe(lr=1e-4),
         "augment": Recipe(lr=2e-4, ema_decay=0.995, warmup_fraction=0.1),  # as pixel diffusion's
         "short": Recipe(lr=2e-3, **_SHORT)}),
    # distilled from a trained diffusion or ldm run (`genmed distill`). Song et al. 2023,
    # Table 3, CD: Adam, constant LR (4e-4 at batch 512 on CIFAR-10, 8e-6 at 2048 on
    # ImageNet 64), weight EMA 0.9999; 1e-4 sits between for our batches of 8-64 and a
    # student that starts at the teacher's weights; EMA 0.999 (warmed up) for runs of a few
    # thousand steps
    "consistency": ModelSpec(
        ConsistencyConfig, ConsistencyModel,
        Capabilities(conditioning=("none", "label", "image"), samplers=("consistency",),
                     builds_on="diffusion", few_step=True),
        {"default": Recipe(lr=1e-4, warmup=0, schedule="constant"),
         # vector toys and tests (MLP students)
         "toy": Recipe(lr=1e-3, warmup=0, schedule="constant")}),
    "segmenter": ModelSpec(
        SegmenterConfig, Segmenter, Capabilities(generative=False),
        {"default": Recipe(lr=3e-3, ema_decay=0.0, warmup=0, grad_clip=0.0),
         "short": Recipe(lr=2e-3, ema_decay=0.0, **_SHORT)}),
    "classifier": ModelSpec(
        ClassifierConfig, Classifier, Capabilities(generative=False),
        {"default": Recipe(lr=3e-3, weight_decay=1e-4, ema_decay=0.0, warmup=0, grad_clip=0.0),
         "short": Recipe(lr=2e-3, ema_decay=0.0, **_SHORT)}),
    # domain feature extractor for FID/PRDC (genmed eval train-extractor --data ...)
    "extractor": ModelSpec(
        DomainExtractorConfig, DomainExtractor, Capabilities(generative=False, data_kinds=("image",)),
        {"default": Recipe(lr=2e-3, weight_decay=1e-4, ema_decay=0.0, warmup=100, warmup_fraction=0.1),
         "short": Recipe(lr=2e-3, weight_decay=1e-4, ema_decay=0.0, **_SHORT)}),
    "regressor": ModelSpec(
        RegressorConfig, Regressor, Capabilities(generative=False),
        {"default": Recipe(lr=2e-3, ema_decay=0.0, **_SHORT),
         "short": Recipe(lr=2e-3, ema_decay=0.0, **_SHORT)}),
    # paired translation with a PatchGAN: the paper's Adam lr 2e-4, betas (0.5, 0.999), no EMA
    "pix2pix": ModelSpec(
        Pix2PixConfig, Pix2Pix, Capabilities(generative=False, data_kinds=("image",)),
        {"default": Recipe(lr=2e-4, betas=_ADAM_GAN, ema_decay=0.0, warmup=0, grad_clip=0.0,
                           schedule="constant"),
         "short": Recipe(lr=2e-4, betas=_ADAM_GAN, ema_decay=0.0, **_SHORT)}),
}
# The generative families (`genmed train --family`, the comparison): (config, model class).
FAMILIES: dict[str, tuple[type[ModelConfig], type[GenerativeModel]]] = {
    name: (s.config, s.model) for name, s in REGISTRY.items() if s.capabilities.generative}


def spec(name: str) -> ModelSpec:
    """The registry entry `name`; UserError naming the known ones otherwise."""
    return REGISTRY[check_choice("family", name, tuple(REGISTRY))]


def config_class(family: str) -> type[ModelConfig]:
    """The frozen config dataclass of `family`; UserError for an unknown name."""
    return spec(family).config


def capabilities(name: str) -> Capabilities:
    return spec(name).capabilities


def recipe(name: str, preset: str = "default", variant: str | None = None) -> Recipe:
    """The training recipe `preset` of model `name` ("default" when it has no such preset).

    A model `variant` (e.g. the GAN's "resnet_r1") that has a preset of its own name takes it in
    place of "default" and of "compare" (a comparison trains each recipe as its authors tuned
    it, issue 14), and "<variant>:<preset>" where it has one in place of `preset` (the
    stabilised GAN's "resnet_r1:compare"); other named presets ("toy", "short", ...) stay as asked."""
    recipes = spec(name).recipes
    if variant is not None and f"{variant}:{preset}" in recipes:
        return recipes[f"{variant}:{preset}"]
    if preset in ("default", "compare") and variant in recipes:
        preset = variant
    return recipes.get(preset, recipes["default"])


def check_request(name: str, *, cond: str = "none", sampler: str | None = None,
                  guidance: float | None = None, temperature: float | None = None) -> None:
    """UserError, before any work, for something model `name` cannot do."""
    caps = capabilities(name)
    if cond not in caps.conditioning:
        raise UserError(f"the {name} model cannot be conditioned on {cond!r}; it takes: "
                        f"{', '.join(caps.conditioning)}")
    if sampler is not None:
        if not caps.samplers:
            raise UserError(f"the {name} model samples in one pass: it takes no sampler")
        check_choice("sampler", sampler, caps.samplers)
    if guidance is not None and not caps.guidance:
        raise UserError(f"the {name} model takes no guidance scale")
    if temperature is not None and not caps.temperature:
        raise UserError(f"the {name} model takes no latent temperature (GANs do)")


def build_model(family: str, *, spatial_dims: int = 2, in_channels: int = 1, size: int = 32,
                num_classes: int = 0, data_kind: str = "image",
                **family_options: Any) -> GenerativeModel:
    """A new, randomly initialised model `family` (any registry name).

    `data_kind="image"`: (B, in_channels, *[size]*spatial_dims) in [-1, 1] on MONAI/conv nets;
    `"vector"`: (B, size) on MLPs. `family_options` are the model config's other fields.
    """
    if num_classes and "label" not in capabilities(family).conditioning:
        raise UserError(f"the {family} model takes no class labels (num_classes={num_classes})")
    data = dict(spatial_dims=spatial_dims, in_channels=in_channels, size=size,
                num_classes=num_classes, data_kind=data_kind, **family_options)
    return _build(family, data)


def build_model_from_config(family: str, cfg: dict[str, Any] | ModelConfig) -> GenerativeModel:
    """Rebuild a model from `to_dict(model.config)` (or the config dataclass itself). A saved
    dict from before a field existed gets the config's `saved_defaults` for it (the network
    that run trained), not the field's current default."""
    cls = config_class(family)
    if isinstance(cfg, ModelConfig):
        if not isinstance(cfg, cls):
            raise UserError(f"config {type(cfg).__name__} does not belong to model {family!r}")
        cfg = to_dict(cfg)
    return _build(family, {**cls.saved_defaults, **dict(cfg)})


def _build(family: str, data: dict[str, Any]) -> GenerativeModel:
    config = from_dict(config_class(family), data, where=f"{family} model config")
    return REGISTRY[family].model(config)


def model_config_dict(model: GenerativeModel) -> dict[str, Any]:
    """{"family": ..., "config": {...}}: everything needed to rebuild `model` (JSON-safe)."""
    return {"family": model.family, "config": to_dict(model.config)}

