"""VAE likelihood: learned decoder sigma, free bits, negative ELBO in bits per dimension."""

from __future__ import annotations

import math

import torch
from _modelkit import ellipse_images, train

from genmed.models import build_model


def _vae(**kw):
    return build_model("vae", data_kind="vector", size=4, hidden=16, depth=1, latent_dim=2,
                       kl_warmup_steps=0, **kw)


def test_learned_sigma_goes_to_the_rms_residual() -> None:
    """With the networks frozen, the loss in log sigma is |r|^2 / (2 sigma^2) + D log sigma:
    its minimum is sigma^2 = E|r|^2 / D (Rybkin et al. 2021, sigma-VAE)."""
    torch.manual_seed(0)
    model = _vae(likelihood="learned", likelihood_sigma=1.0)
    model.net.requires_grad_(False)
    x = torch.randn(256, 4) * 0.5
    opt = torch.optim.Adam([model.log_sigma], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        model({"image": x})["loss"].mean().backward()
        opt.step()
    with torch.no_grad():
        mse = torch.stack([model._terms(x, None)[0] for _ in range(50)]).mean() / 4
    sigma = float(model.log_sigma.exp())
    assert abs(sigma**2 / float(mse) - 1) < 0.1, (sigma**2, float(mse))
    assert sigma < 0.9  # moved down from 1.0
    assert float(model({"image": x})["sigma"]) == sigma


def test_free_bits_clamp_each_dimension_of_the_kl() -> None:
    torch.manual_seed(0)
    base = _vae()
    free = _vae(free_bits=0.3)
    free.load_state_dict(base.state_dict())
    x = torch.randn(8, 4)
    torch.manual_seed(1)
    plain = base({"image": x})
    torch.manual_seed(1)
    clamped = free({"image": x})
    mu, logvar = base.encode(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)  # (B, latent_dim), nats
    extra = (kl.clamp(min=0.3) - kl).sum(1) / 4  # per element, as the loss
    assert torch.allclose(clamped["loss"] - plain["loss"], extra, atol=1e-4)  # losses ~100
    assert torch.equal(clamped["kl"], plain["kl"])  # the log shows the true KL
    # a floor above every dimension's KL: the KL sends no gradient to the encoder's mean
    high = _vae(free_bits=100.0)
    high.load_state_dict(base.state_dict())
    no_kl = _vae(beta=0.0)
    no_kl.load_state_dict(base.state_dict())
    grads = []
    for model in (high, no_kl):
        torch.manual_seed(1)
        model({"image": x})["loss"].sum().backward()
        grads.append(model.net.mu.weight.grad.clone())
    assert torch.allclose(*grads, atol=1e-7)


def test_bits_per_dim_formula_and_offset() -> None:
    torch.manual_seed(0)
    model = build_model("vae", size=16, channels=(4, 8), latent_dim=4, likelihood_sigma=0.2)
    x = ellipse_images(4, 16)
    bits = model.elbo_bits_per_dim(x, n_draws=2, generator=torch.Generator().manual_seed(3))
    nats = model.anomaly_score(x, "elbo", n_draws=2, generator=torch.Generator().manual_seed(3))
    d = 16 * 16
    expect = (nats + d * (math.log(0.2) + 0.5 * math.log(2 * math.pi))) / (d * math.log(2)) + 7
    assert bits.shape == (4,) and torch.allclose(bits, expect, rtol=1e-5)


def test_bits_per_dim_fall_with_training_on_easy_data() -> None:
    data = ellipse_images(128, 16)
    held_out = ellipse_images(32, 16, seed=1)
    gen = torch.Generator().manual_seed(0)
    for likelihood in ("fixed", "learned"):
        torch.manual_seed(0)
        model = build_model("vae", size=16, channels=(8, 16), latent_dim=8, kl_warmup_steps=20,
                            likelihood=likelihood)
        before = model.elbo_bits_per_dim(held_out, generator=gen.manual_seed(0)).mean()
        train(model, data, 60, batch_size=16, lr=3e-3, betas=(0.9, 0.999))
        after = model.elbo_bits_per_dim(held_out, generator=gen.manual_seed(0)).mean()
        assert torch.isfinite(before) and torch.isfinite(after)
        assert after < before - 0.5, (likelihood, float(before), float(after))
