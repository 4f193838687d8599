"""Memorisation audit flags copied training images and passes fresh ones."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.metrics import flatten_rms, memorisation_audit
from genmed.metrics.memorisation import nearest_train


def test_duplicated_training_images_are_flagged(ellipses):
    train, _ = ellipses(120, seed=0)
    heldout, _ = ellipses(80, seed=1)
    fresh, _ = ellipses(60, seed=2)
    rng = np.random.default_rng(0)
    copies = train[rng.choice(len(train), 60)] + rng.normal(0, 0.005, (60, *train.shape[1:]))
    ok = memorisation_audit(flatten_rms(fresh), flatten_rms(train), flatten_rms(heldout))
    bad = memorisation_audit(flatten_rms(copies), flatten_rms(train), flatten_rms(heldout))
    assert ok.share_flagged < 0.2 and ok.mannwhitney_p > 0.01
    assert bad.share_flagged > 0.95 and bad.mannwhitney_p < 1e-6
    assert bad.median_sample_distance < 0.2 * bad.median_heldout_distance
    s, t, d = bad.closest_pairs[0]
    assert np.isclose(np.sqrt(((flatten_rms(copies)[s] - flatten_rms(train)[t]) ** 2).sum()), d)
    assert bad.to_dict()["closest_pairs"][0]["sample"] == s


def test_given_threshold():
    rng = np.random.default_rng(0)
    t, h = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    a = memorisation_audit(t[:10], t, h, threshold=1e-9, space="features")
    assert a.share_flagged == 1.0 and a.threshold_rule == "given" and a.space == "features"


def test_bad_input():
    z = np.zeros((5, 4))
    with pytest.raises(UserError, match="sizes differ"):
        memorisation_audit(z, np.zeros((5, 3)), z)
    with pytest.raises(UserError, match="quantile"):
        memorisation_audit(z, z, z, quantile=1.5)
    with pytest.raises(UserError, match="threshold"):
        memorisation_audit(z, z, z, threshold=-1.0)


def test_an_exact_copy_is_at_distance_exactly_zero():
    """Large-valued rows: the search's |a|^2 + |b|^2 - 2 a.b leaves about 3e-4 for a copy
    (seen on an AVX2 CPU); the recomputed distance is 0, and a non-copy keeps its distance."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 4096)) * 100 + 300
    queries = np.concatenate([train[[3, 7, 11]], train[[5]] + 1.0])
    dist, idx = nearest_train(queries, train)
    assert idx.tolist() == [3, 7, 11, 5]
    assert dist[:3].tolist() == [0.0, 0.0, 0.0]
    assert dist[3] == pytest.approx(64.0)  # sqrt(4096 * 1^2)
