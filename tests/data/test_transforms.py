"""HU windowing and resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.data.transforms import hu_to_unit, resize, unit_to_hu, window_to_uint8, window_transform
from genmed.errors import UserError


def test_abdomen_window_endpoints_and_clip():
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 1000.0], np.float32)
    assert np.allclose(hu_to_unit(hu), [-1, -1, 0, 1, 1])
    assert np.allclose(hu_to_unit(hu, clip=False)[[0, 4]], [-5.2, 4.8])
    assert np.allclose(hu_to_unit(hu, level=0, width=2000), hu / 1000)


def test_round_trip_numpy_and_torch():
    hu = np.linspace(-160, 240, 41, dtype=np.float32)
    assert np.allclose(unit_to_hu(hu_to_unit(hu)), hu, atol=1e-4)
    t = torch.from_numpy(hu)
    out = hu_to_unit(t)
    assert isinstance(out, torch.Tensor) and torch.allclose(unit_to_hu(out), t, atol=1e-4)


def test_monai_window_matches():
    hu = torch.linspace(-500, 600, 50)[None]
    assert torch.allclose(torch.as_tensor(window_transform()(hu)), hu_to_unit(hu), atol=1e-6)
    assert window_to_uint8(np.array([-1000.0, 40.0, 1000.0])).tolist() == [0, 128, 255]


def test_bad_width():
    with pytest.raises(UserError, match="width"):
        hu_to_unit(np.zeros(3), width=0)


@pytest.mark.parametrize("shape, size, out", [((1, 64, 64), 32, (1, 32, 32)),
                                              ((2, 16, 16, 16), 8, (2, 8, 8, 8)),
                                              ((1, 10, 20), (5, 6), (1, 5, 6))])
def test_resize_shapes(shape, size, out):
    y = resize(torch.rand(shape), size)
    assert tuple(y.shape) == out and type(y) is torch.Tensor


def test_resize_area_keeps_mean_and_nearest_keeps_labels():
    x = torch.rand(1, 32, 32)
    assert torch.isclose(resize(x, 16).mean(), x.mean(), atol=1e-5)
    lab = torch.randint(0, 3, (1, 32, 32))
    small = resize(lab, 8, mode="nearest")
    assert small.dtype == lab.dtype and set(small.unique().tolist()) <= {0, 1, 2}
    with pytest.raises(UserError):
        resize(torch.rand(8), 4)
    with pytest.raises(UserError):
        resize(x, 4, mode="cubic")
