"""Precision/recall/density/coverage: dropping a mode costs diversity, not fidelity."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import prdc, prdc_ci

CENTRES = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)


def _clusters(n_per, modes, seed, dim=8):
    rng = np.random.default_rng(seed)
    c = np.zeros((len(CENTRES), dim))
    c[:, :2] = CENTRES
    return np.concatenate([c[m] + rng.normal(size=(n_per, dim)) for m in modes])


def test_same_distribution_scores_high():
    m = prdc(_clusters(100, range(4), 0), _clusters(100, range(4), 1), k=5)
    assert m.precision > 0.9 and m.recall > 0.9 and m.coverage > 0.9
    assert 0.7 < m.density < 1.3


def test_dropping_a_mode_lowers_recall_and_coverage_not_precision():
    real = _clusters(100, range(4), 0)
    full = prdc(real, _clusters(100, range(4), 1), k=5)
    dropped = prdc(real, _clusters(133, range(3), 2), k=5)  # same sample count, one mode gone
    assert dropped.recall < full.recall - 0.15
    assert dropped.coverage < full.coverage - 0.15
    assert dropped.precision >= full.precision - 0.03
    assert dropped.density >= full.density - 0.1


def test_outlier_fakes_lower_precision_and_density():
    real = _clusters(100, range(4), 0)
    fake = np.concatenate([_clusters(50, range(4), 1), np.full((200, 8), 50.0)
                           + np.random.default_rng(3).normal(size=(200, 8))])
    clean = prdc(real, fake[:200], k=5)
    m = prdc(real, fake, k=5)  # half the fakes are far-off outliers
    assert abs(m.precision - 0.5 * clean.precision) < 0.02
    assert abs(m.density - 0.5 * clean.density) < 0.02
    assert m.coverage == clean.coverage  # coverage uses real balls only: outliers add nothing


def test_ci_contains_value():
    est = prdc_ci(_clusters(60, range(4), 0), _clusters(60, range(3), 1), k=3, n_boot=50)
    for e in est.values():
        assert e.low <= e.value <= e.high


def test_bad_input():
    with pytest.raises(UserError, match="k=0"):
        prdc(np.zeros((10, 2)), np.zeros((10, 2)), k=0)
    with pytest.raises(UserError, match="at least 6 samples"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)), k=5)


def test_point_on_a_ball_boundary_is_outside():
    """Strict d < r as in the reference `prdc` package (Naeem et al. 2020)."""
    from genmed.metrics.prdc import prdc_indicators

    real = np.array([[0.0], [2.0], [10.0], [13.0]])  # k = 1 radii: 2, 2, 3, 3
    tie = prdc_indicators(real, np.array([[4.0], [100.0]]), k=1)  # 4 is exactly 2 from real 2
    assert tie["precision"].tolist() == [0.0, 0.0] and tie["density"].tolist() == [0.0, 0.0]
    assert tie["coverage"].sum() == 0.0
    inside = prdc_indicators(real, np.array([[3.5], [100.0]]), k=1)  # 1.5 < 2 from real 2
    assert inside["precision"].tolist() == [1.0, 0.0] and inside["coverage"].tolist() == [0.0, 1.0, 0.0, 0.0]
