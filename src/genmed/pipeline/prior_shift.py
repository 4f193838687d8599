"""Post-hoc correction of a classifier for the class prior it was trained on (label shift).

A classifier trained on a set where the malignant class is 1% of the crops learns
p(y | x) under that prior, and its arg-max rarely says "malignant" even when it ranks the
malignant crops well. Bayes' rule moves it to another prior without retraining (Saerens,
Latinne & Decaestecker 2002, "Adjusting the outputs of a classifier to new a priori
probabilities"):

    p'(y | x) = p(y | x) q(y) / pi(y), renormalised over y,

with pi the training prior and q the target prior. With q uniform the arg-max minimises the
balanced error; this is the post-hoc logit adjustment of Menon et al. 2021 ("Long-tail
learning via logit adjustment", with tau = 1). It is the cheap baseline any
class-imbalance remedy (re-weighting, oversampling, synthetic data) has to beat.
"""

from __future__ import annotations

import numpy as np

from genmed.errors import UserError


def class_prior(labels: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Share of each class among `labels` ((n_classes,), sums to 1). With per-class loss
    `weights` (as class-balanced cross-entropy uses) the effective prior is share x weight,
    renormalised: balanced weights give the uniform prior."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=n_classes).astype(np.float64)
    if len(counts) != n_classes:
        raise UserError(f"labels hold class {len(counts) - 1}, beyond the {n_classes} classes")
    if weights is not None:
        counts = counts * np.asarray(weights, np.float64)
    if counts.sum() <= 0:
        raise UserError("no labels to take a class prior from")
    return counts / counts.sum()


def prior_corrected(proba: np.ndarray, train_prior: np.ndarray, target_prior: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities (..., K) moved from `train_prior` to `target_prior` (uniform when
    None) by Bayes' rule. A class absent from training (prior 0) gets probability 0; a row whose
    whole mass sat on such classes becomes uniform."""
    proba = np.asarray(proba, np.float64)
    k = proba.shape[-1]
    pi = np.asarray(train_prior, np.float64)
    q = np.full(k, 1.0 / k) if target_prior is None else np.asarray(target_prior, np.float64)
    if pi.shape != (k,) or q.shape != (k,) or (pi < 0).any() or (q < 0).any():
        raise UserError(f"priors must be {k} non-negative numbers, one per class")
    ratio = np.divide(q, pi, out=np.zeros(k), where=pi > 0)
    out = proba * ratio
    total = out.sum(-1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / k), where=total > 0)
