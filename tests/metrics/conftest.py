"""Synthetic ellipse 'slices' for metric tests (the phantom is not needed for these)."""

from __future__ import annotations

import numpy as np
import pytest


def ellipse_images(n: int, size: int = 32, seed: int = 0, classes: tuple[int, ...] = (0, 1, 2)):
    """(images (n, 1, size, size) in [-1, 1], labels (n,)): a body ellipse with two 'kidneys';
    class 1 adds a dark round blob, class 2 a bright irregular one. Shapes vary continuously."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    images = np.empty((n, 1, size, size), dtype=np.float32)
    labels = rng.choice(np.asarray(classes), n)
    for i in range(n):
        a, b = rng.uniform(0.7, 0.9), rng.uniform(0.5, 0.7)
        img = np.where((xx / a) ** 2 + (yy / b) ** 2 < 1, -0.2, -1.0)
        for side in (-1, 1):
            cx, cy, r = side * rng.uniform(0.3, 0.45), rng.uniform(-0.1, 0.2), rng.uniform(0.12, 0.18)
            img = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < r**2, 0.4, img)
        if labels[i]:
            cx, cy = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.0)
            r = rng.uniform(0.08, 0.14) * (1 + (labels[i] == 2) * 0.3 * np.sin(5 * np.arctan2(yy - cy, xx - cx)))
            img = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < r**2, -0.6 if labels[i] == 1 else 0.9, img)
        images[i, 0] = img + rng.normal(0, 0.02, img.shape)
    return np.clip(images, -1, 1), labels.astype(np.int64)


@pytest.fixture(scope="session")
def ellipses():
    return ellipse_images
