"""Uncertainty: percentile bootstrap CIs, mean +- CI over seeds, Wilson intervals of proportions.

- Bootstrap: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", Ch. 13 (percentile
  interval); independent resampling per array (two image sets, or positives and negatives: a
  stratified bootstrap) or of whole clusters (patients: Davison & Hinkley 1997, Sec. 3.8).
- Over seeds: Student's t with n-1 degrees of freedom.
- Proportions: Wilson (1927) score interval.
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

    method: how the interval was obtained ("percentile bootstrap", "t over seeds", ...); n: the
    number of bootstrap resamples or seeds behind it.
    """

    value: float
    low: float
    high: float
    level: float
    method: str
    n: int

    def to_dict(self) -> dict[str, float | str | int | None]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}

    def interval(self) -> dict[str, float]:
        """{"value", "low", "high"}: the form the applications write to JSON."""
        return {"value": self.value, "low": self.low, "high": self.high}


def _finite_or_none(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise UserError(f"level={level} must be in (0, 1)")


def _cluster_rows(groups: np.ndarray, n_rows: int) -> list[np.ndarray]:
    """Row indices of each distinct group key (sorted keys)."""
    if groups.ndim != 1 or len(groups) != n_rows:
        raise UserError(f"groups has shape {groups.shape}; expected one key per row ({n_rows})")
    keys, inverse = np.unique(groups, return_inverse=True)
    return [np.nonzero(inverse == g)[0] for g in range(len(keys))]


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap CI of `statistic(*arrays)`; the point value uses the full arrays.

    groups=None: each array is resampled (rows, with replacement) on its own, as independently
    drawn sets; `bootstrap_ci(fid, real, fake)`, or `bootstrap_ci(auc, pos, neg)` (stratified).
    groups: one key per row, shared by all arrays: whole groups are resampled and the arrays keep
    their rows aligned (cluster bootstrap; slices of one patient are not independent), e.g.
    `bootstrap_ci(lambda i: acc(y[i], p[i]), np.arange(n), groups=patient_id)`.
    Replicates whose statistic is NaN (a resample lacking a class, so AUROC is undefined) are
    dropped and `n` counts those kept; with none kept, low = high = NaN. One row (or group)
    gives a zero-width interval. Draws: one `default_rng(seed)`, per replicate one index
    vector per array (or of groups) in order.
    """
    _check_level(level)
    if n_boot < 2:
        raise UserError(f"n_boot={n_boot} must be >= 2")
    if not arrays or any(len(a) == 0 for a in arrays):
        raise UserError("bootstrap_ci needs non-empty arrays")
    rng = np.random.default_rng(seed)
    value = float(statistic(*arrays))
    if groups is None:
        def draw() -> list[np.ndarray]:
            return [a[rng.integers(0, len(a), len(a))] for a in arrays]
    else:
        if len({len(a) for a in arrays}) > 1:
            raise UserError("with groups, every array needs one row per group key")
        members = _cluster_rows(np.asarray(groups), len(arrays[0]))

        def draw() -> list[np.ndarray]:
            pick = rng.integers(0, len(members), len(members))
            rows = np.concatenate([members[g] for g in pick])
            return [a[rows] for a in arrays]

    boots = bootstrap_replicates(statistic, draw, n_boot)
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha]) if len(boots) else (math.nan, math.nan)
    return contain(Estimate(value, float(low), float(high), level, "percentile bootstrap", len(boots)))


def bootstrap_replicates(statistic: Callable[..., float], draw: Callable[[], list[np.ndarray]],
                         n_boot: int) -> np.ndarray:
    """`statistic` on `n_boot` resamples from `draw()`, NaN replicates dropped."""
    boots = np.array([statistic(*draw()) for _ in range(n_boot)], dtype=np.float64)
    return boots[~np.isnan(boots)]


def contain(e: Estimate) -> Estimate:
    """`e` with its interval widened to hold the point value, if it did not (a skewed or biased
    statistic), and the method saying so: a reported value always lies inside its interval."""
    if not (math.isfinite(e.value) and math.isfinite(e.low) and math.isfinite(e.high)):
        return e
    if e.low <= e.value <= e.high:
        return e
    return Estimate(e.value, min(e.low, e.value), max(e.high, e.value), e.level,
                    e.method + " (widened to include the point estimate)", e.n)


def mean_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n); 0 for n = 1)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise UserError("mean_sem needs at least one value")
    sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), sem


def mean_ci(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean over seeds with a Student-t CI: mean +- t_{n-1} * sd / sqrt(n).

    NaN values (a seed whose metric is undefined, e.g. AUROC with one class) are left out and
    `n` counts the rest; all NaN gives NaN value and interval with n = 0. One value gives a
    zero-width interval. An empty input is a UserError.
    """
    from scipy import stats

    _check_level(level)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise UserError("mean_ci needs at least one value")
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, level, "t over seeds", 0)
    mean = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Estimate(mean, mean - half, mean + half, level, "t over seeds", n)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (Wilson, 1927; scipy `binomtest`);
    (0, 1) when n = 0."""
    from scipy.stats import binomtest

    _check_level(level)
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))
