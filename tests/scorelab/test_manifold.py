"""Circle in R^2: exact score formula; one tiny noise level fails, annealed levels succeed."""

from __future__ import annotations

import math

import pytest
import torch

from genmed.errors import UserError
from genmed.scorelab import GaussianMixture
from genmed.scorelab.manifold import ManifoldConfig, circle_score, distance_to_circle, run_manifold


def test_circle_score_matches_fine_mixture():
    # The noised circle is the limit of a mixture of many tiny Gaussians placed on it.
    k = 2000
    th = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    sigma = 0.3
    gm = GaussianMixture(torch.full((k,), 1.0 / k), torch.stack([th.cos(), th.sin()], 1), torch.full((k,), sigma))
    x = torch.tensor([[0.2, 0.1], [1.5, -0.7], [-2.0, 2.0], [0.0, 0.9]], dtype=torch.float64)
    torch.testing.assert_close(circle_score(x, sigma), gm.score(x), rtol=1e-6, atol=1e-8)
    far = circle_score(torch.tensor([[30.0, 0.0]], dtype=torch.float64), 0.01)
    assert torch.isfinite(far).all() and far[0, 0] < 0
    assert distance_to_circle(torch.tensor([[3.0, 4.0]])).item() == pytest.approx(4.0)


def test_single_tiny_noise_fails_annealed_succeeds():
    cfg = ManifoldConfig(train_steps=600, n_samples=200, steps_each=40, hidden=64, batch=256, lr=5e-3)
    res = run_manifold(cfg)
    rows = {r["method"]: r for r in res["rows"]}
    single, annealed = rows["single_level_learned"], rows["annealed_learned"]
    assert single["fraction_within_tol"] < 0.1 and single["mean_distance"] > 0.5 * res["start"]["mean_distance"]
    assert annealed["mean_distance"] < 0.1 and annealed["mean_distance"] < single["mean_distance"] / 10
    assert annealed["fraction_within_tol"] > 4 * single["fraction_within_tol"] + 0.2
    # Control: with the exact score the tiny level alone does reach the circle, so what fails
    # above is the score learned where no training data lie.
    assert rows["single_level_exact"]["fraction_within_tol"] > 0.95


def test_bad_manifold_config():
    with pytest.raises(UserError, match="sigma_min"):
        ManifoldConfig(sigma_min=3.0, sigma_max=2.0)
    with pytest.raises(UserError, match="radius"):
        ManifoldConfig(radius=-1.0)
