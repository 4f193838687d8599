"""Toy mixtures: published settings, pure seeded sampling, dataset items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genmed.data.toy import (
    MixtureSpec, ToyDataset, get_mixture, grid_mixture, mixture_1d, mixture_log_density,
    ring_mixture, sample_mixture,
)
from genmed.errors import UserError


def test_published_settings():
    ring, grid = get_mixture("ring"), get_mixture("grid")
    assert ring.n_modes == 8 and set(ring.stds) == {0.01}
    np.testing.assert_allclose(ring.means_array()[2], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(ring.means_array()[1], [math.cos(math.pi / 4), math.sin(math.pi / 4)])
    assert grid.n_modes == 25 and set(grid.stds) == {0.05}
    assert set(grid.means_array().ravel()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert math.isclose(sum(grid.weights), 1.0)


def test_sampling_is_seeded_and_has_right_moments():
    spec = ring_mixture()
    x1, m1 = sample_mixture(spec, 4000, torch.Generator().manual_seed(3))
    x2, m2 = sample_mixture(spec, 4000, torch.Generator().manual_seed(3))
    x3, _ = sample_mixture(spec, 4000, torch.Generator().manual_seed(4))
    assert torch.equal(x1, x2) and torch.equal(m1, m2) and not torch.equal(x1, x3)
    resid = x1.double() - torch.tensor(spec.means, dtype=torch.float64)[m1]
    assert abs(resid.std().item() - 0.01) < 0.001
    counts = torch.bincount(m1, minlength=8).double() / 4000
    assert (counts - 1 / 8).abs().max() < 0.03


def test_1d_mixture_density_normalised():
    spec = mixture_1d((-2.0, 1.0), (0.5, 0.3), (0.3, 0.7))
    grid = np.linspace(-8, 8, 20001)[:, None]
    total = np.exp(mixture_log_density(spec, grid)).sum() * (grid[1, 0] - grid[0, 0])
    assert abs(total - 1.0) < 1e-4
    x, _ = sample_mixture(spec, 20000, torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - (0.3 * -2 + 0.7 * 1)) < 0.03


def test_dataset_items():
    ds = ToyDataset("grid", n=64, seed=1)
    item = ds[5]
    assert len(ds) == 64 and item["image"].shape == (2,) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.long and 0 <= int(item["label"]) < 25
    assert torch.equal(ToyDataset("grid", n=64, seed=1).x, ds.x)


def test_bad_input():
    with pytest.raises(UserError, match="mixture='moon'"):
        get_mixture("moon")
    with pytest.raises(UserError, match="stds must be > 0"):
        ring_mixture(std=0.0)
    with pytest.raises(UserError, match="sum to 1"):
        MixtureSpec("x", ((0.0,), (1.0,)), (1.0, 1.0), (0.5, 0.6))
    with pytest.raises(UserError, match="n=0"):
        ToyDataset("ring", n=0)
    with pytest.raises(UserError, match="side"):
        grid_mixture(side=0)
