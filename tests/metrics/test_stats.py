"""Bootstrap and over-seed intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import bootstrap_ci, mean_ci, mean_sem


def test_bootstrap_covers_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = bootstrap_ci(np.mean, rng.normal(size=50), n_boot=300)
    large = bootstrap_ci(np.mean, rng.normal(size=2000), n_boot=300)
    assert small.low < 0 < small.high and large.low < 0 < large.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_mean_ci_t_interval():
    e = mean_ci([1.0, 2.0, 3.0], level=0.95)
    assert e.value == 2.0 and math.isclose(e.high - 2.0, 4.302653 * 1.0 / math.sqrt(3), rel_tol=1e-5)
    assert mean_sem([5.0]) == (5.0, 0.0)


def test_bad_input():
    with pytest.raises(UserError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)
    with pytest.raises(UserError, match="non-empty"):
        bootstrap_ci(np.mean, np.array([]))
    with pytest.raises(UserError, match="at least one"):
        mean_sem([])
