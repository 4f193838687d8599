"""Mask-conditioned latent diffusion with scan noise added after decoding (issue 16's dose)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.data.conditions import condition_maps
from genmed.errors import UserError
from genmed.models.mask_generation import (add_scan_noise, check_noise_request, fit_scan_noise,
                                           generate_from_maps, mask_ldm)
from genmed.models.noise_texture import NoiseTexture


class _MeanAutoencoder:
    """A stand-in latent model whose reconstruction is each image's mean: for constant images
    plus noise, the residual it leaves is exactly the noise."""

    def encode(self, x, sample=True):
        return x.mean(dim=(2, 3), keepdim=True)

    def decode(self, z):
        return z.expand(-1, -1, 32, 32)


def test_fit_scan_noise_measures_the_residual_in_hu_per_level():
    rng = np.random.default_rng(0)
    sd_hu = np.where(np.arange(24) < 12, 10.0, 60.0)  # standard, then low-dose scans
    hu = 40.0 + rng.standard_normal((24, 32, 32)) * sd_hu[:, None, None]
    images = torch.from_numpy((hu - 40.0) / 200.0)[:, None]  # the abdomen window's [-1, 1]
    levels = ["standard"] * 12 + ["low-dose"] * 12
    tex = fit_scan_noise(_MeanAutoencoder(), images, levels, body=np.ones((24, 32, 32), bool))
    assert tex.sd_hu()["standard"] == pytest.approx(10.0, rel=0.05)
    assert tex.sd_hu()["low-dose"] == pytest.approx(60.0, rel=0.05)


class _FixedReconstruction:
    """A stand-in latent model whose reconstruction of the whole batch is `recon`."""

    def __init__(self, recon: torch.Tensor):
        self.recon = recon

    def encode(self, x, sample=True):
        return x

    def decode(self, z):
        return self.recon


def test_volume_noise_fit_cancels_the_autoencoders_smooth_structure_error():
    """Volumes: scan noise of 10 / 60 HU, independent per axial slice, and a reconstruction
    off by a smooth 30 HU structure error. The residual's NPS mixes both; the difference of
    adjacent slices' residuals keeps the noise alone."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    sd_hu = np.array([10.0, 10.0, 60.0, 60.0])  # standard, standard, low-dose, low-dose
    scans = 40.0 + rng.standard_normal((4, 16, 32, 32)) * sd_hu[:, None, None, None]
    error = np.stack([gaussian_filter(rng.standard_normal((16, 32, 32)), 4.0, mode="wrap") for _ in range(4)])
    recon = 40.0 + error * (30.0 / error.std())

    def unit(hu: np.ndarray) -> torch.Tensor:  # the abdomen window's [-1, 1]
        return torch.from_numpy((hu - 40.0) / 200.0)[:, None]

    model, levels, body = _FixedReconstruction(unit(recon)), ["standard"] * 2 + ["low-dose"] * 2, np.ones(scans.shape, bool)
    mixed = fit_scan_noise(model, unit(scans), levels, body, slice_difference=False)
    assert mixed.sd_hu()["standard"] > 2 * 10.0
    tex = fit_scan_noise(model, unit(scans), levels, body)  # volumes: slice difference by default
    assert tex.sd_hu()["standard"] == pytest.approx(10.0, rel=0.1)
    assert tex.sd_hu()["low-dose"] == pytest.approx(60.0, rel=0.1)
    with pytest.raises(UserError, match="two axial slices"):
        fit_scan_noise(model, unit(scans[:, 0]), levels, body[:, 0], slice_difference=True)


