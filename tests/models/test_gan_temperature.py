"""Latent temperature of GAN sampling: z ~ N(0, T^2 I) from the same draws, so T = 1 is the
plain sampler, T scales the latent G sees, and a temperature outside (0, 4] is refused."""

from __future__ import annotations

import math

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model


def _gan():
    torch.manual_seed(0)
    return build_model("gan", size=32, variant="resnet_r1", latent_dim=8, base_channels=8,
                       max_channels=16)


def test_temperature_scales_the_latent_of_the_same_draw() -> None:
    model = _gan()
    seed = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    plain = model.sample(6, generator=seed())
    assert torch.equal(model.sample(6, generator=seed(), temperature=1.0), plain)
    z = torch.randn(6, 8, generator=seed())
    model.generator.eval()
    with torch.no_grad():
        expected = model.generate(1.5 * z)
    hot = model.sample(6, generator=seed(), temperature=1.5)
    assert torch.allclose(hot, expected, atol=1e-6)
    assert (hot - plain).abs().mean() > 1e-3  # G reads its latent: T changes the images


def test_low_temperature_draws_are_closer_together() -> None:
    """The truncation direction: T -> 0 sends every draw towards G(0), so the draws' spread
    shrinks with T."""
    model = _gan()
    spread = {t: model.sample(32, generator=torch.Generator().manual_seed(1), temperature=t)
              .std(0).mean().item() for t in (0.1, 1.0, 2.0)}
    assert spread[0.1] < 0.5 * spread[1.0] < spread[2.0], spread


@pytest.mark.parametrize("bad", [0.0, -1.0, 4.5, math.nan, math.inf])
def test_temperature_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(UserError, match="temperature"):
        _gan().sample(2, temperature=bad)
