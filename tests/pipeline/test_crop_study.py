"""Scarce-malignant crop study: crop extraction, scarcity, the recall-difference CI, quick run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from genmed.data.phantom import PhantomConfig
from genmed.errors import UserError
from genmed.pipeline.cases import phantom_cases
from genmed.pipeline.crop_study import (MALIGNANT, CropStudyConfig, crop_study, kidney_crop_set, make_scarce,
                                        quick_crop_study_config, recall_difference)


@pytest.fixture(scope="module")
def cases():
    return phantom_cases(16, 6, PhantomConfig(size=64, lesion_prob=1.0), seed=4)


@pytest.fixture(scope="module")
def crops(cases):
    return kidney_crop_set(cases, 24, PhantomConfig().slice_gap_mm)


def test_one_lesion_crop_per_slice_showing_a_lesion(cases, crops):
    """Each visible lesion lies on one side, so it gives exactly one lesion crop of its kind."""
    for k in (1, 2):
        assert (crops.label == k).sum() == (cases.label == k).sum() > 0


def test_crop_masks_and_lesion_areas(crops):
    """The kidney mask covers the crop's lesion, and the lesion area is > 0 exactly on lesion crops
    (pixels x the 5.6 mm spacing of 64-px slices, squared)."""
    from genmed.pipeline.crop_study import crop_inputs

    assert ((crops.lesion_mm2 > 0) == (crops.label > 0)).all()
    assert crops.kidney.any((1, 2)).all() and set(np.unique(crops.kidney)) <= {0, 1}
    px_mm2 = (360.0 / 64) ** 2
    np.testing.assert_allclose(crops.lesion_mm2 / px_mm2, np.round(crops.lesion_mm2 / px_mm2))
    x = crop_inputs(crops, mask_channel=True)
    assert x.shape == (len(crops), 2, 24, 24)
    np.testing.assert_array_equal(x[:, 0], crops.image)
    np.testing.assert_array_equal(x[:, 1] > 0, crops.kidney > 0)
    sub = crops.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.kidney, crops.kidney[[3, 1]])
    np.testing.assert_array_equal(sub.lesion_mm2, crops.lesion_mm2[[3, 1]])


def test_crops_are_unresampled_windows_of_their_slices(cases, crops):
    """Native spacing: every crop is a pixel-exact window of one of its patient's slices."""
    for i in range(0, len(crops), 7):
        own = cases.image[cases.patient_id == crops.patient_id[i]]
        windows = sliding_window_view(own, crops.image[i].shape, axis=(1, 2))
        assert np.all(windows == crops.image[i], axis=(-2, -1)).any()


def test_make_scarce_keeps_whole_patients_and_exactly_n_malignant(crops):
    scarce = make_scarce(crops, 5, seed=0)
    assert (scarce.label == MALIGNANT).sum() == 5
    kept_clean = set(scarce.patient_id[scarce.label != MALIGNANT]) - set(crops.patient_id[crops.label == MALIGNANT])
    for pid in kept_clean:  # patients without a malignant lesion are kept whole
        assert (scarce.patient_id == pid).sum() == (crops.patient_id == pid).sum()
    again = make_scarce(crops, 5, seed=0)
    np.testing.assert_array_equal(scarce.patient_id, again.patient_id)
    with pytest.raises(UserError, match="malignant crops"):
        make_scarce(crops, 10_000, seed=0)


def test_recall_difference_ci_excludes_zero_only_for_a_real_effect():
    rng = np.random.default_rng(0)
    y = np.repeat([0, MALIGNANT], 200)
    groups = np.arange(400) // 4
    base = np.where(rng.random((3, 400)) < 0.3, MALIGNANT, 0)
    better = np.where(rng.random((3, 400)) < 0.8, MALIGNANT, 0)
    d = recall_difference(y, better, base, groups)
    assert 0.4 < d["recall_diff"] < 0.6 and d["recall_diff_lo"] > 0
    same = recall_difference(y, base, base, groups)
    assert same["recall_diff"] == 0 and same["mde"] == 0
    noise = recall_difference(y, np.where(rng.random((3, 400)) < 0.3, MALIGNANT, 0), base, groups)
    assert noise["recall_diff_lo"] < 0 < noise["recall_diff_hi"] and noise["mde"] > 0.05


def test_bad_config_is_a_user_error():
    with pytest.raises(UserError, match="crop="):
        CropStudyConfig(size=64, crop=96)
    with pytest.raises(UserError, match="ratios"):
        CropStudyConfig(ratios=(0.0,))
    with pytest.raises(UserError, match="oracle_width"):
        CropStudyConfig(oracle_width=(32, 0))
    with pytest.raises(UserError, match="fidelity_n"):
        CropStudyConfig(fidelity_n=0)


