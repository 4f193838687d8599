"""Low-dose CT simulation: fast path == skimage, dose/noise law, noise power spectrum, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from genmed.data import lowdose as L
from genmed.data.phantom import TISSUES, PhantomConfig, make_slices
from genmed.errors import UserError


def _water_disk(size: int, n: int, radius_mm: float = 150.0) -> tuple[np.ndarray, float]:
    sp = 360.0 / size
    c = (np.arange(size) - (size - 1) / 2) * sp
    disk = (c[:, None] ** 2 + c[None, :] ** 2) < radius_mm**2
    return np.repeat(np.where(disk, 0.0, -1000.0).astype(np.float32)[None], n, 0), sp


def radial_nps(noise: np.ndarray, spacing: float, bins: int = 12) -> np.ndarray:
    """Radially averaged noise power spectrum of (n, h, w) noise ROIs, `bins` rings up to Nyquist."""
    n, h, w = noise.shape
    f = np.fft.fft2(noise - noise.mean(axis=(1, 2), keepdims=True))
    nps = (np.abs(f) ** 2).mean(0) * spacing**2 / (h * w)
    fr = np.hypot(*np.meshgrid(np.fft.fftfreq(h, spacing), np.fft.fftfreq(w, spacing), indexing="ij"))
    ring = np.minimum((fr / (0.5 / spacing) * bins).astype(int), bins)
    return np.array([nps[ring == k].mean() for k in range(bins)])


@pytest.mark.parametrize("size, views", [(64, 30), (256, 10)])
def test_fast_path_matches_skimage(size, views):
    img, _ = _water_disk(size, 1, 120.0)
    rng = np.random.default_rng(0)
    mu = L.hu_to_mu(img + 200 * rng.random(img.shape).astype(np.float32)) * L.projector(size, views).inside
    proj = L.projector(size, views)
    ref = L.radon_skimage(mu, views)
    fast = proj.forward(mu)
    assert fast.shape == ref.shape == (1, views, size)
    assert np.abs(fast - ref).max() < 1e-5 * np.abs(ref).max()  # float32 rounding only
    for filt in L.FILTERS:
        rec_ref = L.fbp_skimage(ref, filt)
        rec = proj.fbp(ref.astype(np.float32), filt)
        assert np.abs(rec - rec_ref).max() < 1e-5 * np.abs(rec_ref).max(), filt


def test_noise_grows_as_dose_falls_and_nps_not_white():
    clean, sp = _water_disk(96, 12)
    noise = {}
    for dose in (1.0, 0.25):
        rngs = [np.random.default_rng(i) for i in range(12)]
        noisy = L.add_lowdose_noise(clean, np.full(12, dose), rngs, spacing_mm=sp, views=90)
        noise[dose] = (noisy - clean)[:, 24:72, 24:72]  # central ROI, uniform water
    ratio = noise[0.25].std() / noise[1.0].std()
    assert 1.7 < ratio < 2.3, ratio  # SD ~ 1/sqrt(dose)
    assert abs(noise[1.0].mean()) < 0.3 * noise[1.0].std()  # unbiased at full dose
    nps = radial_nps(noise[0.25], sp)
    assert nps[0] < 0.4 * nps.max() and nps.argmax() >= 2  # ramp-filtered: little low-frequency power
    white = np.random.default_rng(1).standard_normal((12, 48, 48)) * noise[0.25].std()
    flat = radial_nps(white, sp)
    assert np.abs(flat / flat.mean() - 1).max() < 0.3


def test_gaussian_mode_nps_flat():
    s = make_slices(6, 2, PhantomConfig(size=64), seed=0)
    nps = radial_nps((s.image - s.clean)[:, 16:48, 16:48], s.config.spacing_mm, bins=8)
    assert np.abs(nps / nps.mean() - 1).max() < 0.3


def test_full_dose_liver_noise_calibrated():
    # noise SD does not depend on the number of views at a fixed dose (total photons), so few views
    cfg = PhantomConfig(size=256, noise_model="radon", dose=(1.0, 1.0), noisy_fraction=0.0, views=30)
    s = make_slices(4, 2, cfg, seed=0)
    liver = ndimage.binary_erosion(s.tissue == TISSUES["liver"], np.ones((1, 5, 5)), iterations=2)
    assert liver.sum() > 5000
    sd = (s.image - s.clean)[liver].std()
    assert 7.0 <= sd <= 13.0, sd


def test_phantom_radon_mode_fields_determinism_and_cache(tmp_path, monkeypatch):
    cfg = PhantomConfig(size=48, noise_model="radon", views=40, noisy_fraction=0.5)
    monkeypatch.delenv(L.CACHE_ENV, raising=False)
    a = make_slices(3, 2, cfg, seed=5)
    b = make_slices(4, 2, cfg, seed=5)
    for name in ("image", "image_nc", "clean", "noise_hu", "dose"):
        assert np.array_equal(getattr(a, name), getattr(b, name)[:6]), name
    assert not np.allclose(a.image - a.clean, a.image_nc - a.clean_nc)  # independent phases
    lo = np.minimum(cfg.dose[0], cfg.noisy_dose[0])
    assert ((a.dose >= lo) & (a.dose <= 1.0)).all() and (a.dose[a.noisy] <= cfg.noisy_dose[1]).all()
    assert (a.noise_hu > 0).all() and a.image.dtype == np.float32
    # clean images, masks and labels do not depend on the noise model
    g = make_slices(3, 2, PhantomConfig(size=48), seed=5)
    assert np.array_equal(g.clean, a.clean) and np.array_equal(g.tissue, a.tissue)
    assert np.isnan(g.dose).all()
    # the per-patient render cache returns exactly the same slices
    monkeypatch.setenv(L.CACHE_ENV, str(tmp_path))
    first = make_slices(3, 2, cfg, seed=5)
    assert len(list((tmp_path / "phantom-lowdose").rglob("*.npz"))) == 3
    again = make_slices(3, 2, cfg, seed=5)
    for d in (first, again):
        assert np.array_equal(d.image, a.image) and np.array_equal(d.image_nc, a.image_nc)


def test_projector_cache_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(L.CACHE_ENV, str(tmp_path))
    L._cached.cache_clear()
    p1 = L.projector(32, 12)
    assert (tmp_path / f"projector-32-12-v{L.CACHE_VERSION}.npz").is_file()
    L._cached.cache_clear()
    p2 = L.projector(32, 12)
    L._cached.cache_clear()
    assert (p1.forward_matrix != p2.forward_matrix).nnz == 0 and (p1.back_matrix != p2.back_matrix).nnz == 0
    assert (p1.diag, p1.pad_before, p1.n_fft) == (p2.diag, p2.pad_before, p2.n_fft)


@pytest.mark.parametrize("kwargs", [{"noise_model": "poisson"}, {"dose": (0.0, 1.0)}, {"views": 2},
                                    {"recon_filter": "shepp"}, {"mass_texture": "x"}, {"psf_mm": -1.0}])
def test_config_rejects_bad_lowdose_values(kwargs):
    with pytest.raises(UserError):
        PhantomConfig(**kwargs)


def test_add_lowdose_noise_rejects_bad_input():
    clean, sp = _water_disk(32, 2)
    rngs = [np.random.default_rng(0)] * 2
    with pytest.raises(UserError):
        L.add_lowdose_noise(clean, np.array([1.0, 0.0]), rngs, spacing_mm=sp, views=12)
    with pytest.raises(UserError):
        L.add_lowdose_noise(clean[:, :, :30], np.ones(2), rngs, spacing_mm=sp, views=12)
