"""Map guidance: extrapolating away from the organ-free map."""

from __future__ import annotations

import pytest
import torch

from genmed.data.conditions import CLASSES
from genmed.errors import UserError
from genmed.models.map_guidance import MapGuidedDenoiser, check_map_guidance, organ_free_map


def _shares(seed: int = 0) -> torch.Tensor:
    """Class shares (2, 4, 8, 8) that sum to 1 per pixel, as after area averaging."""
    x = torch.rand(2, len(CLASSES), 8, 8, generator=torch.Generator().manual_seed(seed))
    return x / x.sum(1, keepdim=True)


def test_the_organ_free_map_moves_kidney_and_lesion_into_the_body_and_keeps_the_rest():
    cond = _shares()
    free = organ_free_map(cond)
    body, kidney, lesion = (CLASSES.index(c) for c in ("body", "kidney", "lesion"))
    assert torch.equal(free[:, [kidney, lesion]], torch.zeros_like(free[:, [kidney, lesion]]))
    assert torch.allclose(free[:, body], cond[:, body] + cond[:, kidney] + cond[:, lesion])
    assert torch.equal(free[:, 0], cond[:, 0])  # background untouched
    assert torch.allclose(free.sum(1), cond.sum(1))
    assert torch.equal(cond, _shares())  # the input is not modified
    with pytest.raises(UserError, match="condition map"):
        organ_free_map(torch.zeros(2, 3, 8, 8))


def test_the_guided_estimate_extrapolates_from_the_organ_free_one():
    """Two constant 'denoisers' make the formula checkable: (1 + w) eps(map) - w eps(free)."""
    x, t = torch.zeros(1, 1, 4, 4), torch.zeros(1, dtype=torch.long)
    seen = {}

    def make(value, name):
        def den(x, t, *, cond=None, guidance=1.0):
            seen[name] = (cond, guidance)
            return torch.full_like(x, value)
        return den

    out = MapGuidedDenoiser(make(2.0, "map"), make(0.5, "free"), 0.5)(x, t, cond=torch.tensor([3]), guidance=2.0)
    assert torch.allclose(out, torch.full_like(x, 2.0 + 0.5 * (2.0 - 0.5)))
    assert seen["map"][1] == seen["free"][1] == 2.0 and int(seen["free"][0]) == 3  # class guidance inside each
    seen.clear()
    assert torch.equal(MapGuidedDenoiser(make(2.0, "map"), make(0.5, "free"), 0.0)(x, t), torch.full_like(x, 2.0))
    assert "free" not in seen  # w = 0 costs one network call


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_a_weight_that_is_negative_or_not_finite_is_refused(bad):
    with pytest.raises(UserError, match="map_guidance"):
        check_map_guidance(bad)

