"""FID/KID: analytic cases, self-distance ~ 0, monotone in noise and blur, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from genmed.errors import UserError
from genmed.metrics import fid, fid_ci, frechet_distance, kid, kid_ci, load_extractor


def test_frechet_distance_analytic():
    # Two isotropic Gaussians: |mu1-mu2|^2 + d (s1 - s2)^2 for covariances s^2 I.
    d = 4
    val = frechet_distance(np.zeros(d), 4 * np.eye(d), np.ones(d), np.eye(d))
    assert np.isclose(val, d * 1.0 + d * (2 - 1) ** 2)


def test_self_distance_near_zero():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(300, 16))
    assert fid(f, f) < 1e-6
    g = rng.normal(size=(300, 16)) + 1.0
    assert fid(f, g) > 10
    assert abs(kid(f, f, subset_size=100)) < 0.05 * kid(f, g, subset_size=100)


def test_cis_bracket_and_shrink_with_distance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5
    e = fid_ci(a, b, n_boot=30)
    assert e.low <= e.value <= e.high and e.low > 0 and e.method.startswith("bias-corrected") and e.n == 30
    k = kid_ci(a, b, subset_size=50, n_subsets=30)
    assert k.low <= k.value <= k.high


def _degrade(x, noise=0.0, blur=0.0, seed=0):
    rng = np.random.default_rng(seed)
    y = gaussian_filter(x, sigma=(0, 0, blur, blur)) if blur else x.copy()
    return np.clip(y + rng.normal(0, noise, x.shape), -1, 1).astype(np.float32) if noise else y


def _phantom(n_patients, seed):
    from genmed.data import hu_to_unit, make_slices

    return np.asarray(hu_to_unit(make_slices(n_patients, seed=seed).image), dtype=np.float32)[:, None]


@pytest.mark.parametrize("kind,levels", [("noise", (0.0, 0.05, 0.1, 0.2)), ("blur", (0.0, 0.6, 1.2, 2.4))])
def test_fid_kid_grow_monotonically(kind, levels):
    real = _phantom(20, seed=0)  # 160 slices of 64 px
    base = _phantom(20, seed=1)
    ext = load_extractor()  # the shipped phantom CNN
    fr = ext.features(real)
    fids, kids = [], []
    for lv in levels:
        fake = _degrade(base, **{kind: lv})
        ff = ext.features(fake)
        fids.append(fid(fr, ff))
        kids.append(kid(fr, ff, subset_size=100, n_subsets=20))
    assert all(b > a for a, b in zip(fids, fids[1:])), fids
    assert all(b > a for a, b in zip(kids, kids[1:])), kids


def test_bad_input():
    a = np.zeros((10, 4))
    with pytest.raises(UserError, match="feature sizes differ"):
        fid(a, np.zeros((10, 5)))
    with pytest.raises(UserError, match="at least 2 samples"):
        fid(a, np.zeros((1, 4)))
    with pytest.raises(UserError, match="NaN"):
        kid(a, np.full((10, 4), np.nan))
    with pytest.raises(UserError, match=r"shape \(n, d\)"):
        fid(np.zeros(10), a)
    with pytest.raises(UserError, match="subset_size"):
        kid_ci(a, a, subset_size=1)
    with pytest.raises(UserError, match="n_boot"):
        fid_ci(a + torch.randn(10, 4).numpy(), a, n_boot=1)


def test_frechet_distance_matches_sqrtm_formula():
    import numpy as np
    from scipy import linalg

    from genmed.metrics.fid import frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 1.0
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    reference = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2) - 2 * np.trace(np.real(linalg.sqrtm(s1 @ s2)))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