def test_generation_adds_the_requested_levels_noise():
    """The same seed with and without a texture differs by noise of the requested level's SD."""
    from genmed.data.phantom import PhantomConfig, make_slices
    from genmed.models import build_model

    torch.manual_seed(0)
    slices = make_slices(2, 2, PhantomConfig(size=32), seed=0)
    ae = build_model("autoencoder", size=32, channels=(16, 16), norm_num_groups=8)
    model = mask_ldm(ae, torch.zeros(4, 1, 32, 32), generator=torch.Generator().manual_seed(0)).eval()
    tex = NoiseTexture({"standard": np.full((32, 32), 5.0**2), "low-dose": np.full((32, 32), 40.0**2)})
    maps = condition_maps(slices)
    attrs = [{"kind": "healthy", "noise": lv} for lv in ("standard", "low-dose", "standard", "low-dose")]
    plain = generate_from_maps(model, maps, attrs, steps=2, seed=3)
    noisy = generate_from_maps(model, maps, attrs, steps=2, seed=3, texture=tex)
    diff_hu = ((noisy - plain)[:, 0] * 200.0).numpy()
    body = maps > 0
    inside = (plain[:, 0].abs() < 0.5).numpy() & body  # in the body, away from the [-1, 1] clamp
    sd = [diff_hu[i][inside[i]].std() for i in range(4)]
    assert sd[0] == pytest.approx(5.0, rel=0.15) and sd[2] == pytest.approx(5.0, rel=0.15)
    assert sd[1] == pytest.approx(40.0, rel=0.15) and sd[3] == pytest.approx(40.0, rel=0.15)
    assert (~body).any() and np.all(diff_hu[~body] == 0)  # the air around the patient stays clean


def test_volumes_from_maps_get_each_axial_slice_its_levels_noise():
    """A 3-D mask ldm draws (N, 1, D, H, W) volumes from (N, D, H, W) maps; a 2-D texture adds
    noise of the requested level's SD to every axial slice, a fresh draw in each slice."""
    from genmed.models import build_model

    torch.manual_seed(0)
    ae = build_model("autoencoder", spatial_dims=3, size=16, channels=(4, 4), norm_num_groups=4,
                     latent_channels=2, adv_weight=0.0)
    model = mask_ldm(ae, torch.zeros(2, 1, 16, 16, 16), generator=torch.Generator().manual_seed(0)).eval()
    maps = np.ones((2, 16, 16, 16), np.uint8)
    maps[:, 4:12, 4:12, 4:12] = 2
    attrs = [{"kind": "healthy", "noise": "standard"}, {"kind": "healthy", "noise": "low-dose"}]
    tex = NoiseTexture({"standard": np.full((16, 16), 5.0**2), "low-dose": np.full((16, 16), 40.0**2)})
    plain = generate_from_maps(model, maps, attrs, steps=2, seed=3)
    noisy = generate_from_maps(model, maps, attrs, steps=2, seed=3, texture=tex)
    assert plain.shape == (2, 1, 16, 16, 16)
    diff_hu = ((noisy - plain)[:, 0] * 200.0).numpy()
    inside = (plain[:, 0].abs() < 0.5).numpy()
    assert diff_hu[0][inside[0]].std() == pytest.approx(5.0, rel=0.15)
    assert diff_hu[1][inside[1]].std() == pytest.approx(40.0, rel=0.15)
    assert not np.allclose(diff_hu[1, 0], diff_hu[1, 1])  # slices are independent draws
    with pytest.raises(UserError, match=r"expected \(N, 16, 16, 16\)"):
        generate_from_maps(model, maps[:, 0], attrs, steps=2)  # slices for a volume model


def test_fit_scan_noise_on_volumes_counts_axial_slices():
    rng = np.random.default_rng(1)
    sd = np.array([10.0, 60.0])
    hu = 40.0 + rng.standard_normal((2, 8, 32, 32)) * sd[:, None, None, None]
    images = torch.from_numpy((hu - 40.0) / 200.0)[:, None]

    class _Mean3d(_MeanAutoencoder):
        def encode(self, x, sample=True):
            return x.mean(dim=(2, 3, 4), keepdim=True)

        def decode(self, z):
            return z.expand(-1, -1, 8, 32, 32)

    tex = fit_scan_noise(_Mean3d(), images, ["standard", "low-dose"], body=np.ones((2, 8, 32, 32), bool))
    assert tex.shape == (32, 32)
    assert tex.sd_hu()["standard"] == pytest.approx(10.0, rel=0.05)
    assert tex.sd_hu()["low-dose"] == pytest.approx(60.0, rel=0.05)


