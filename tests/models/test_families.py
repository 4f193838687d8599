"""One shared contract test every family passes (2D, 3D and vector data)."""

from __future__ import annotations

import pytest
import torch

from genmed.config import to_dict
from genmed.models import (
    FAMILIES,
    GenerativeModel,
    build_model,
    build_model_from_config,
    capabilities,
    model_config_dict,
)

TINY = {
    "diffusion": dict(channels=(8, 16), attention_levels=(False, True), norm_num_groups=4,
                      num_train_timesteps=50, sample_steps=3),
    "gan": dict(base_channels=4, latent_dim=8),
    "vae": dict(channels=(4, 8), latent_dim=4, num_res_units=0),
    # both phases (patch discriminator on): 16 px takes two discriminator layers
    "autoencoder": dict(channels=(4, 8), norm_num_groups=4, latent_channels=2, disc_channels=4,
                        disc_layers=2),
    # latents 8 px (2x downsampling), a 2-level latent UNet
    "ldm": dict(autoencoder=dict(channels=(4, 4), norm_num_groups=4, latent_channels=2),
                channels=(8, 16), attention_levels=(False, True), norm_num_groups=4,
                num_train_timesteps=50, sample_steps=3),
}
# a consistency student has its teacher's architecture: the diffusion options, as teacher options
TINY["consistency"] = dict(teacher=TINY["diffusion"], num_scales=10)
VECTOR = dict(hidden=16, depth=2)
VECTOR_OPTIONS = {"consistency": dict(teacher=VECTOR, num_scales=10)}
CASES = [(fam, dims) for fam in FAMILIES for dims in ("2d", "3d", "vector")
         if dims != "vector" or "vector" in capabilities(fam).data_kinds]


def make(family: str, dims: str, num_classes: int = 0, **extra) -> GenerativeModel:
    if dims == "vector":
        return build_model(family, data_kind="vector", size=2, num_classes=num_classes,
                           **VECTOR_OPTIONS.get(family, VECTOR), **extra)
    spatial, size = (2, 16) if dims == "2d" else (3, 16)
    return build_model(family, spatial_dims=spatial, size=size, num_classes=num_classes,
                       **TINY[family], **extra)


def batch_for(model: GenerativeModel, b: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand((b, *model.config.sample_shape), generator=g) * 2 - 1
    return {"image": x, "label": torch.arange(b) % max(model.config.num_classes, 1)}


@pytest.mark.parametrize("family,dims", CASES)
def test_family_contract(family: str, dims: str) -> None:
    num_classes = 2 if "label" in capabilities(family).conditioning else 0
    model = make(family, dims, num_classes)
    batch = batch_for(model)
    # losses: per-sample (B,), finite, differentiable for every phase
    for phase in model.phases():
        out = model(batch, phase)
        assert out["loss"].shape == (3,) and torch.isfinite(out["loss"]).all()
        model.zero_grad()
        out["loss"].mean().backward()
        grads = [p.grad for p in model.phase_parameters(phase)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # samples: shape, range for images, reproducible from the generator
    cond = torch.tensor([0, 1]) if num_classes else None
    s1 = model.sample(2, cond=cond, generator=torch.Generator().manual_seed(3))
    s2 = model.sample(2, cond=cond, generator=torch.Generator().manual_seed(3))
    assert s1.shape == (2, *model.config.sample_shape)
    assert torch.equal(s1, s2) and torch.isfinite(s1).all()
    if dims != "vector":
        assert s1.min() >= -1 and s1.max() <= 1
    # state_dict + config round-trip rebuilds an identical model
    saved = model_config_dict(model)
    clone = build_model_from_config(saved["family"], saved["config"])
    clone.load_state_dict(model.state_dict())
    assert to_dict(clone.config) == to_dict(model.config)
    s3 = clone.sample(2, cond=cond, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(s1, s3)
    # anomaly score: one finite value per image
    score = model.anomaly_score(batch["image"], generator=torch.Generator().manual_seed(0))
    assert score.shape == (3,) and torch.isfinite(score).all()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_phases_partition_parameters(family: str) -> None:
    model = make(family, "2d")
    groups = [set(map(id, model.phase_parameters(p))) for p in model.phases()]
    every = {id(p) for p in model.parameters() if p.requires_grad}  # not a frozen stage
    assert set().union(*groups) == every
    if len(groups) > 1:
        assert model.phases() == ("discriminator", "generator")
        assert not groups[0] & groups[1]


@pytest.mark.parametrize("family", ["diffusion", "vae", "autoencoder", "ldm"])
def test_reconstruct_keeps_shape(family: str) -> None:
    model = make(family, "2d")
    x = batch_for(model)["image"]
    assert model.reconstruct(x, generator=torch.Generator().manual_seed(0)).shape == x.shape
