"""Classification metrics on cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import auprc, auroc, balanced_accuracy, class_recall, confusion


def test_classification_metrics_known():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert class_recall(y_true, y_pred, 2) == pytest.approx(0.5)
    assert math.isnan(class_recall(y_true, y_pred, 3))
    assert confusion(y_true, y_pred, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_auroc_known_values():
    assert auroc([1, 1, 0, 0], [2.0, 3.0, 0.0, 1.0]) == 1.0
    assert auroc([1, 1, 0, 0], [0.0, 1.0, 2.0, 3.0]) == 0.0
    # pos 3..7 vs neg 0..9: 25 wins + 5 ties / 50 pairs
    assert auroc(np.r_[np.ones(5), np.zeros(10)], np.r_[np.arange(5) + 3.0, np.arange(10.0)]) == pytest.approx(0.55)
    assert math.isnan(auroc(np.zeros(4), np.arange(4.0)))  # one class: undefined


def test_auprc_known_value():
    # ranking pos, neg, pos: precision 1 at recall 1/2, 2/3 at recall 1 -> AP = (1 + 2/3) / 2
    assert auprc([1, 0, 1], [3.0, 2.0, 1.0]) == pytest.approx(5 / 6)
    assert math.isnan(auprc(np.ones(3), np.arange(3.0)))


def test_bad_scores_are_user_errors():
    with pytest.raises(UserError, match="labels"):
        auroc([1, 0], [0.5])
    with pytest.raises(UserError, match="NaN"):
        auprc([1, 0], [0.5, math.nan])
