"""Denoisers of the applications on cases with known answers (their scores: tests/metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.apps.denoisers import classical, matching_step
from genmed.errors import UserError


def test_matching_step_inverts_the_noise_to_signal_ratio():
    ab = torch.linspace(0.999, 0.01, 1000, dtype=torch.float64)
    t = matching_step(ab, 0.5)
    assert abs(float(((1 - ab[t]) / ab[t]).sqrt()) - 0.5) < 0.01


def test_classical_denoisers_reduce_error_on_piecewise_constant_image():
    rng = np.random.default_rng(0)
    clean = np.zeros((2, 32, 32), np.float32)
    clean[:, 8:24, 8:24] = 0.5
    noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
    for m in ("nlm", "tv", "wavelet"):
        out = classical(noisy, np.full(2, 0.2), m)
        assert np.abs(out - clean).mean() < 0.6 * np.abs(noisy - clean).mean(), m
    with pytest.raises(UserError):
        classical(noisy, np.full(2, 0.2), "median")


def test_mode_noise_estimate_sees_correlated_ct_noise_that_the_wavelet_mad_misses():
    """Low-pass (FBP-like) noise of SD 20 HU on soft tissue (40 HU) with a bright organ."""
    from scipy.ndimage import gaussian_filter

    from genmed.apps.denoisers import estimate_sigma, estimate_sigma_mode

    rng = np.random.default_rng(0)
    clean = np.full((3, 128, 128), 40.0)
    clean[:, 40:80, 30:70] = 180.0  # an enhancing organ: edges inflate local SDs
    white = rng.normal(0, 1, clean.shape)
    corr = np.stack([gaussian_filter(w, 1.0) for w in white])
    noise = 20.0 * corr / corr.std()
    est = estimate_sigma_mode(clean + noise, spacing_mm=1.4)
    assert np.all(np.abs(est - 20.0) < 3.0), est
    assert np.all(estimate_sigma(clean + noise) < 12.0)  # the finest wavelet band sees little of it
