"""GaussianMixture: score = grad log_prob, normalisation, limits, stability, kinds, fit, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from genmed.errors import UserError
from genmed.scorelab import GaussianMixture
from genmed.scorelab.evaluate import chi2_fit_2d, ks_fit_1d

CASES = [("ve", 0.0), ("ve", 0.3), ("ve", 2.0), ("vp", 0.0), ("vp", 0.05), ("vp", 0.5), ("vp", 1.0)]


def random_mixture(d: int, seed: int, k: int = 3) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 2, size=(k,) if d == 1 else (k, d))
    stds = rng.uniform(0.3, 1.2, size=(k,) if seed % 2 else (k, d))
    if d == 1:
        stds = rng.uniform(0.3, 1.2, size=k)
    return GaussianMixture(w, means, stds)


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("process,t", CASES)
def test_score_is_gradient_of_log_prob(d, process, t):
    gm = random_mixture(d, seed=d * 7 + int(10 * t))
    x0 = gm.sample(16, t, process, sigma=1.5, seed=3) + 0.5
    x = torch.tensor(x0, requires_grad=True)
    lp = gm.log_prob(x, t, process, sigma=1.5)
    (grad,) = torch.autograd.grad(lp.sum(), x)
    score = gm.score(x0, t, process, sigma=1.5)
    np.testing.assert_allclose(score, grad.numpy(), rtol=1e-9, atol=1e-9)
    # Central finite differences of log_prob along every axis.
    h = 1e-5
    x2 = x0.reshape(len(x0), -1)
    for i in range(x2.shape[1]):
        e = np.zeros_like(x2)
        e[:, i] = h
        plus, minus = (x2 + e).reshape(x0.shape), (x2 - e).reshape(x0.shape)
        fd = (gm.log_prob(plus, t, process, sigma=1.5) - gm.log_prob(minus, t, process, sigma=1.5)) / (2 * h)
        np.testing.assert_allclose(score.reshape(len(x0), -1)[:, i], fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("process,t", CASES)
def test_log_prob_integrates_to_one(process, t):
    gm = GaussianMixture([0.2, 0.5, 0.3], [-3.0, 0.5, 4.0], [0.2, 1.0, 0.6])
    total, _ = integrate.quad(lambda a: float(np.exp(gm.log_prob(np.array([a]), t, process, sigma=2.0))[0]),
                              -60, 60, points=[-3.0, 0.5, 4.0], limit=200)
    assert total == pytest.approx(1.0, abs=1e-7)


def test_t0_is_the_plain_mixture_and_source_formula():
    w, mu, s = np.array([0.3, 0.7]), np.array([-2.0, 2.0]), np.array([0.5, 0.8])
    gm = GaussianMixture(w, mu, s)
    a = np.linspace(-6, 6, 41)
    plain = np.log((w * stats.norm.pdf(a[:, None], mu, s)).sum(1))
    for process in ("ve", "vp"):
        np.testing.assert_allclose(gm.log_prob(a, 0.0, process), plain, rtol=1e-12, atol=1e-12)
    # The source's VE formula: P(a,t) = sum_j w_j N(a; mu_j, sigma_j^2 + sigma^2 t), and its score.
    t, sig = 0.7, 1.3
    var = s**2 + sig**2 * t
    comp = w * stats.norm.pdf(a[:, None], mu, np.sqrt(var))
    np.testing.assert_allclose(gm.log_prob(a, t, "ve", sigma=sig), np.log(comp.sum(1)), rtol=1e-12)
    src_score = (comp * (-(a[:, None] - mu) / var)).sum(1) / comp.sum(1)
    np.testing.assert_allclose(gm.score(a, t, "ve", sigma=sig), src_score, rtol=1e-10, atol=1e-12)


def test_vp_at_t1_is_close_to_standard_normal():
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 1.0], [2.0, 0.0]], [[0.5, 0.3], [0.4, 0.6]])
    x = np.random.default_rng(0).normal(size=(200, 2)) * 1.5
    ref = stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(x)
    assert np.max(np.abs(gm.log_prob(x, 1.0, "vp") - ref)) < 0.05  # alpha(1) = 0.0066: means shift by <= 0.013
    m = gm.marginal(1.0, "vp")
    assert np.abs(m.means).max() < 0.02 and np.abs(m.stds - 1).max() < 1e-4
    # ... but not at t = 0.3, where the data still show.
    assert np.max(np.abs(gm.log_prob(x, 0.3, "vp") - ref)) > 0.5


def test_stable_fifty_stds_away():
    gm = GaussianMixture([0.5, 0.5], [0.0, 1.0], [0.01, 0.01])
    x = np.array([-0.5, 1.5, 50 * 0.01 + 1.0, -50 * 0.01])
    lp = gm.log_prob(x)
    sc = gm.score(x)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(sc))
    # Far from both, the nearest component dominates: score = -(x - mu_near) / s^2.
    np.testing.assert_allclose(sc[2], -(0.5) / 1e-4, rtol=1e-9)
    np.testing.assert_allclose(sc[3], 0.5 / 1e-4, rtol=1e-9)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    (g,) = torch.autograd.grad(gm.log_prob(xt).sum(), xt)
    assert torch.isfinite(g).all()


def test_numpy_in_numpy_out_torch_in_torch_out():
    gm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [1.0, 2.0])
    xn = np.zeros((3, 2))
    assert isinstance(gm.log_prob(xn), np.ndarray) and gm.log_prob(xn).shape == (3,)
    assert isinstance(gm.score(xn), np.ndarray) and gm.score(xn).shape == (3, 2)
    xt = torch.zeros(3, 2, dtype=torch.float32)
    lp, sc = gm.log_prob(xt, 0.2, "vp"), gm.score(xt, 0.2, "vp")
    assert isinstance(lp, torch.Tensor) and lp.dtype == torch.float32 and lp.shape == (3,)
    assert isinstance(sc, torch.Tensor) and sc.shape == (3, 2)
    # Per-sample times give the same values as one call per time.
    ts = np.array([0.0, 0.4, 0.9])
    per = gm.score(np.ones((3, 2)), ts, "ve")
    one = np.stack([gm.score(np.ones((1, 2)), t, "ve")[0] for t in ts])
    np.testing.assert_allclose(per, one, rtol=1e-12)


@pytest.mark.parametrize("process,t,t_wrong", [("ve", 0.0, 0.5), ("ve", 0.8, 1.3), ("vp", 0.2, 0.1), ("vp", 1.0, 0.3)])
def test_samples_at_t_fit_log_prob_1d(process, t, t_wrong):
    gm = GaussianMixture([0.3, 0.7], [-2.0, 2.0], [0.5, 0.5])
    x = gm.sample(3000, t, process, sigma=1.0, seed=11)
    _, p = ks_fit_1d(gm, x, t, process=process, sigma=1.0)
    assert p > 0.01
    # The test has power: samples from another time are rejected.
    wrong = gm.sample(3000, t_wrong, process, seed=11)
    assert ks_fit_1d(gm, wrong, t, process=process, sigma=1.0)[1] < 1e-3


@pytest.mark.parametrize("process,t", [("ve", 0.5), ("vp", 0.1)])
def test_samples_at_t_fit_log_prob_2d(process, t):
    gm = GaussianMixture([0.4, 0.6], [[-1.5, 0.0], [1.5, 1.0]], [[0.5, 0.8], [0.7, 0.4]])
    x = gm.sample(4000, t, process, seed=2)
    assert chi2_fit_2d(gm, x, t, process=process)[1] > 0.01
    assert chi2_fit_2d(gm, x * 1.1, t, process=process)[1] < 1e-3


BAD = [
    (lambda: GaussianMixture([0.3, 0.6], [0, 1], [1, 1]), "sum to 1"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, -1]), "stds must be > 0"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1, 2], [1, 1]), "means must have shape"),
    (lambda: GaussianMixture([0.5, 0.5], [[0, 1], [1, 1]], [[1, 1, 1], [1, 1, 1]]), "stds must have shape"),
    (lambda: GaussianMixture([1.5, -0.5], [0, 1], [1, 1]), "weights must be >= 0"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, 1]).log_prob(np.zeros((3, 2))), "x must have shape"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, 1]).score(np.zeros(3), t=-0.1), "t=-0.1 must be >= 0"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, 1]).log_prob(np.zeros(3), 1.5, "vp"), "must be <= 1"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, 1]).sample(3, process="vx"), "process='vx'"),
    (lambda: GaussianMixture([0.5, 0.5], [0, 1], [1, 1]).marginal(0.5, "ve", sigma=-1), "sigma=-1"),
]


@pytest.mark.parametrize("call,message", BAD)
def test_bad_input_is_a_user_error(call, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        call()
