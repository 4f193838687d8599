"""Shared application helpers: the HU bias table."""

from __future__ import annotations

import numpy as np

from genmed.apps.common import region_bias


def test_region_bias_finds_a_shift_confined_to_the_lesion():
    rng = np.random.default_rng(0)
    truth = rng.normal(40, 5, (6, 16, 16)).astype(np.float32)
    lesion = np.zeros(truth.shape, bool)
    lesion[:4, 4:8, 4:8] = True  # two slices have no lesion
    kidney = np.zeros(truth.shape, bool)
    kidney[:, 8:14, 8:14] = True
    shifted = truth + 10.0 * lesion
    table = region_bias({"shifted": shifted, "same": truth.copy()}, truth,
                        {"kidney": kidney, "lesion": lesion}, n_boot=50, seed=0)
    assert abs(table["shifted"]["lesion"]["value"] - 10.0) < 1e-4
    assert table["shifted"]["lesion"]["n_images"] == 4
    assert abs(table["shifted"]["kidney"]["value"]) < 1e-4
    assert table["same"]["lesion"]["value"] == 0.0
    none = region_bias({"x": truth}, truth, {"lesion": np.zeros_like(lesion)}, n_boot=50, seed=0)
    assert none["x"]["lesion"] is None
