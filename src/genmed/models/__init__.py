"""Three generative families behind one interface (`GenerativeModel`), 2D/3D images or vectors.

    model = build_model("diffusion", size=32, num_classes=3)
    losses = model(batch, phase)           # per-sample losses, phases() in order
    x = model.sample(16, cond=labels, steps=20, generator=g)
"""

from genmed.models.base import GenerativeModel, ModelConfig
from genmed.models.diffusion import DiffusionConfig, DiffusionModel
from genmed.models.gan import GANConfig, GANModel
from genmed.models.registry import (
    FAMILIES,
    build_model,
    build_model_from_config,
    config_class,
    model_config_dict,
)
from genmed.models.samplers import SAMPLERS, get_sampler
from genmed.models.vae import VAEConfig, VAEModel

__all__ = [
    "FAMILIES",
    "SAMPLERS",
    "DiffusionConfig",
    "DiffusionModel",
    "GANConfig",
    "GANModel",
    "GenerativeModel",
    "ModelConfig",
    "VAEConfig",
    "VAEModel",
    "build_model",
    "build_model_from_config",
    "config_class",
    "get_sampler",
    "model_config_dict",
]
