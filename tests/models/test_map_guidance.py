"""Map guidance: extrapolating away from the organ-free map."""

from __future__ import annotations

import pytest
import torch

from genmed.data.conditions import CLASSES
from genmed.errors import UserError
from genmed.models.map_guidance import (SLICE_MAP_GUIDANCE, MapGuidedDenoiser, check_map_guidance,
                                       lesion_free_map, negative_map, organ_free_map, slice_map_guidance,
                                       weights_by_lesion)


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


def test_the_lesion_free_map_moves_only_the_lesion_into_the_kidney_where_there_is_one():
    cond = _shares()
    body, kidney, lesion = (CLASSES.index(c) for c in ("body", "kidney", "lesion"))
    cond[1, lesion] = 0  # the second map holds no lesion
    cond = cond / cond.sum(1, keepdim=True)
    free = lesion_free_map(cond)
    assert torch.equal(free[0, lesion], torch.zeros_like(free[0, lesion]))
    assert torch.allclose(free[0, kidney], cond[0, kidney] + cond[0, lesion])
    assert torch.equal(free[0, body], cond[0, body])  # the kidney stays a kidney
    assert torch.equal(free[1], organ_free_map(cond)[1])  # no lesion: the organ-free negative
    assert torch.allclose(free.sum(1), cond.sum(1))
    assert torch.equal(negative_map(cond, "lesion"), free)
    assert torch.equal(negative_map(cond), organ_free_map(cond))
    with pytest.raises(UserError, match="map_negative"):
        negative_map(cond, "kidney")


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


def test_per_sample_weights_guide_each_sample_by_its_own_weight():
    x, t = torch.zeros(3, 1, 4, 4), torch.zeros(3, dtype=torch.long)
    calls = []

    def make(value):
        def den(x, t, *, cond=None, guidance=1.0):
            calls.append(value)
            return torch.full_like(x, value)
        return den

    w = torch.tensor([0.0, 0.5, 2.0])
    out = MapGuidedDenoiser(make(2.0), make(0.5), w)(x, t)
    expected = 2.0 + w * (2.0 - 0.5)
    torch.testing.assert_close(out, expected.view(3, 1, 1, 1).expand_as(x))
    calls.clear()
    MapGuidedDenoiser(make(2.0), make(0.5), torch.zeros(3))(x, t)
    assert calls == [2.0]  # all weights zero: one network call
    with pytest.raises(UserError, match="one weight per sample"):
        MapGuidedDenoiser(make(2.0), make(0.5), torch.ones(2))(x, t)


def test_weights_by_lesion_give_maps_with_a_lesion_their_own_weight():
    cond = _shares()
    cond[1, CLASSES.index("lesion")] = 0  # the second map holds no lesion
    assert weights_by_lesion(cond, 0.0, 0.25).tolist() == [0.0, 0.25]
    assert weights_by_lesion(cond, 1.0, 0.0).tolist() == [1.0, 0.0]
    with pytest.raises(UserError, match="map_guidance"):
        weights_by_lesion(cond, -1.0, 0.0)


def test_slice_map_guidance_fills_what_the_user_left_out():
    assert slice_map_guidance(None, None) == SLICE_MAP_GUIDANCE
    assert slice_map_guidance(0.5, None) == (0.5, 0.5)  # one weight serves both kinds of map
    assert slice_map_guidance(0.5, 0.0) == (0.5, 0.0)
    assert slice_map_guidance(None, 0.75) == (SLICE_MAP_GUIDANCE[0], 0.75)
    with pytest.raises(UserError, match="map_guidance"):
        slice_map_guidance(0.5, -1.0)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), torch.tensor([0.5, -0.1]),
                                 torch.tensor([0.5, float("nan")])])
def test_a_weight_that_is_negative_or_not_finite_is_refused(bad):
    with pytest.raises(UserError, match="map_guidance"):
        check_map_guidance(bad)


def test_per_sample_weights_must_be_one_per_sample():
    with pytest.raises(UserError, match="one weight per sample"):
        check_map_guidance(torch.ones(2, 2))
    with pytest.raises(UserError, match="one weight per sample"):
        check_map_guidance(torch.ones(3), n=4)


def test_a_latent_model_samples_with_map_guidance_through_its_diffusion_model():
    """`sample(map_guidance=w)` of a 2-D mask ldm: w = 0 is plain sampling bit for bit; w > 0 is
    the sampler run with the guided denoiser on the latent map, from the same noise, decoded."""
    from _modelkit import map_reading_mask_ldm

    from genmed.data.conditions import condition_maps, encode
    from genmed.data.phantom import PhantomConfig, make_slices
    from genmed.models.base import randn

    model = map_reading_mask_ldm()
    maps = condition_maps(make_slices(2, 2, PhantomConfig(size=32), seed=0))
    cond, ids = encode(maps, [{"kind": "healthy", "noise": "standard"}] * 4, 32)

    def draw(**kw):
        return model.sample(4, cond=ids, image_cond=cond, steps=2, sampler="ddim",
                            generator=torch.Generator().manual_seed(1), **kw)

    plain = draw()
    assert torch.equal(draw(map_guidance=0.0), plain)
    guided = draw(map_guidance=0.5)
    assert (guided - plain).abs().max() > 1e-3
    g = torch.Generator().manual_seed(1)
    z = randn((4, *model.diffusion.config.sample_shape), g, "cpu")
    z = model.diffusion.denoise_from(z, None, 2, "ddim", ids, 1.0, g, image_cond=model.latent_cond(cond, 4),
                                     map_guidance=0.5)
    torch.testing.assert_close(model.decode(z), guided)
    # a map without a lesion: the "lesion" negative falls back to the organ-free one
    assert torch.equal(draw(map_guidance=0.5, map_negative="lesion"), guided)
    # per-sample weights: each sample is drawn as with its own weight for the whole batch
    mixed = draw(map_guidance=torch.tensor([0.5, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(mixed[[0, 2]], guided[[0, 2]])
    torch.testing.assert_close(mixed[[1, 3]], plain[[1, 3]])
    with pytest.raises(UserError, match="map_guidance"):
        draw(map_guidance=-1.0)
