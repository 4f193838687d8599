"""Classification metrics (scikit-learn): balanced accuracy, per-class recall, confusion matrix,
AUROC and AUPRC of a score.

Undefined values are NaN, not errors, so that a bootstrap replicate or a seed lacking a class
can be dropped (`bootstrap_ci`, `mean_ci` leave NaN out): AUROC and AUPRC need both classes,
a class recall needs the class to occur. Inputs a user gets wrong (lengths differ, NaN scores)
raise `UserError`.
"""

from __future__ import annotations

import numpy as np

from genmed.errors import UserError


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y_true` (sklearn `balanced_accuracy_score`)."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # a bootstrap resample may lack a predicted class
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def class_recall(y_true: np.ndarray, y_pred: np.ndarray, cls: int) -> float:
    """Recall (sensitivity) of class `cls`; NaN when it never occurs in `y_true`."""
    m = np.asarray(y_true) == cls
    return float((np.asarray(y_pred)[m] == cls).mean()) if m.any() else float("nan")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = truth, columns = prediction (sklearn)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def _binary(labels, scores) -> tuple[np.ndarray, np.ndarray] | None:
    y = np.asarray(labels).reshape(-1).astype(bool)
    s = np.asarray(scores, np.float64).reshape(-1)
    if len(y) != len(s):
        raise UserError(f"{len(s)} scores but {len(y)} labels")
    if not np.isfinite(s).all():
        raise UserError("scores contain NaN or infinite values")
    return None if y.all() or not y.any() else (y, s)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of `scores` (higher = positive) for binary `labels`: P(score of a
    random positive > a random negative), ties 1/2 (Mann-Whitney; sklearn `roc_auc_score`).
    NaN with one class only."""
    from sklearn.metrics import roc_auc_score

    ys = _binary(labels, scores)
    return float("nan") if ys is None else float(roc_auc_score(*ys))


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: step-wise area under the precision-recall curve (sklearn
    `average_precision_score`). NaN with one class only."""
    from sklearn.metrics import average_precision_score

    ys = _binary(labels, scores)
    return float("nan") if ys is None else float(average_precision_score(*ys))
