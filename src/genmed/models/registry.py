"""Family registry: build a model by name, rebuild it from its saved config.

`build_model("diffusion", size=32, num_classes=3, sampler="dpmpp_2m")` validates the options
through the family's frozen config dataclass (unknown keys, bad `Literal` values and sizes the
network cannot downsample are `UserError`s). The engine stores `to_dict(model.config)` next to
a checkpoint and calls `build_model_from_config(model.family, that_dict)` to rebuild it.
"""

from __future__ import annotations

from typing import Any

from genmed.config import from_dict, to_dict
from genmed.errors import UserError, check_choice
from genmed.models.base import GenerativeModel, ModelConfig
from genmed.models.diffusion import DiffusionConfig, DiffusionModel
from genmed.models.gan import GANConfig, GANModel
from genmed.models.vae import VAEConfig, VAEModel

# family name -> (config dataclass, model class); a new family is one line here.
FAMILIES: dict[str, tuple[type[ModelConfig], type[GenerativeModel]]] = {
    "diffusion": (DiffusionConfig, DiffusionModel),
    "gan": (GANConfig, GANModel),
    "vae": (VAEConfig, VAEModel),
}


def config_class(family: str) -> type[ModelConfig]:
    """The frozen config dataclass of `family`; UserError for an unknown family."""
    return FAMILIES[check_choice("family", family, tuple(FAMILIES))][0]


def build_model(family: str, *, spatial_dims: int = 2, in_channels: int = 1, size: int = 32,
                num_classes: int = 0, data_kind: str = "image",
                **family_options: Any) -> GenerativeModel:
    """A new, randomly initialised model of `family` ("diffusion", "gan", "vae").

    `data_kind="image"`: (B, in_channels, *[size]*spatial_dims) in [-1, 1] on MONAI/conv nets;
    `"vector"`: (B, size) on MLPs. `family_options` are the family config's other fields.
    """
    data = dict(spatial_dims=spatial_dims, in_channels=in_channels, size=size,
                num_classes=num_classes, data_kind=data_kind, **family_options)
    return build_model_from_config(family, data)


def build_model_from_config(family: str, cfg: dict[str, Any] | ModelConfig) -> GenerativeModel:
    """Rebuild a model from `to_dict(model.config)` (or the config dataclass itself)."""
    cls = config_class(family)
    if isinstance(cfg, ModelConfig):
        if not isinstance(cfg, cls):
            raise UserError(f"config {type(cfg).__name__} does not belong to family {family!r}")
        cfg = to_dict(cfg)
    config = from_dict(cls, dict(cfg), where=f"{family} model config")
    return FAMILIES[family][1](config)


def model_config_dict(model: GenerativeModel) -> dict[str, Any]:
    """{"family": ..., "config": {...}}: everything needed to rebuild `model` (JSON-safe)."""
    return {"family": model.family, "config": to_dict(model.config)}
