"""Class fidelity of a conditional generator, read through an imperfect classifier."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.errors import UserError
from genmed.pipeline.class_fidelity import class_share_gap, generated_confusion, reader_confusion


def code_reader(x: np.ndarray) -> np.ndarray:
    """A 'classifier' that reads the class written into an image's mean (0, 1, 2)."""
    k = np.clip(np.rint(x.mean((1, 2))), 0, 2).astype(int)
    return np.eye(3)[k]


def obeying(cls: int, n: int, seed: int) -> np.ndarray:
    return np.full((n, 4, 4), float(cls))


def ignoring(cls: int, n: int, seed: int) -> np.ndarray:
    return np.zeros((n, 4, 4))


def test_reader_confusion_rows_are_shares_per_true_class():
    label = np.array([0, 0, 0, 0, 1, 1, 2])
    read = np.array([0, 0, 0, 1, 1, 2, 2])
    conf = reader_confusion(label, np.eye(3)[read])
    np.testing.assert_allclose(conf, [[0.75, 0.25, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert np.isnan(reader_confusion(np.zeros(3, int), np.eye(3)[[0, 0, 1]])[1:]).all()


def test_an_obeying_generator_reads_as_the_identity_and_an_ignoring_one_does_not():
    np.testing.assert_allclose(generated_confusion(obeying, code_reader, 3, 5, seed=0), np.eye(3))
    np.testing.assert_allclose(generated_confusion(ignoring, code_reader, 3, 5, seed=0),
                               [[1, 0, 0]] * 3)
    with pytest.raises(UserError, match="n=0"):
        generated_confusion(obeying, code_reader, 3, 0, seed=0)


def test_the_share_gap_at_data_frequencies_hides_what_uniform_ones_show():
    """A generator that draws only the common class is 0.1 off at the data's frequencies
    (90% of that class) and 2/3 off at uniform ones: why the study reports both."""
    real = np.eye(3)
    ignore = np.array([[1.0, 0, 0]] * 3)
    skewed = class_share_gap(np.array([0.9, 0.08, 0.02]), ignore, real)
    assert skewed["max_gap"] == pytest.approx(0.1)
    np.testing.assert_allclose(skewed["generated_shares"], [1, 0, 0])
    assert class_share_gap(np.full(3, 1 / 3), ignore, real)["max_gap"] == pytest.approx(2 / 3)
    assert class_share_gap(np.full(3, 1 / 3), real, real)["max_gap"] == 0
    with pytest.raises(UserError, match="sum to 1"):
        class_share_gap(np.array([0.5, 0.2, 0.2]), real, real)
