"""Anomaly scores: image-level AUROC/AUPRC with CIs, pixel Dice and AUPRO."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import aupro, auroc_by_group, best_dice, image_level


def test_image_level_ci_brackets_value_and_needs_both_classes():
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1, 1, 30), rng.normal(0, 1, 60)]
    labels = np.r_[np.ones(30), np.zeros(60)]
    r = image_level(scores, labels, n_boot=100)
    assert set(r["auroc"]) == {"value", "low", "high"}
    assert r["auroc"]["low"] <= r["auroc"]["value"] <= r["auroc"]["high"]
    assert 0.6 < r["auroc"]["value"] < 0.9 and r["n_pos"] == 30
    assert r["auprc"]["value"] > r["prevalence"]
    with pytest.raises(UserError):
        image_level(scores, np.ones(90))
    with pytest.raises(UserError, match="at least 2"):
        image_level(scores[29:], labels[29:])  # one positive only


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


def test_aupro_regions_are_8_connected():
    """Two diagonal pixels are one region (MVTec AD: ndimage.label with a 3x3 structure)."""
    masks = np.zeros((1, 12, 12), np.uint8)
    masks[0, 2, 2] = masks[0, 3, 3] = 1  # diagonal pair: 1 region (8-conn), 2 regions (4-conn)
    masks[0, 8:10, 8:10] = 1  # a second, square region
    maps = np.random.default_rng(0).uniform(0.2, 0.8, masks.shape)  # normal pixels
    maps[0, 2, 2] = maps[0, 8:10, 8:10] = 2.0  # found at every FPR
    maps[0, 3, 3] = 0.0  # missed at every FPR
    # 8-connected: PRO = mean(1/2, 1) = 0.75 at every FPR; 4-connected would give (1+0+1)/3
    assert aupro(maps, masks) == pytest.approx(0.75)


def test_auroc_by_group_uses_healthy_negatives_for_size_bins():
    scores = np.r_[np.array([5.0, 6.0, 1.0, 2.0]), np.zeros(6)]
    labels = np.r_[np.ones(4), np.zeros(6)]
    groups = np.r_[np.array([1, 1, 0, 0]), -np.ones(6)]
    out = {g["group"]: g["auroc"]["value"] for g in auroc_by_group(scores, labels, groups, 20)}
    assert out == {0: 1.0, 1: 1.0}
