"""Condition maps and attributes for mask-conditioned generation, on slices and on volumes."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.data.conditions import condition_maps, encode, lesion_diameter_mm
from genmed.errors import UserError


def _ball_map(size: int, radius_vox: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """(D, H, W) map: body everywhere, a kidney block, and a lesion ball of `radius_vox` voxels
    in-plane (the z radius scaled so that it is a ball in mm)."""
    m = np.ones((size,) * 3, np.uint8)
    m[4:-4, 4:-4, 4:-4] = 2
    zz, yy, xx = np.meshgrid(*(np.arange(size) - size // 2,) * 3, indexing="ij")
    r_mm = radius_vox * spacing[1]
    inside = (zz * spacing[0]) ** 2 + (yy * spacing[1]) ** 2 + (xx * spacing[2]) ** 2 <= r_mm**2
    m[inside] = 3
    return m


def test_volumes_encode_one_hot_along_the_channel_axis():
    m = _ball_map(16, 3, (2.0, 1.0, 1.0))
    cond, ids = encode(m, [{"kind": "malignant", "noise": "low-dose"}], 16, spatial_dims=3)
    assert cond.shape == (1, 4, 16, 16, 16)
    assert np.array_equal(cond[0].argmax(0).numpy(), m)  # channel c is class c, voxel by voxel
    assert ids.tolist() == [2 * 2 + 1]  # kind * 2 + noise


def test_equivalent_diameter_of_a_ball_at_anisotropic_spacing():
    spacing = (3.0, 1.5, 1.5)  # mm: slices twice as far apart as the pixels
    m = _ball_map(32, 6, spacing)
    d = lesion_diameter_mm(int((m == 3).sum()), spacing, spatial_dims=3)
    assert d == pytest.approx(2 * 6 * 1.5, rel=0.08)  # an 18 mm ball, not 18 * (3 / 1.5)^(1/3)
    assert lesion_diameter_mm(100, 2.0) == pytest.approx(2 * np.sqrt(100 * 4 / np.pi))  # a disc


def test_a_volume_whose_lesion_contradicts_size_mm_is_refused():
    spacing = (3.0, 1.5, 1.5)
    m = _ball_map(32, 6, spacing)
    encode(m, [{"kind": "benign", "size_mm": 18}], 32, spacing, spatial_dims=3)  # agrees
    with pytest.raises(UserError, match="mm across"):
        encode(m, [{"kind": "benign", "size_mm": 30}], 32, spacing, spatial_dims=3)


def test_a_slice_is_not_taken_for_a_volume_nor_a_volume_for_slices():
    with pytest.raises(UserError, match=r"expected \(N, 16, 16, 16\)"):
        encode(np.zeros((16, 16), np.uint8), [{}], 16, spatial_dims=3)
    # a (16, 16, 16) array for a 2-D model is 16 slices: it needs 16 attribute sets
    with pytest.raises(UserError, match="16 masks but 1 attribute sets"):
        encode(np.zeros((16, 16, 16), np.uint8), [{}], 16)
    with pytest.raises(UserError, match="spatial_dims=4"):
        encode(np.zeros((1, 4, 4, 4, 4), np.uint8), [{}], 4, spatial_dims=4)


def test_condition_maps_of_phantom_volumes_mark_kidney_and_lesion():
    from genmed.data.phantom import PhantomConfig, make_volumes

    v = make_volumes(3, PhantomConfig(size=32, depth=16, lesion_prob=1.0), seed=0)
    m = condition_maps(v)
    assert m.shape == (3, 16, 32, 32)
    assert np.array_equal(m == 3, v.lesion_mask > 0)
    assert np.array_equal(m >= 2, (v.kidney_mask > 0) | (v.lesion_mask > 0))
    assert ((m == 0) == (v.clean <= -500)).all()


def test_noise_hu_is_checked_and_read_from_phantom_slices():
    from genmed.data.conditions import attributes_of
    from genmed.data.phantom import PhantomConfig, make_slices

    slices = make_slices(2, 2, PhantomConfig(size=32, noisy_fraction=0.5), seed=0)
    attrs = attributes_of(slices, noise_hu=True)
    assert [a["noise_hu"] for a in attrs] == pytest.approx(slices.noise_hu.tolist(), abs=0.01)
    assert "noise_hu" not in attributes_of(slices)[0]
    encode(condition_maps(slices), attrs, 32)  # accepted
    m = np.zeros((32, 32), np.uint8)
    for bad in (0, -5.0, float("nan"), 1e5, "80", True):
        with pytest.raises(UserError, match="noise_hu="):
            encode(m, [{"noise_hu": bad}], 32)
