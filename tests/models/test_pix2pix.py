"""Pix2pix: the paired translator with a conditional PatchGAN, trained by the one engine."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model, build_model_from_config, model_config_dict
from genmed.train import DictDataset, fit


def pairs(n: int = 24, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources with a dark square, targets where the square is bright ("enhanced")."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((n, 1, size, size), -0.5) + 0.05 * torch.randn((n, 1, size, size), generator=g)
    tgt = src.clone()
    for i in range(n):
        r, c = torch.randint(0, size - 10, (2,), generator=g).tolist()
        src[i, :, r:r + 10, c:c + 10] = -0.2
        tgt[i, :, r:r + 10, c:c + 10] = 0.7
    return src, tgt


def test_pix2pix_learns_the_enhancement_and_beats_the_identity() -> None:
    src, tgt = pairs()
    torch.manual_seed(0)
    model = build_model("pix2pix", size=32, channels=(8, 16, 32), disc_channels=8, disc_layers=2,
                        patch=32, residual=True)
    fit(model, DictDataset(image=src, target=tgt), steps=150, batch_size=8, seed=0, lr=2e-3)
    test_src, test_tgt = pairs(8, seed=1)
    pred = model.predict(test_src)
    identity = float((test_src - test_tgt).abs().mean())
    assert float((pred - test_tgt).abs().mean()) < 0.7 * identity  # 0.51 when written


def test_pix2pix_phases_step_disjoint_networks_and_report_per_sample_losses() -> None:
    model = build_model("pix2pix", size=32, channels=(8, 16), disc_channels=8, disc_layers=2)
    d = {id(p) for p in model.phase_parameters("discriminator")}
    g = {id(p) for p in model.phase_parameters("generator")}
    assert d and g and not d & g
    src, tgt = pairs(4)
    out = model.loss({"image": src, "target": tgt}, "discriminator")
    assert out["loss"].shape == (4,) and set(out) == {"loss", "d_real", "d_fake"}
    gen = model.loss({"image": src, "target": tgt}, "generator")
    assert torch.all(gen["loss"] >= 100 * gen["l1"])  # adversarial term is >= 0
    clone = build_model_from_config("pix2pix", model_config_dict(model)["config"])
    assert clone.config == model.config
    with pytest.raises(UserError, match="l1_weight"):
        build_model("pix2pix", size=32, l1_weight=-1.0)
