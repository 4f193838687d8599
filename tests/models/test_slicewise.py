"""A volume from a 3-D map with a 2-D mask model, slice by slice from one shared noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.errors import UserError
from genmed.models.mask_generation import mask_diffusion, mask_ldm
from genmed.models.slicewise import sample_volume_slicewise, slice_attributes, slice_noise


def _map(depth: int = 6, size: int = 16) -> np.ndarray:
    """A body with a kidney in every slice and a lesion in slices 2-3."""
    m = np.ones((depth, size, size), np.int64)
    m[:, :2] = 0
    m[:, 6:10, 6:10] = 2
    m[2:4, 7:9, 7:9] = 3
    return m


def test_the_volumes_kind_goes_to_the_slices_with_lesion_pixels_only():
    attrs = slice_attributes(_map(), {"kind": "malignant", "noise": "low-dose", "noise_hu": 60})
    assert [a["kind"] for a in attrs] == ["healthy", "healthy", "malignant", "malignant", "healthy", "healthy"]
    assert all(a["noise"] == "low-dose" and a["noise_hu"] == 60 for a in attrs)


def test_contradictions_are_refused_at_volume_level():
    healthy = _map()
    healthy[healthy == 3] = 2
    with pytest.raises(UserError, match="no lesion voxels"):
        slice_attributes(healthy, {"kind": "benign"})
    with pytest.raises(UserError, match="lesion voxels"):
        slice_attributes(_map(), {"kind": "healthy"})
    with pytest.raises(UserError, match="size_mm"):  # the map's lesion: 8 voxels of 3 x 2 x 2 mm
        slice_attributes(_map(), {"kind": "benign", "size_mm": 40}, spacing_mm=(3.0, 2.0, 2.0))
    with pytest.raises(UserError, match="must be a number"):
        slice_attributes(_map(), {"kind": "benign", "size_mm": "big"})
    ok = slice_attributes(_map(), {"kind": "benign", "size_mm": 4.9}, spacing_mm=(3.0, 2.0, 2.0))
    assert "size_mm" not in ok[2]


def test_shared_noise_draws_identical_slices_where_the_maps_agree():
    """Slices 0, 1, 4, 5 have the same map and kind: with one shared noise and a deterministic
    sampler they come out the same; with independent noise they do not."""
    torch.manual_seed(0)
    model = mask_diffusion(16).eval()
    shared = sample_volume_slicewise(model, _map(), {"kind": "benign"}, steps=3, seed=1, chunk=4,
                                     noise_correlation=1.0)
    apart = sample_volume_slicewise(model, _map(), {"kind": "benign"}, steps=3, seed=1, noise_correlation=0.0)
    assert shared.shape == (1, 1, 6, 16, 16)
    for a, b in ((0, 1), (0, 4), (1, 5)):
        assert torch.allclose(shared[0, 0, a], shared[0, 0, b], atol=1e-5)
        assert not torch.allclose(apart[0, 0, a], apart[0, 0, b], atol=1e-2)


def test_slice_noise_is_standard_normal_and_decorrelates_along_z_as_r_to_the_lag():
    g = torch.Generator().manual_seed(0)
    x = slice_noise(40, (1, 64, 64), 0.8, g, "cpu").flatten(1)
    assert abs(float(x.std()) - 1.0) < 0.02
    for lag, want in ((1, 0.8), (3, 0.512), (20, 0.0)):
        corr = float(torch.corrcoef(torch.stack([x[:-lag].flatten(), x[lag:].flatten()]))[0, 1])
        assert abs(corr - want) < 0.02, (lag, corr)
    shared = slice_noise(5, (1, 4, 4), 1.0, g, "cpu")
    assert torch.equal(shared[0], shared[4])
    with pytest.raises(UserError, match="noise_correlation"):
        slice_noise(5, (1, 4, 4), 1.5, g, "cpu")


def test_a_latent_model_draws_the_volume_through_its_decoder():
    from genmed.models import build_model

    torch.manual_seed(0)
    ae = build_model("autoencoder", size=32, channels=(16, 16), norm_num_groups=8)
    model = mask_ldm(ae, torch.zeros(4, 1, 32, 32), generator=torch.Generator().manual_seed(0)).eval()
    v = sample_volume_slicewise(model, _map(size=32), {"kind": "malignant"}, steps=2, seed=0,
                                noise_correlation=1.0)
    assert v.shape == (1, 1, 6, 32, 32) and v.abs().max() <= 1
    assert torch.allclose(v[0, 0, 0], v[0, 0, 5], atol=1e-5)


def test_wrong_models_and_maps_are_refused():
    with pytest.raises(UserError, match="2-D model"):
        sample_volume_slicewise(mask_diffusion(16).__class__(
            mask_diffusion(16).config.__class__(**{**vars(mask_diffusion(16).config), "spatial_dims": 3,
                                                   "channels": (16, 16, 16), "num_res_blocks": 1})),
            _map(), {"kind": "benign"})
    with pytest.raises(UserError, match=r"\(D, H, W\)"):
        sample_volume_slicewise(mask_diffusion(16), _map()[0], {"kind": "benign"})


def test_slicewise_sampling_with_map_guidance_changes_only_where_the_map_has_organs():
    """With w > 0 the sample moves; a map without organs is its own organ-free map, so guidance
    leaves such a volume unchanged; a negative weight is refused."""
    torch.manual_seed(0)
    model = mask_diffusion(16).eval()
    with torch.no_grad():  # MONAI zero-initialises output convolutions: an untouched net ignores its map
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    kw = dict(steps=3, seed=1, noise_correlation=0.5)
    plain = sample_volume_slicewise(model, _map(), {"kind": "benign"}, map_guidance=0.0, **kw)
    guided = sample_volume_slicewise(model, _map(), {"kind": "benign"}, map_guidance=1.0, **kw)
    assert not torch.allclose(guided, plain, atol=1e-3)
    empty = np.where(_map() >= 2, 1, _map())
    assert torch.allclose(sample_volume_slicewise(model, empty, {}, map_guidance=1.0, **kw),
                          sample_volume_slicewise(model, empty, {}, map_guidance=0.0, **kw), atol=1e-5)
    with pytest.raises(UserError, match="map_guidance"):
        sample_volume_slicewise(model, _map(), {"kind": "benign"}, map_guidance=-1.0, **kw)
