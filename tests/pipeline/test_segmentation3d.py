"""3D kidney segmentation contract: whole-volume masks, training beats an atlas, patient split,
resume, and bad settings as UserErrors. One torch thread; about 20 s on one CPU core."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from genmed.data.phantom import PhantomConfig, make_volumes
from genmed.data.transforms import hu_to_unit
from genmed.errors import UserError
from genmed.pipeline.segmentation3d import Seg3DConfig, Seg3DRunConfig, build_segmenter3d, \
    dice_per_volume, predict_masks3d, quick_config3d, run_segmentation3d, split_volumes, \
    train_segmenter3d, volume_ml
from genmed.train import checkpoint as ckpt
from genmed.train.fitting import Compute

CPU = Compute(device="cpu", precision="fp32")
# the quick settings, 8 patients at 32^3 (11.25 mm voxels), 300 steps: test Dice 0.74 / 0.74 /
# 0.81 for seeds 0-2, against 0.37 / 0.35 / 0.56 for the atlas of the training masks (~7 s each)
TRAINED = quick_config3d(seed=0, compute=CPU)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def components(mask: np.ndarray) -> int:
    """Connected components with full (26-)connectivity, as MONAI's KeepLargestConnectedComponent."""
    return ndimage.label(mask, structure=np.ones((3, 3, 3)))[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The TRAINED run's folder and metrics (trained once for this module)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("seg3d") / "run"
    yield out, run_segmentation3d(TRAINED, out)
    torch.set_num_threads(before)


def test_mask_matches_a_volume_larger_than_the_patch_and_keeps_two_components(trained):
    from genmed.train import load_run

    seg, _ = load_run(trained[0] / "segmenter3d")
    # same 11.25 mm voxels, wider field of view: (40, 48, 45) voxels, not a multiple of the patch
    vols = make_volumes(2, PhantomConfig(size=48, fov_mm=540.0, depth=40, z_spacing_mm=11.25),
                        seed=5)
    x, truth = hu_to_unit(vols.image)[..., :45], vols.kidney_mask[..., :45]
    pred = predict_masks3d(seg, x)
    assert pred.shape == x.shape == (2, 40, 48, 45) and pred.dtype == np.uint8
    assert set(np.unique(pred)) == {0, 1}
    assert all(1 <= components(p) <= 2 for p in pred)
    assert dice_per_volume(pred, truth).min() > 0.3  # it finds the kidneys, not just any blob


def test_postprocessing_keeps_the_two_largest_components():
    seg = build_segmenter3d(Seg3DConfig(channels=(8, 16), patch=16), 24)
    kidney = np.zeros((1, 20, 24, 24), np.float32)
    kidney[0, 2:10, 2:10, 2:8] = 1  # 384 voxels: kept
    kidney[0, 2:10, 2:10, 14:22] = 1  # 512: kept
    kidney[0, 14:17, 14:17, 14:17] = 1  # 27: dropped
    kidney[0, 18, 20, 2] = 1  # 1: dropped
    p = torch.from_numpy(kidney)[:, None]
    labels = seg.to_labels(torch.cat([1 - p, p], 1))[0, 0].numpy()
    assert components(kidney[0]) == 4 and components(labels) == 2
    assert labels.sum() == 384 + 512 and labels[2:10, 2:10, 2:8].all()


def test_dice_per_volume_and_volume_ml_by_hand():
    truth = np.zeros((3, 4, 5, 6), np.uint8)
    truth[0, :2] = 1  # 60 voxels
    truth[1, 0, 0, :2] = 1
    pred = truth.copy()
    pred[0, :1] = 0  # 30 of 60 found: Dice = 2 * 30 / 90
    pred[1] = 0
    d = dice_per_volume(pred, truth)
    np.testing.assert_allclose(d, [2 / 3, 0.0, 1.0])  # last: both empty
    np.testing.assert_allclose(volume_ml(truth, (5.0, 2.0, 2.0)), [60 * 20 / 1000, 2 * 20 / 1000, 0])


def test_patient_split_is_disjoint_and_complete():
    ids = make_volumes(12, TRAINED.phantom(), seed=3).patient_id
    assert len(set(ids)) == 12  # one volume per patient
    split = split_volumes(ids, 0.25, seed=3)
    train, test = set(ids[split["train"]]), set(ids[split["test"]])
    assert not train & test
    assert train | test == set(ids) and len(test) == 3


def test_training_beats_the_atlas_of_the_training_masks(trained):
    run, metrics = trained
    vols = make_volumes(TRAINED.n_patients, TRAINED.phantom(), seed=TRAINED.seed)
    split = split_volumes(vols.patient_id, TRAINED.test_fraction, TRAINED.seed)
    kidney = vols.kidney_mask
    atlas = (kidney[split["train"]].mean(0) >= 0.5).astype(np.uint8)
    test = kidney[split["test"]]
    atlas_dice = dice_per_volume(np.repeat(atlas[None], len(test), 0), test).mean()
    dice = metrics["test"]["kidney_dice"]
    assert dice["value"] > max(0.6, atlas_dice + 0.15), (dice, atlas_dice)
    assert dice["low"] <= dice["value"] <= dice["high"]
    per_patient = metrics["test"]["per_patient"]
    assert [p["patient_id"] for p in per_patient] == list(vols.patient_id[split["test"]])
    assert not set(metrics["splits"]["train"]) & set(metrics["splits"]["test"])
    assert metrics["spacing_mm"] == [11.25, 11.25, 11.25]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test"]["kidney_dice"]["value"] == pytest.approx(dice["value"])
    assert ckpt.latest_checkpoint(run / "segmenter3d").step == 300
    with pytest.raises(UserError, match="already holds"):  # never overwritten silently
        run_segmentation3d(TRAINED, run)


def test_resume_continues_an_engine_run_to_more_steps(tmp_path):
    cfg = TRAINED
    vols = make_volumes(4, cfg.phantom(), seed=0)
    x, y = hu_to_unit(vols.image), vols.kidney_mask
    short = dataclasses.replace(cfg.seg, steps=4)
    train_segmenter3d(x, y, short, compute=CPU, out=tmp_path / "seg")
    seg = train_segmenter3d(x, y, dataclasses.replace(short, steps=8), compute=CPU,
                            out=tmp_path / "seg", resume=True)
    assert ckpt.latest_checkpoint(tmp_path / "seg").step == 8
    assert predict_masks3d(seg, x).shape == x.shape
    with pytest.raises(UserError, match="already holds"):
        train_segmenter3d(x, y, short, compute=CPU, out=tmp_path / "seg")


def test_resuming_a_finished_run_reloads_it_and_refuses_another_config(tmp_path):
    quick = quick_config3d(compute=CPU)
    cfg = dataclasses.replace(quick, seg=dataclasses.replace(quick.seg, steps=20))
    first = run_segmentation3d(cfg, tmp_path / "run")
    again = run_segmentation3d(cfg, tmp_path / "run", resume=True)
    assert again["test"]["per_patient"] == first["test"]["per_patient"]
    assert ckpt.latest_checkpoint(tmp_path / "run" / "segmenter3d").step == cfg.seg.steps
    with pytest.raises(UserError, match="another config"):
        run_segmentation3d(dataclasses.replace(cfg, seed=1), tmp_path / "run", resume=True)


@pytest.mark.parametrize("bad, match", [
    (dict(patch=20), "divisible by 8"),
    (dict(patch=8, channels=(8, 16)), "patch=8 must be >= 16"),
    (dict(steps=0), "steps=0"),
    (dict(batch_size=1), "batch norm needs >= 2"),
    (dict(overlap=1.0), "overlap=1.0"),
    (dict(components=-1), "components=-1"),
    (dict(net="vnet"), "vnet"),
    (dict(channels=(16,)), "channel counts"),
])
def test_bad_segmenter_settings_are_user_errors(bad, match):
    with pytest.raises(UserError, match=match):
        Seg3DConfig(**bad)


@pytest.mark.parametrize("bad, match", [
    (dict(n_patients=2), "need >= 2 training"),
    (dict(test_fraction=0.0), "test_fraction"),
    (dict(depth=16), "smaller than the patch 48"),
    (dict(seed=-1), "seed=-1"),
])
def test_bad_run_settings_are_user_errors(bad, match):
    with pytest.raises(UserError, match=match):
        Seg3DRunConfig(**bad)


def test_bad_phantom_spacing_and_small_volumes_are_user_errors():
    with pytest.raises(UserError, match="z_spacing_mm=0.0"):
        Seg3DRunConfig(z_spacing_mm=0.0)
    with pytest.raises(UserError, match="smaller than the seg3d patch"):
        train_segmenter3d(np.zeros((2, 8, 32, 32)), np.zeros((2, 8, 32, 32)),
                          Seg3DConfig(patch=16, channels=(8, 16)), compute=CPU)
    with pytest.raises(UserError, match="do not match"):
        train_segmenter3d(np.zeros((2, 16, 16, 16)), np.zeros((2, 16, 16, 8)),
                          Seg3DConfig(patch=16, channels=(8, 16)), compute=CPU)


def test_cli_quick_run_then_refuses_to_overwrite(cli, tmp_path):
    import json

    out = tmp_path / "s3d"
    code, stdout, err = cli(["pipeline", "segment3d", "--quick", "--precision", "fp32", "--out", str(out)])
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(stdout)["kidney_dice"]["value"] == metrics["test"]["kidney_dice"]["value"] > 0.5
    code, _, err = cli(["pipeline", "segment3d", "--quick", "--out", str(out)])
    assert code == 2 and "Traceback" not in err and err.strip().count("\n") == 0


def test_cli_bad_size_exit_2(cli, tmp_path):
    code, _, err = cli(["pipeline", "segment3d", "--size", "32", "--out", str(tmp_path / "s")])
    assert code == 2 and "--size" in err and not (tmp_path / "s").exists()
