"""periodic_artefact_score: a checkerboard stands out of the power spectrum, smooth images do not."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import periodic_artefact_score

N = 32
YY, XX = np.mgrid[0:N, 0:N]


def _smooth(n: int = 8, seed: int = 0) -> np.ndarray:
    """(n, N, N) random ellipses on a dark background, slightly blurred: no periodic pattern."""
    rng = np.random.default_rng(seed)
    u, v = XX / (N - 1) * 2 - 1, YY / (N - 1) * 2 - 1
    out = np.full((n, N, N), -0.9)
    for i in range(n):
        a, b, c = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.8), rng.uniform(-0.2, 0.2)
        out[i][((u - c) / a) ** 2 + (v / b) ** 2 <= 1] = rng.uniform(-0.3, 0.5)
    return out + rng.normal(0, 0.01, out.shape)


def test_checkerboard_scores_high_and_smooth_images_low() -> None:
    smooth = _smooth()
    checker = ((XX + YY) % 2) * 2 - 1.0
    stripes = (XX % 4 < 2) * 2 - 1.0  # period 4 along x
    assert periodic_artefact_score(smooth, 2) < 2
    assert periodic_artefact_score(smooth, 8) < 2
    assert periodic_artefact_score(checker, 2) > 1e6
    assert periodic_artefact_score(smooth + 0.05 * checker, 2) > 10  # faint pattern on anatomy
    assert periodic_artefact_score(stripes, 4) > 1e6
    assert periodic_artefact_score(stripes, 8) > 1e6  # the period-8 lattice holds period 4
    # a pattern only inside the body still stands out (its peak is spread over nearby bins)
    body = smooth[0] > -0.85
    assert periodic_artefact_score(np.where(body, smooth[0] + 0.1 * checker, smooth[0]), 2) > 5


def test_straight_edges_are_not_a_peak() -> None:
    """A separable image has all its power on the axes: a line, not a stride peak."""
    u = XX / (N - 1) * 2 - 1
    assert periodic_artefact_score(np.sin(6 * u) + np.cos(4 * u.T), 2) < 2


def test_accepts_tensors_and_refuses_bad_strides() -> None:
    import torch

    x = torch.from_numpy(_smooth(2)).float().unsqueeze(1)  # (N, C, H, W)
    assert periodic_artefact_score(x, 2) == pytest.approx(periodic_artefact_score(x.numpy(), 2))
    with pytest.raises(UserError):
        periodic_artefact_score(x, 1)
    with pytest.raises(UserError):
        periodic_artefact_score(x[..., :30], 4)


def test_high_frequency_share_orders_blur_real_and_noise() -> None:
    """Blurring lowers the share, noise raises it; white noise is at 1 - pi/16 (about 0.80)."""
    from scipy.ndimage import gaussian_filter

    from genmed.metrics.spectrum import high_frequency_share

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    discs = np.stack([(np.hypot(yy - 32 - dy, xx - 32 - dx) < 12 + r).astype(np.float32)
                      for dy, dx, r in rng.integers(-8, 8, (16, 3))])
    sharp = high_frequency_share(discs)
    assert high_frequency_share(gaussian_filter(discs, (0, 2, 2))) < 0.2 * sharp
    assert high_frequency_share(discs + rng.normal(0, 0.3, discs.shape)) > 2 * sharp
    assert abs(high_frequency_share(rng.normal(size=(8, 64, 64))) - (1 - np.pi / 16)) < 0.02
    with pytest.raises(UserError, match="cutoff"):
        high_frequency_share(discs, cutoff=0.6)
