"""Segmenter, classifier and regressor: the supervised models the one engine trains."""

from __future__ import annotations

import pytest
import torch

from genmed.config import to_dict
from genmed.errors import UserError
from genmed.models import (Classifier, Regressor, Segmenter, balanced_weights, build_model,
                           build_model_from_config, model_config_dict)
from genmed.models.supervised import random_crops
from genmed.train import DictDataset, fit


def squares(n: int = 32, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images of one bright square each, and its mask (B, 1, size, size)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, size, size), -0.6) + 0.1 * torch.randn((n, 1, size, size), generator=g)
    mask = torch.zeros((n, 1, size, size), dtype=torch.long)
    for i in range(n):
        r, c = torch.randint(0, size - 6, (2,), generator=g).tolist()
        x[i, :, r:r + 6, c:c + 6] += 1.2
        mask[i, :, r:r + 6, c:c + 6] = 1
    return x.clamp(-1, 1), mask


def dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    p, t = pred.bool(), truth.bool()
    return float(2 * (p & t).sum() / (p.sum() + t.sum()))


@pytest.mark.parametrize("patch", [0, 16])
def test_segmenter_learns_squares_and_beats_its_untrained_self(patch: int) -> None:
    x, mask = squares(size=32)
    torch.manual_seed(0)
    seg = build_model("segmenter", size=32, channels=(8, 16), patch=patch, components=1,
                      augment="flip")
    before = dice(seg.predict(x)[:, :1], mask)
    fit(seg, DictDataset(image=x, target=mask), steps=60, batch_size=8, seed=0)
    test_x, test_mask = squares(size=32, seed=1)
    pred = seg.predict(test_x)
    assert pred.shape == test_mask.shape and pred.dtype == torch.long
    after = dice(pred, test_mask)
    assert after > 0.8 and after > before + 0.3, (before, after)


def test_classifier_loss_is_the_class_weighted_cross_entropy_per_sample() -> None:
    clf = build_model("classifier", size=16, classes=3, class_weights=(1.0, 2.0, 0.5))
    x = torch.randn(4, 1, 16, 16)
    y = torch.tensor([0, 1, 2, 1])
    loss = clf({"image": x, "label": y})["loss"]
    ce = torch.nn.functional.cross_entropy(clf.net(x), y, reduction="none")
    assert loss.shape == (4,)
    assert torch.allclose(loss, torch.tensor([1.0, 2.0, 0.5, 2.0]) * ce, atol=1e-6)


def test_balanced_weights_are_inverse_frequency_and_zero_for_absent_classes() -> None:
    assert balanced_weights([0, 0, 0, 1], 3) == (4 / 9, 4 / 3, 0.0)


def test_classifier_separates_bright_from_dark_images() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = (y.float() - 0.5).reshape(-1, 1, 1, 1) + 0.3 * torch.randn((40, 1, 8, 8), generator=g)
    torch.manual_seed(0)
    clf = build_model("classifier", size=8, classes=2, backbone="classifier", channels=(8, 16),
                      augment="flip")
    fit(clf, DictDataset(image=x, label=y), steps=40, batch_size=8, seed=0)
    proba = clf.predict_proba(x)
    assert proba.shape == (40, 2) and torch.allclose(proba.sum(1), torch.ones(40))
    assert float((clf.predict(x) == y).float().mean()) > 0.9
    assert clf.predict_proba(x[:0]).shape == (0, 2)


def test_regressor_beats_the_identity_on_a_negation_task() -> None:
    x, _ = squares(n=24)
    torch.manual_seed(0)
    reg = build_model("regressor", size=16, channels=(8, 16))
    fit(reg, DictDataset(image=x, target=-x), steps=80, batch_size=8, seed=0)
    pred = reg.predict(x)
    assert pred.min() >= -1 and pred.max() <= 1
    assert float((pred + x).abs().mean()) < 0.5 * float((x + x).abs().mean())


def test_patch_trained_residual_regressor_denoises_whole_images_larger_than_its_patch() -> None:
    """Trained on 16-px crops of 32-px images, applied by sliding window to 48-px images."""
    g = torch.Generator().manual_seed(0)
    clean, _ = squares(n=32, size=32)
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=g)
    torch.manual_seed(0)
    reg = build_model("regressor", size=32, channels=(8, 16), patch=16, residual=True, loss="mse")
    with torch.no_grad():
        assert torch.allclose(reg._forward(noisy), reg.net(noisy) + noisy)
    fit(reg, DictDataset(image=noisy, target=clean), steps=300, batch_size=8, seed=0)
    test_clean, _ = squares(n=8, size=48, seed=3)
    test_noisy = test_clean + 0.3 * torch.randn(test_clean.shape, generator=g)
    pred = reg.predict(test_noisy)
    assert pred.shape == test_clean.shape
    before = float((test_noisy - test_clean).pow(2).mean())
    after = float((pred - test_clean).pow(2).mean())
    assert after < 0.5 * before, (before, after)


