"""Shared application helpers: the HU bias table."""

from __future__ import annotations

import numpy as np

from genmed.apps.common import region_error


def test_region_error_finds_a_shift_confined_to_the_lesion():
    rng = np.random.default_rng(0)
    truth = rng.normal(40, 5, (6, 16, 16)).astype(np.float32)
    lesion = np.zeros(truth.shape, bool)
    lesion[:4, 4:8, 4:8] = True  # two slices have no lesion
    kidney = np.zeros(truth.shape, bool)
    kidney[:, 8:14, 8:14] = True
    shifted = truth + 10.0 * lesion
    table = region_error({"shifted": shifted, "same": truth.copy()}, truth,
                        {"kidney": kidney, "lesion": lesion}, n_boot=50, seed=0)
    assert abs(table["shifted"]["lesion"]["value"] - 10.0) < 1e-4
    assert table["shifted"]["lesion"]["n_images"] == 4
    assert abs(table["shifted"]["kidney"]["value"]) < 1e-4
    assert table["same"]["lesion"]["value"] == 0.0
    none = region_error({"x": truth}, truth, {"lesion": np.zeros_like(lesion)}, n_boot=50, seed=0)
    assert none["x"]["lesion"] is None


def test_kidney_view_cuts_every_row_to_one_square_around_its_kidneys():
    from genmed.apps.common import kidney_view

    mask = np.zeros((2, 64, 64), np.uint8)
    mask[0, 20:30, 10:50] = 1  # wide kidneys
    mask[1, 40:44, 30:36] = 1  # a small one near the bottom edge
    img = np.arange(2 * 64 * 64, dtype=np.float32).reshape(2, 64, 64)
    cut = kidney_view(mask, 1.0, {"img": img, "mask": mask}, [0, 1], margin_mm=2.0)
    assert cut["img"].shape == (2, 44, 44)  # extent 39 px + 2 x 2 mm, one side for both rows
    assert cut["mask"][0].sum() == mask[0].sum() and cut["mask"][1].sum() == mask[1].sum()
