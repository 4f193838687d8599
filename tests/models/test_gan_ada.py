"""Adaptive discriminator augmentation (ADA, Karras et al. 2020b): the per-op probability of
DiffAugment, and the overfitting heuristic that moves it."""

from __future__ import annotations

import pytest
import torch

from genmed.data.augment import diff_augment
from genmed.errors import UserError
from genmed.models import build_model

POLICY = "color,translation,cutout"


def test_probability_zero_is_the_identity_and_one_is_diffaugment():
    x = torch.randn(16, 1, 16, 16)
    assert torch.equal(diff_augment(x, POLICY, torch.Generator().manual_seed(0), p=0.0), x)
    full = diff_augment(x, POLICY, torch.Generator().manual_seed(0))
    assert torch.equal(diff_augment(x, POLICY, torch.Generator().manual_seed(0), p=1.0), full)
    with pytest.raises(UserError, match="p=1.5"):
        diff_augment(x, POLICY, p=1.5)


def test_each_op_reaches_a_share_p_of_the_samples_differentiably():
    x = torch.randn(2000, 1, 8, 8, requires_grad=True)
    y = diff_augment(x, "color", torch.Generator().manual_seed(1), p=0.3)
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    assert 0.26 < changed.float().mean() < 0.34
    y.sum().backward()
    assert x.grad is not None and torch.equal(x.grad[~changed], torch.ones_like(x.grad[~changed]))


def ada_gan(**kw):
    return build_model("gan", size=32, variant="resnet_r1", ada_target=0.6, ada_images=64, ada_interval=2, **kw)


def test_p_rises_while_d_is_sure_of_the_reals_and_falls_back_to_zero():
    model = ada_gan()
    assert float(model.ada_p) == 0.0  # ADA starts without augmentation
    sure = torch.full((8,), 3.0)  # r_t = 1 > 0.6
    for _ in range(4):  # two updates of 2 x 8 images each: p = 2 * 16 / 64
        model.ada_update(sure)
    assert float(model.ada_p) == pytest.approx(0.5)
    unsure = torch.tensor([1.0, -1.0] * 4)  # r_t = 0 < 0.6
    for _ in range(10):
        model.ada_update(unsure)
    assert float(model.ada_p) == 0.0  # clamped
    for _ in range(20):
        model.ada_update(sure)
    assert float(model.ada_p) == 1.0


def test_training_steps_of_d_move_p_and_sampling_does_not():
    model = ada_gan()
    batch = {"image": torch.rand(8, 1, 32, 32) * 2 - 1}
    model.train()
    model.loss(batch, "discriminator")
    assert model.ada_signs.tolist()[1:] == [8, 1]  # 8 real decisions gathered
    out = model.loss(batch, "discriminator")
    assert "ada_p" in out and float(model.ada_signs[2]) == 0  # the second call updated p and reset
    before = model.state_dict()["ada_p"].clone()
    model.eval()
    model.loss(batch, "discriminator")
    model.sample(2)
    assert torch.equal(model.ada_p, before) and float(model.ada_signs[2]) == 0
    plain = build_model("gan", size=32, variant="resnet_r1")
    assert "ada_p" not in plain.state_dict()  # runs saved without ADA load as before


def test_bad_ada_settings_are_user_errors():
    with pytest.raises(UserError, match="ada_target"):
        build_model("gan", size=32, variant="resnet_r1", ada_target=1.0)
    with pytest.raises(UserError, match="set diffaug too"):
        build_model("gan", size=32, variant="resnet_r1", ada_target=0.6, diffaug="")
    with pytest.raises(UserError, match="ada_interval"):
        build_model("gan", size=32, variant="resnet_r1", ada_target=0.6, ada_interval=0)
