"""VAE sampling prior: the running moments of the aggregate posterior are its exact moments,
the fitted Gaussian is sampled with them, and on an easy data set its samples are closer to the
data than N(0, I)'s (the "prior hole"). The engine keeps the moments through EMA and checkpoints."""

from __future__ import annotations

import pytest
import torch
from _modelkit import ellipse_images, train

from genmed.errors import UserError
from genmed.models import build_model
from genmed.train import DictDataset, fit, load_run


def _vae(**kw):
    return build_model("vae", data_kind="vector", size=4, hidden=16, depth=1, latent_dim=3,
                       kl_warmup_steps=0, **kw)


def test_running_moments_are_the_aggregate_posteriors() -> None:
    """Frozen networks, one batch seen 5 times: the running moments are that batch's exact
    E[z] = mean(mu) and Cov[z] = Cov(mu) + mean(diag(sigma^2)) (law of total variance)."""
    torch.manual_seed(0)
    model = _vae(prior="fitted", prior_momentum=0.3)
    x = torch.randn(64, 4)
    model.train()
    for _ in range(5):
        model({"image": x})["loss"].mean().backward()
    mu, logvar = model.encode(x)
    mu, var = mu.detach().double(), logvar.detach().double().exp()
    mean, cov = model.prior_moments()
    want = torch.cov(mu.T, correction=0) + torch.diag(var.mean(0))
    torch.testing.assert_close(mean.double(), mu.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cov.double(), want, rtol=1e-4, atol=1e-5)
    assert int(model.q_updates) == 5
    model.eval()
    model({"image": x})  # evaluation does not move them
    assert int(model.q_updates) == 5
    mean0, cov0 = _vae().prior_moments()  # standard prior: N(0, I)
    assert mean0.abs().sum() == 0 and torch.equal(cov0, torch.eye(3))


def test_fitted_prior_draws_from_its_gaussian(monkeypatch) -> None:
    model = _vae(prior="fitted")
    model.q_updates += 1
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.0, -0.3, 0.2]])
    model.q_mean.copy_(torch.tensor([2.0, -1.0, 0.5]))
    model.q_second.copy_(a @ a.T + torch.outer(model.q_mean, model.q_mean))
    monkeypatch.setattr(model, "decode", lambda z: z)  # samples are the prior draws
    z = model.sample(40_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), model.q_mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), a @ a.T, atol=0.03, rtol=0)
    with pytest.raises(UserError, match="prior_momentum"):
        _vae(prior="fitted", prior_momentum=0.0)


def test_fitted_prior_samples_are_closer_to_the_data_than_standard_ones() -> None:
    """A VAE with a small KL weight on ellipse 'slices' leaves holes in N(0, I): its standard
    prior samples are farther from every training image than its fitted-prior samples."""
    torch.manual_seed(0)
    data = ellipse_images(128, size=16)
    model = train(build_model("vae", size=16, channels=(8, 16), latent_dim=8, beta=0.1,
                              kl_warmup_steps=0, prior="fitted", likelihood_sigma=0.1), data, 300)
    model.eval()

    def nn_distance(prior: str) -> float:
        object.__setattr__(model.config, "prior", prior)
        fake = model.sample(64, generator=torch.Generator().manual_seed(1)).flatten(1)
        return float(torch.cdist(fake, data.flatten(1)).min(1).values.mean())

    standard, fitted = nn_distance("standard"), nn_distance("fitted")
    assert fitted < 0.8 * standard, (fitted, standard)


def test_engine_keeps_the_moments_through_ema_and_checkpoints(tmp_path) -> None:
    torch.manual_seed(0)
    data = ellipse_images(32, size=16)
    model = build_model("vae", size=16, channels=(8, 16), latent_dim=4, prior="fitted")
    fit(model, DictDataset(image=data), steps=6, batch_size=8, out=tmp_path / "run", device="cpu")
    loaded, _ = load_run(tmp_path / "run")
    assert int(loaded.q_updates) > 0 and loaded.config.prior == "fitted"
    mean, cov = loaded.prior_moments()
    assert mean.abs().sum() > 0 and torch.linalg.eigvalsh(cov).min() > 0
    torch.testing.assert_close(loaded.q_mean, model.q_mean)
    assert loaded.sample(3).shape == (3, 1, 16, 16)
