"""Registry: build by name, config validation as one-line UserErrors, config round-trip."""

from __future__ import annotations

import json

import pytest

from genmed.errors import UserError
from genmed.models import (
    FAMILIES,
    build_model,
    build_model_from_config,
    capabilities,
    config_class,
    model_config_dict,
)


@pytest.mark.parametrize("family,options,needle", [
    ("flow", {}, "family='flow'"),
    ("diffusion", {"size": 30}, "size=30"),
    ("diffusion", {"schedule": "sigmoid"}, "schedule='sigmoid'"),
    ("diffusion", {"sampler": "euler"}, "sampler='euler'"),
    ("diffusion", {"norm_num_groups": 5}, "norm_num_groups=5"),
    ("diffusion", {"channels": (16, 32), "attention_levels": (False,)}, "same length"),
    ("gan", {"size": 24}, "size=24"),
    ("gan", {"variant": "wgan"}, "variant='wgan'"),
    ("vae", {"size": 20, "channels": (8, 8, 8)}, "size=20"),
    ("vae", {"beta": -1.0}, "beta=-1.0"),
    ("vae", {"data_kind": "table"}, "data_kind='table'"),
    ("vae", {"spatial_dims": 4}, "spatial_dims=4"),
    ("vae", {"unknown_option": 1}, "unknown_option"),
    ("autoencoder", {"size": 30}, "size=30"),
    ("autoencoder", {"size": 16}, "disc_layers=3"),
    ("autoencoder", {"norm_num_groups": 5}, "norm_num_groups=5"),
    ("autoencoder", {"data_kind": "vector"}, "data_kind='vector'"),
    ("ldm", {"size": 20}, "size=20"),  # 4x autoencoder, then a UNet that halves twice
    ("ldm", {"autoencoder": {"latent_channels": 0}}, "latent_channels=0"),
    ("ldm", {"autoencoder": {"size": 64}}, "set size on the ldm model"),
    ("ldm", {"autoencoder": {"width": 8}}, "unknown key(s) width"),
    ("ldm", {"sampler": "euler"}, "sampler='euler'"),
    ("ldm", {"scale_factor": 0.0}, "scale_factor=0.0"),
])
def test_bad_options_are_one_line_user_errors(family: str, options: dict, needle: str) -> None:
    with pytest.raises(UserError) as info:
        build_model(family, **options)
    message = str(info.value)
    assert needle in message and "\n" not in message


@pytest.mark.parametrize("family", list(FAMILIES))
def test_config_round_trip_through_json(family: str) -> None:
    if "vector" in capabilities(family).data_kinds:
        small = dict(hidden=8, depth=1)
        options = dict(teacher=small) if family == "consistency" else small
        model = build_model(family, data_kind="vector", size=2, **options)
    else:  # image-only families (autoencoder, ldm): their smallest 2D build
        model = build_model(family, size=32)
    saved = json.loads(json.dumps(model_config_dict(model)))
    clone = build_model_from_config(saved["family"], saved["config"])
    assert type(clone) is type(model) and clone.config == model.config
    assert isinstance(clone.config, config_class(family))


def test_foreign_config_is_refused() -> None:
    vae = build_model("vae", data_kind="vector", size=2)
    with pytest.raises(UserError):
        build_model_from_config("gan", vae.config)
    with pytest.raises(UserError):
        build_model_from_config("gan", {"latent_dim": "big"})