def test_a_2d_model_fits_volume_noise_slice_by_slice():
    """Slices of one volume at different HU levels: a 2-D model reconstructs each slice's own
    mean, so the slice difference leaves the noise alone; a whole-volume mean would not."""
    rng = np.random.default_rng(2)
    sd = np.array([10.0, 60.0])
    levels_hu = np.linspace(-100.0, 100.0, 8)[None, :, None, None]  # a different level per slice
    hu = levels_hu + rng.standard_normal((2, 8, 32, 32)) * sd[:, None, None, None]
    images = torch.from_numpy(hu / 200.0)[:, None]

    class _Mean2d(_MeanAutoencoder):
        class config:  # noqa: N801 (the attribute a model's config carries)
            spatial_dims = 2

    tex = fit_scan_noise(_Mean2d(), images, ["standard", "low-dose"], body=np.ones((2, 8, 32, 32), bool))
    assert tex.sd_hu()["standard"] == pytest.approx(10.0, rel=0.05)
    assert tex.sd_hu()["low-dose"] == pytest.approx(60.0, rel=0.05)


def test_scan_noise_stays_inside_the_body_mask():

    tex = NoiseTexture({"standard": np.full((16, 16), 20.0**2)})
    images = torch.zeros(2, 1, 16, 16)
    body = np.zeros((2, 16, 16), bool)
    body[:, 4:12, 4:12] = True
    out = add_scan_noise(images, [{"noise": "standard"}] * 2, tex, seed=0, body=body)
    hu = out[:, 0].numpy() * 200.0
    assert np.all(hu[~body] == 0) and hu[body].std() == pytest.approx(20.0, rel=0.2)
    with pytest.raises(UserError, match="body mask"):
        add_scan_noise(images, [{"noise": "standard"}] * 2, tex, body=body[:1])


def test_scan_noise_follows_a_requested_noise_sd():
    """Two low-dose requests of 40 and 80 HU against a texture fitted on 60-HU scans: the added
    noise has SD 40 and 80 (the level's 60-HU spectrum scaled)."""
    tex = NoiseTexture({"standard": np.full((32, 32), 10.0**2), "low-dose": np.full((32, 32), 60.0**2)},
                       {"standard": 10.0, "low-dose": 60.0})
    attrs = [{"kind": "healthy", "noise": "low-dose", "noise_hu": sd} for sd in (40.0, 80.0)] * 8
    hu = (add_scan_noise(torch.zeros(16, 1, 32, 32), attrs, tex, seed=0)[:, 0] * 200.0).numpy()
    assert hu[0::2].std() == pytest.approx(40.0, rel=0.05) and hu[1::2].std() == pytest.approx(80.0, rel=0.05)
    for texture in (None, NoiseTexture(tex.nps)):  # none, or one fitted without the scans' SDs
        with pytest.raises(UserError, match="noise_hu needs"):
            check_noise_request(attrs, texture)
    check_noise_request(attrs, tex)


def test_generation_guides_maps_with_a_lesion_by_their_own_weight():
    """`map_guidance` weighs the maps with a lesion, `map_guidance_healthy` the others: each
    slice is drawn as a whole batch with its own weight would draw it."""
    from _modelkit import map_reading_mask_ldm

    model = map_reading_mask_ldm(n_scale=2)
    maps = np.ones((2, 32, 32), np.uint8)
    maps[:, 8:24, 6:14] = 2
    maps[0, 12:18, 8:12] = 3  # slice 0 holds a lesion, slice 1 does not
    attrs = [{"kind": "malignant", "noise": "standard"}, {"kind": "healthy", "noise": "standard"}]

    def draw(**kw):
        return generate_from_maps(model, maps, attrs, steps=2, seed=1, **kw)

    plain, guided = draw(), draw(map_guidance=0.5)
    assert (guided - plain).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # guidance changes both slices
    torch.testing.assert_close(draw(map_guidance=0.5, map_guidance_healthy=0.0), torch.stack([guided[0], plain[1]]))
    torch.testing.assert_close(draw(map_guidance=0.0, map_guidance_healthy=0.5), torch.stack([plain[0], guided[1]]))
    with pytest.raises(UserError, match="map_guidance"):
        draw(map_guidance=0.5, map_guidance_healthy=-1.0)
