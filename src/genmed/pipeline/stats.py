"""Classification metrics and confidence intervals used across the pipeline.

Intervals: across seeds, a Student-t interval of the mean; within one run, a percentile
bootstrap that resamples whole patients (slices of a patient are not independent).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genmed.data.phantom import LABELS

MALIGNANT = LABELS.index("malignant")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y_true` (sklearn)."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # a bootstrap resample may lack a predicted class
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def class_recall(y_true: np.ndarray, y_pred: np.ndarray, cls: int = MALIGNANT) -> float:
    """Recall of class `cls` (nan when it never occurs)."""
    m = np.asarray(y_true) == cls
    return float((np.asarray(y_pred)[m] == cls).mean()) if m.any() else float("nan")


def auroc(y_true: np.ndarray, score: np.ndarray, cls: int = MALIGNANT) -> float:
    """AUROC of `score` for class `cls` vs the rest (sklearn); nan with one class only."""
    from sklearn.metrics import roc_auc_score

    pos = np.asarray(y_true) == cls
    if pos.all() or not pos.any():
        return float("nan")
    return float(roc_auc_score(pos, score))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(LABELS)) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = truth, columns = prediction (sklearn)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean of `values` (nan-free); one value -> no width."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (float("nan"),) * 3
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, groups: np.ndarray, *,
                 n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high) of `stat(index)` with a percentile bootstrap over `groups` (patients)."""
    groups = np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.nonzero(inverse == g)[0] for g in range(len(uniq))]
    est = stat(np.arange(n))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        v = stat(np.concatenate([members[g] for g in pick]))
        if not np.isnan(v):
            vals.append(v)
    if not vals:
        return float(est), float("nan"), float("nan")
    lo, hi = np.quantile(vals, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(est), float(lo), float(hi)
