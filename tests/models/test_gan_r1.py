"""The stabilised GAN pieces: DiffAugment on real and generated batches, R1 against its closed
form, lazy R1, the minibatch-std channel, residual nets at every size, the variant's recipe, and
a short training that must beat its own initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genmed.errors import UserError
from genmed.models import build_model, recipe


class Quadratic(nn.Module):
    """Toy discriminator D(x) = x^T A x + w.x: grad_x D = (A + A^T) x + w, known exactly."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(dim, dim, generator=g))
        self.w = nn.Parameter(torch.randn(dim, generator=g))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("bi,ij,bj->b", x, self.a, x) + x @ self.w


def _toy(**kw):
    torch.manual_seed(0)  # the same generator weights in every toy
    model = build_model("gan", **{**dict(data_kind="vector", size=3, hidden=8, depth=1,
                                         latent_dim=2), **kw})
    model.discriminator = Quadratic(3)
    return model


def _d_loss(model, x, step=None, seed=1):
    batch = {"image": x} if step is None else {"image": x, "step": torch.tensor(step)}
    torch.manual_seed(seed)  # the same z for every call
    return model(batch, "discriminator")


def test_r1_equals_its_closed_form_on_a_quadratic_discriminator() -> None:
    """Mescheder et al. 2018, eq. 9: R1 = gamma/2 |grad_x D(x)|^2 per real sample; here
    |(A + A^T) x + w|^2, and its gradient reaches D's weights (create_graph). x is seeded:
    the global stream's draw depends on the tests run before, and one such draw made the fp32
    difference of the two losses miss rtol 1e-5."""
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    plain, r1 = _toy(r1_gamma=0.0), _toy(r1_gamma=3.0)
    d = plain.discriminator = r1.discriminator  # one D: the difference is the penalty alone
    exact = ((x @ (d.a + d.a.T).T) + d.w).pow(2).sum(1).detach()
    out = _d_loss(r1, x)
    assert torch.allclose(out["loss"] - _d_loss(plain, x)["loss"], 1.5 * exact, rtol=1e-5)
    assert torch.allclose(out["r1"], exact.mean())
    r1.zero_grad()
    (out["loss"] - _d_loss(plain, x)["loss"]).sum().backward()  # d/dw of 1.5 |A2 x + w|^2
    grad_w = 3.0 * ((x @ (d.a + d.a.T).T) + d.w).sum(0)
    assert torch.allclose(r1.discriminator.w.grad, grad_w.detach(), rtol=1e-5)


def test_linear_discriminator_r1_is_the_squared_weight_norm() -> None:
    model = _toy(r1_gamma=2.0)
    with torch.no_grad():
        model.discriminator.a.zero_()  # D(x) = w.x: R1 = |w|^2 for every sample
    out = _d_loss(model, torch.randn(4, 3))
    assert torch.allclose(out["r1"], model.discriminator.w.pow(2).sum())


def test_lazy_r1_every_k_steps_weighted_by_k() -> None:
    """Karras et al. 2020 (StyleGAN2), sec. 3.1: the penalty on steps 0, k, 2k, ... only,
    multiplied by k; without a step (a direct call) it is applied every time, unweighted."""
    x = torch.randn(4, 3)
    plain, lazy = _toy(r1_gamma=2.0, r1_every=1), _toy(r1_gamma=2.0, r1_every=4)
    base = _d_loss(_toy(r1_gamma=0.0), x)["loss"]
    every = _d_loss(plain, x)["loss"] - base
    for step in range(9):
        out = _d_loss(lazy, x, step)
        extra = out["loss"] - base
        if step % 4 == 0:
            assert torch.allclose(extra, 4 * every, rtol=1e-5) and "r1" in out
        else:
            assert torch.equal(extra, torch.zeros(4)) and "r1" not in out
    assert torch.allclose(_d_loss(lazy, x)["loss"] - base, every, rtol=1e-5)


