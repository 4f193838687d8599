"""The engine-trained domain extractor (models/extractor.py): SimCLR training on unlabelled
slices makes the features separate two visibly different sets far better than random init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model
from genmed.models.extractor import nt_xent
from genmed.train.fitting import DictDataset, fit


def bodies(n: int, size: int = 32, seed: int = 0, nuisance: float = 0.4):
    """(images (n, 1, size, size) in [-1, 1], kind (n,)): a body ellipse with two bright
    'kidneys' (kind 0) or without them (kind 1), under a random contrast x (1 +- nuisance) and
    brightness +- nuisance per image: the scanner-to-scanner variation random features see."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    kind = rng.integers(0, 2, n)
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        a, b = rng.uniform(0.7, 0.9), rng.uniform(0.5, 0.7)
        img = np.where((xx / a) ** 2 + (yy / b) ** 2 < 1, -0.2, -1.0)
        if kind[i] == 0:
            for side in (-1, 1):
                cx, cy, r = side * rng.uniform(0.3, 0.45), rng.uniform(-0.1, 0.2), rng.uniform(0.12, 0.18)
                img = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < r**2, 0.4, img)
        img = img * rng.uniform(1 - nuisance, 1 + nuisance) + rng.uniform(-nuisance, nuisance)
        out[i, 0] = img + rng.normal(0, 0.03, img.shape)
    return np.clip(out, -1, 1), kind


def separation(model, images: np.ndarray, kind: np.ndarray) -> float:
    """Squared distance of the two kinds' mean features over their mean within-kind feature
    variance (trace): FID's mean term in units of the sets' own spread; scale-free."""
    with torch.no_grad():
        f = model.features(torch.from_numpy(images)).double().numpy()
    f0, f1 = f[kind == 0], f[kind == 1]
    within = 0.5 * (f0.var(0).sum() + f1.var(0).sum())
    return float(((f0.mean(0) - f1.mean(0)) ** 2).sum() / within)


def knn_accuracy(model, train, y_train, test, y_test, k: int = 5) -> float:
    with torch.no_grad():
        a = model.features(torch.from_numpy(train)).double().numpy()
        b = model.features(torch.from_numpy(test)).double().numpy()
    mu, sd = a.mean(0), a.std(0) + 1e-9
    d = ((((b - mu) / sd)[:, None] - ((a - mu) / sd)[None]) ** 2).sum(-1)
    votes = y_train[np.argsort(d, 1)[:, :k]].mean(1)
    return float(((votes > 0.5).astype(int) == y_test).mean())


def test_contrastive_training_separates_sets_better_than_random_init():
    torch.set_num_threads(1)
    unlabelled, _ = bodies(256, seed=0)  # kinds mixed, labels never shown
    probe, y_probe = bodies(100, seed=1)
    test, y_test = bodies(100, seed=2)
    torch.manual_seed(0)
    model = build_model("extractor", size=32, width=8, temperature=0.5, jitter=0.4)
    sep0 = separation(model, test, y_test)
    acc0 = knn_accuracy(model, probe, y_probe, test, y_test)
    fit(model, DictDataset(image=torch.from_numpy(unlabelled)), steps=100, batch_size=32, seed=0,
        device="cpu")
    sep1 = separation(model, test, y_test)
    acc1 = knn_accuracy(model, probe, y_probe, test, y_test)
    print(f"separation random {sep0:.3f} trained {sep1:.3f}; 5-NN accuracy {acc0:.2f} -> {acc1:.2f}")
    assert sep1 > 3 * sep0 and sep1 > 3.0  # measured: 0.73 -> 7.2 (seed 0)
    assert acc1 >= acc0 and acc1 >= 0.95


def test_nt_xent_per_sample_and_lowest_for_matching_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=g)
    same = nt_xent(z, z, 0.2)
    other = nt_xent(z, torch.randn(8, 16, generator=g), 0.2)
    assert same.shape == (8,) and bool((same < other).all())
    assert torch.isfinite(nt_xent(z[:1], z[:1], 0.2)).all()  # a batch of one: no negatives


def test_supervised_loss_ignores_unlabelled_items():
    torch.manual_seed(0)
    model = build_model("extractor", size=16, width=4, classes=2, objective="supervised")
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    out = model({"image": x, "label": torch.tensor([0, 1, -1, -1])})
    assert out["loss"].shape == (4,) and bool((out["loss"][2:] == 0).all())
    assert model.predict(x).shape == (4,)


@pytest.mark.parametrize("opts,match", [
    (dict(objective="both"), "needs labels"),
    (dict(size=8), "between 16 and 512"),
    (dict(crop_scale=(0.9, 0.5)), "crop_scale"),
])
def test_bad_config_is_refused(opts, match):
    with pytest.raises(UserError, match=match):
        build_model("extractor", **{"size": 32, **opts})
