"""Scan noise drawn from a fitted noise power spectrum (`genmed.models.noise_texture`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from genmed.errors import UserError
from genmed.models.noise_texture import NoiseTexture, draw_noise, fit_nps


def _lag1(fields: np.ndarray) -> float:
    """Mean correlation of horizontally adjacent pixels."""
    a, b = fields[:, :, :-1].ravel(), fields[:, :, 1:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def _correlated(n: int, sd: float, seed: int) -> np.ndarray:
    """Blob-like noise: white noise blurred by a 1.5-px Gaussian (periodic), scaled to `sd`."""
    w = np.random.default_rng(seed).standard_normal((n, 64, 64))
    f = np.stack([gaussian_filter(x, 1.5, mode="wrap") for x in w])
    return f * (sd / f.std())


def test_white_spectrum_draws_white_noise_of_its_sd():
    noise = draw_noise(np.full((64, 64), 25.0**2), 64, np.random.default_rng(0))
    assert noise.std() == pytest.approx(25.0, rel=0.01)
    assert abs(_lag1(noise)) < 0.02
    assert fit_nps(noise).mean() == pytest.approx(25.0**2, rel=0.02)  # Parseval: mean NPS = variance


def test_masked_spectrum_measures_the_noise_inside_the_mask():
    """Noise of SD 40 in the left half and 5 in the right: the NPS fitted inside the left half
    has mean 40^2, the unmasked one the field's average variance."""
    rng = np.random.default_rng(5)
    res = rng.standard_normal((16, 64, 64)) * np.where(np.arange(64) < 32, 40.0, 5.0)
    left = np.broadcast_to(np.arange(64) < 32, res.shape)
    assert fit_nps(res, left).mean() == pytest.approx(40.0**2, rel=0.03)
    assert fit_nps(res).mean() == pytest.approx((40.0**2 + 5.0**2) / 2, rel=0.03)
    with pytest.raises(UserError, match="empty"):
        fit_nps(res, np.zeros(res.shape, bool))


def test_fitted_spectrum_reproduces_correlated_noise():
    """Fields drawn from the NPS of blob noise have its SD and its pixel correlation; white
    noise of the same SD would have neither the correlation nor the spectrum."""
    real = _correlated(64, 30.0, seed=1)
    drawn = draw_noise(fit_nps(real), 64, np.random.default_rng(2))
    assert drawn.std() == pytest.approx(30.0, rel=0.05)
    assert _lag1(real) > 0.7
    assert _lag1(drawn) == pytest.approx(_lag1(real), abs=0.03)
    low = (slice(0, 4), slice(0, 4))  # the lowest frequencies carry most of the blob noise's power
    assert fit_nps(drawn)[low].mean() == pytest.approx(fit_nps(real)[low].mean(), rel=0.25)


def test_texture_per_level_save_load_and_bad_input(tmp_path):
    res = np.concatenate([_correlated(16, 10.0, 3), _correlated(16, 60.0, 4)])
    levels = ["standard"] * 16 + ["low-dose"] * 16
    tex = NoiseTexture.fit(res, levels)
    sd = tex.sd_hu()
    assert sd["standard"] == pytest.approx(10.0, rel=0.05) and sd["low-dose"] == pytest.approx(60.0, rel=0.05)
    back = NoiseTexture.load(tex.save(tmp_path / "tex.npz"))
    assert back.sd_hu() == pytest.approx(sd)
    noise = back.draw(["low-dose", "standard", "low-dose"], np.random.default_rng(0))
    assert noise.shape == (3, 64, 64) and noise[0].std() > 3 * noise[1].std()
    with pytest.raises(UserError, match="ultra-low"):
        tex.draw(["ultra-low"], np.random.default_rng(0))
    with pytest.raises(UserError, match="level names"):
        NoiseTexture.fit(res, levels[:3])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a noise texture"):
        NoiseTexture.load(tmp_path / "bad.npz")


def test_phantom_low_dose_noise_follows_the_requested_dose():
    """Issue 16's dose check on the component: spectra fitted on the residuals (scan - clean) of
    simulated low-dose CT scans (projection-domain Poisson noise, FBP), added to held-out clean
    slices, give the noise the real scans of each level have, within 20%, by the CT noise
    estimator that also sees correlated noise."""
    from genmed.apps.denoisers import estimate_sigma_mode
    from genmed.data.phantom import PhantomConfig, make_slices

    cfg = PhantomConfig(size=128, noise_model="radon", noisy_fraction=0.5)
    train, test = make_slices(8, 3, cfg, seed=0), make_slices(8, 3, cfg, seed=1)
    level = lambda s: np.where(s.noisy, "low-dose", "standard")  # noqa: E731
    tex = NoiseTexture.fit(train.image - train.clean, level(train), mask=train.clean > -500)  # in the body
    fake = test.clean + tex.draw(list(level(test)), np.random.default_rng(0))
    real_sd = estimate_sigma_mode(test.image, cfg.spacing_mm)
    fake_sd = estimate_sigma_mode(fake, cfg.spacing_mm)
    means = {lv: (real_sd[test.noisy == k].mean(), fake_sd[test.noisy == k].mean())
             for k, lv in ((False, "standard"), (True, "low-dose"))}
    assert means["low-dose"][0] > 2 * means["standard"][0]  # the two doses differ
    for real, fake in means.values():
        assert fake == pytest.approx(real, rel=0.2)


def test_a_requested_sd_scales_its_levels_spectrum(tmp_path):
    """Fitted with the scans' SDs (low-dose scans of 50 and 70 HU: reference 60), a draw for 90
    HU has SD 90 and the level's correlation; without a request, the level's own SD."""
    res = np.concatenate([_correlated(16, 10.0, 3), _correlated(8, 50.0, 4), _correlated(8, 70.0, 5)])
    levels = ["standard"] * 16 + ["low-dose"] * 16
    tex = NoiseTexture.fit(res, levels, noise_hu=[10.0] * 16 + [50.0] * 8 + [70.0] * 8)
    assert tex.reference_hu == pytest.approx({"standard": 10.0, "low-dose": 60.0})
    back = NoiseTexture.load(tex.save(tmp_path / "tex.npz"))
    assert back.reference_hu == pytest.approx(tex.reference_hu)
    drawn = back.draw(["low-dose"] * 32 + ["low-dose"] * 32, np.random.default_rng(0), [90.0] * 32 + [None] * 32)
    assert drawn[:32].std() == pytest.approx(90.0 * tex.sd_hu()["low-dose"] / 60.0, rel=0.05)
    assert drawn[32:].std() == pytest.approx(tex.sd_hu()["low-dose"], rel=0.05)
    assert _lag1(drawn[:32]) == pytest.approx(_lag1(res[16:]), abs=0.03)
    with pytest.raises(UserError, match="no reference SD"):
        NoiseTexture.fit(res, levels).draw(["standard"], np.random.default_rng(0), [12.0])
    with pytest.raises(UserError, match="2 requested noise SDs for 1 fields"):
        tex.draw(["standard"], np.random.default_rng(0), np.array([12.0, 13.0]))
    with pytest.raises(UserError, match="one per residual field"):
        NoiseTexture.fit(res, levels, noise_hu=[10.0] * 3)
