"""Kidney-crop anomaly benchmark (issue 16): quick run end to end, a detector that must beat
chance on an easy case, and bad settings (simplex noise itself: tests/models/test_simplex.py)."""

from __future__ import annotations

import dataclasses
import shutil
import json

import numpy as np
import pytest
import torch

from genmed.apps.anomaly_crops import (
    DETECTORS,
    CropAnomalyConfig,
    detect,
    gan_score,
    lesion_crop_set,
    lesion_slices,
    quick_crop_anomaly_config,
    run_crop_anomaly,
    slice_scores,
    standardised_mean,
)
from genmed.errors import UserError
from genmed.metrics.anomaly import image_level


def test_quick_run_writes_metrics_and_figure(tmp_path):
    res = run_crop_anomaly(quick_crop_anomaly_config(), tmp_path)
    assert (tmp_path / "anomaly_crops.png").stat().st_size > 0
    data = json.loads((tmp_path / "anomaly_crops.json").read_text())
    assert set(data["detectors"]) == set(DETECTORS)
    t = data["test"]
    assert t["n_lesion"] > 0 and t["n_healthy"] > 0 and t["n"] == t["n_lesion"] + t["n_healthy"]
    for det, r in res["detectors"].items():
        auc = r["image"]["auroc"]
        assert 0.0 <= auc["low"] <= auc["value"] <= auc["high"] <= 1.0, det
        assert r["image"]["n_pos"] == t["n_lesion"]
    for det in ("gan", "vae_elbo"):
        assert data["detectors"][det]["pixel"] is None
    for det in ("intensity", "vae_recon", "gan_inversion", "diffusion", "diffusion_simplex"):
        assert 0.0 <= data["detectors"][det]["pixel"]["aupro"] <= 1.0, det