def test_diffaug_sees_real_and_fake_with_one_policy_and_passes_gradients(monkeypatch) -> None:
    from genmed.models import gan

    calls = []

    def spy(x, policy, generator=None):
        calls.append((x, policy))
        return real_diffaug(x, policy, generator)

    real_diffaug = gan.diff_augment
    monkeypatch.setattr(gan, "diff_augment", spy)
    model = build_model("gan", variant="resnet_r1", size=16, base_channels=4, max_channels=8,
                        latent_dim=8, r1_gamma=0.0)
    assert model.config.diffaug == "color,translation,cutout"
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    model({"image": x}, "discriminator")
    assert len(calls) == 2 and {p for _, p in calls} == {"color,translation,cutout"}
    assert torch.equal(calls[0][0], x)  # the real batch
    assert not torch.equal(calls[1][0], x) and calls[1][0].shape == x.shape  # the generated one
    calls.clear()
    model.zero_grad()
    model({"image": x}, "generator")["loss"].sum().backward()
    assert len(calls) == 1 and calls[0][0].requires_grad  # G(z), through to the generator
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.out.parameters())
    no_aug = build_model("gan", variant="resnet_r1", size=16, base_channels=4, max_channels=8,
                         diffaug="")
    calls.clear()
    no_aug({"image": x}, "discriminator")
    assert calls == []


def test_minibatch_std_channel_on_feature_maps() -> None:
    """Karras et al. 2018: one extra channel, constant over positions, = the mean over
    channels and positions of the std across the sample's group."""
    from genmed.models.nets import MinibatchStd

    h = torch.randn(8, 3, 4, 4)
    out = MinibatchStd(4)(h)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], h)
    group0 = h[[0, 2, 4, 6]]
    assert torch.allclose(out[0, 3], group0.std(0, unbiased=False).mean().expand(4, 4), atol=1e-5)
    model = build_model("gan", variant="resnet_r1", size=16, base_channels=4, max_channels=8)
    seen = {}
    model.discriminator.conv.register_forward_hook(lambda m, i, o: seen.update(h=i[0]))
    model.anomaly_score(torch.randn(8, 1, 16, 16))
    assert seen["h"].shape[1] == 8 + 1  # width 8 at the 4-px base, plus the std channel


@pytest.mark.parametrize("size,blocks", [(32, 3), (64, 4), (96, 4), (128, 5)])
def test_residual_nets_fit_every_size_with_labels(size: int, blocks: int) -> None:
    model = build_model("gan", variant="resnet_r1", size=size, num_classes=3, base_channels=4,
                        max_channels=8, latent_dim=8)
    assert len(model.generator.blocks) == blocks == len(model.discriminator.blocks)
    widths = [b.conv2.out_channels for b in model.discriminator.blocks]
    assert widths == [min(4 * 2 ** (i + 1), 8) for i in range(blocks)]  # capped at max_channels
    labels = torch.tensor([0, 1, 2, 1])
    x = model.sample(4, cond=labels, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, size, size) and x.abs().max() <= 1
    assert model.discriminator(x, labels).shape == (4,)
    batch = {"image": x, "label": labels, "step": torch.tensor(0)}
    for phase in model.phases():
        assert model(batch, phase)["loss"].shape == (4,)


def test_residual_nets_3d_and_refused_sizes() -> None:
    model = build_model("gan", spatial_dims=3, variant="resnet_r1", size=16, base_channels=4,
                        max_channels=4, latent_dim=8)
    assert model.sample(2).shape == (2, 1, 16, 16, 16)
    assert model({"image": torch.rand(2, 1, 16, 16, 16)}, "discriminator")["loss"].shape == (2,)
    with pytest.raises(UserError, match="b \\* 2\\*\\*k"):
        build_model("gan", variant="resnet_r1", size=100)
    with pytest.raises(UserError, match="vector data"):
        build_model("gan", variant="resnet_r1", data_kind="vector", size=2, diffaug="cutout")


def test_variant_defaults_are_saved_and_old_configs_keep_theirs() -> None:
    from genmed.config import to_dict
    from genmed.models import build_model_from_config

    new = build_model("gan", variant="resnet_r1", size=64)
    assert (new.config.r1_every, new.config.mbstd_group) == (16, 4)
    assert new.config.r1_gamma == pytest.approx(0.0002 * 64 ** 2 / 32)  # ADA's "auto" gamma
    saved = to_dict(new.config)
    assert saved["r1_gamma"] == new.config.r1_gamma and saved["diffaug"]
    old = {k: v for k, v in to_dict(build_model("gan", size=8).config).items()
           if k not in ("r1_every", "diffaug", "max_channels")}  # a config saved before them
    cfg = build_model_from_config("gan", old).config
    assert (cfg.r1_gamma, cfg.r1_every, cfg.mbstd_group, cfg.diffaug) == (0.0, 1, 0, "")


