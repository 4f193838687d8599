"""Uncertainty helpers: percentile bootstrap CIs and mean +- CI / standard error over seeds.

Bootstrap: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", Ch. 13
(percentile interval). Over-seed intervals use Student's t with n-1 degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from genmed.errors import UserError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval [low, high] at `level` (e.g. 0.95).

    method: how the interval was obtained ("bootstrap", "t over seeds", ...); n: the number of
    bootstrap resamples or seeds behind it.
    """

    value: float
    low: float
    high: float
    level: float
    method: str
    n: int

    def to_dict(self) -> dict[str, float | str | int | None]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


def _finite_or_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise UserError(f"level={level} must be in (0, 1)")


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 100,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap CI of `statistic(*arrays)`, each array resampled independently.

    Each array is resampled (rows, with replacement) on its own, as two image sets are drawn
    independently. The point value is the statistic on the full arrays.
    """
    _check_level(level)
    if n_boot < 2:
        raise UserError(f"n_boot={n_boot} must be >= 2")
    if not arrays or any(len(a) == 0 for a in arrays):
        raise UserError("bootstrap_ci needs non-empty arrays")
    rng = np.random.default_rng(seed)
    value = float(statistic(*arrays))
    boots = np.empty(n_boot)
    for b in range(n_boot):
        resampled = [a[rng.integers(0, len(a), len(a))] for a in arrays]
        boots[b] = statistic(*resampled)
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high), level, "percentile bootstrap", n_boot)


def mean_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n); 0 for n = 1)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise UserError("mean_sem needs at least one value")
    sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), sem


def mean_ci(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean over seeds with a Student-t CI (the interval collapses to the mean for n = 1)."""
    from scipy import stats

    _check_level(level)
    mean, sem = mean_sem(values)
    n = len(values)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sem) if n > 1 else 0.0
    return Estimate(mean, mean - half, mean + half, level, "t over seeds", n)
