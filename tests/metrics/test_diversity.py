"""Intra-set MS-SSIM and class coverage."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import class_coverage, intra_ms_ssim
from genmed.metrics.diversity import ms_ssim_setting


def test_collapsed_set_is_less_diverse(ellipses):
    varied, _ = ellipses(40, seed=0)
    two = intra_ms_ssim(np.repeat(varied[:2], 20, axis=0), 100)
    one = intra_ms_ssim(np.repeat(varied[:1], 40, axis=0), 100)
    dv = intra_ms_ssim(varied, 100)
    assert np.isclose(one.ms_ssim, 1.0, atol=1e-5)
    assert one.ms_ssim > two.ms_ssim > dv.ms_ssim
    assert dv.method == "MS-SSIM, 3 scales, window 7"


def test_scale_setting_fits_monai():
    assert len(ms_ssim_setting(256)[0]) == 5 and ms_ssim_setting(256)[1] == 11
    w, win = ms_ssim_setting(32)
    assert np.isclose(sum(w), 1.0) and 32 // 2 ** (len(w) - 1) >= win
    assert intra_ms_ssim(np.random.default_rng(0).uniform(-1, 1, (6, 1, 8, 8)), 5).method.startswith("SSIM")


def test_class_coverage():
    cc = class_coverage(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 2]), 3, ("h", "b", "m"))
    assert cc.sample_share == (0.75, 0.25, 0.0) and cc.classes_missing == (2,)
    assert np.isclose(cc.total_variation, 0.5 * (0.5 + 0.0 + 0.5))


def test_bad_input():
    with pytest.raises(UserError, match="at least 2 images"):
        intra_ms_ssim(np.zeros((1, 1, 32, 32)))
    with pytest.raises(UserError, match=r"integers in \[0, 2\]"):
        class_coverage(np.array([3]), np.array([0]), 3)
    with pytest.raises(UserError, match="class names"):
        class_coverage(np.array([0]), np.array([0]), 3, ("a",))
