"""Everything trainable behind one interface (`GenerativeModel`), 2D/3D images or vectors.

    model = build_model("diffusion", size=32, num_classes=3)
    losses = model(batch, phase)           # per-sample losses, phases() in order
    x = model.sample(16, cond=labels, steps=20, generator=g)
    recipe("diffusion")                    # its default training recipe; capabilities("vae")

Generative families: diffusion (also mask/source-image conditioned), GAN, VAE, latent diffusion
("ldm": a diffusion model in the latent space of a trained "autoencoder"), consistency models
("consistency": a 1-4 step student distilled from a trained diffusion or ldm model). Supervised
networks trained by the same engine: segmenter, classifier, regressor, and the domain feature
extractor of the image metrics ("extractor", supervised and/or SimCLR contrastive).
"""

from genmed.models.autoencoder import AutoencoderConfig, AutoencoderModel
from genmed.models.base import GenerativeModel, ModelConfig
from genmed.models.classifier import Classifier, ClassifierConfig, balanced_weights
from genmed.models.consistency import (ConsistencyConfig, ConsistencyModel,
                                       consistency_from_teacher)
from genmed.models.diffusion import DiffusionConfig, DiffusionModel
from genmed.models.extractor import DomainExtractor, DomainExtractorConfig
from genmed.models.gan import GANConfig, GANModel
from genmed.models.latent import (LatentCache, LatentDiffusionModel, LDMConfig, latent_diffusion,
                                  latent_scale)
from genmed.models.registry import (
    FAMILIES,
    REGISTRY,
    Capabilities,
    ModelSpec,
    Recipe,
    build_model,
    build_model_from_config,
    capabilities,
    check_request,
    config_class,
    model_config_dict,
    recipe,
    spec,
)
from genmed.models.samplers import SAMPLERS, get_sampler
from genmed.models.segmenter import Segmenter, SegmenterConfig
from genmed.models.supervised import Regressor, RegressorConfig, SupervisedModel
from genmed.models.vae import VAEConfig, VAEModel

__all__ = [
    "AutoencoderConfig",
    "AutoencoderModel",
    "FAMILIES",
    "REGISTRY",
    "SAMPLERS",
    "Capabilities",
    "Classifier",
    "ClassifierConfig",
    "ConsistencyConfig",
    "ConsistencyModel",
    "DiffusionConfig",
    "DiffusionModel",
    "DomainExtractor",
    "DomainExtractorConfig",
    "GANConfig",
    "GANModel",
    "GenerativeModel",
    "LDMConfig",
    "LatentCache",
    "LatentDiffusionModel",
    "ModelConfig",
    "ModelSpec",
    "Recipe",
    "Regressor",
    "RegressorConfig",
    "Segmenter",
    "SegmenterConfig",
    "SupervisedModel",
    "VAEConfig",
    "VAEModel",
    "balanced_weights",
    "build_model",
    "build_model_from_config",
    "capabilities",
    "check_request",
    "config_class",
    "consistency_from_teacher",
    "get_sampler",
    "latent_diffusion",
    "latent_scale",
    "model_config_dict",
    "recipe",
    "spec",
]