def test_quick_study_with_a_copying_generator(tmp_path):
    """A 'generator' that returns the training malignant crops: every arm is trained and scored,
    the memorisation audit flags the copies, and the oracle classes the copies malignant."""
    from genmed.pipeline.crop_study import study_crops

    cfg = quick_crop_study_config()
    _, scarce, _ = study_crops(cfg)
    mal = scarce.image[scarce.label == MALIGNANT]
    copy = lambda cls, n, seed: mal[np.arange(n) % len(mal)]  # noqa: E731
    result = crop_study(cfg, tmp_path, generators={"copy": copy})
    arms = [row["arm"] for row in result["table"]]
    assert arms == ["real", "reweight", "classic", "oversample x1", "copy x1"]
    # oversampling IS training on copies: the same crops in the same order, so the same classifiers
    rows = {row["arm"]: row for row in result["table"]}
    assert rows["oversample x1"]["malignant_recall"] == rows["copy x1"]["malignant_recall"]
    assert rows["oversample x1"]["auroc_malignant"] == rows["copy x1"]["auroc_malignant"]
    memo = result["memorisation"][0]
    assert memo["median_nn_dist"] == 0 and memo["ratio"] == 0
    assert set(result["oracle"]["class_fidelity"]) == {"real_confusion", "n_per_class"}  # "copy" is no family
    assert result["oracle"]["synthetic_classed_malignant"]["copy"] >= result["oracle"]["test"]["malignant_recall"] - 0.5
    saved = json.loads((tmp_path / "crop_study.json").read_text())
    assert saved["crop_counts"]["train_scarce"]["malignant"] == cfg.malignant_crops
    for name in ("crop_table.csv", "crop_per_seed.csv", "crop_memorisation.csv", "crop_study.png"):
        assert (tmp_path / name).is_file()
    np.testing.assert_array_equal(np.load(tmp_path / "synthetic.npz")["copy"], copy(2, len(mal) * 1, 0))
    with np.load(tmp_path / "crop_test_proba.npz") as saved_proba:  # the table is recomputable from it
        proba = saved_proba["arm:copy x1"]
        assert proba.shape == (len(cfg.seeds), len(saved_proba["label"]), 3)
        recall = (proba.argmax(2)[:, saved_proba["label"] == MALIGNANT] == MALIGNANT).mean()
        assert recall == pytest.approx(rows["copy x1"]["malignant_recall"], abs=1e-9)
        n_mal = cfg.malignant_crops
        assert saved_proba["prior:real"][MALIGNANT] == pytest.approx(n_mal / len(scarce))
        assert saved_proba["prior:copy x1"][MALIGNANT] == pytest.approx(2 * n_mal / (len(scarce) + n_mal))
        np.testing.assert_allclose(saved_proba["prior:reweight"], 1 / 3)
    corrected = {row["arm"]: row for row in result["prior_corrected"]}
    assert list(corrected) == arms and (tmp_path / "crop_prior_corrected.csv").is_file()
    # re-weighting already trains for a uniform prior: the correction leaves it as it was
    assert corrected["reweight"]["malignant_recall"] == pytest.approx(rows["reweight"]["malignant_recall"])
    assert corrected["real"]["recall_diff"] == 0


def test_quick_study_with_latent_diffusion(tmp_path):
    """The ldm arm trains its two stages on the scarce crops, with the study's recipe (the
    autoencoder on 32-px random crops), and its synthetic crops have the crop size."""
    import yaml

    cfg = quick_crop_study_config(families=("ldm",), crop=32, seeds=(0,), baselines=())
    result = crop_study(cfg, tmp_path)
    assert [row["arm"] for row in result["table"]] == ["real", "oversample x1", "ldm x1"]
    run = tmp_path / "generators" / "gen_ldm"
    stage_two, stage_one = (yaml.safe_load((d / "config.yaml").read_text()) for d in (run, run / "autoencoder"))
    assert (stage_two["family"], stage_two["recipe"], stage_two["cond"]) == ("ldm", "augment", "label")
    assert stage_one["family"] == "autoencoder" and stage_one["options"]["train_crop"] == 32
    assert stage_one["lr"] == stage_two["lr"] == 2e-4
    assert np.load(tmp_path / "synthetic.npz")["ldm"].shape == (cfg.malignant_crops, 32, 32)
    fidelity = result["oracle"]["class_fidelity"]  # the conditional ldm, read by the oracle
    conf = np.array(fidelity["ldm"]["confusion"])
    assert conf.shape == (3, 3) and np.allclose(conf.sum(1), 1) and fidelity["n_per_class"] == cfg.fidelity_n
    gap = fidelity["ldm"]["uniform_freq"]
    assert gap["max_gap"] == pytest.approx(np.abs(np.subtract(gap["generated_shares"], gap["real_shares"])).max())


def test_ldm_crop_must_fit_the_latent_unet():
    with pytest.raises(UserError, match="ldm generator does not fit crop=24"):
        quick_crop_study_config(families=("ldm",), crop=24)
    with pytest.raises(UserError, match="divisible by 16"):
        quick_crop_study_config(families=("ldm",), crop=40)
    with pytest.raises(UserError, match="generator family 'flow'"):
        quick_crop_study_config(families=("flow",))
    with pytest.raises(UserError, match="baseline arm 'real'"):
        quick_crop_study_config(baselines=("real",))


def test_cli_quick_study_trains_a_generator(cli, tmp_path):
    code, out, err = cli(["pipeline", "crop-study", "--quick", "--seeds", "1", "--families", "vae",
                          "--precision", "fp32", "--out", str(tmp_path / "s")])
    assert code == 0, err
    assert "vae x1" in out and "prior-corrected" in out and (tmp_path / "s" / "generators" / "gen_vae_class2").is_dir()
    table = (tmp_path / "s" / "crop_table.csv").read_text().splitlines()
    assert len(table) == 1 + 5  # header, real, reweight, classic, oversample x1, vae x1


@pytest.mark.parametrize("args, needle", [
    (["--families", "flow"], "--families"),
    (["--families", "ldm"], "does not fit crop=24"),  # the quick crops (24 px) do not fit its latent UNet
    (["--malignant-crops", "1"], "--malignant-crops"),
    (["--seeds", "0"], "--seeds"),
])
def test_cli_bad_input_exit_2(cli, tmp_path, args, needle):
    code, _, err = cli(["pipeline", "crop-study", "--quick", *args, "--out", str(tmp_path / "s")])
    assert code == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
