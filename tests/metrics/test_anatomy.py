"""Anatomy plausibility checks: a phantom abdomen passes, noise and a boneless blur fail."""

import numpy as np
import pytest
from scipy import ndimage

from genmed.data.phantom import PhantomConfig, make_volumes
from genmed.errors import UserError
from genmed.metrics.anatomy import anatomy_checks, body_outline_share, spine_share, tissue_shares

SIZE = 64
SPACING = (PhantomConfig().z_spacing_mm, 360 / SIZE, 360 / SIZE)


@pytest.fixture(scope="module")
def abdomen() -> np.ndarray:
    """One phantom volume, 64^3, in the W400/L40 window's range."""
    return np.clip(make_volumes(1, PhantomConfig(size=SIZE), seed=0).image[0], -160, 240)


def test_a_phantom_abdomen_has_a_body_and_a_spine(abdomen):
    checks = anatomy_checks(abdomen, SPACING)
    assert checks["body_outline"] == 1.0
    assert checks["spine"] >= 0.7
    assert checks["bone"] > 0.005 and checks["air"] > 0.3


def test_noise_has_neither_outline_nor_spine(abdomen):
    noise = np.clip(np.random.default_rng(0).normal(40, 150, abdomen.shape), -160, 240)
    assert body_outline_share(noise) == 0.0
    assert spine_share(noise, SPACING) <= 0.1


def test_bright_blobs_are_not_a_spine(abdomen):
    """Smooth noise has compact bright regions near the midline, but not in one column."""
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(0, 1, abdomen.shape), 2)
    blobs = np.clip(40 + 150 * field / field.std(), -160, 240)
    assert spine_share(blobs, SPACING) <= 0.4 < 0.7 <= spine_share(abdomen, SPACING)


def test_a_blurred_abdomen_keeps_its_outline_but_loses_its_spine(abdomen):
    blurred = ndimage.gaussian_filter(abdomen, 4)
    assert body_outline_share(blurred) == 1.0
    assert spine_share(blurred, SPACING) == 0.0
    assert spine_share(abdomen, SPACING) >= 0.7


def test_tissue_shares_tile_the_hu_axis(abdomen):
    assert sum(tissue_shares(abdomen).values()) == pytest.approx(1.0)
    assert tissue_shares(np.full((8, 8, 8), -1000.0))["air"] == 1.0


@pytest.mark.parametrize("bad", [np.zeros((8, 8)), np.zeros((2, 8, 8)), np.full((8, 8, 8), np.nan)])
def test_bad_volumes_are_refused(bad):
    with pytest.raises(UserError):
        tissue_shares(bad)


@pytest.mark.parametrize("spacing", [(3.0, 5.6), (3.0, 0.0, 5.6), (3.0, float("nan"), 5.6)])
def test_bad_spacings_are_refused(abdomen, spacing):
    with pytest.raises(UserError):
        spine_share(abdomen, spacing)