def test_the_variant_trains_with_its_own_recipe() -> None:
    from genmed.train import TrainConfig

    own = recipe("gan", variant="resnet_r1")
    assert own.betas == (0.0, 0.99) and own.ema_decay == pytest.approx(0.99778, abs=1e-5)
    cfg = TrainConfig(family="gan", steps=10, options=dict(variant="resnet_r1"))
    assert (cfg.betas, cfg.grad_clip, cfg.schedule) == ((0.0, 0.99), 0.0, "constant")
    assert TrainConfig(family="gan", steps=10).betas == (0.5, 0.999)  # DCGAN unchanged
    # a comparison trains the variant by its own recipe; other named presets stay as asked
    assert TrainConfig(family="gan", steps=10, recipe="compare",
                       options=dict(variant="resnet_r1")).betas == (0.0, 0.99)
    assert TrainConfig(family="gan", steps=10, recipe="compare",
                       options=dict(variant="hinge_sn")).betas == (0.5, 0.999)
    assert TrainConfig(family="gan", steps=10, recipe="short",
                       options=dict(variant="resnet_r1")).betas == (0.5, 0.999)


def test_short_training_beats_the_initial_generator() -> None:
    """100 steps on 16-px ellipse phantoms (all pieces on: DiffAugment, lazy R1 with steps,
    minibatch std, residual nets): the samples' pixel-histogram W1 + mean-image RMSE to the
    data falls to under a third of the untrained generator's (seed 0: 1.54 -> ~0.25)."""
    from _modelkit import distribution_distance, ellipse_images

    torch.manual_seed(0)
    data = ellipse_images(256, 16)
    model = build_model("gan", variant="resnet_r1", size=16, base_channels=8, max_channels=16,
                        latent_dim=16)

    def distance() -> float:
        return distribution_distance(model.sample(256, generator=torch.Generator().manual_seed(1)), data)

    before = distance()
    opts = {p: torch.optim.Adam(model.phase_parameters(p), lr=2e-3, betas=(0.0, 0.99))
            for p in model.phases()}
    g = torch.Generator().manual_seed(0)
    for step in range(100):
        batch = {"image": data[torch.randint(0, 256, (16,), generator=g)], "step": torch.tensor(step)}
        for phase in model.phases():
            model.zero_grad(set_to_none=True)
            model(batch, phase)["loss"].mean().backward()
            opts[phase].step()
    after = distance()
    assert after < before / 3, (before, after)


def test_residual_mlp_blocks_add_w_act_h_and_the_gan_uses_them_for_vectors() -> None:
    """He et al. 2016 (identity mappings), eq. 3 with one layer: h_{l+1} = h_l + W_l act(h_l);
    with every block's weights zero the net is out(inp(x)), the plain two-layer map."""
    from genmed.models.nets import ResidualMLP

    torch.manual_seed(0)
    net = ResidualMLP(3, 8, 2, 5, act=nn.ReLU)
    x = torch.randn(4, 3)
    h = net.inp(x)
    for block in net.blocks:
        lin = block[1]
        h = h + torch.relu(h) @ lin.weight.T + lin.bias
    assert torch.allclose(net(x), net.out(h), atol=1e-6)
    with torch.no_grad():
        for block in net.blocks:
            block[1].weight.zero_()
            block[1].bias.zero_()
    assert torch.allclose(net(x), net.out(net.inp(x)), atol=1e-6)

    res = build_model("gan", data_kind="vector", size=2, hidden=8, depth=3, latent_dim=2,
                      residual_mlp=True, mbstd_group=4, r1_gamma=1.0)
    assert isinstance(res.generator.net, ResidualMLP) and len(res.generator.net.blocks) == 3
    assert isinstance(res.discriminator.features[0], ResidualMLP)
    assert not isinstance(_toy().generator.net, ResidualMLP)  # off by default
    batch = {"image": torch.randn(8, 2), "step": torch.tensor(0)}
    assert res(batch, "discriminator")["loss"].shape == (8,) and res.sample(5).shape == (5, 2)
    with pytest.raises(UserError, match="residual_mlp=True is for vector data"):
        build_model("gan", size=16, residual_mlp=True)
