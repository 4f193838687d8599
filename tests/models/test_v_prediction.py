"""v-prediction (Salimans & Ho 2022): the target, its conversion to eps for every sampler, and
a diffusion model that trains on v and samples with it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genmed.errors import UserError
from genmed.models import build_model
from genmed.models.denoiser import EpsDenoiser, eps_to_x0, v_target, v_to_eps, v_to_x0
from genmed.models.samplers import get_sampler
from genmed.models.schedules import alpha_bar, make_schedule


def test_v_target_converts_back_to_the_noise_and_the_clean_image() -> None:
    x0, eps = torch.randn(6, 3), torch.randn(6, 3)
    ab = torch.linspace(1e-4, 0.9999, 6)
    xt = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * eps
    v = v_target(x0, eps, ab)
    assert torch.allclose(v_to_eps(xt, v, ab), eps, atol=1e-5)
    assert torch.allclose(v_to_x0(xt, v, ab), x0, atol=1e-5)


def test_a_v_network_gives_the_samplers_the_same_eps_as_its_eps_twin() -> None:
    """Optimal predictors for Gaussian data N(mu_c, s^2) per class, one written as eps, one as
    v: behind `EpsDenoiser` they give every sampler the same eps, with guidance too."""
    ab = alpha_bar("linear", 1000).float()
    means, std = torch.tensor([-0.5, 0.5, 0.0]), 0.3  # class 2 = null

    def eps_net(x, timesteps, class_labels):
        a = ab[timesteps][:, None]
        mu = means[class_labels][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * std**2 + 1 - a)

    def v_net(x, timesteps, class_labels):
        a = ab[timesteps][:, None]
        eps = eps_net(x, timesteps, class_labels)
        return a.sqrt() * eps - (1 - a).sqrt() * eps_to_x0(x, eps, a)

    as_eps = EpsDenoiser(eps_net, ab, null_class=2)
    as_v = EpsDenoiser(v_net, ab, null_class=2, prediction="v")
    x, t = torch.randn(64, 4), torch.randint(0, 1000, (64,))
    cond = torch.randint(0, 2, (64,))
    for w in (0.0, 1.0, 3.0):
        assert torch.allclose(as_v(x, t, cond=cond, guidance=w), as_eps(x, t, cond=cond, guidance=w), atol=1e-4)
    out = get_sampler("ddim")(as_v, torch.randn(4000, 4, generator=torch.Generator().manual_seed(0)),
                              make_schedule("linear", 1000, 50), cond=torch.ones(4000, dtype=torch.long))
    assert abs(out.mean().item() - 0.5) < 0.01 and abs(out.std().item() - std) < 0.02


class ExactV(nn.Module):
    """The exact v-predictor for data that is one image `c`: E[x0 | x_t] = c, so
    eps = (x_t - sqrt(ab) c) / sqrt(1 - ab) and v = sqrt(ab) eps - sqrt(1 - ab) c."""

    def __init__(self, c: torch.Tensor, ab: torch.Tensor) -> None:
        super().__init__()
        self.c, self.ab = c, ab.double()

    def forward(self, x, timesteps, class_labels=None, **_):
        a = self.ab[timesteps].view(-1, *([1] * (x.ndim - 1)))
        eps = (x.double() - a.sqrt() * self.c) / (1 - a).sqrt()
        return (a.sqrt() * eps - (1 - a).sqrt() * self.c).float()


def _model(prediction: str):
    return build_model("diffusion", size=8, channels=(8, 8), attention_levels=(False, False),
                       norm_num_groups=4, num_train_timesteps=100, prediction=prediction, bounded=False,
                       clip_x0=False)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"])
def test_a_v_model_trains_on_v_and_its_samplers_read_v(sampler: str) -> None:
    c = torch.full((1, 1, 8, 8), 2.5)  # outside [-1, 1]: nothing may be clipped
    v_model, eps_model = _model("v"), _model("eps")
    for m in (v_model, eps_model):
        m.net = ExactV(c, m.alpha_bar)
    torch.manual_seed(0)
    batch = {"image": c.expand(16, -1, -1, -1)}
    assert v_model.loss(batch)["loss"].max() < 1e-6  # its target is v
    assert eps_model.loss(batch)["loss"].mean() > 0.1  # the same outputs are wrong as eps
    out = v_model.sample(3, steps=10, sampler=sampler, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, c.expand(3, -1, -1, -1), atol=1e-3)


def test_prediction_is_checked_and_reaches_the_latent_unet() -> None:
    with pytest.raises(UserError, match="prediction"):
        _model("x0")
    ldm = build_model("ldm", size=16, prediction="eps", channels=(8, 16), attention_levels=(False, False),
                      norm_num_groups=4, autoencoder=dict(channels=(4, 4), norm_num_groups=4))
    assert ldm.diffusion.config.prediction == "eps" and ldm.diffusion.denoiser().prediction == "eps"


def test_a_new_ldm_predicts_v_and_one_saved_before_the_field_rebuilds_as_eps() -> None:
    from genmed.config import to_dict
    from genmed.models.registry import build_model_from_config

    ldm = build_model("ldm", size=16, channels=(8, 16), attention_levels=(False, False),
                      norm_num_groups=4, autoencoder=dict(channels=(4, 4), norm_num_groups=4))
    assert ldm.config.prediction == "v"
    saved = to_dict(ldm.config)
    assert build_model_from_config("ldm", saved).config.prediction == "v"
    del saved["prediction"]  # a run saved before the field existed trained eps
    assert build_model_from_config("ldm", saved).diffusion.denoiser().prediction == "eps"
