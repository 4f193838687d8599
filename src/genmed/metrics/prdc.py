"""Precision / recall and density / coverage on k-NN manifolds of feature sets.

- Precision and recall: Kynkaanniemi et al. (2019), "Improved precision and recall metric for
  assessing generative models", Eq. (1)-(3): the real (fake) manifold is the union of balls
  around each real (fake) feature with radius its distance to its k-th nearest neighbour;
  precision = share of fakes inside the real manifold; recall = share of reals inside the fake
  manifold.
- Density and coverage: Naeem et al. (2020), "Reliable fidelity and diversity metrics for
  generative models", Eq. (3)-(4): density = (1 / kM) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))];
  coverage = (1/N) sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]. Only real-sample balls are
  used, so outlier fakes do not inflate them.
Precision and density measure fidelity; recall and coverage measure diversity.

Ball membership is strict, d < r, as in the reference implementation of Naeem et al. (the
`prdc` package, `compute_prdc`), so a point exactly on a ball's boundary (e.g. a duplicate of the
k-th neighbour) is outside and the numbers match theirs. Ties have probability zero for
continuous features, so the choice matters only for duplicated or quantised features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genmed.errors import UserError
from genmed.metrics.fid import check_features
from genmed.metrics.stats import Estimate


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def knn_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its k-th nearest other row (sklearn NearestNeighbors)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(feats)
    dist, _ = nn.kneighbors(feats)  # column 0 is the point itself (distance 0)
    return dist[:, k]


def _pairwise(a: np.ndarray, b: np.ndarray, chunk: int = 2048):
    """Yield (start, distances (chunk, len(b))) blocks of Euclidean distances a -> b."""
    from sklearn.metrics import pairwise_distances

    for s in range(0, len(a), chunk):
        yield s, pairwise_distances(a[s : s + chunk], b)


def prdc_indicators(real, fake, k: int = 5) -> dict[str, np.ndarray]:
    """Per-sample terms: "precision", "density" (per fake), "recall", "coverage" (per real);
    each metric is the mean of its array (density divided by k)."""
    if k < 1:
        raise UserError(f"k={k} must be >= 1")
    r = check_features("real", real, k + 1)
    f = check_features("fake", fake, k + 1)
    if r.shape[1] != f.shape[1]:
        raise UserError(f"feature sizes differ: real has {r.shape[1]}, fake has {f.shape[1]}")
    r_rad = knn_radii(r, k)
    f_rad = knn_radii(f, k)
    in_real = np.zeros(len(f), dtype=bool)  # fake j inside some real ball (precision)
    density_hits = np.zeros(len(f))  # number of real balls containing fake j
    covered = np.zeros(len(r), dtype=bool)  # real i's ball contains some fake (coverage)
    in_fake = np.zeros(len(r), dtype=bool)  # real i inside some fake ball (recall)
    for s, d in _pairwise(f, r):  # d: (chunk of fakes, n reals)
        inside = d < r_rad[None, :]
        in_real[s : s + len(d)] = inside.any(1)
        density_hits[s : s + len(d)] = inside.sum(1)
        covered |= inside.any(0)
        in_fake |= (d < f_rad[s : s + len(d), None]).any(0)
    return {
        "precision": in_real.astype(np.float64),
        "density": density_hits / k,
        "recall": in_fake.astype(np.float64),
        "coverage": covered.astype(np.float64),
    }


def prdc(real, fake, k: int = 5) -> PRDC:
    """Precision, recall, density, coverage of fake (m, d) against real (n, d) features."""
    ind = prdc_indicators(real, fake, k)
    return PRDC(**{name: float(v.mean()) for name, v in ind.items()}, k=k)


def prdc_ci(
    real, fake, k: int = 5, *, n_boot: int = 200, level: float = 0.95, seed: int = 0
) -> dict[str, Estimate]:
    """Each metric with a percentile-bootstrap CI over its per-sample terms.

    The k-NN manifolds are held fixed (resampling with replacement would create zero-radius
    duplicate balls), so the interval reflects which samples were drawn given the manifolds.
    """
    from genmed.metrics.stats import bootstrap_ci

    ind = prdc_indicators(real, fake, k)
    return {
        name: bootstrap_ci(np.mean, v, n_boot=n_boot, level=level, seed=seed)
        for name, v in ind.items()
    }
