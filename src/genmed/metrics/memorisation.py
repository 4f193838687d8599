"""Memorisation audit: are generated images closer to training images than new real ones are?

For each generated sample, the distance to its nearest training image is compared with the
same distance for held-out real images (which the model never saw). A model that copies its
training set puts many samples much closer to a training image than held-out images ever get
(cf. Carlini et al. 2023, "Extracting training data from diffusion models"; Meehan et al.
2020, "A non-parametric test to detect data-copying in generative models").
The threshold defaults to the `quantile` (5%) of the held-out distances, so a model that does
not copy flags about 5% of its samples; the share flagged, the Mann-Whitney U test of
"samples are closer than held-out images" and the closest pairs are reported.
Distances are Euclidean in the space of the arrays given: pixels (flattened, RMS per pixel) or
extractor features; the result names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genmed.errors import UserError
from genmed.metrics.fid import check_features


@dataclass(frozen=True)
class MemorisationAudit:
    space: str
    threshold: float
    threshold_rule: str
    share_flagged: float  # share of samples with nearest-train distance < threshold
    share_heldout_below: float  # same share for held-out real images (the reference)
    median_sample_distance: float
    median_heldout_distance: float
    mannwhitney_p: float  # one-sided p that sample distances are stochastically smaller
    closest_pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (sample, train, d)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["closest_pairs"] = [
            {"sample": s, "train": t, "distance": d} for s, t, d in self.closest_pairs
        ]
        return out


def flatten_rms(images) -> np.ndarray:
    """Images (n, ...) -> (n, P) divided by sqrt(P): Euclidean distance = RMS pixel difference."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise UserError(f"images: expected (n, ...) array, got shape {x.shape}")
    x = x.reshape(len(x), -1)
    return x / np.sqrt(x.shape[1])


def nearest_train(queries: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest training row (sklearn NearestNeighbors).

    The distance is recomputed directly from the difference: the search's brute-force path
    uses |a|^2 + |b|^2 - 2 a.b, whose rounding depends on the BLAS kernel (1e-8, not 0, for an
    exact copy on an AVX2 CPU), and an exact copy is what a memorisation audit must see as 0."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(train)
    _, idx = nn.kneighbors(queries)
    idx = idx[:, 0]
    return np.linalg.norm(np.asarray(queries) - np.asarray(train)[idx], axis=1), idx


def memorisation_audit(
    samples,
    train,
    heldout,
    *,
    space: str = "pixels",
    threshold: float | None = None,
    quantile: float = 0.05,
    n_pairs: int = 8,
) -> MemorisationAudit:
    """Audit `samples` (m, d) against `train` (n, d) with `heldout` (h, d) as reference.

    Give `threshold` (same units as the arrays) or let it be the `quantile` of the held-out
    nearest-train distances.
    """
    from scipy.stats import mannwhitneyu

    s = check_features("samples", samples, 1)
    t = check_features("train", train, 1)
    h = check_features("heldout", heldout, 2)
    if not (s.shape[1] == t.shape[1] == h.shape[1]):
        raise UserError(
            f"sizes differ: samples {s.shape[1]}, train {t.shape[1]}, heldout {h.shape[1]}"
        )
    if not 0 < quantile < 1:
        raise UserError(f"quantile={quantile} must be in (0, 1)")
    ds, idx = nearest_train(s, t)
    dh, _ = nearest_train(h, t)
    if threshold is None:
        thr = float(np.quantile(dh, quantile))
        rule = f"{quantile:g} quantile of held-out nearest-train distances"
    else:
        if threshold < 0:
            raise UserError(f"threshold={threshold} must be >= 0")
        thr, rule = float(threshold), "given"
    p = float(mannwhitneyu(ds, dh, alternative="less").pvalue)
    order = np.argsort(ds)[:n_pairs]
    return MemorisationAudit(
        space=space,
        threshold=thr,
        threshold_rule=rule,
        share_flagged=float((ds < thr).mean()),
        share_heldout_below=float((dh < thr).mean()),
        median_sample_distance=float(np.median(ds)),
        median_heldout_distance=float(np.median(dh)),
        mannwhitney_p=p,
        closest_pairs=[(int(i), int(idx[i]), float(ds[i])) for i in order],
    )
