"""DiffAugment (Zhao et al. 2020): each op does what the paper's code does, in 2D and 3D, and is
differentiable (a fixed draw is an affine map of the image)."""

from __future__ import annotations

import pytest
import torch

from genmed.data.augment import diff_augment
from genmed.errors import UserError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_translation_shifts_by_at_most_an_eighth_with_zero_fill() -> None:
    x = torch.zeros(32, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel
    y = diff_augment(x, "translation", _gen())
    assert torch.equal(y.sum((1, 2, 3)), torch.ones(32))  # s = 2: the pixel never leaves
    pos = torch.stack(torch.where(y[:, 0] == 1)[1:], 1) - 8
    assert pos.abs().max() == 2 and len(set(map(tuple, pos.tolist()))) > 5
    ones = diff_augment(torch.ones(32, 1, 16, 16), "translation", _gen())
    lost = 256 - ones.sum((1, 2, 3))  # zero-filled border: 16 (|tx| + |ty|) - |tx| |ty|
    possible = {16 * (a + b) - a * b for a in range(3) for b in range(3)}
    assert set(lost.int().tolist()) <= possible and lost.max() == 60


def test_cutout_zeroes_one_half_size_box() -> None:
    ones = torch.ones(64, 1, 16, 16)
    y = diff_augment(ones, "cutout", _gen())
    zeros = (y == 0).sum((1, 2, 3))
    assert zeros.max() == 64 and zeros.min() >= 1  # an 8x8 box, partly outside at the edges
    rows = (y[:, 0] == 0).any(2).sum(1)
    assert rows.max() == 8


def test_color_on_one_channel_is_brightness_then_contrast() -> None:
    """A constant image stays constant (contrast and saturation act on deviations) and moves by
    the brightness draw in [-0.5, 0.5]."""
    x = torch.full((64, 1, 8, 8), 0.2)
    y = diff_augment(x, "color", _gen())
    assert torch.allclose(y, y[:, :, :1, :1].expand_as(y))
    shift = y[:, 0, 0, 0] - 0.2
    assert shift.abs().max() <= 0.5 and shift.std() > 0.2
    z = torch.randn(64, 1, 8, 8)  # contrast: deviations scaled by U(0.5, 1.5)
    out = diff_augment(z, "color", _gen())
    ratio = (out - out.mean((2, 3), keepdim=True)).std((1, 2, 3)) / (z - z.mean((2, 3), keepdim=True)).std((1, 2, 3))
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4


def test_diffaug_is_differentiable_and_works_in_3d() -> None:
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    policy = "color,translation,cutout"
    assert torch.autograd.gradcheck(lambda t: diff_augment(t, policy, _gen(3)), (x,))
    v = torch.randn(2, 1, 8, 8, 8, requires_grad=True)
    y = diff_augment(v, policy, _gen())
    assert y.shape == v.shape
    y.sum().backward()
    assert v.grad.abs().sum() > 0
    assert torch.equal(diff_augment(v, ""), v)
    with pytest.raises(UserError, match="blur"):
        diff_augment(v, "color,blur")
    with pytest.raises(UserError, match="twice"):
        diff_augment(v, "cutout,cutout")
