"""Dice, lesion coverage and crops on cases whose answers are known (classification metrics:
tests/metrics/test_classification.py)."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.pipeline.classifier import crop_kidneys
from genmed.pipeline.segmentation import dice_per_slice, lesion_coverage


def test_dice_known_overlap():
    pred = np.zeros((3, 8, 8), np.uint8)
    truth = np.zeros((3, 8, 8), np.uint8)
    pred[0, 0, :4] = 1  # 4 pixels
    truth[0, 0, 2:6] = 1  # 4 pixels, 2 shared -> 2*2/(4+4)
    pred[1, 2:4, 2:4] = truth[1, 2:4, 2:4] = 1  # identical
    # slice 2: both empty
    np.testing.assert_allclose(dice_per_slice(pred, truth), [0.5, 1.0, 1.0])
    pred[2, 0, 0] = 1  # prediction where there is no kidney
    assert dice_per_slice(pred, truth)[2] == 0.0


def test_lesion_coverage_known():
    pred = np.zeros((2, 6, 6), np.uint8)
    lesion = np.zeros((2, 6, 6), np.uint8)
    lesion[0, 1, 1:5] = 1
    pred[0, :, :3] = 1  # covers columns 1, 2 of the 4 lesion pixels
    cov = lesion_coverage(pred, lesion)
    assert cov[0] == pytest.approx(0.5) and np.isnan(cov[1])


def test_crop_hides_everything_outside_the_mask():
    img = np.full((1, 32, 32), 0.5, np.float32)
    img[0, 20, 5] = 1.0  # a bright "lesion" outside the kidney mask
    mask = np.zeros((1, 32, 32), np.uint8)
    mask[0, 14:18, 10:22] = 1
    x = crop_kidneys(img, mask, (12, 24), margin=0)
    assert x.shape == (1, 2, 12, 24)
    assert x[0, 1].sum() == mask.sum()  # the mask channel holds every kidney pixel
    assert set(np.unique(x[0, 0].numpy())) == {-1.0, 0.5}  # the outside lesion is not visible
    big = np.zeros((1, 32, 32), np.uint8)
    big[0, 2:30, 1:31] = 1  # larger than the window: resized, still 2 x 12 x 24
    assert crop_kidneys(img, big, (12, 24)).shape == (1, 2, 12, 24)
