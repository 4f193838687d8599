"""Anomaly-detection scores: image-level AUROC/AUPRC with bootstrap CIs, pixel-level Dice and
AUPRO of anomaly maps against lesion masks.

Image level: AUROC (Mann-Whitney) and AUPRC (average precision) from scikit-learn, 95% CIs by a
stratified percentile bootstrap (positives and negatives resampled on their own).
Pixel level: Dice of the thresholded map at the best threshold over the whole test set (an
upper bound, as in AnoDDPM, Wyatt et al. 2022, Table 1), and AUPRO, the area under the
per-region-overlap vs false-positive-rate curve up to FPR 0.3, divided by 0.3 (Bergmann et al.
2021, MVTec AD, Sec. 4.2; regions are 8-connected as in the MVTec AD evaluation code); both
pooled over all test images. Intervals are written as {"value", "low", "high"}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genmed.errors import UserError
from genmed.metrics.classification import auprc, auroc
from genmed.metrics.stats import bootstrap_ci


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(scores, np.float64).reshape(-1), np.asarray(labels).reshape(-1).astype(bool)
    if len(s) != len(y):
        raise UserError(f"{len(s)} scores but {len(y)} labels")
    if y.all() or not y.any():
        raise UserError("AUROC needs both anomalous and normal images in the test set")
    if not np.isfinite(s).all():
        raise UserError("anomaly scores contain NaN or infinite values")
    return s, y


def _two_sample(metric):
    """metric(labels, scores) as a statistic of (positive scores, negative scores)."""
    def stat(pos: np.ndarray, neg: np.ndarray) -> float:
        return metric(np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)], np.r_[pos, neg])
    return stat


def _ci(metric, pos: np.ndarray, neg: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    if len(pos) < 2 or len(neg) < 2:
        raise UserError("a bootstrap CI needs at least 2 values in every group")
    return bootstrap_ci(_two_sample(metric), pos, neg, n_boot=n_boot, seed=seed).interval()


def image_level(scores: np.ndarray, labels: np.ndarray, n_boot: int = 200,
                seed: int = 0) -> dict[str, Any]:
    """AUROC and AUPRC of `scores` (higher = anomalous) for binary `labels`, with 95% CIs."""
    s, y = _check(scores, labels)
    pos, neg = s[y], s[~y]
    return {"auroc": _ci(auroc, pos, neg, n_boot, seed),
            "auprc": _ci(auprc, pos, neg, n_boot, seed),
            "n_pos": int(y.sum()), "n_neg": int((~y).sum()), "prevalence": float(y.mean())}


def best_dice(maps: np.ndarray, masks: np.ndarray, n_thresholds: int = 60) -> dict[str, float]:
    """Best pooled Dice of (maps >= threshold) vs masks over thresholds at upper quantiles."""
    m, g = np.asarray(maps, np.float64), np.asarray(masks).astype(bool)
    if m.shape != g.shape:
        raise UserError(f"anomaly maps {m.shape} and lesion masks {g.shape} differ in shape")
    qs = 1.0 - np.geomspace(0.3, 1e-4, n_thresholds)
    best = (0.0, float(m.max()))
    for th in np.quantile(m, qs):
        pred = m >= th
        denom = pred.sum() + g.sum()
        d = 2.0 * (pred & g).sum() / denom if denom else 0.0
        if d > best[0]:
            best = (float(d), float(th))
    return {"dice": best[0], "threshold": best[1]}


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_max: float = 0.3, n_points: int = 31) -> float:
    """Normalised area under the PRO curve up to `fpr_max` (Bergmann et al. 2021).

    `maps`, `masks`: (N, *spatial); each image's lesion regions are its 8-connected components
    (26 in 3-D: `ndimage.label` with a full 3^d structure, as the MVTec AD evaluation code).
    """
    from scipy import ndimage

    m, g = np.asarray(maps, np.float64), np.asarray(masks).astype(bool)
    if m.shape != g.shape:
        raise UserError(f"anomaly maps {m.shape} and lesion masks {g.shape} differ in shape")
    if not g.any() or g.all():
        raise UserError("AUPRO needs lesion pixels and normal pixels")
    structure = np.ones((3,) * (g.ndim - 1), bool)
    regions = []
    for i in range(len(g)):
        lab, n = ndimage.label(g[i], structure=structure)
        regions += [(i, lab == k) for k in range(1, n + 1)]
    fprs = np.linspace(0.0, fpr_max, n_points)
    thresholds = np.quantile(m[~g], 1.0 - fprs)  # threshold at which the pixel FPR is `fpr`
    pros = [np.mean([(m[i][r] >= th).mean() for i, r in regions]) for th in thresholds]
    return float(np.trapezoid(pros, fprs) / fpr_max)


def pixel_level(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Best Dice (and its threshold) and AUPRO@0.3 of anomaly maps vs lesion masks."""
    return {**best_dice(maps, masks), "aupro": aupro(maps, masks)}


def auroc_by_group(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                   n_boot: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """AUROC per group value: positives of the group vs negatives of the same group, or vs
    all negatives where a negative has no group (lesion size: negatives have none, -1)."""
    s, y = _check(scores, labels)
    g = np.asarray(groups)
    out = []
    for val in sorted(set(g[y].tolist())):
        pos = s[y & (g == val)]
        neg = s[~y & (g == val)] if (~y & (g == val)).any() else s[~y & (g < 0)]
        if len(pos) < 2 or len(neg) < 2:
            continue
        out.append({"group": val, "n_pos": len(pos), "n_neg": len(neg),
                    "auroc": _ci(auroc, pos, neg, n_boot, seed)})
    return out