def test_random_crops_cut_every_tensor_at_the_same_place() -> None:
    x = torch.arange(2 * 20 * 24, dtype=torch.float32).reshape(2, 1, 20, 24)
    a, b = random_crops(8, x, -x)
    assert a.shape == (2, 1, 8, 8) and torch.equal(a, -b)
    assert any(torch.equal(a[0, 0], x[0, 0, r:r + 8, c:c + 8]) for r in range(13) for c in range(17))
    with pytest.raises(UserError, match="smaller than the patch"):
        random_crops(32, x)
    focus = torch.zeros(2, 1, 20, 24)
    focus[0, 0, 18, 2] = 1  # near a corner: the crop is clipped to the image
    a, f = random_crops(8, x, focus, focus=focus, focus_fraction=1.0)
    assert f[0].sum() == 1 and torch.equal(a[0, 0], x[0, 0, 12:20, 0:8])
    torch.manual_seed(0)
    plain = random_crops(8, x)
    torch.manual_seed(0)
    assert all(torch.equal(p, q) for p, q in zip(plain, random_crops(8, x, focus=focus)))


@pytest.mark.parametrize("name,options", [
    ("segmenter", dict(out_channels=3, patch=16)),
    ("classifier", dict(classes=3, in_channels=2, shape=(8, 16))),
    ("regressor", dict(channels=(8, 16))),
])
def test_supervised_models_rebuild_from_their_saved_config(name: str, options: dict) -> None:
    model = build_model(name, size=16, **options)
    saved = model_config_dict(model)
    clone = build_model_from_config(saved["family"], saved["config"])
    clone.load_state_dict(model.state_dict())
    assert type(clone) is type(model) and to_dict(clone.config) == to_dict(model.config)
    with pytest.raises(UserError, match="does not sample"):
        model.sample(2)


def test_bad_supervised_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="2 classes"):
        build_model("segmenter", size=16, out_channels=1)
    with pytest.raises(UserError, match="class_weights"):
        build_model("classifier", size=16, classes=3, class_weights=(1.0, 2.0))
    with pytest.raises(UserError, match="augment"):
        build_model("classifier", size=16, augment="mixup")
    with pytest.raises(UserError, match="class labels"):
        build_model("regressor", size=16, num_classes=3)
    with pytest.raises(UserError, match="patch"):
        build_model("regressor", size=16, patch=8)
    with pytest.raises(UserError, match="residual"):
        build_model("regressor", size=16, out_channels=2, residual=True)
    assert isinstance(build_model("segmenter", size=16), Segmenter)
    assert isinstance(build_model("classifier", size=16), Classifier)
    assert isinstance(build_model("regressor", size=16), Regressor)


def test_focus_weight_makes_the_loss_the_weighted_pixel_mean() -> None:
    """Weights 1 + focus_weight on focus pixels, sum(w |e|) / sum(w) per image (U-Net's weight
    map); patch crops cut the focus mask with the image; no focus in the batch: the plain mean."""
    x = torch.zeros(2, 1, 16, 16)
    target = torch.zeros(2, 1, 16, 16)
    target[0, 0, :2] = 1.0  # 32 pixels with error 1 in image 0
    focus = torch.zeros(2, 1, 16, 16)
    focus[0, 0, 0, :4] = 1  # 4 of them are focus pixels
    for patch in (0, 16):
        reg = build_model("regressor", size=16, channels=(8, 16), focus_weight=9.0, patch=patch)
        reg.net = torch.nn.Identity()  # prediction = input = 0: error = target
        loss = reg.loss({"image": x, "target": target, "focus": focus})["loss"]
        expected = (28 * 1 + 4 * 10) / (252 + 4 * 10)  # sum(w |e|) / sum(w) over 256 pixels
        assert torch.allclose(loss, torch.tensor([expected, 0.0])), loss
        plain = reg.loss({"image": x, "target": target})["loss"]
        assert torch.allclose(plain, torch.tensor([32 / 256, 0.0]))
    with pytest.raises(UserError, match="focus_weight"):
        build_model("regressor", size=16, focus_weight=-1.0)


def test_focus_weight_teaches_a_rare_region_the_plain_loss_neglects() -> None:
    """Target = -input, except inside a small bright square (in a quarter of the images) whose
    target is its own value: the focus-weighted regressor gets that square right far more
    often than the same regressor on the plain loss, at the same steps and seed."""
    g = torch.Generator().manual_seed(0)
    x = 0.5 * torch.rand(32, 1, 16, 16, generator=g) - 0.25
    target = -x.clone()
    focus = torch.zeros_like(x)
    for i in range(0, 32, 4):
        r, c = (int(v) for v in torch.randint(2, 12, (2,), generator=g))
        x[i, 0, r:r + 3, c:c + 3] = 0.8
        target[i, 0, r:r + 3, c:c + 3] = 0.8
        focus[i, 0, r:r + 3, c:c + 3] = 1
    errors = {}
    for weight in (0.0, 30.0):
        torch.manual_seed(0)
        reg = build_model("regressor", size=16, channels=(8, 16), focus_weight=weight)
        fit(reg, DictDataset(image=x, target=target, focus=focus), steps=150, batch_size=8, seed=0)
        err = (reg.predict(x) - target).abs()
        errors[weight] = (float(err[focus > 0].mean()), float(err[focus == 0].mean()))
    assert errors[30.0][0] < 0.5 * errors[0.0][0], errors
    assert errors[30.0][1] < 2 * errors[0.0][1] + 0.05, errors
