"""Bootstrap, over-seed and Wilson intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import bootstrap_ci, mean_ci, mean_sem, wilson_interval


def test_bootstrap_covers_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = bootstrap_ci(np.mean, rng.normal(size=50), n_boot=300)
    large = bootstrap_ci(np.mean, rng.normal(size=2000), n_boot=300)
    assert small.low < 0 < small.high and large.low < 0 < large.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    flat = bootstrap_ci(np.mean, np.full(5, 3.0))  # constant data: zero width
    assert (flat.value, flat.low, flat.high) == (3.0, 3.0, 3.0)


def test_bootstrap_one_array_equals_scipy_percentile_bootstrap():
    """One array: the same resamples as scipy.stats.bootstrap (percentile, paired=False); the
    percentiles agree to rounding (scipy.stats.quantile interpolates in another order)."""
    from scipy.stats import bootstrap

    v = np.random.default_rng(3).gamma(2.0, size=37)
    ours = bootstrap_ci(np.mean, v, n_boot=200, seed=5)
    ref = bootstrap((v,), lambda x: float(np.mean(x)), n_resamples=200, method="percentile",
                    paired=False, vectorized=False, rng=np.random.default_rng(5))
    assert ours.low == pytest.approx(ref.confidence_interval.low, rel=1e-13)
    assert ours.high == pytest.approx(ref.confidence_interval.high, rel=1e-13)
    assert ours.high - ours.low > 0.1


def test_bootstrap_resamples_arrays_independently():
    # statistic = mean(a) - mean(b); with independent resampling the spread adds up.
    a, b = np.arange(40.0), np.arange(40.0)
    e = bootstrap_ci(lambda x, y: x.mean() - y.mean(), a, b, n_boot=400)
    assert e.value == 0.0 and e.high - e.low > 4.0  # paired resampling would give width 0


def test_bootstrap_groups_resample_whole_clusters():
    # 4 patients of 5 identical slices each: the cluster bootstrap sees 4 values, not 20.
    values = np.repeat([0.0, 1.0, 0.0, 1.0], 5)
    groups = np.repeat(["p1", "p2", "p3", "p4"], 5)
    clustered = bootstrap_ci(lambda i: values[i].mean(), np.arange(20), groups=groups, n_boot=500)
    naive = bootstrap_ci(lambda i: values[i].mean(), np.arange(20), n_boot=500)
    assert clustered.value == 0.5 and clustered.n == 500
    assert clustered.high - clustered.low > 1.5 * (naive.high - naive.low)
    seen = []  # every resample keeps a patient's slices together: means are multiples of 1/4
    bootstrap_ci(lambda i: seen.append(values[i].mean()) or 0.0, np.arange(20), groups=groups, n_boot=50)
    assert set(np.round(np.array(seen) * 4, 9) % 1) == {0.0} and len(set(seen)) > 2


def test_bootstrap_drops_nan_replicates():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])  # many resamples lack the positive

    def stat(i):
        return float(y[i].mean()) if y[i].any() else math.nan

    e = bootstrap_ci(stat, np.arange(8), n_boot=200)
    assert 50 < e.n < 200 and np.isfinite([e.low, e.high]).all()
    never = bootstrap_ci(lambda i: math.nan, np.arange(8), n_boot=10)
    assert never.n == 0 and math.isnan(never.low) and math.isnan(never.high)


def test_mean_ci_t_interval():
    e = mean_ci([1.0, 2.0, 3.0], level=0.95)
    assert e.value == 2.0 and math.isclose(e.high - 2.0, 4.302653 * 1.0 / math.sqrt(3), rel_tol=1e-5)
    assert mean_sem([5.0]) == (5.0, 0.0)
    one = mean_ci([0.5])
    assert (one.value, one.low, one.high, one.n) == (0.5, 0.5, 0.5, 1)


def test_mean_ci_leaves_nan_out():
    e = mean_ci([1.0, math.nan, 2.0, 3.0])
    assert e.n == 3 and e == mean_ci([1.0, 2.0, 3.0])
    none = mean_ci([math.nan, math.nan])
    assert none.n == 0 and math.isnan(none.value) and math.isnan(none.high)


def test_wilson_matches_known_value():
    # Wilson 95% interval for 63/100 (Newcombe 1998 formula): 0.5322 .. 0.7182.
    lo, hi = wilson_interval(63, 100)
    assert lo == pytest.approx(0.53221, abs=1e-4) and hi == pytest.approx(0.71818, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bad_input():
    with pytest.raises(UserError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)
    with pytest.raises(UserError, match="at least one"):
        mean_ci([])
    with pytest.raises(UserError, match="non-empty"):
        bootstrap_ci(np.mean, np.array([]))
    with pytest.raises(UserError, match="n_boot"):
        bootstrap_ci(np.mean, np.ones(3), n_boot=1)
    with pytest.raises(UserError, match="one key per row"):
        bootstrap_ci(np.mean, np.ones(3), groups=np.arange(4))
    with pytest.raises(UserError, match="at least one"):
        mean_sem([])