def test_vae_reconstruction_finds_bright_discs():
    """Healthy: 40 HU with 10 HU noise; anomalous: plus a 12-px disc of 200 HU."""
    rng = np.random.default_rng(0)
    s = 32
    train = (40 + 10 * rng.standard_normal((96, s, s))).astype(np.float32)
    test = (40 + 10 * rng.standard_normal((24, s, s))).astype(np.float32)
    yy, xx = np.mgrid[:s, :s]
    y = np.arange(24) % 2 == 1
    for k in np.flatnonzero(y):
        cy, cx = rng.integers(10, 22, 2)
        test[k][(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 200.0
    cfg = quick_crop_anomaly_config(crop=s, detectors=("vae_recon",), vae_steps=150, batch_size=16,
                                    smooth_px=1.0)
    torch.manual_seed(0)
    res = detect(cfg, train, test)
    assert image_level(res["vae_recon"]["scores"], y, n_boot=8)["auroc"]["value"] > 0.9


class _StubGAN(torch.nn.Module):
    """anomaly_score(x) = scale * f(mean brightness of x): a discriminator with a known scale."""

    def __init__(self, scale: float, square: bool) -> None:
        super().__init__()
        self.scale, self.square = scale, square
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def anomaly_score(self, x):
        m = x.float().mean((1, 2, 3))
        return self.scale * (m ** 2 if self.square else m)


def test_gan_ensemble_is_blind_to_a_discriminators_scale():
    """Averaged after standardising on the healthy training crops, the ensemble score does not
    change when one discriminator's logits are 1,000 times larger (a plain mean would follow
    that discriminator alone)."""
    rng = np.random.default_rng(0)
    train_hu = (40 + 30 * rng.standard_normal((64, 16, 16))).astype(np.float32)
    test_hu = (40 + 60 * rng.standard_normal((32, 16, 16))).astype(np.float32)
    cfg = quick_crop_anomaly_config(crop=16, detectors=("gan",), gan_models=2)
    from genmed.apps.common import to_unit

    x_tr, x_te = to_unit(train_hu), to_unit(test_hu)
    one = gan_score([_StubGAN(1.0, False), _StubGAN(1.0, True)], cfg, train_hu, test_hu, x_tr, x_te)
    big = gan_score([_StubGAN(1e3, False), _StubGAN(1.0, True)], cfg, train_hu, test_hu, x_tr, x_te)
    np.testing.assert_allclose(big, one, rtol=1e-5, atol=1e-5)
    alone = gan_score([_StubGAN(1.0, False)], cfg, train_hu, test_hu, x_tr, x_te)
    assert np.corrcoef(one, alone)[0, 1] < 0.99  # the second discriminator does count


def test_standardised_ensemble_beats_each_member_and_ignores_their_scales():
    """Two detectors with independent errors, one on a 1,000 times larger scale: their mean
    after standardising on healthy reference scores ranks lesions better than either alone
    and does not change with the scale, where a plain mean follows the large detector alone."""
    rng = np.random.default_rng(0)
    y = np.arange(400) % 4 == 0
    a = y + rng.standard_normal(400)
    b = 1e3 * (y + rng.standard_normal(400))
    refs = [rng.standard_normal(200), 1e3 * rng.standard_normal(200)]
    auroc = {name: image_level(s, y, n_boot=8)["auroc"]["value"] for name, s in
             (("a", a), ("b", b), ("ensemble", standardised_mean([a, b], refs)),
              ("plain mean", (a + b) / 2))}
    assert auroc["ensemble"] > max(auroc["a"], auroc["b"]) + 0.03, auroc
    assert abs(auroc["plain mean"] - auroc["b"]) < 0.01, auroc
    np.testing.assert_allclose(standardised_mean([a, b / 1e3], [refs[0], refs[1] / 1e3]),
                               standardised_mean([a, b], refs))


@pytest.mark.parametrize("bad", [
    dict(crop=48), dict(crop=512), dict(t_start=0), dict(detectors=("ssim",)),
    dict(min_lesion_mm=40.0), dict(n_boot=2), dict(simplex_octaves=6),
    dict(test_lesion_mm=(20.0, 10.0)), dict(vae_steps=0), dict(gan_models=0),
    dict(detectors=("ensemble", "vae_recon", "gan", "diffusion")),  # members after it
    dict(detectors=("vae_recon", "ensemble"), ensemble_of=("vae_recon", "gan")),
    dict(ensemble_ref_patients=0),
])
def test_bad_config_raises(bad):
    with pytest.raises(UserError):
        CropAnomalyConfig(**bad)


def test_slice_score_is_the_most_anomalous_kidney_crop():
    scores = np.array([0.2, 0.9, 0.5, -1.0])
    assert slice_scores(scores, np.array([0, 0, 2, 2]), 4).tolist() == [0.9, -np.inf, 0.5, -np.inf]


def test_whole_slices_are_scored_through_the_crops_the_segmenter_places():
    """Truth-placed crops of `lesion_slices` are the crop set's; every lesion slice (>= 10 mm)
    has a crop with lesion pixels and no healthy slice has one; the segmenter's masks place the
    crops, and one that finds no kidney leaves nothing to score."""
    cfg = quick_crop_anomaly_config(size=128, crop=32, slices_per_patient=4, min_lesion_mm=10.0)
    crops, y, _ = lesion_slices(4, cfg, 7, lesion_prob=1.0)
    ref, _ = lesion_crop_set(4, cfg, 7)
    kept = (y[crops.slice_id] >= 0) & ~(crops.lesion.any((1, 2)) & (crops.lesion_mm < 10.0))
    np.testing.assert_array_equal(crops.hu[kept], ref.hu)  # same crops, same order
    crops, y, slices = lesion_slices(6, cfg, 7)
    assert len(y) == 24 and set(np.unique(y)) <= {-1, 0, 1} and (y == 1).any() and (y == 0).any()
    for i in range(len(y)):
        assert crops.lesion[crops.slice_id == i].any() == (y[i] != 0), i
    inside = np.nonzero((crops.origin >= 0).all(1) & (crops.origin + 32 <= 128).all(1))[0]
    assert len(inside) > 0
    for k in inside:  # each crop is the window of its slice at its origin
        r, c = crops.origin[k]
        np.testing.assert_array_equal(crops.hu[k], slices.image[crops.slice_id[k], r:r + 32, c:c + 32])
    truth = slices.kidney_mask
    one_side, _, _ = lesion_slices(6, cfg, 7, segment=lambda hu: truth * (np.arange(hu.shape[-1]) < hu.shape[-1] // 2))
    assert 0 < len(one_side.hu) < len(crops.hu)
    with pytest.raises(UserError, match="no kidney crops"):
        lesion_slices(6, cfg, 7, segment=lambda hu: np.zeros(hu.shape, np.uint8))


def test_a_rerun_reuses_the_trained_models_and_scores_the_same(tmp_path, monkeypatch):
    """Models kept under OUT/models are loaded, not retrained, by a rerun with the same config
    (a killed benchmark resumes), and give the same scores; a changed config retrains."""
    from genmed.train.fitting import Compute

    cfg = quick_crop_anomaly_config(detectors=("vae_recon", "gan", "diffusion"))
    first = run_crop_anomaly(cfg, tmp_path)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["diffusion_0", "gan_0", "vae_0"]
    trained = []
    real_fit = Compute.fit
    monkeypatch.setattr(Compute, "fit", lambda self, model, *a, **k: trained.append(model) or real_fit(self, model, *a, **k))
    again = run_crop_anomaly(cfg, tmp_path)
    assert trained == []
    for det in cfg.detectors:
        assert again["detectors"][det]["image"]["auroc"] == first["detectors"][det]["image"]["auroc"], det
    import genmed.train.engine as engine

    steps = []
    real_step = engine._phase_step
    monkeypatch.setattr(engine, "_phase_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    gan = tmp_path / "models" / "gan_0"
    (gan / "done.json").unlink()  # as if killed after the GAN's last checkpoint
    run_crop_anomaly(dataclasses.replace(cfg, detectors=("gan",)), tmp_path)
    assert len(trained) == 1 and steps == []  # resumed at that checkpoint: nothing retrained
    (gan / "done.json").unlink()
    shutil.rmtree(gan / "checkpoints")  # killed before its first checkpoint: trained afresh
    run_crop_anomaly(dataclasses.replace(cfg, detectors=("gan",)), tmp_path)
    assert len(trained) == 2 and steps
    run_crop_anomaly(dataclasses.replace(cfg, detectors=("vae_recon",), vae_steps=cfg.vae_steps + 1), tmp_path)
    assert len(trained) == 3
