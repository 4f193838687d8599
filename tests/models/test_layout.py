"""Class -> layout -> image: share maps convert losslessly where the map is aligned to the coarse
grid, the layout agrees with its class exactly when a lesion is where the class needs one, and
disagreeing draws are redrawn (and refused when none agrees)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.errors import UserError
from genmed.models.layout import (LESION, layout_agrees, layout_diffusion, maps_to_shares,
                                  sample_layouts, shares_to_maps)


def block_map(size: int = 32, cell: int = 4, lesion: bool = True) -> np.ndarray:
    """A (size, size) uint8 map whose regions are whole `cell`-pixel cells: body, two kidneys,
    a lesion on the right one."""
    m = np.zeros((size, size), np.uint8)
    m[cell:-cell, cell:-cell] = 1
    m[2 * cell:4 * cell, 2 * cell:3 * cell] = 2
    m[2 * cell:4 * cell, -3 * cell:-2 * cell] = 2
    if lesion:
        m[2 * cell:3 * cell, -3 * cell:-2 * cell] = LESION
    return m


def test_straight_edges_on_the_coarse_grid_survive_the_round_trip_exactly():
    stripes = np.repeat(np.repeat(np.array([[0, 1, 2, 3, 3, 2, 1, 0]], np.uint8), 4, 1), 32, 0)
    maps = np.stack([stripes, stripes.T])  # (2, 32, 32): edges along the 4-px cells
    shares = maps_to_shares(maps, 8)
    assert shares.shape == (2, 4, 8, 8)
    torch.testing.assert_close(((shares + 1) / 2).sum(1), torch.ones(2, 8, 8))
    np.testing.assert_array_equal(shares_to_maps(shares, 32), maps)


def test_a_scaled_share_map_decodes_to_the_same_map():
    m = block_map()[None]
    half = maps_to_shares(m, 8, scale=0.25)
    torch.testing.assert_close(half, 0.25 * maps_to_shares(m, 8))
    np.testing.assert_array_equal(shares_to_maps(half, 32), shares_to_maps(maps_to_shares(m, 8), 32))


def test_the_round_trip_rounds_corners_but_keeps_a_one_cell_lesion():
    m = block_map()  # the lesion is one 4-px cell
    back = shares_to_maps(maps_to_shares(m[None], 8), 32)[0]
    assert (back == m).mean() > 0.97
    assert 0.5 * (m == LESION).sum() <= (back == LESION).sum() <= (m == LESION).sum()


def test_a_cell_half_kidney_half_lesion_has_share_one_half_of_each():
    m = np.full((1, 4, 4), 2, np.uint8)
    m[0, :, 2:] = LESION
    shares = (maps_to_shares(m, 1)[0, :, 0, 0] + 1) / 2
    torch.testing.assert_close(shares, torch.tensor([0.0, 0.0, 0.5, 0.5]))


@pytest.mark.parametrize("maps", [np.zeros((2, 30, 30), np.uint8), np.zeros((2, 32, 16), np.uint8),
                                  np.full((1, 32, 32), 4, np.uint8)])
def test_maps_that_do_not_fit_are_refused(maps):
    with pytest.raises(UserError):
        maps_to_shares(maps, 8)


def test_a_layout_agrees_when_it_has_a_lesion_exactly_when_its_class_does():
    lesion, clear = block_map(), block_map(lesion=False)
    maps = np.stack([clear, lesion, lesion, clear, lesion])
    np.testing.assert_array_equal(layout_agrees(maps, [0, 1, 2, 2, 0]), [True, True, True, False, False])


class Scripted(torch.nn.Module):
    """Stands in for a layout model: the n-th call to `sample` returns the n-th scripted share
    maps (one per requested class label, looked up by label), recording each call's labels."""

    def __init__(self, script: list[dict[int, np.ndarray]]):
        super().__init__()
        self.script, self.calls = script, []

    def sample(self, n, cond, steps=None, generator=None, guidance=1.0):
        by_label = self.script[min(len(self.calls), len(self.script) - 1)]
        self.calls.append(cond.tolist())
        return torch.cat([maps_to_shares(by_label[int(c)][None], 8) for c in cond])


def test_disagreeing_draws_are_redrawn_and_counted():
    lesion, clear = block_map(), block_map(lesion=False)
    model = Scripted([{0: lesion, 2: lesion}, {0: clear, 2: clear}])  # first call: healthy is wrong
    out = sample_layouts(model, [0, 2, 0], 32)
    assert model.calls == [[0, 2, 0], [0, 0]]  # only the two healthy requests drawn again
    np.testing.assert_array_equal(out.draws, [2, 1, 2])
    drawn = shares_to_maps(maps_to_shares(np.stack([clear, lesion, clear]), 8), 32)
    np.testing.assert_array_equal(out.maps, drawn)


def test_a_class_whose_draws_never_agree_is_named_in_the_error():
    model = Scripted([{0: block_map(), 1: block_map()}])
    with pytest.raises(UserError, match="healthy in 3 tries for 1 of 2"):
        sample_layouts(model, [0, 1], 32, max_tries=3)


def test_the_layout_model_draws_one_share_map_per_class_request():
    model = layout_diffusion(16, channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                             num_train_timesteps=50, sample_steps=3)
    x = model.sample(3, cond=torch.tensor([0, 1, 2]), generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 4, 16, 16) and model.config.num_classes == 3
    assert shares_to_maps(x.float(), 64).shape == (3, 64, 64)
