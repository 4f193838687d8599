"""Evaluation maths of the applications on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.apps.common import mean_ci, paired_per_image
from genmed.apps.denoisers import classical, matching_step
from genmed.apps.scoring import aupro, auroc, auroc_by_group, best_dice, image_level
from genmed.errors import UserError


def test_auroc_known_values():
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 0.0
    # pos 3..7 vs neg 0..9: 25 wins + 5 ties / 50 pairs
    assert auroc(np.arange(5) + 3.0, np.arange(10.0)) == pytest.approx(0.55)


def test_image_level_ci_brackets_value_and_needs_both_classes():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 30), rng.normal(0, 1, 60)]
    labels = np.r_[np.ones(30), np.zeros(60)]
    r = image_level(scores, labels, n_boot=100)
    assert r["auroc"]["low"] <= r["auroc"]["value"] <= r["auroc"]["high"]
    assert 0.6 < r["auroc"]["value"] < 0.9 and r["n_pos"] == 30
    assert r["auprc"]["value"] > r["prevalence"]
    with pytest.raises(UserError):
        image_level(scores, np.ones(90))


def test_mean_ci_constant_and_spread():
    assert mean_ci(np.full(5, 3.0)) == {"value": 3.0, "low": 3.0, "high": 3.0}
    c = mean_ci(np.arange(100.0), n_boot=200)
    assert c["low"] < 49.5 < c["high"] and c["high"] - c["low"] < 20


def test_pixel_metrics_perfect_and_uninformative_maps():
    masks = np.zeros((4, 16, 16), np.uint8)
    masks[:, 5:9, 5:9] = 1
    perfect = masks.astype(np.float32)
    assert best_dice(perfect, masks)["dice"] == pytest.approx(1.0)
    assert aupro(perfect + 0.01 * np.random.default_rng(0).random(masks.shape), masks) > 0.99
    noise = np.random.default_rng(1).random(masks.shape)
    assert aupro(noise, masks) < 0.3  # chance: the mean FPR over [0, 0.3], i.e. ~0.15
    with pytest.raises(UserError):
        best_dice(perfect[:, :8], masks)


def test_auroc_by_group_uses_healthy_negatives_for_size_bins():
    scores = np.r_[np.array([5.0, 6.0, 1.0, 2.0]), np.zeros(6)]
    labels = np.r_[np.ones(4), np.zeros(6)]
    groups = np.r_[np.array([1, 1, 0, 0]), -np.ones(6)]
    out = {g["group"]: g["auroc"]["value"] for g in auroc_by_group(scores, labels, groups, 20)}
    assert out == {0: 1.0, 1: 1.0}


def test_paired_metrics_in_hu_window():
    target = np.zeros((3, 16, 16), np.float32)
    r = paired_per_image(target + 20.0, target)
    assert np.allclose(r["mae_hu"], 20.0)
    assert np.allclose(r["psnr_db"], 20 * np.log10(400.0 / 20.0), atol=1e-3)
    # values outside the window [-160, 240] HU are clipped before comparison
    r2 = paired_per_image(target - 1000.0, target - 500.0)
    assert np.allclose(r2["mae_hu"], 0.0)
    with pytest.raises(UserError):
        paired_per_image(target[:2], target)


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
