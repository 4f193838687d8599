"""GAN specifics: source labels (real 1, fake 0), R1 penalty, discriminator anomaly score."""

from __future__ import annotations

import math

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model


def _gan(**kw):
    return build_model("gan", **{**dict(data_kind="vector", size=2, hidden=16, depth=2, latent_dim=4), **kw})


def test_dcgan_losses_are_bce_with_real_one_fake_zero() -> None:
    model = _gan()
    with torch.no_grad():  # a discriminator that outputs logit 0 everywhere: D = 1/2
        model.discriminator.head.weight.zero_()
        model.discriminator.head.bias.zero_()
    batch = {"image": torch.randn(4, 2)}
    d = model(batch, "discriminator")["loss"]
    g = model(batch, "generator")["loss"]
    assert torch.allclose(d, torch.full((4,), 2 * math.log(2)))
    assert torch.allclose(g, torch.full((4,), math.log(2)))


def test_r1_penalty_adds_to_the_discriminator_loss() -> None:
    torch.manual_seed(0)
    plain = _gan(variant="hinge_sn")
    r1 = _gan(variant="hinge_sn", r1_gamma=10.0)
    r1.load_state_dict(plain.state_dict())
    batch = {"image": torch.randn(4, 2)}
    torch.manual_seed(1)
    a = plain(batch, "discriminator")
    torch.manual_seed(1)
    b = r1(batch, "discriminator")
    assert float(b["r1"]) > 0
    assert (b["loss"] > a["loss"]).all()


def test_discriminator_anomaly_score_flags_off_data_points() -> None:
    from _modelkit import train

    # Seeded: the initial weights must not depend on which tests ran before. The BCE (dcgan)
    # discriminator flags the shifted points in 6 of 6 seeds; the hinge + spectral-norm one only
    # in 2 of 6 (its Lipschitz-bounded logit need not grow off the data), so it is not tested here.
    torch.manual_seed(0)
    data = torch.randn(512, 2) * 0.2
    model = train(_gan(variant="dcgan"), data, 200, batch_size=64, lr=1e-3)
    near = torch.randn(64, 2) * 0.2
    assert model.anomaly_score(near + 4.0).mean() > model.anomaly_score(near).mean()


def test_conditional_score_uses_best_class_and_reconstruct_is_unavailable() -> None:
    model = _gan(num_classes=3)
    x = torch.randn(5, 2)
    per_class = torch.stack([model.anomaly_score(x, torch.full((5,), c)) for c in range(3)])
    assert torch.allclose(model.anomaly_score(x), per_class.amin(0))
    with pytest.raises(UserError, match="not available"):
        model.reconstruct(x)
    with pytest.raises(UserError):
        model.sample(2, cond=torch.tensor([0, 5]))


def test_pacgan_discriminator_judges_packs_of_samples() -> None:
    """pack=m (Lin et al. 2018): D sees m samples side by side, so it gives B // m decisions."""
    model = _gan(pack=4)
    assert model.discriminator.features[0][0].in_features == 4 * 2
    batch = {"image": torch.randn(10, 2)}  # 10 = 2 packs of 4 + a remainder of 2, dropped
    assert model(batch, "discriminator")["loss"].shape == (2,)
    assert model(batch, "generator")["loss"].shape == (2,)
    x = torch.arange(8.0).view(4, 2)
    assert torch.equal(model.packed(x)[0], torch.arange(8.0))  # consecutive samples, in order
    assert model.anomaly_score(torch.randn(3, 2)).shape == (3,)  # each sample packed with itself
    with pytest.raises(UserError, match="smaller than pack"):
        model(dict(image=torch.randn(3, 2)), "discriminator")


def test_pacgan_image_discriminator_stacks_channels_and_is_unconditional() -> None:
    model = build_model("gan", size=8, base_channels=4, latent_dim=4, pack=2)
    assert model(dict(image=torch.randn(4, 1, 8, 8)), "discriminator")["loss"].shape == (2,)
    with pytest.raises(UserError, match="unconditional"):
        build_model("gan", size=8, num_classes=3, pack=2)


def test_packing_lets_the_generator_cover_both_modes() -> None:
    """Two far-apart modes: with one seed and the same budget, the plain GAN puts (almost) all
    samples on one mode while the packed one covers both; a test of the mechanism, not a
    benchmark (that is `genmed eval modes`)."""
    from _modelkit import train

    g = torch.Generator().manual_seed(0)
    data = torch.randn(2048, 2, generator=g) * 0.1 + torch.tensor([[3.0, 0.0]])
    data[::2, 0] -= 6.0
    share = {}
    for pack in (1, 4):
        torch.manual_seed(0)
        model = train(_gan(pack=pack, hidden=64), data, 600, batch_size=64, lr=1e-3)
        x = model.sample(2000, generator=torch.Generator().manual_seed(1))
        share[pack] = min((x[:, 0] > 0).float().mean().item(), (x[:, 0] < 0).float().mean().item())
    assert share[4] > 0.3 and share[4] > share[1] + 0.1, share


def test_minibatch_std_feature_is_the_group_spread() -> None:
    """Karras et al. 2018: the extra feature is the mean over features of the std across each
    group (groups of gcd(B, group) samples taken i, i + B/g, ...); alike samples give ~0."""
    from genmed.models.nets import MinibatchStd

    h = torch.randn(8, 5)
    out = MinibatchStd(4)(h)
    assert out.shape == (8, 6) and torch.equal(out[:, :5], h)
    group0 = h[[0, 2, 4, 6]]  # 8 samples, 4 per group -> 2 groups, sample i in group i % 2
    assert torch.allclose(out[0, 5], group0.std(0, unbiased=False).mean(), atol=1e-5)
    assert torch.allclose(out[[0, 2, 4, 6], 5], out[0, 5].expand(4))
    alike = MinibatchStd(4)(torch.ones(8, 5))[:, 5]
    assert alike.max() < 1e-3
    assert MinibatchStd(4)(torch.randn(6, 5)).shape == (6, 6)  # gcd(6, 4) = 2 per group
    model = _gan(mbstd_group=4)
    assert model.discriminator.head.in_features == 16 + 1
    assert model(dict(image=torch.randn(8, 2)), "discriminator")["loss"].shape == (8,)
    image = build_model("gan", size=8, base_channels=4, latent_dim=4, mbstd_group=2)
    assert image(dict(image=torch.randn(4, 1, 8, 8)), "generator")["loss"].shape == (4,)
