"""Bayes' rule for label shift: closed forms, and the rare class recovered on an easy case."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics.classification import balanced_accuracy, class_recall
from genmed.pipeline.prior_shift import class_prior, prior_corrected


def test_class_prior_counts_and_balanced_weights():
    y = np.array([0] * 90 + [1] * 8 + [2] * 2)
    np.testing.assert_allclose(class_prior(y, 3), [0.9, 0.08, 0.02])
    counts = np.bincount(y)
    balanced = len(y) / (3 * counts)  # sklearn's "balanced" class weights
    np.testing.assert_allclose(class_prior(y, 3, weights=balanced), [1 / 3] * 3)
    with pytest.raises(UserError, match="beyond"):
        class_prior(np.array([0, 3]), 3)


def test_prior_corrected_closed_form():
    p = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    pi = np.array([0.8, 0.15, 0.05])
    # by hand, row 0: (0.7/0.8, 0.2/0.15, 0.1/0.05) / sum
    w = np.array([0.7 / 0.8, 0.2 / 0.15, 0.1 / 0.05])
    np.testing.assert_allclose(prior_corrected(p, pi)[0], w / w.sum())
    np.testing.assert_allclose(prior_corrected(p, pi, target_prior=pi), p)  # no shift, no change
    np.testing.assert_allclose(prior_corrected(p, np.full(3, 1 / 3)), p)  # uniform to uniform
    np.testing.assert_allclose(prior_corrected(p, pi).sum(-1), 1)
    np.testing.assert_allclose(prior_corrected(np.array([[0.3, 0.7]]), np.array([1.0, 0.0])), [[1.0, 0.0]])  # never trained on
    with pytest.raises(UserError, match="priors"):
        prior_corrected(p, np.array([0.5, 0.5]))


def test_correction_finds_the_rare_class_an_imbalanced_classifier_misses():
    """Logistic regression on 2-D Gaussians with the rare class at 3%: its arg-max misses most
    rare test points; corrected to a uniform prior it finds most, with higher balanced accuracy."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [1.6, 1.6]])

    def draw(n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat([0, 1], [n0, n1])
        return means[y] + rng.standard_normal((len(y), 2)), y

    x, y = draw(970, 30)
    x_test, y_test = draw(500, 500)
    proba = LogisticRegression().fit(x, y).predict_proba(x_test)
    plain = proba.argmax(1)
    fixed = prior_corrected(proba, class_prior(y, 2)).argmax(1)
    assert class_recall(y_test, plain, 1) < 0.45
    assert class_recall(y_test, fixed, 1) > 0.8
    assert balanced_accuracy(y_test, fixed) > balanced_accuracy(y_test, plain) + 0.15
