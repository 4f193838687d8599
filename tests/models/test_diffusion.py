"""Diffusion specifics: SDEdit-style reconstruction depth, samplers by name, label checks."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model


def _model(**kw):
    return build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                       norm_num_groups=4, num_train_timesteps=100, **kw)


def test_reconstruction_error_grows_with_noise_level() -> None:
    torch.manual_seed(0)
    model = _model()
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    errs = [float(model.anomaly_score(x, t, n_draws=2, generator=torch.Generator().manual_seed(0)).mean())
            for t in (0, 50, 99)]
    assert errs[0] < 0.01 < min(errs[1], errs[2])  # t=0 keeps the image, deeper noise resamples it
    with pytest.raises(UserError, match="t_start=100"):
        model.reconstruct(x, 100)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp_2m"])
def test_every_sampler_by_name(sampler: str) -> None:
    model = _model(num_classes=2)
    out = model.sample(2, cond=torch.tensor([0, 1]), steps=4, sampler=sampler, guidance=2.0,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 16, 16) and out.abs().max() <= 1


def test_label_errors() -> None:
    with pytest.raises(UserError, match="unconditional"):
        _model().sample(2, cond=torch.tensor([0, 1]))
    with pytest.raises(UserError, match="0..1"):
        _model(num_classes=2).sample(2, cond=torch.tensor([0, 2]))
    with pytest.raises(UserError, match="no 'label'"):
        _model(num_classes=2)({"image": torch.zeros(2, 1, 16, 16)})
    with pytest.raises(UserError, match="sampler='heun'"):
        _model().sample(1, sampler="heun")


@pytest.mark.parametrize("kind", ["concat", "spade"])
def test_image_condition_contract(kind: str) -> None:
    model = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                        norm_num_groups=4, num_train_timesteps=50, sample_steps=3, num_classes=2,
                        cond_channels=2, cond_kind=kind)
    cond = torch.rand(3, 2, 16, 16)
    batch = {"image": torch.rand(3, 1, 16, 16) * 2 - 1, "cond": cond, "label": torch.tensor([0, 1, 0])}
    assert model(batch)["loss"].shape == (3,)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    # guidance doubles the batch inside the denoiser: the image condition must follow
    s = model.sample(3, cond=torch.tensor([0, 1, 1]), image_cond=cond, guidance=2.0, generator=g())
    assert s.shape == (3, 1, 16, 16) and torch.isfinite(s).all()
    assert torch.equal(s, model.sample(3, cond=torch.tensor([0, 1, 1]), image_cond=cond,
                                       guidance=2.0, generator=g()))
    assert model.preview(batch, generator=g()).shape == (3, 1, 16, 16)
    with pytest.raises(UserError, match="needs an image condition"):
        model.sample(3, cond=torch.tensor([0, 1, 1]))
    with pytest.raises(UserError, match="does not fit"):
        model.sample(2, cond=torch.tensor([0, 1]), image_cond=cond)
    # no attention: fully convolutional, so a patch-trained model samples at the condition's size
    big = model.sample(3, cond=torch.tensor([0, 1, 1]), image_cond=torch.rand(3, 2, 24, 32))
    assert model.fully_convolutional and big.shape == (3, 1, 24, 32)
    with pytest.raises(UserError, match="does not fit"):
        model.sample(3, cond=torch.tensor([0, 1, 1]), image_cond=torch.rand(3, 2, 25, 32))
    attn = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, True),
                       norm_num_groups=4, num_train_timesteps=50, cond_channels=2, cond_kind=kind)
    with pytest.raises(UserError, match="does not fit"):
        attn.sample(3, image_cond=torch.rand(3, 2, 32, 32))
    plain = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                        norm_num_groups=4, num_train_timesteps=50)
    with pytest.raises(UserError, match="takes none"):
        plain.sample(3, image_cond=cond)


def test_image_conditioned_model_follows_its_condition() -> None:
    """Trained briefly to copy its condition (a bright square), its samples must overlap the
    given condition's square clearly more than another image's square."""
    from genmed.train import DictDataset, fit

    g = torch.Generator().manual_seed(0)
    x = torch.full((48, 1, 16, 16), -0.8)
    for i in range(48):
        r, c = torch.randint(0, 10, (2,), generator=g).tolist()
        x[i, :, r:r + 6, c:c + 6] = 0.8
    torch.manual_seed(0)
    model = build_model("diffusion", size=16, channels=(16, 32), attention_levels=(False, False),
                        norm_num_groups=8, num_train_timesteps=100, cond_channels=1)
    fit(model, DictDataset(image=x, cond=x), steps=150, batch_size=16, seed=0, recipe="short")
    test = x[:8]
    bright = model.sample(8, image_cond=test, steps=10, sampler="ddim",
                          generator=torch.Generator().manual_seed(1)) > 0

    def iou(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a & b).sum() / (a | b).sum())

    own, other = iou(bright, test > 0), iou(bright, test.roll(1, 0) > 0)
    assert own > 1.5 * other, (own, other)  # measured: 0.30 vs 0.13


def test_region_weighted_loss_is_the_weighted_mean_of_the_pixel_errors() -> None:
    """cond_loss_weights (0, 9): a class-1 pixel of the map counts ten times a class-0 one."""
    from genmed.models.diffusion import v_target

    torch.manual_seed(0)
    model = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                        norm_num_groups=4, num_train_timesteps=50, cond_channels=2,
                        cond_loss_weights=(0.0, 9.0), prediction="v")
    x0 = torch.rand(2, 1, 16, 16) * 2 - 1
    cond = torch.zeros(2, 2, 16, 16)
    cond[:, 0] = 1
    cond[:, :, 4:8, 4:8] = torch.tensor([0.0, 1.0])[:, None, None]  # a 4 x 4 region of class 1
    torch.manual_seed(1)
    got = model.loss({"image": x0, "cond": cond})["loss"]
    torch.manual_seed(1)  # the same t and noise, drawn in the loss's order
    t = torch.randint(0, 50, (2,))
    noise = torch.randn_like(x0)
    with torch.no_grad():
        out = model.net(model.q_sample(x0, t, noise), timesteps=t, seg=cond)
    err = (out - v_target(x0, noise, model.alpha_bar[t])).pow(2)[:, 0]
    w = torch.ones(16, 16)
    w[4:8, 4:8] = 10.0
    torch.testing.assert_close(got.detach(), (err * w).sum((1, 2)) / w.sum())
    assert not torch.allclose(got.detach(), err.mean((1, 2)))  # the plain mean differs
    with pytest.raises(UserError, match="one weight per image condition channel"):
        _model(cond_channels=2, cond_loss_weights=(1.0,))
    with pytest.raises(UserError, match="finite and >= 0"):
        _model(cond_channels=2, cond_loss_weights=(0.0, -1.0))


def test_region_loss_weights_weight_a_training_only_map_the_network_never_sees() -> None:
    """region_loss_weights (0, 9) on batch["regions"] give the loss of cond_loss_weights
    (0, 9) on the same map as an image condition, with a network that takes no condition."""
    torch.manual_seed(0)
    net = dict(size=16, channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
               num_train_timesteps=50, prediction="v")
    model = build_model("diffusion", region_loss_weights=(0.0, 9.0), **net)
    x0 = torch.rand(2, 1, 16, 16) * 2 - 1
    regions = torch.zeros(2, 2, 16, 16)
    regions[:, 0] = 1
    regions[:, :, 4:8, 4:8] = torch.tensor([0.0, 1.0])[:, None, None]
    torch.manual_seed(1)
    got = model.loss({"image": x0, "regions": regions})["loss"]
    torch.manual_seed(1)
    plain = model.loss({"image": x0, "regions": torch.cat([regions[:, :1] + regions[:, 1:], 0 * regions[:, 1:]], 1)})["loss"]
    assert float((got - plain).detach().abs().max()) > 1e-4  # the lesion's weight changes the loss
    torch.manual_seed(1)
    t = torch.randint(0, 50, (2,))
    noise = torch.randn_like(x0)
    from genmed.models.diffusion import v_target

    with torch.no_grad():
        out = model.net(model.q_sample(x0, t, noise), timesteps=t)
    err = (out - v_target(x0, noise, model.alpha_bar[t])).pow(2)[:, 0]
    w = torch.ones(16, 16)
    w[4:8, 4:8] = 10.0
    torch.testing.assert_close(got.detach(), (err * w).sum((1, 2)) / w.sum())
    torch.testing.assert_close(plain.detach(), err.mean((1, 2)))
    with pytest.raises(UserError, match=r"needs a region map batch\['regions'\] of shape \(2, 2, 16, 16\); got none"):
        model.loss({"image": x0})
    with pytest.raises(UserError, match="not both"):
        build_model("diffusion", cond_channels=2, cond_loss_weights=(0.0, 1.0),
                    region_loss_weights=(0.0, 1.0), **net)
    with pytest.raises(UserError, match="region_loss_weights=.* must be finite and >= 0"):
        build_model("diffusion", region_loss_weights=(0.0, -1.0), **net)
