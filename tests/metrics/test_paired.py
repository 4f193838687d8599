"""PSNR / SSIM / MAE(HU) known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import paired_metrics, paired_per_image, psnr, ssim


def test_psnr_known_value():
    a = np.zeros((2, 16, 16), dtype=np.float32)
    b = a + 0.1  # MSE 0.01, range 1 -> 20 dB
    assert math.isclose(psnr(b, a, data_range=1.0), 20.0, abs_tol=1e-4)


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(3, 32, 32)).astype(np.float32)
    assert math.isclose(ssim(a, a, data_range=1.0), 1.0, abs_tol=1e-5)
    noisy = ssim(a + rng.normal(0, 0.2, a.shape).astype(np.float32), a, data_range=1.0)
    assert noisy < 0.9
    assert ssim(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), data_range=1.0) > 0.99  # small window


def test_window_is_stated_and_applied():
    target = np.full((1, 16, 16), 40.0, dtype=np.float32)
    pred = target + 20.0
    pred[0, 0, 0] = 3000.0  # bone far outside the window: clipped at 240 HU
    m = paired_metrics(pred, target, window=(40.0, 400.0))
    assert m.window_level_hu == 40.0 and m.window_width_hu == 400.0
    expected_mae = (255 * 20.0 + 200.0) / 256
    assert math.isclose(m.mae_hu, expected_mae, rel_tol=1e-5)
    assert m.to_dict()["n_images"] == 1


def test_bad_input():
    with pytest.raises(UserError, match="differs from target"):
        psnr(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)), 1.0)
    with pytest.raises(UserError, match="data_range"):
        psnr(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), 0.0)
    with pytest.raises(UserError, match="width"):
        paired_metrics(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), window=(40, 0))
    with pytest.raises(UserError, match="NaN"):
        ssim(np.full((1, 8, 8), np.nan), np.zeros((1, 8, 8)), 1.0)


def test_per_image_metrics_in_hu_window():
    target = np.zeros((3, 16, 16), np.float32)
    r = paired_per_image(target + 20.0, target)  # default: abdomen window, width 400 HU
    assert np.allclose(r["mae_hu"], 20.0) and r["psnr_db"].shape == (3,)
    assert np.allclose(r["psnr_db"], 20 * np.log10(400.0 / 20.0), atol=1e-3)
    # values outside the window [-160, 240] HU are clipped before comparison
    r2 = paired_per_image(target - 1000.0, target - 500.0)
    assert np.allclose(r2["mae_hu"], 0.0)
    narrow = paired_per_image(target + 20.0, target, window=(0.0, 20.0))  # clipped to [-10, 10]
    assert np.allclose(narrow["mae_hu"], 10.0)
    with pytest.raises(UserError):
        paired_per_image(target[:2], target)


def test_means_match_per_image():
    rng = np.random.default_rng(0)
    target = rng.normal(40, 60, (4, 24, 24)).astype(np.float32)
    pred = target + rng.normal(0, 15, target.shape).astype(np.float32)
    per, m = paired_per_image(pred, target), paired_metrics(pred, target)
    assert m.psnr_db == pytest.approx(per["psnr_db"].mean(), rel=1e-6)
    assert m.ssim == pytest.approx(per["ssim"].mean(), rel=1e-6)
    assert m.mae_hu == pytest.approx(per["mae_hu"].mean(), rel=1e-6)
